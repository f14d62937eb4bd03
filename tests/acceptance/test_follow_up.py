"""Follow-up runs by outcome: a campaign file with `follow_up:` sends to the people of another
campaign by what became of their message there (Meta's status webhooks, in the ledger),
exactly once each, deferring those whose outcome is too recent and saying why it leaves
out everyone else.

The story: campaign `spring-sale` goes to five people through a real sandbox; Meta's
statuses for its messages land in the real ledger (`apply_events` on Meta-shaped payloads);
then a retry of those who failed with 131049 (after 24 hours) and a reminder to those
delivered but not read (after 48 hours) run through the CLI.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from helpers import cli, env_for, on_a_terminal, read_report, write_campaign
from webhook_builders import payload

from campaign_runner.ledger import open_ledger, state_from
from campaign_runner.ledger.migrations import MIGRATIONS, MIGRATIONS_TABLE, statements
from campaign_runner.ledger.outcomes import OUTCOMES_VERSION
from campaign_runner.rules import stamp
from campaign_runner.sandbox import Faults
from campaign_runner.webhooks.payload import parse_payload

PEOPLE_PHONES = ANA, BIA, CAIO, DORA, EVA = tuple(f"+55119800000{i:02d}" for i in range(5))
PEOPLE = [{"phone": p, "name": n} for p, n in zip(PEOPLE_PHONES, "ABCDE", strict=True)]
NOW = datetime.now(UTC).replace(microsecond=0)
RETRY = {"of": "spring-sale", "outcome": "failed", "codes": [131049], "after": "24h"}
REMINDER = {"of": "spring-sale", "outcome": "delivered", "after": "48h"}
SALE = {"type": "text", "text": {"body": "Spring sale, [name]!"}}
AGAIN = {"type": "text", "text": {"body": "Trying again, [name]: spring sale!"}}
NUDGE = {"type": "text", "text": {"body": "[name], the spring sale ends soon."}}


# ---- what the tests build --------------------------------------------------------------


def campaign(tmp_path, gateway, name, message=SALE, **sections):
    """Campaign NAME in its own folder, to the five people, sending to GATEWAY."""
    url = gateway.messages_url if gateway is not None else None
    return write_campaign(
        tmp_path / name, name=name, rows=PEOPLE, message=message, gateway_url=url, **sections
    )


def run(path, tmp_path, state, *extra):
    """`campaign run PATH`; the CLI's result, the report's rows by phone, and the summary."""
    report = path.parent / f"report-{len(list(path.parent.glob('report-*.csv')))}.csv"
    args = ["run", path, "--state", state, "--report", report, *extra]
    result = cli(args, env=env_for(tmp_path))
    summary = json.loads(report.with_suffix(".json").read_text()) if report.exists() else None
    rows = read_report(report) if report.exists() else []
    return result, {row["phone"]: row for row in rows}, summary


def status(wamid, word, at, phone, code=None, title=None):
    """One `statuses[]` entry as Meta posts it."""
    entry = {
        "id": wamid,
        "status": word,
        "timestamp": str(int(at.timestamp())),
        "recipient_id": phone.lstrip("+"),
    }
    if code is not None:
        entry["errors"] = [{"code": code, "title": title or f"error {code}"}]
    return entry


def tell_ledger(state, *statuses):
    """Meta's status webhook payload carrying STATUSES, written into the ledger at STATE."""
    doc = payload(*statuses, metadata={"phone_number_id": "106540352242922"})
    events = parse_payload(doc)
    assert not events.problems, events.problems
    journal = open_ledger(state_from(state), readonly=False)
    assert journal is not None
    try:
        applied = journal.apply_events(events)
    finally:
        journal.close()
    assert applied.unmatched == 0, "every status belongs to a delivery of the story"


def the_outcomes(state, wamids):
    """What became of spring-sale's five messages, as the story needs."""
    tell_ledger(
        state,
        status(wamids[ANA], "failed", NOW - timedelta(days=2), ANA, 131049, "limit"),
        status(wamids[BIA], "sent", NOW - timedelta(hours=2), BIA),
        status(wamids[BIA], "failed", NOW - timedelta(hours=1), BIA, 131049, "limit"),
        status(wamids[CAIO], "failed", NOW - timedelta(days=2), CAIO, 131026, "not on WhatsApp"),
        status(wamids[DORA], "delivered", NOW - timedelta(days=3), DORA),
        status(wamids[DORA], "sent", NOW - timedelta(days=3, minutes=1), DORA),
        status(wamids[EVA], "read", NOW - timedelta(days=2), EVA),  # a read before delivered
        status(wamids[EVA], "delivered", NOW - timedelta(days=3), EVA),
    )


def send_the_sale(tmp_path, gateway, state, *extra):
    """Run spring-sale to the five; Meta's outcomes for them in the ledger."""
    sale = campaign(tmp_path, gateway, "spring-sale")
    result, rows, _ = run(sale, tmp_path, state, *extra)
    assert result.exit_code == 0, result.output
    assert {row["status"] for row in rows.values()} == {"sent"}
    the_outcomes(state, {phone: row["message_id"] for phone, row in rows.items()})


def received(gateway) -> list[tuple[str, str]]:
    return [(m["to"], m["body"]["text"]["body"]) for m in gateway.messages()]


@pytest.fixture
def sqlite_state(tmp_path):
    return str(tmp_path / "ledger")


# ---- the story ---------------------------------------------------------------------------


def test_a_retry_and_a_reminder_each_reach_the_right_people_once(tmp_path, sandbox, sqlite_state):
    send_the_sale(tmp_path, sandbox, sqlite_state)
    retry = campaign(tmp_path, sandbox, "spring-sale-retry", AGAIN, follow_up=RETRY)

    result, rows, summary = run(retry, tmp_path, sqlite_state)

    assert result.exit_code == 0, result.output
    assert rows[ANA]["status"] == "sent" and rows[ANA]["error"] == ""
    until = stamp(NOW - timedelta(hours=1) + timedelta(hours=24))
    assert rows[BIA]["status"] == "deferred"
    assert rows[BIA]["error"] == (
        f"deferred until {until}: follow-up of spring-sale: failed 131049 at "
        f"{stamp(NOW - timedelta(hours=1))}, sent 24h after it"
    )
    assert rows[CAIO]["status"] == "not-selected"
    assert rows[CAIO]["error"] == (
        "follow-up of spring-sale: its outcome is failed 131026, not failed 131049"
    )
    assert rows[DORA]["error"] == (
        "follow-up of spring-sale: its outcome is delivered, not failed 131049"
    )
    assert rows[EVA]["error"] == "follow-up of spring-sale: its outcome is read, not failed 131049"
    assert summary["plan"]["to_send"] == 1
    assert summary["plan"]["counts"] == {"deferred": 1, "not-selected": 3}
    assert summary["plan"]["deferred_until"] == until
    assert summary["counts"] == {"sent": 1, "deferred": 1, "not-selected": 3}
    assert f" to_send=1 deferred=1 not-selected=3 deferred_until={until} " in result.output

    again, rows, _ = run(retry, tmp_path, sqlite_state)  # cron runs it again: nothing new
    assert again.exit_code == 0, again.output
    assert rows[ANA]["status"] == "already-sent"
    assert rows[BIA]["status"] == "deferred"
    assert [rows[p]["status"] for p in (CAIO, DORA, EVA)] == ["not-selected"] * 3

    reminder = campaign(tmp_path, sandbox, "spring-sale-reminder", NUDGE, follow_up=REMINDER)
    result, rows, _ = run(reminder, tmp_path, sqlite_state)
    assert result.exit_code == 0, result.output
    assert {phone: row["status"] for phone, row in rows.items()} == {
        ANA: "not-selected",
        BIA: "not-selected",
        CAIO: "not-selected",
        DORA: "sent",
        EVA: "not-selected",
    }
    assert (
        rows[ANA]["error"]
        == "follow-up of spring-sale: its outcome is failed 131049, not delivered"
    )

    assert received(sandbox) == [
        *[(p["phone"], f"Spring sale, {p['name']}!") for p in PEOPLE],
        (ANA, "Trying again, A: spring sale!"),
        (DORA, "D, the spring sale ends soon."),
    ]


def test_on_a_terminal_the_plan_says_how_many_wait_and_until_when(tmp_path, sandbox, sqlite_state):
    send_the_sale(tmp_path, sandbox, sqlite_state)
    retry = campaign(tmp_path, sandbox, "spring-sale-retry", AGAIN, follow_up=RETRY)
    until = stamp(NOW + timedelta(hours=23))

    code, terminal, _ = on_a_terminal(
        ["run", retry, "--state", sqlite_state, "--report", tmp_path / "r.csv"],
        env_for(tmp_path),
        streams=("stdin", "stderr"),
        answer="n",
    )

    plan = terminal.split("[y/N]")[0]
    assert "  to send now: 1\n" in plan.replace("\r\n", "\n")
    assert f"  deferred: 1 (the earliest until {until})" in plan
    assert "  not-selected: 3" in plan
    assert "Send campaign 'spring-sale-retry' to 1 recipient(s) now?" in plan
    assert code == 2 and len(sandbox.messages()) == 5  # answered no: nothing more sent


def test_dry_run_preview_and_status_agree_with_the_run(tmp_path, sandbox, sqlite_state):
    send_the_sale(tmp_path, sandbox, sqlite_state)
    retry = campaign(tmp_path, sandbox, "spring-sale-retry", AGAIN, follow_up=RETRY)
    env = {**env_for(tmp_path), "CAMPAIGN_STATE": sqlite_state}

    dry, rows, summary = run(retry, tmp_path, sqlite_state, "--dry-run")
    assert dry.exit_code == 0, dry.output
    statuses = {phone: row["status"] for phone, row in rows.items()}
    assert statuses == {
        ANA: "dry-run",
        BIA: "deferred",
        CAIO: "not-selected",
        DORA: "not-selected",
        EVA: "not-selected",
    }
    assert summary["plan"]["counts"] == {"deferred": 1, "not-selected": 3}

    jsonl = cli(["preview", retry, "--format", "jsonl"], env=env)
    assert jsonl.exit_code == 0, jsonl.output
    bodies = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [(b["to"], b["text"]["body"]) for b in bodies] == [
        (ANA, "Trying again, A: spring sale!")
    ]
    refused = jsonl.stderr.splitlines()
    assert [line.split(": ")[1] for line in refused] == ["deferred"] + ["not-selected"] * 3
    assert refused[1].endswith(
        ": not-selected: follow-up of spring-sale: its outcome is failed 131026, not failed 131049"
    )

    text = cli(["preview", retry, "--all"], env=env)
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[1:4] == ["  ready: 1", "  deferred: 1", "  not-selected: 3"]
    assert "  text: Trying again, A: spring sale!" in lines
    assert (
        f"row 4 -> {CAIO}: NOT-SELECTED: follow-up of spring-sale: its outcome is failed "
        "131026, not failed 131049" in lines
    )
    assert "Trying again, C" not in text.output  # no message shown for a row not sent

    left = cli(["status", retry, "--state", sqlite_state, "--json"], env=env_for(tmp_path))
    assert json.loads(left.output)["left"] == 1

    sent, rows, _ = run(retry, tmp_path, sqlite_state)
    assert sent.exit_code == 0, sent.output
    assert {phone: row["status"] for phone, row in rows.items()} == {
        **statuses,
        ANA: "sent",
    }
    left = cli(["status", retry, "--state", sqlite_state, "--json"], env=env_for(tmp_path))
    assert json.loads(left.output)["left"] == 0


def test_a_rehearsal_follows_up_the_rehearsal_and_a_real_run_the_real_campaign(
    tmp_path, sqlite_state
):
    sale = campaign(tmp_path, None, "spring-sale")
    rehearsed, rows, _ = run(sale, tmp_path, sqlite_state, "--sandbox")
    assert rehearsed.exit_code == 0, rehearsed.output
    the_outcomes(sqlite_state, {phone: row["message_id"] for phone, row in rows.items()})
    retry = campaign(tmp_path, None, "spring-sale-retry", AGAIN, follow_up=RETRY)

    result, rows, summary = run(retry, tmp_path, sqlite_state, "--sandbox")

    assert result.exit_code == 0, result.output
    assert summary["counts"] == {"sent": 1, "deferred": 1, "not-selected": 3}
    assert rows[ANA]["status"] == "sent"
    record = tmp_path / "spring-sale-retry" / "report-0.sandbox.jsonl"
    sent = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(m["to"], m["body"]["text"]["body"]) for m in sent] == [
        (ANA, "Trying again, A: spring sale!")
    ]

    real, rows, summary = run(retry, tmp_path, sqlite_state, "--dry-run")
    assert real.exit_code == 0, real.output
    assert summary["counts"] == {"not-selected": 5}
    assert (
        "warning: follow-up of spring-sale: campaign 'spring-sale' has no deliveries in "
        f"{sqlite_state}/ledger.sqlite, only rehearsals (a real run follows up real ones): "
        "every row is not-selected (check follow_up.of)"
    ) in real.output
    assert rows[ANA]["error"] == (
        "follow-up of spring-sale: spring-sale has no deliveries in the ledger"
    )


def test_on_postgresql_the_retry_sends_once_to_the_right_person(tmp_path, sandbox, postgres_url):
    send_the_sale(tmp_path, sandbox, postgres_url)
    retry = campaign(tmp_path, sandbox, "spring-sale-retry", AGAIN, follow_up=RETRY)

    result, rows, summary = run(retry, tmp_path, postgres_url)
    again, rows_again, _ = run(retry, tmp_path, postgres_url)

    assert result.exit_code == 0, result.output
    assert {phone: row["status"] for phone, row in rows.items()} == {
        ANA: "sent",
        BIA: "deferred",
        CAIO: "not-selected",
        DORA: "not-selected",
        EVA: "not-selected",
    }
    assert rows[EVA]["error"] == "follow-up of spring-sale: its outcome is read, not failed 131049"
    assert summary["plan"]["deferred_until"] == stamp(NOW + timedelta(hours=23))
    assert again.exit_code == 0, again.output
    assert rows_again[ANA]["status"] == "already-sent"
    assert received(sandbox)[5:] == [(ANA, "Trying again, A: spring sale!")]


# ---- what a follow-up reads, and what it says when it cannot select anyone -------------


def test_each_final_outcome_of_a_send_reads_as_its_word(tmp_path, sandbox_factory, sqlite_state):
    gateway = sandbox_factory(
        Faults(script={ANA: ["500"], BIA: ["lost"], CAIO: ["131047"]}, retry_after_s=0)
    )
    sale = campaign(tmp_path, gateway, "spring-sale", send={"retries": 0})
    result, rows, _ = run(sale, tmp_path, sqlite_state)
    assert [rows[p]["status"] for p in PEOPLE_PHONES] == [
        "failed",
        "unknown",
        "failed",
        "sent",
        "sent",
    ]
    tell_ledger(sqlite_state, status(rows[EVA]["message_id"], "sent", NOW - timedelta(days=1), EVA))
    wide = {"of": "spring-sale", "outcome": ["failed", "unknown", "accepted", "sent"]}
    follow = campaign(tmp_path, gateway, "catch-all", AGAIN, follow_up=wide)

    result, rows, _ = run(follow, tmp_path, sqlite_state, "--dry-run")

    assert result.exit_code == 0, result.output
    assert rows[ANA]["status"] == "not-selected"
    assert rows[ANA]["error"] == (
        "follow-up of spring-sale: its send failed for now and spring-sale's next run tries it "
        "again, so it is not failed or unknown or accepted or sent"
    )
    assert [rows[p]["status"] for p in (BIA, CAIO, DORA, EVA)] == ["dry-run"] * 4

    coded = campaign(tmp_path, gateway, "coded", AGAIN, follow_up=RETRY)
    result, rows, _ = run(coded, tmp_path, sqlite_state, "--dry-run")
    assert rows[CAIO]["error"] == (
        "follow-up of spring-sale: its outcome is failed 131047, not failed 131049"
    )
    assert (
        rows[BIA]["error"] == "follow-up of spring-sale: its outcome is unknown, not failed 131049"
    )
    assert rows[DORA]["error"] == (
        "follow-up of spring-sale: its outcome is accepted, not failed 131049"
    )
    assert rows[EVA]["error"] == "follow-up of spring-sale: its outcome is sent, not failed 131049"


def test_a_follow_up_of_a_campaign_never_run_selects_nobody_and_says_so(
    tmp_path, sandbox, sqlite_state
):
    send_the_sale(tmp_path, sandbox, sqlite_state)
    typo = campaign(tmp_path, sandbox, "retry", AGAIN, follow_up={**RETRY, "of": "spring-sal"})

    result, rows, summary = run(typo, tmp_path, sqlite_state)

    assert result.exit_code == 0, result.output
    assert (
        "warning: follow-up of spring-sal: campaign 'spring-sal' (did you mean 'spring-sale'?) "
        f"has no deliveries in {sqlite_state}/ledger.sqlite: every row is not-selected "
        "(check follow_up.of)"
    ) in result.output
    assert summary["counts"] == {"not-selected": 5}
    assert {row["error"] for row in rows.values()} == {
        "follow-up of spring-sal: spring-sal has no deliveries in the ledger"
    }
    assert len(sandbox.messages()) == 5


def test_a_preview_before_any_ledger_exists_selects_nobody(tmp_path, sandbox):
    retry = campaign(tmp_path, sandbox, "spring-sale-retry", AGAIN, follow_up=RETRY)
    env = {**env_for(tmp_path), "CAMPAIGN_STATE": str(tmp_path / "no-ledger")}

    shown = cli(["preview", retry, "--format", "jsonl"], env=env)

    assert shown.exit_code == 0, shown.output
    assert shown.stdout == ""
    assert shown.stderr.splitlines()[0] == (
        "warning: follow-up of spring-sale: there is no ledger yet (is --state, or "
        "CAMPAIGN_STATE, the ledger spring-sale ran with?): every row is not-selected"
    )
    assert shown.stderr.splitlines()[1:] == [
        f"{tmp_path}/spring-sale-retry/recipients.csv:{n}: not-selected: follow-up of "
        "spring-sale: there is no ledger yet"
        for n in range(2, 7)
    ]
    assert not (tmp_path / "no-ledger").exists()


def test_rows_whose_keys_the_campaign_never_used_are_said_to_differ(
    tmp_path, sandbox, sqlite_state
):
    send_the_sale(tmp_path, sandbox, sqlite_state)
    keyed = campaign(
        tmp_path,
        sandbox,
        "spring-sale-retry",
        AGAIN,
        follow_up=RETRY,
        recipients={"key": "[phone]-[name]"},
    )

    result, rows, _ = run(keyed, tmp_path, sqlite_state)

    assert result.exit_code == 0, result.output
    assert (
        "warning: follow-up of spring-sale: none of the 5 row(s) has a delivery key that "
        "spring-sale sent to: does this campaign read the same recipients with the same "
        "recipients.key?"
    ) in result.output
    assert rows[ANA]["error"] == "follow-up of spring-sale: never sent in spring-sale"
    assert len(sandbox.messages()) == 5


# ---- a follow_up section that cannot be read: exit 2, nothing sent ----------------------

OUTCOME_WORDS = "'failed', 'delivered', 'read', 'sent', 'accepted' or 'unknown'"
BAD_SECTIONS = {
    "a misspelt outcome": (
        {**RETRY, "outcome": "faild"},
        "outcome: faild",
        False,
        f'follow_up.outcome: "faild" is not allowed; expected {OUTCOME_WORDS} '
        "(did you mean 'failed'?)",
    ),
    "a misspelt outcome in a list": (
        {**RETRY, "outcome": ["failed", "red"]},
        "- red",
        False,
        'follow_up.outcome[1] (the 2nd outcome): "red" is not allowed; expected '
        f"{OUTCOME_WORDS} (did you mean 'read'?)",
    ),
    "no outcome at all": (
        {**RETRY, "outcome": []},
        "outcome: []",
        False,
        "follow_up.outcome: needs at least 1 item",
    ),
    "codes without failed": (
        {"of": "spring-sale", "outcome": "delivered", "codes": [131049]},
        "codes:",
        True,  # located at the key
        "follow_up.codes: Meta's error codes are those of a failed message: add failed to "
        "follow_up.outcome, or remove codes",
    ),
    "codes with a list that lacks failed": (
        {"of": "spring-sale", "outcome": ["delivered", "read"], "codes": [131049]},
        "codes:",
        True,  # located at the key
        "follow_up.codes: Meta's error codes are those of a failed message: add failed to "
        "follow_up.outcome, or remove codes",
    ),
    "a code that is not a number": (
        {**RETRY, "codes": ["131049x"]},
        "- 131049x",
        False,
        'follow_up.codes[0] (the 1st code): "131049x" is not of type integer',
    ),
    "a duration without its unit": (
        {**RETRY, "after": "24"},
        "after: '24'",
        False,
        'follow_up.after: "24" is not valid: a duration in hours or days, such as 24h or 2d: '
        "the follow-up waits this long after the outcome",
    ),
    "a duration in minutes": (
        {**RETRY, "after": "30m"},
        "after: 30m",
        False,
        'follow_up.after: "30m" is not valid: a duration in hours or days, such as 24h or 2d: '
        "the follow-up waits this long after the outcome",
    ),
    "a duration over a year": (
        {**RETRY, "after": "400d"},
        "after: 400d",
        False,
        "follow_up.after: '400d': at most 366 days",
    ),
    "a campaign following itself": (
        {**RETRY, "of": "spring-sale-retry"},
        "of: spring-sale-retry",
        False,
        "follow_up.of: a campaign cannot follow up itself: 'spring-sale-retry' is this "
        "campaign; give the campaign whose outcomes pick the recipients, and this one a name "
        "of its own",
    ),
    "of that is not a campaign name": (
        {**RETRY, "of": "Spring Sale"},
        "of: Spring Sale",
        False,
        'follow_up.of: "Spring Sale" is not valid: the name of the campaign whose outcomes '
        "pick the recipients (a slug: lower-case letters, digits, - and _)",
    ),
    "an unknown key": (
        {**RETRY, "aftr": "24h"},
        "aftr: 24h",
        True,  # located at the key
        "follow_up: unknown key 'aftr' (did you mean 'after'?)",
    ),
    "no of": (
        {"outcome": "failed"},
        "outcome: failed",  # where the section's keys start
        True,  # located at the key
        "follow_up: required key 'of' is missing",
    ),
}


def located(path, written: str, message: str, at_key: bool) -> str:
    """`FILE:LINE:COL: MESSAGE` for the first line of PATH holding WRITTEN: the column of
    its key when AT_KEY, else of its value."""
    lines = path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.strip().startswith(written))
    line = lines[number - 1]
    start = len(line) - len(line.lstrip())
    if not at_key and ": " in line.strip() and not line.strip().startswith("- "):
        start = line.index(": ") + 2
    elif not at_key and line.strip().startswith("- "):
        start += 2
    return f"{path}:{number}:{start + 1}: {message}"


@pytest.mark.parametrize(
    "section, written, at_key, message", BAD_SECTIONS.values(), ids=BAD_SECTIONS.keys()
)
def test_a_follow_up_section_that_cannot_be_read_sends_nothing(
    section, written, at_key, message, tmp_path, sandbox, sqlite_state
):
    send_the_sale(tmp_path, sandbox, sqlite_state)
    retry = campaign(tmp_path, sandbox, "spring-sale-retry", AGAIN, follow_up=section)

    result, rows, summary = run(retry, tmp_path, sqlite_state)

    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[0] == located(retry, written, message, at_key)
    assert rows == {} and summary is None
    assert len(sandbox.messages()) == 5  # the sale's five: nothing more
    for command in (["validate", retry], ["preview", retry]):  # the same mistake, elsewhere
        other = cli(command, env=env_for(tmp_path, CAMPAIGN_STATE=sqlite_state))
        assert other.exit_code == 2, other.output
        assert located(retry, written, message, at_key) in other.output


def test_a_dry_run_on_a_ledger_from_before_outcomes_selects_nobody(tmp_path, sandbox):
    state = tmp_path / "old-ledger"
    state.mkdir()
    db = sqlite3.connect(state / "ledger.sqlite")  # as a version before migration 5 left it
    db.execute(MIGRATIONS_TABLE)
    for migration in MIGRATIONS:
        if migration.version < OUTCOMES_VERSION:
            for statement in statements(migration.sqlite):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (migration.version, migration.description, stamp(NOW)),
            )
    db.commit()
    db.close()
    retry = campaign(tmp_path, sandbox, "spring-sale-retry", AGAIN, follow_up=RETRY)

    result, rows, summary = run(retry, tmp_path, str(state), "--dry-run")

    assert result.exit_code == 0, result.output
    assert (
        f"warning: follow-up of spring-sale: the ledger {state}/ledger.sqlite keeps no outcomes "
        "yet (the next sending run or `campaign ingest` upgrades it): every row is not-selected"
    ) in result.output
    assert summary["counts"] == {"not-selected": 5}
    assert rows[ANA]["error"] == (
        f"follow-up of spring-sale: the ledger {state}/ledger.sqlite keeps no outcomes yet"
    )
