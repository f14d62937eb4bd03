"""Exactly-once bookkeeping: a SQLite journal per campaign.

A delivery is marked `sending` and committed before its POST; its outcome (`sent`,
`failed`, or still `sending` after a crash, which reads as `unknown`) is committed with the
next mark. WAL mode with synchronous=NORMAL makes each commit survive the process being
killed (SIGKILL, OOM, a deploy); see the README for the one honest limit.

A journal is created whole (schema and all, then renamed into place), so a journal file
that exists but is empty, lacks its tables or is damaged was truncated or replaced: that
is an error to fix, never a reason to start afresh and send everyone the campaign again.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaign_runner.errors import CampaignInvalid, Problem

SCHEMA_VERSION = 1  # PRAGMA user_version of a journal this runner created
SCHEMA = """
CREATE TABLE deliveries (
    key TEXT PRIMARY KEY,
    row INTEGER,
    phone TEXT,
    status TEXT NOT NULL,          -- sending | sent | failed
    permanent INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    http_status INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_id TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    exit_code INTEGER,
    reason TEXT,
    counts TEXT
);
"""


def default_state_dir() -> Path:
    """`$CAMPAIGN_STATE_DIR`, else `$XDG_STATE_HOME/campaign-runner`, else ~/.local/state/..."""
    if os.environ.get("CAMPAIGN_STATE_DIR"):
        return Path(os.environ["CAMPAIGN_STATE_DIR"])
    return _user_state_dir()


def _user_state_dir() -> Path:
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "campaign-runner"


def other_journals(name: str, journal: Path, remember: bool = False) -> list[Path]:
    """Other journals of campaign NAME this user's runs have used on this machine.

    Runs with different state folders cannot see each other's deliveries, so each would
    send everyone the campaign: a person must be told. REMEMBER notes JOURNAL in the
    register (`known-journals.tsv` in the user's state folder, whatever --state says). A
    register that cannot be read or written only means no warning.
    """
    register = _user_state_dir() / "known-journals.tsv"
    mine = os.path.abspath(journal)
    try:
        lines = register.read_text(encoding="utf-8").splitlines() if register.exists() else []
        known = {tuple(line.split("\t", 1)) for line in lines if "\t" in line}
        if remember and (name, mine) not in known:
            register.parent.mkdir(parents=True, exist_ok=True)
            with open(register, "a", encoding="utf-8") as handle:
                handle.write(f"{name}\t{mine}\n")
    except OSError:
        return []
    return sorted(Path(p) for n, p in known if n == name and p != mine and Path(p).exists())


def other_journals_warning(name: str, others: list[Path]) -> str | None:
    """The warning for OTHERS, or None when there are none."""
    if not others:
        return None
    where = ", ".join(str(p) for p in others)
    return (
        f"campaign '{name}' also has a journal at {where}: runs with another state folder "
        "do not see each other's deliveries and may send the campaign twice; use one "
        "--state (or CAMPAIGN_STATE_DIR) for every run of a campaign"
    )


def journal_path(state_dir: Path, name: str) -> Path:
    """The journal file of the campaign (or rehearsal) called NAME: `STATE_DIR/NAME.sqlite`."""
    return state_dir / f"{name}.sqlite"


def lock_path(state_dir: Path, name: str) -> Path:
    """The lock file beside that journal: `STATE_DIR/NAME.lock`."""
    return state_dir / f"{name}.lock"


def _create(path: Path) -> None:
    """Create a whole journal at PATH: written beside it, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f"{path.name}.new-{os.getpid()}")
    fresh.unlink(missing_ok=True)
    db = sqlite3.connect(fresh, isolation_level=None)
    try:
        db.executescript(f"BEGIN; {SCHEMA}; PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
    finally:
        db.close()
    os.replace(fresh, path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Previous:
    """What the journal knows of a key from earlier runs."""

    status: str  # sending | sent | failed, as stored
    permanent: bool
    message_id: str | None
    http_status: int | None
    error: str | None

    @property
    def sent(self) -> bool:
        """The gateway accepted it: never send it again."""
        return self.status == "sent"

    @property
    def in_doubt(self) -> bool:
        """Marked `sending` and never settled: a run died during the request."""
        return self.status == "sending"

    @property
    def failed_for_good(self) -> bool:
        """Refused for a reason that a re-run would not change (not on WhatsApp, opted out)."""
        return self.status == "failed" and self.permanent


class JournalError(Exception):
    """The journal could not be written during a run (disk full, I/O error): the run stops."""


class Journal:
    """The campaign's delivery journal (one SQLite file); not shared between threads.

    Opening it checks that it is whole and, unless READONLY, writable; problems are a
    `CampaignInvalid` naming the file and what to do, raised before anything is sent.
    """

    def __init__(self, path: Path, readonly: bool = False):
        self.path = path
        self._pending: list[tuple[Any, ...]] = []
        with self._explained("cannot be read"):
            if readonly:  # dry runs and `status`: read beside a running campaign, never block it
                self.db = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
                )
                self.db.execute("PRAGMA busy_timeout=5000")
                self._check_whole()
                return
            if not path.exists():
                _create(path)
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA busy_timeout=5000")
            self._check_whole()
        with self._explained("cannot be written"):
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("BEGIN IMMEDIATE")  # proves the file and its folder are writable
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
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
                f"the journal {what} ({error}): check that the file and its folder are "
                "writable and the disk is not full, or restore the journal from a backup; "
                "nothing was sent"
            ) from None

    def _check_whole(self) -> None:
        tables = {
            name for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if {"deliveries", "runs"} <= tables:
            # A damaged page reads fine until a lookup reaches it, mid-run: check every
            # page now (about a second per million deliveries).
            (verdict,) = self.db.execute("PRAGMA quick_check(1)").fetchone()
            if verdict == "ok":
                return
            raise sqlite3.DatabaseError(f"it is damaged: {verdict}")
        self.db.close()
        raise self._refusal(
            "this journal is empty or is not a campaign journal: it was truncated or "
            "replaced. Restore it from a backup; deleting it makes the next run send the "
            "campaign to every recipient again. Nothing was sent"
        )

    def _refusal(self, message: str) -> CampaignInvalid:
        return CampaignInvalid(Problem(str(self.path), None, None, message))

    def close(self) -> None:
        """Commit what is pending (as far as possible) and close the file."""
        try:
            self.flush()
        finally:
            self.db.close()

    def is_empty(self) -> bool:
        """True when no delivery was ever recorded."""
        return self.db.execute("SELECT 1 FROM deliveries LIMIT 1").fetchone() is None

    def lookup(self, key: str) -> Previous | None:
        """The journal's record of KEY, or None for a key never tried."""
        found = self.db.execute(
            "SELECT status, permanent, message_id, http_status, error FROM deliveries WHERE key=?",
            (key,),
        ).fetchone()
        return Previous(found[0], bool(found[1]), *found[2:]) if found else None

    def mark_sending(self, entries: Iterable[tuple[str, int, str]], run_id: str) -> None:
        """Durably mark each (key, row, phone) as `sending`, together with the pending outcomes.

        This commit is the one that must land before the POSTs: it is what stops a re-run
        from sending these keys again whatever happens next. `JournalError` when it fails.
        """
        now = _now()
        with self._transaction():
            self._write_pending()
            self.db.executemany(
                "INSERT INTO deliveries (key, row, phone, status, attempts, run_id, updated_at)"
                " VALUES (?, ?, ?, 'sending', 1, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET status='sending', row=excluded.row,"
                " phone=excluded.phone, attempts=attempts+1, run_id=excluded.run_id,"
                " updated_at=excluded.updated_at, error=NULL",
                [(key, row, phone, run_id, now) for key, row, phone in entries],
            )

    def record(
        self,
        key: str,
        status: str,
        *,
        permanent: bool = False,
        message_id: str | None = None,
        http_status: int | None = None,
        error: str | None = None,
    ) -> None:
        """Note an outcome; it is committed with the next `mark_sending` or `flush`."""
        self._pending.append((status, int(permanent), message_id, http_status, error, _now(), key))

    def flush(self) -> None:
        """Commit every pending outcome now; `JournalError` when that fails."""
        if not self._pending:
            return
        with self._transaction():
            self._write_pending()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction; any failure rolls it back and is a `JournalError`."""
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
            raise JournalError(f"cannot write the journal {self.path}: {error}") from None

    def _write_pending(self) -> None:
        if self._pending:
            self.db.executemany(
                "UPDATE deliveries SET status=?, permanent=?, message_id=?, http_status=?,"
                " error=?, updated_at=? WHERE key=?",
                self._pending,
            )
            self._pending.clear()

    def start_run(self, run_id: str, started_at: str) -> None:
        """Note that a run began (for `campaign status`)."""
        with self._transaction():
            self.db.execute(
                "INSERT INTO runs (run_id, started_at) VALUES (?, ?)", (run_id, started_at)
            )

    def end_run(self, run_id: str, exit_code: int, reason: str, counts: dict[str, int]) -> None:
        """Note how a run ended, with the outcomes still pending; `JournalError` on failure."""
        with self._transaction():
            self._write_pending()
            self.db.execute(
                "UPDATE runs SET ended_at=?, exit_code=?, reason=?, counts=? WHERE run_id=?",
                (_now(), exit_code, reason, json.dumps(counts), run_id),
            )

    def status_counts(self, running: str | None = None) -> dict[str, int]:
        """How many keys are in each state: sent, failed, unknown (left `sending`), and
        in-flight (`sending` in RUNNING, the id of a run going on now)."""
        counts: dict[str, int] = {}
        for status, permanent, now, n in self.db.execute(
            "SELECT status, permanent, run_id IS ?, count(*) FROM deliveries"
            " GROUP BY status, permanent, run_id IS ?",
            (running, running),
        ):
            name = {"sending": "in-flight" if now and running else "unknown"}.get(status, status)
            if status == "failed":
                name = "failed-permanent" if permanent else "failed-transient"
            counts[name] = counts.get(name, 0) + n
        return counts

    def last_run(self) -> dict[str, Any] | None:
        """The most recent run's record, or None."""
        found = self.db.execute(
            "SELECT run_id, started_at, ended_at, exit_code, reason, counts FROM runs"
            " ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        if not found:
            return None
        keys = ("run_id", "started_at", "ended_at", "exit_code", "reason", "counts")
        run = dict(zip(keys, found, strict=True))
        run["counts"] = json.loads(run["counts"]) if run["counts"] else None
        return run
