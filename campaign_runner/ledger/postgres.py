"""The shared ledger: a PostgreSQL database (psycopg 3), for cron on several hosts.

Same tables, migrations and behaviour as the SQLite ledger. Any number of runs of one
campaign, on any hosts, cooperate as workers: each publishes its plan's deliveries to the
`work` table (the same plan gives the same rows), then claims batches of them with
`SELECT ... FOR UPDATE SKIP LOCKED` under a lease it renews while it works
(`claim_work`, `renew`). A key is marked `sending` only while its worker still holds the claim,
in the same transaction, so a worker whose lease lapsed never sends; a worker that finds a
lapsed claim whose key is already `sending` reports it `unknown`, never sends it again.
A sending run also holds a shared session advisory lock named after its campaign, so
`campaign status` can tell that a run is going. Migrations are applied under a
transaction-scoped advisory lock, so runs starting together never apply one twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg

from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.ledger.base import LedgerError, now, status_name
from campaign_runner.ledger.migrations import LATEST, MIGRATIONS, MIGRATIONS_TABLE, statements
from campaign_runner.ledger.queries import CampaignQueries
from campaign_runner.lock import Holder

_MIGRATION_LOCK = 0x63616D70  # "camp": serialises schema upgrades between runs
_RULES_LOCK = 0x72756C65  # "rule": serialises the plans that claim people (cap, budget)
_CONNECT_TIMEOUT_S = 10
_PUBLISH_BATCH = 5_000  # rows per transaction when a plan is published
_STREAM_BATCH = 2_000  # rows fetched per round trip when a query's rows are streamed


def _one(cursor: psycopg.Cursor) -> tuple[Any, ...]:
    """The one row a query that always returns one row returned."""
    found = cursor.fetchone()
    assert found is not None
    return tuple(found)


def _refusal(where: str, message: str) -> CampaignInvalid:
    return CampaignInvalid(Problem(where, None, None, message))


def _connect(url: str, where: str) -> psycopg.Connection:
    try:
        # No prepared statements: each one is planned with its parameters and the tables'
        # sizes now. A plan psycopg prepares early in a run is PostgreSQL's generic plan,
        # made while the campaign's tables were nearly empty and kept as they grow: it
        # scanned every delivery of the campaign for each key, 10 times slower at 3,000.
        db = psycopg.connect(url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S)
        db.prepare_threshold = None
        return db
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise _refusal(
            where,
            f"cannot reach the ledger ({reason}): check the URL, that the server is up and "
            "that this user may connect; nothing was sent",
        ) from None


class PostgresJournal(CampaignQueries):
    """One campaign's deliveries and runs in the PostgreSQL ledger."""

    # A commit here waits for the server's disk: when requests end one by one, the loop
    # waits this long for others to end before marking the next keys, in one commit.
    GATHER_MARKS_S = 0.003

    def __init__(self, url: str, campaign: str, readonly: bool = False):
        from campaign_runner.ledger import shown_url

        self.where = shown_url(url)
        self.campaign = campaign
        self.worker: str | None = None  # set by `join`: this run claims shared work
        self.resend_unknown = False
        self._pending: list[tuple[Any, ...]] = []
        self.db = _connect(url, self.where)
        try:
            if readonly:
                self._check_version()
            else:
                self._migrate()
                self._note_running()
        except BaseException:
            self.db.close()
            raise

    # ---- opening ----------------------------------------------------------------------

    def exists(self) -> bool:
        """True when the database holds a ledger (its migrations table)."""
        found = self.db.execute("SELECT to_regclass('schema_migrations')").fetchone()
        return bool(found and found[0])

    def _check_version(self) -> None:
        if not self.exists():
            return
        (have,) = _one(self.db.execute("SELECT max(version) FROM schema_migrations"))
        if have is not None and have > LATEST:
            raise _refusal(
                self.where,
                f"this ledger was written by a newer campaign-runner (schema {have}; this one "
                f"knows up to {LATEST}): upgrade campaign-runner; nothing was sent",
            )

    def _migrate(self) -> None:
        try:
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                self.db.execute(MIGRATIONS_TABLE)
                self._check_version()
                (have,) = _one(self.db.execute("SELECT max(version) FROM schema_migrations"))
                for migration in MIGRATIONS:
                    if migration.version > (have or 0):
                        for statement in statements(migration.postgres):
                            self.db.execute(statement.encode())
                        self.db.execute(
                            "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                            (migration.version, migration.description, now()),
                        )
        except psycopg.Error as error:
            raise _refusal(
                self.where,
                f"cannot create or upgrade the ledger ({str(error).strip()}): the user needs "
                "CREATE on the database's schema (see the README); nothing was sent",
            ) from None

    def _note_running(self) -> None:
        """Hold the campaign's advisory lock, shared: workers do not exclude each other,
        and `campaign status` sees that a run is going (it dies with the connection)."""
        self.db.execute(
            "SELECT pg_advisory_lock_shared(hashtextextended(%s, 0))", (_lock_name(self.campaign),)
        )

    # ---- workers: the plan's deliveries, claimed under a lease ----------------------------

    def publish(self, plan_id: str, rows: Iterable[tuple[Any, ...]]) -> None:
        """Add the plan's ready deliveries, each (key, seq, row, phone, content, vals), to the
        shared work; rows another worker of the same plan published already are kept."""
        batch: list[tuple[Any, ...]] = []
        for found in rows:
            batch.append((self.campaign, plan_id, *found))
            if len(batch) >= _PUBLISH_BATCH:
                self._publish(batch)
                batch = []
        self._publish(batch)

    def _publish(self, batch: list[tuple[Any, ...]]) -> None:
        if not batch:
            return
        # One statement for the whole batch (its columns as arrays): a statement a row
        # took 1.5 s for 10,000 rows, a tenth of the time they then take to send.
        columns = [list(column) for column in zip(*batch, strict=True)]
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT INTO work (campaign, plan_id, key, seq, row, phone, content, vals)"
                " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[],"
                " %s::int[], %s::text[], %s::bytea[], %s::text[])"
                " ON CONFLICT (campaign, key) DO UPDATE SET plan_id=excluded.plan_id,"
                " seq=excluded.seq, row=excluded.row, content=excluded.content,"
                " vals=excluded.vals, done=0, worker=NULL, lease_until=NULL"
                " WHERE work.plan_id <> excluded.plan_id",
                columns,
            )

    def claim_work(self, plan_id: str, worker: str, limit: int, lease_s: float) -> list[tuple]:
        """Claim up to LIMIT deliveries of the plan no live worker holds, in row order;
        each (key, seq, row, phone, content, vals, status of the key in the ledger or None)."""
        with self._transaction() as cursor:
            cursor.execute(
                "UPDATE work SET worker=%s, lease_until=now() + %s * interval '1 second'"
                " WHERE (campaign, key) IN (SELECT campaign, key FROM work"
                "  WHERE campaign=%s AND plan_id=%s AND done=0"
                "  AND (lease_until IS NULL OR lease_until < now())"
                "  ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING key, seq, row, phone, content, vals,"
                " (SELECT status FROM deliveries d WHERE d.campaign=work.campaign"
                "  AND d.key=work.key)",
                (worker, lease_s, self.campaign, plan_id, limit),
            )
            return sorted(cursor.fetchall(), key=lambda found: found[1])

    def renew(self, worker: str, lease_s: float) -> None:
        """Extend the lease of every claim WORKER holds and has not finished."""
        with self._transaction() as cursor:
            cursor.execute(
                "UPDATE work SET lease_until=now() + %s * interval '1 second'"
                " WHERE campaign=%s AND worker=%s AND done=0",
                (lease_s, self.campaign, worker),
            )

    def held_elsewhere(self, plan_id: str, worker: str) -> float | None:
        """Seconds until the first lease another worker holds on unfinished work lapses;
        None when no other worker holds any."""
        (found,) = _one(
            self.db.execute(
                "SELECT extract(epoch FROM min(lease_until) - now()) FROM work"
                " WHERE campaign=%s AND plan_id=%s AND done=0 AND worker <> %s"
                " AND lease_until >= now()",
                (self.campaign, plan_id, worker),
            )
        )
        return None if found is None else max(0.0, float(found))

    def settled_unknown(self, plan_id: str, reopen: bool) -> list[tuple]:
        """The plan's deliveries settled as in doubt (a worker died during the request): each
        (key, seq, row, phone, vals), for every worker's report; REOPEN (--resend-unknown)
        puts them back in the work instead, to be claimed and sent again."""
        if reopen:
            with self._transaction() as cursor:
                cursor.execute(
                    "UPDATE work w SET done=0, worker=NULL, lease_until=NULL FROM deliveries d"
                    " WHERE w.campaign=%s AND w.plan_id=%s AND w.done=1"
                    " AND d.campaign=w.campaign AND d.key=w.key AND d.status='sending'",
                    (self.campaign, plan_id),
                )
            return []
        return self.db.execute(
            "SELECT w.key, w.seq, w.row, w.phone, w.vals FROM work w JOIN deliveries d"
            " ON d.campaign=w.campaign AND d.key=w.key WHERE w.campaign=%s AND w.plan_id=%s"
            " AND w.done=1 AND d.status='sending' ORDER BY w.seq",
            (self.campaign, plan_id),
        ).fetchall()

    def reserve(self, count: int, rate_per_s: float | None) -> tuple[float, float]:
        """Reserve COUNT send slots at RATE_PER_S for the whole campaign (`ratelimit`):
        (seconds until the first, seconds all workers still hold back for a throttle)."""
        if not count or not rate_per_s:  # nothing to reserve: only read the pause, no commit
            try:
                found = self.db.execute(
                    "SELECT extract(epoch FROM paused_until - now()) FROM pace WHERE campaign=%s",
                    (self.campaign,),
                ).fetchone()
            except psycopg.Error as error:
                raise LedgerError(f"cannot read the ledger {self.where}: {error}") from None
            paused_for = float(found[0]) if found and found[0] is not None else 0.0
            return 0.0, max(0.0, paused_for)
        step = count / rate_per_s
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT INTO pace (campaign, next_at) VALUES (%s, now() + %s * interval '1 second')"
                " ON CONFLICT (campaign) DO UPDATE SET next_at ="
                " greatest(pace.next_at, now()) + %s * interval '1 second'"
                " RETURNING extract(epoch FROM next_at - now()) - %s,"
                " coalesce(extract(epoch FROM paused_until - now()), 0)",
                (self.campaign, step, step, step),
            )
            first_in, paused_for = _one(cursor)
        return max(0.0, float(first_in)), max(0.0, float(paused_for))

    def pause(self, seconds: float) -> None:
        """Hold every worker of the campaign back for SECONDS (a throttle)."""
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT INTO pace (campaign, paused_until)"
                " VALUES (%s, now() + %s * interval '1 second')"
                " ON CONFLICT (campaign) DO UPDATE SET paused_until ="
                " greatest(coalesce(pace.paused_until, now()), now() + %s * interval '1 second')",
                (self.campaign, seconds, seconds),
            )

    def claimable(self, plan_id: str) -> bool:
        """True when some of the plan's work is unfinished and no live worker holds it."""
        found = self.db.execute(
            "SELECT 1 FROM work WHERE campaign=%s AND plan_id=%s AND done=0"
            " AND (lease_until IS NULL OR lease_until < now()) LIMIT 1",
            (self.campaign, plan_id),
        ).fetchone()
        return found is not None

    def settle_claims(self, keys: Iterable[str]) -> None:
        """Mark KEYS finished in the shared work (their outcome is in the ledger)."""
        with self._transaction() as cursor:
            cursor.executemany(
                "UPDATE work SET done=1 WHERE campaign=%s AND key=%s",
                [(self.campaign, key) for key in keys],
            )

    def close(self) -> None:
        """Commit what is pending (as far as possible) and close the connection (which lets
        go of the campaign's lock)."""
        try:
            self.flush_if_possible()
            self.release_claims()
        finally:
            self.db.close()

    # ---- what the plan and the loop ask -------------------------------------------------

    def join(self, worker: str, resend_unknown: bool = False) -> None:
        """Work as WORKER: keys are marked only while this worker holds their claim, and
        never over another run's mark (unless RESEND_UNKNOWN, for keys in doubt)."""
        self.worker, self.resend_unknown = worker, resend_unknown

    def mark_sending(self, entries: Iterable[tuple[str, int, str]], run_id: str) -> set[str]:
        """Durably mark each (key, row, phone) as `sending`, with the pending outcomes, in one
        transaction: committed before the POSTs. A worker marks only the keys it still holds
        the claim of; the others are returned (their lease lapsed: not to be sent).
        `LedgerError` when it fails."""
        entries = list(entries)
        if not entries:
            self.flush()
            return set()
        keys, rows, phones = (list(column) for column in zip(*entries, strict=True))
        # One pipeline, one round trip: the outcomes, then one statement marking every key
        # this worker still holds the claim of (a worker whose lease lapsed marks nothing),
        # and only if no other run marked or sent it meanwhile (the row lock decides).
        # No BEGIN and COMMIT: on a connection in autocommit, PostgreSQL runs what a
        # pipeline sends before its synchronisation point as one transaction, committed
        # there or rolled back whole. That point is the block's end, which returns once
        # the server confirmed it: the keys marked are read after it, never before the
        # commit (reading them in the block would ask the server for them early).
        with (
            self._kept_until_committed(),
            self._failing_as_ledger_error(),
            self.db.cursor() as cursor,
        ):
            with self.db.pipeline():
                self._write_pending(cursor)
                cursor.execute(
                    "INSERT INTO deliveries"
                    " (campaign, key, row, phone, status, attempts, run_id, updated_at)"
                    " SELECT %(campaign)s, u.key, u.row, u.phone, 'sending', 1, %(run)s, %(at)s"
                    " FROM unnest(%(keys)s::text[], %(rows)s::int[], %(phones)s::text[])"
                    "  AS u(key, row, phone)"
                    + (_MARK_AS_WORKER if self.worker is not None else _MARK_ALONE),
                    {
                        "campaign": self.campaign,
                        "run": run_id,
                        "at": now(),
                        "keys": keys,
                        "rows": rows,
                        "phones": phones,
                        "worker": self.worker,
                        "resend": self.resend_unknown,
                    },
                )
            marked = {key for (key,) in cursor.fetchall()}
        return set(keys) - marked

    def flush(self) -> None:
        """Commit every pending outcome now; `LedgerError` when that fails."""
        if not self._anything_to_commit():
            return
        with self._kept_until_committed(), self._transaction() as cursor:
            self._write_pending(cursor)

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor]:
        """One write transaction; any failure rolls it back and is a `LedgerError`."""
        with self._failing_as_ledger_error(), self.db.transaction(), self.db.cursor() as cursor:
            yield cursor

    @contextmanager
    def _failing_as_ledger_error(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as error:
            raise LedgerError(f"cannot write the ledger {self.where}: {error}") from None

    def _write_pending(self, cursor: psycopg.Cursor) -> None:
        """Write the pending outcomes and suppressions in the caller's transaction (which
        forgets them once committed: `_kept_until_committed`)."""
        # A worker's claims end with their outcome, in the same transaction (the key is the
        # last field of each pending outcome).
        finished = [pending[-1] for pending in self._pending] if self.worker is not None else []
        if self._pending:  # one statement for every outcome: one round trip, not one each
            columns = [list(column) for column in zip(*self._pending, strict=True)]
            cursor.execute(
                "UPDATE deliveries d SET status=u.status, permanent=u.permanent,"
                " message_id=u.message_id, http_status=u.http_status, error=u.error,"
                " updated_at=u.updated_at, failure_code=CASE WHEN d.failed_at IS NULL"
                " THEN u.code ELSE d.failure_code END FROM unnest(%s::text[], %s::int[],"
                " %s::text[], %s::int[], %s::text[], %s::text[], %s::int[], %s::text[],"
                " %s::text[]) AS u(status, permanent, message_id, http_status, error,"
                " updated_at, code, campaign, key) WHERE d.campaign=u.campaign AND d.key=u.key",
                columns,
            )
        if finished:
            cursor.execute(
                "UPDATE work SET done=1 WHERE campaign=%s AND key = ANY(%s)",
                (self.campaign, finished),
            )
        self._write_learned(cursor)

    def end_run(self, run_id: str, exit_code: int, reason: str, counts: dict[str, int]) -> None:
        """Note how a run ended, with the outcomes still pending; `LedgerError` on failure."""
        with self._kept_until_committed(), self._transaction() as cursor:
            self._write_pending(cursor)
            cursor.execute(
                "UPDATE runs SET ended_at=%s, exit_code=%s, reason=%s, counts=%s WHERE run_id=%s",
                (now(), exit_code, reason, json.dumps(counts), run_id),
            )

    # ---- what `campaign status` asks --------------------------------------------------------

    def status_counts(self, running: str | None = None) -> dict[str, int]:
        """How many keys are in each state (see `base.status_name`)."""
        if not self.exists():
            return {}
        counts: dict[str, int] = {}
        for status, permanent, now_running, n in self.db.execute(
            "SELECT status, permanent, run_id IS NOT DISTINCT FROM %s, count(*) FROM deliveries"
            " WHERE campaign=%s GROUP BY 1, 2, 3",
            (running, self.campaign),
        ):
            name = status_name(status, bool(permanent), bool(now_running and running))
            counts[name] = counts.get(name, 0) + n
        return counts

    def _streamed(self, query: str, params: Sequence[Any]) -> Iterator[Sequence[Any]]:
        """QUERY's rows through a server-side cursor, `_STREAM_BATCH` at a time: psycopg's
        ordinary cursor would hold every row of a million-row campaign in memory."""
        with self.db.transaction(), self.db.cursor(name="streamed") as cursor:
            cursor.itersize = _STREAM_BATCH
            cursor.execute(query, params)
            yield from cursor

    # ---- the rules across campaigns (rules_tables.RulesTables) ---------------------------

    _P = "%s"

    def _schema_version(self) -> int:
        if not self.exists():
            return 0
        (have,) = _one(self.db.execute("SELECT max(version) FROM schema_migrations"))
        return int(have or 0)

    def migrate(self) -> None:
        """Create or upgrade the ledger (for commands that write rules, not deliveries)."""
        self._migrate()
        self.__dict__.pop("_rules_ready", None)  # the tables may be new: look again

    @contextmanager
    def planning_lock(self) -> Iterator[None]:
        """Plans that claim people (a cap, the budget) one at a time across every host: a
        session advisory lock, waited for (a plan takes seconds), gone with the connection."""
        self.db.execute("SELECT pg_advisory_lock(%s)", (_RULES_LOCK,))
        try:
            yield
        finally:
            with suppress(psycopg.Error):
                self.db.execute("SELECT pg_advisory_unlock(%s)", (_RULES_LOCK,))


# How `mark_sending` marks: a worker only the keys it still holds the claim of (its lease
# lapsed: another worker may have them), and never over another run's mark or a send; a
# run alone (no shared work) every key. Two statements, not one with an OR, so that the
# claim is looked up by its key, whatever PostgreSQL thinks of the tables' sizes.
_MARK_AS_WORKER = (
    " WHERE EXISTS (SELECT 1 FROM work w WHERE w.campaign=%(campaign)s AND w.key=u.key"
    "  AND w.worker=%(worker)s AND w.lease_until >= now())"
    " ON CONFLICT (campaign, key) DO UPDATE SET status='sending',"
    " row=excluded.row, phone=excluded.phone, attempts=deliveries.attempts+1,"
    " run_id=excluded.run_id, updated_at=excluded.updated_at, error=NULL"
    " WHERE deliveries.status='failed' OR (deliveries.status='sending' AND %(resend)s)"
    " RETURNING key"
)
_MARK_ALONE = (
    " ON CONFLICT (campaign, key) DO UPDATE SET status='sending',"
    " row=excluded.row, phone=excluded.phone, attempts=deliveries.attempts+1,"
    " run_id=excluded.run_id, updated_at=excluded.updated_at, error=NULL"
    " RETURNING key"
)


def _lock_name(campaign: str) -> str:
    return f"campaign-runner:{campaign}"


def holder_from(db: psycopg.Connection, campaign: str) -> Holder | None:
    """Who runs CAMPAIGN now: its advisory lock is held; the run it logged says which pid
    and since when (on its host)."""
    (held,) = _one(
        db.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype='advisory' AND granted"
            " AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(%s, 0)",
            (_lock_name(campaign),),
        )
    )
    if not held:
        return None
    found = None
    with suppress(psycopg.Error):
        found = db.execute(
            "SELECT pid, started_at, host FROM runs WHERE campaign=%s AND ended_at IS NULL"
            " ORDER BY started_at DESC LIMIT 1",
            (campaign,),
        ).fetchone()
    if not found:
        return Holder(None, None)
    pid, started, host = found
    return Holder(pid, f"{started} on {host}")


def holder(url: str, campaign: str) -> Holder | None:
    """`holder_from` on a connection of its own (for `campaign status`)."""
    from campaign_runner.ledger import shown_url

    db = _connect(url, shown_url(url))
    try:
        return holder_from(db, campaign)
    finally:
        db.close()
