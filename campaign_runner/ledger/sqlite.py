"""The embedded ledger: one SQLite file, `STATE/ledger.sqlite`, for every campaign.

A delivery is marked `sending` and committed before its POST; its outcome (`sent`,
`failed`, or still `sending` after a crash, which reads as `unknown`) is committed with the
next mark. WAL mode with synchronous=NORMAL makes each commit survive the process being
killed (SIGKILL, OOM, a deploy); see the README for the one honest limit.

A ledger is created whole (every migration applied, then renamed into place), so a ledger
file that exists but is empty, lacks its tables or is damaged was truncated or replaced:
that is an error to fix, never a reason to start afresh and send everyone the campaign
again. Journals of earlier versions (`STATE/NAME.sqlite`, one per campaign) are imported
on first use and renamed `NAME.sqlite.imported`, never deleted (`imports`).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.ledger.base import LedgerError, now, status_name
from campaign_runner.ledger.migrations import LATEST, MIGRATIONS, MIGRATIONS_TABLE, statements
from campaign_runner.ledger.queries import CampaignQueries

LEDGER_FILE = "ledger.sqlite"
RULES_LOCK_FILE = "ledger.rules.lock"  # a dot: never a campaign's NAME.lock


def ledger_path(state_dir: Path) -> Path:
    """The ledger file in the state folder STATE_DIR."""
    return state_dir / LEDGER_FILE


def create_ledger(path: Path) -> None:
    """Create a whole ledger at PATH: written beside it, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f"{path.name}.new-{os.getpid()}")
    fresh.unlink(missing_ok=True)
    db = sqlite3.connect(fresh, isolation_level=None)
    try:
        db.execute("BEGIN")
        db.execute(MIGRATIONS_TABLE)
        _apply(db, 0)
        db.execute("COMMIT")
    finally:
        db.close()
    os.replace(fresh, path)


def _apply(db: sqlite3.Connection, have: int) -> None:
    """Apply every migration after version HAVE (inside the caller's transaction)."""
    for migration in MIGRATIONS:
        if migration.version > have:
            for statement in statements(migration.sqlite):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (migration.version, migration.description, now()),
            )


class SQLiteJournal(CampaignQueries):
    """One campaign's deliveries and runs in the ledger file; not shared between threads.

    Opening it checks that the file is whole and, unless READONLY, writable, and applies the
    migrations it lacks; problems are a `CampaignInvalid` naming the file and what to do,
    raised before anything is sent.
    """

    def __init__(self, path: Path, campaign: str, readonly: bool = False):
        self.path = path
        self.campaign = campaign
        self.where = str(path)
        self._pending: list[tuple[Any, ...]] = []
        with self._explained("cannot be read"):
            if readonly:  # dry runs and `status`: read beside a running campaign, never block it
                self.db = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
                )
                self.db.execute("PRAGMA busy_timeout=5000")
                self._check_whole(readonly=True)
                return
            if not path.exists():
                create_ledger(path)
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA busy_timeout=10000")
            self._check_whole(readonly=False)
        with self._explained("cannot be written"):
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("BEGIN IMMEDIATE")  # proves the file and its folder are writable
            (have,) = self.db.execute("SELECT max(version) FROM schema_migrations").fetchone()
            _apply(self.db, have or 0)
            self.db.execute("COMMIT")

    @contextmanager
    def _explained(self, what: str) -> Iterator[None]:
        """Turn SQLite's errors on opening into a located error that says what to do."""
        try:
            yield
        except sqlite3.Error as error:
            with suppress(Exception):
                self.db.close()
            raise self._refusal(
                f"the ledger {what} ({error}): check that the file and its folder are "
                "writable and the disk is not full, or restore the ledger from a backup; "
                "nothing was sent"
            ) from None

    def _check_whole(self, readonly: bool) -> None:
        tables = {
            name for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if {"deliveries", "runs", "schema_migrations"} <= tables:
            (have,) = self.db.execute("SELECT max(version) FROM schema_migrations").fetchone()
            if have is not None and have > LATEST:
                self.db.close()
                raise self._refusal(
                    f"this ledger was written by a newer campaign-runner (schema {have}; this "
                    f"one knows up to {LATEST}): upgrade campaign-runner; nothing was sent"
                )
            # A damaged page reads fine until a lookup reaches it, mid-run: check every
            # page now (about a second per million deliveries).
            (verdict,) = self.db.execute("PRAGMA quick_check(1)").fetchone()
            if verdict == "ok":
                return
            raise sqlite3.DatabaseError(f"it is damaged: {verdict}")
        self.db.close()
        raise self._refusal(
            "this ledger is empty or is not a campaign-runner ledger: it was truncated or "
            "replaced. Restore it from a backup; deleting it makes the next run send every "
            "campaign to every recipient again. Nothing was sent"
        )

    def _refusal(self, message: str) -> CampaignInvalid:
        return CampaignInvalid(Problem(str(self.path), None, None, message))

    def close(self) -> None:
        """Commit what is pending (as far as possible) and close the file."""
        try:
            self.flush_if_possible()
            self.release_claims()
        finally:
            self.db.close()

    def mark_sending(self, entries: Iterable[tuple[str, int, str]], run_id: str) -> set[str]:
        """Durably mark each (key, row, phone) as `sending`, together with the pending outcomes.

        This commit is the one that must land before the POSTs: it is what stops a re-run
        from sending these keys again whatever happens next. `LedgerError` when it fails.
        Returns the keys it could not mark: none here.
        """
        stamp = now()
        with self._kept_until_committed(), self._transaction():
            self._write_pending()
            self.db.executemany(
                "INSERT INTO deliveries"
                " (campaign, key, row, phone, status, attempts, run_id, updated_at)"
                " VALUES (?, ?, ?, ?, 'sending', 1, ?, ?)"
                " ON CONFLICT(campaign, key) DO UPDATE SET status='sending', row=excluded.row,"
                " phone=excluded.phone, attempts=attempts+1, run_id=excluded.run_id,"
                " updated_at=excluded.updated_at, error=NULL",
                [(self.campaign, key, row, phone, run_id, stamp) for key, row, phone in entries],
            )
        return set()  # one run per campaign (its lock): every key is this run's to mark

    def flush(self) -> None:
        """Commit every pending outcome now; `LedgerError` when that fails."""
        if not self._anything_to_commit():
            return
        with self._kept_until_committed(), self._transaction():
            self._write_pending()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction; any failure rolls it back and is a `LedgerError`."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            yield
            self.db.execute("COMMIT")
        except sqlite3.Error as error:
            # SQLite may already have rolled back (a full disk does): a second ROLLBACK
            # would fail and hide the real cause.
            if self.db.in_transaction:
                with suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            raise LedgerError(f"cannot write the ledger {self.path}: {error}") from None

    def _write_pending(self) -> None:
        if self._pending:
            self.db.executemany(
                "UPDATE deliveries SET status=?, permanent=?, message_id=?, http_status=?,"
                " error=?, updated_at=?, failure_code=CASE WHEN failed_at IS NULL THEN ?"
                " ELSE failure_code END WHERE campaign=? AND key=?",
                self._pending,
            )
        self._write_learned(None)

    def end_run(self, run_id: str, exit_code: int, reason: str, counts: dict[str, int]) -> None:
        """Note how a run ended, with the outcomes still pending; `LedgerError` on failure."""
        with self._kept_until_committed(), self._transaction():
            self._write_pending()
            self.db.execute(
                "UPDATE runs SET ended_at=?, exit_code=?, reason=?, counts=? WHERE run_id=?",
                (now(), exit_code, reason, json.dumps(counts), run_id),
            )

    def status_counts(self, running: str | None = None) -> dict[str, int]:
        """How many keys are in each state: sent, failed, unknown (left `sending`), and
        in-flight (`sending` in RUNNING, the id of a run going on now)."""
        counts: dict[str, int] = {}
        for status, permanent, now_running, n in self.db.execute(
            "SELECT status, permanent, run_id IS ?, count(*) FROM deliveries WHERE campaign=?"
            " GROUP BY status, permanent, run_id IS ?",
            (running, self.campaign, running),
        ):
            name = status_name(status, bool(permanent), bool(now_running and running))
            counts[name] = counts.get(name, 0) + n
        return counts

    # ---- the rules across campaigns (rules_tables.RulesTables) ---------------------------

    def _schema_version(self) -> int:
        (have,) = self.db.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(have or 0)

    @contextmanager
    def planning_lock(self) -> Iterator[None]:
        """Plans that claim people (a cap, the budget) one at a time across every process
        on this ledger: a file lock beside it, waited for (a plan takes seconds)."""
        with open(self.path.with_name(RULES_LOCK_FILE), "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
