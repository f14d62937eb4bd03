"""The ledger's schema, as numbered migrations the runner applies itself, in order.

Each migration is written once per dialect (SQLite, PostgreSQL) with the same tables and
columns, so both ledgers behave alike. A ledger records the versions it has in
`schema_migrations`; opening one applies the missing migrations in one transaction. A
ledger newer than this runner (a version it does not know) is refused, never guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One step of the schema: VERSION, what it does in words, and its SQL per dialect."""

    version: int
    description: str
    sqlite: str
    postgres: str


_V1 = """
CREATE TABLE deliveries (
    campaign TEXT NOT NULL,        -- the campaign's name (NAME.sandbox for rehearsals)
    key TEXT NOT NULL,             -- CAMPAIGN:KEY, the delivery key
    row INTEGER,
    phone TEXT,
    status TEXT NOT NULL,          -- sending | sent | failed
    permanent INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    http_status INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_id TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (campaign, key)
);
CREATE INDEX deliveries_by_phone ON deliveries (phone);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    campaign TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    exit_code INTEGER,
    reason TEXT,
    counts TEXT,
    host TEXT,
    pid INTEGER,
    campaign_file TEXT,
    fingerprint TEXT,              -- the message's fingerprint (campaign identity)
    recipients_file TEXT
);
CREATE INDEX runs_by_campaign ON runs (campaign, started_at);
CREATE TABLE imported_journals (  -- per-campaign journals of earlier versions, imported once
    path TEXT PRIMARY KEY,
    campaign TEXT NOT NULL,
    deliveries INTEGER NOT NULL,
    runs INTEGER NOT NULL,
    imported_at TEXT NOT NULL
);
"""

# The plan's deliveries, shared by the workers of a campaign on PostgreSQL: each worker
# claims batches (FOR UPDATE SKIP LOCKED) under a lease it renews while it works. SQLite has
# the same table (one process per campaign there, so it stays empty).
_V2_WORK = """
CREATE TABLE work (
    campaign TEXT NOT NULL,
    key TEXT NOT NULL,
    plan_id TEXT NOT NULL,         -- the plan it belongs to: workers of one plan share it
    seq INTEGER NOT NULL,
    row INTEGER NOT NULL,
    phone TEXT NOT NULL,
    content {blob} NOT NULL,       -- the request body, as the bytes it will carry
    vals TEXT NOT NULL,            -- the recipient's columns (JSON), for the report
    worker TEXT,                   -- the run that holds the claim
    lease_until {time},            -- the claim lapses after this, unless renewed
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign, key)
);
CREATE INDEX work_to_claim ON work (campaign, plan_id, done, seq);
"""

# Rules across campaigns (rules.py): who is never messaged, the daily budget, and the
# recipients a run is about to reach (its claims), seen by every other run's plan.
_V4_RULES = """
CREATE TABLE suppressions (
    phone TEXT PRIMARY KEY,        -- E.164
    kind TEXT NOT NULL,            -- manual | opted-out (Meta 131050) | not-on-whatsapp (131026)
    reason TEXT NOT NULL,
    campaign TEXT,                 -- the campaign that learned it; NULL: added by ops
    added_at TEXT NOT NULL
);
CREATE TABLE settings (            -- ops' settings shared by every campaign (the budget)
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE claims (              -- one per message a planned run is about to send
    claimant TEXT NOT NULL,        -- the planning run's own id, dropped when it closes
    phone TEXT NOT NULL,
    campaign TEXT NOT NULL,
    claimed_at TEXT NOT NULL
);
CREATE INDEX claims_by_phone ON claims (phone);
CREATE INDEX claims_by_claimant ON claims (claimant);
"""

# What Meta reported after "sent" (status webhooks: ledger/outcomes.py, webhooks/): each
# delivery's furthest state and failure, statuses for wamids no delivery has yet (matched
# when it appears), customers' replies and marketing preferences, and campaigns held back
# by a paused or disabled template until the operator resumes them.
_V5_OUTCOMES = """
ALTER TABLE deliveries ADD COLUMN outcome TEXT;          -- sent | delivered | read | failed
ALTER TABLE deliveries ADD COLUMN reached TEXT;          -- the furthest of sent, delivered, read
ALTER TABLE deliveries ADD COLUMN sent_at TEXT;
ALTER TABLE deliveries ADD COLUMN delivered_at TEXT;
ALTER TABLE deliveries ADD COLUMN read_at TEXT;
ALTER TABLE deliveries ADD COLUMN failed_at TEXT;
ALTER TABLE deliveries ADD COLUMN failure_code INTEGER;
ALTER TABLE deliveries ADD COLUMN failure_title TEXT;
ALTER TABLE deliveries ADD COLUMN failure_details TEXT;
ALTER TABLE deliveries ADD COLUMN pricing_category TEXT;
CREATE INDEX deliveries_by_message ON deliveries (message_id);
CREATE TABLE unmatched_statuses (  -- for a wamid no delivery has (yet)
    message_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at TEXT NOT NULL,
    recipient TEXT,
    code INTEGER,
    title TEXT,
    details TEXT,
    pricing_category TEXT,
    received_at TEXT NOT NULL,
    PRIMARY KEY (message_id, status, at)
);
CREATE INDEX unmatched_by_arrival ON unmatched_statuses (received_at);
CREATE TABLE replies (
    message_id TEXT PRIMARY KEY,
    phone TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    context_id TEXT,               -- the wamid it answers
    received_at TEXT NOT NULL
);
CREATE INDEX replies_by_phone ON replies (phone, at);
CREATE TABLE preferences (         -- each customer's latest marketing preference
    phone TEXT PRIMARY KEY,
    value TEXT NOT NULL,           -- stop | resume
    at TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE holds (               -- campaigns whose next runs must not send
    campaign TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    code INTEGER,                  -- Meta's code; NULL for the quality breaker
    held_at TEXT NOT NULL,
    released_at TEXT               -- set by `campaign resume`; NULL while held
);
CREATE INDEX deliveries_by_run ON deliveries (campaign, run_id)
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "deliveries and runs of every campaign", _V1, _V1),
    Migration(
        2,
        "the plan's deliveries, claimed by the workers of a campaign",
        _V2_WORK.format(blob="BLOB", time="TEXT"),
        _V2_WORK.format(blob="BYTEA", time="TIMESTAMPTZ"),
    ),
    Migration(
        3,
        "the pace a campaign's workers share: send.rate and throttles for all of them",
        "CREATE TABLE pace (campaign TEXT PRIMARY KEY, next_at TEXT, paused_until TEXT)",
        "CREATE TABLE pace (campaign TEXT PRIMARY KEY, next_at TIMESTAMPTZ,"
        " paused_until TIMESTAMPTZ)",
    ),
    Migration(4, "suppressions, settings and claims: rules across campaigns", _V4_RULES, _V4_RULES),
    Migration(
        5,
        "outcomes after sent: statuses, replies, preferences and holds",
        _V5_OUTCOMES,
        _V5_OUTCOMES,
    ),
)
LATEST = MIGRATIONS[-1].version

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


def statements(script: str) -> list[str]:
    """The statements of a migration's SCRIPT, comments dropped (no `;` and no `--` inside a
    statement in our migrations)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
