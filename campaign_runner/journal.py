"""Exactly-once bookkeeping: a SQLite journal per campaign, and a lock per campaign.

A delivery is marked `sending` and committed before its POST; its outcome (`sent`,
`failed`, or still `sending` after a crash, which reads as `unknown`) is committed with the
next mark. WAL mode with synchronous=NORMAL makes each commit survive the process being
killed (SIGKILL, OOM, a deploy); see the README for the one honest limit.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from campaign_runner.errors import Problem, RunBusy

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
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
CREATE TABLE IF NOT EXISTS runs (
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
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "campaign-runner"


def journal_path(state_dir: Path, name: str) -> Path:
    """The journal file of the campaign (or rehearsal) called NAME: `STATE_DIR/NAME.sqlite`."""
    return state_dir / f"{name}.sqlite"


def lock_path(state_dir: Path, name: str) -> Path:
    """The lock file beside that journal: `STATE_DIR/NAME.lock`."""
    return state_dir / f"{name}.lock"


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


class Journal:
    """The campaign's delivery journal (one SQLite file); not shared between threads."""

    def __init__(self, path: Path, readonly: bool = False):
        self.path = path
        self._pending: list[tuple] = []
        if readonly:  # dry runs and `status`: read beside a running campaign, never block it
            self.db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
            )
            self.db.execute("PRAGMA busy_timeout=5000")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        """Commit what is pending and close the file."""
        self.flush()
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
        from sending these keys again whatever happens next.
        """
        now = _now()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._write_pending()
            self.db.executemany(
                "INSERT INTO deliveries (key, row, phone, status, attempts, run_id, updated_at)"
                " VALUES (?, ?, ?, 'sending', 1, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET status='sending', row=excluded.row,"
                " phone=excluded.phone, attempts=attempts+1, run_id=excluded.run_id,"
                " updated_at=excluded.updated_at, error=NULL",
                [(key, row, phone, run_id, now) for key, row, phone in entries],
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

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
        """Commit every pending outcome now."""
        if not self._pending:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._write_pending()
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

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
        self.db.execute("INSERT INTO runs (run_id, started_at) VALUES (?, ?)", (run_id, started_at))

    def end_run(self, run_id: str, exit_code: int, reason: str, counts: dict[str, int]) -> None:
        """Note how a run ended."""
        self.flush()
        self.db.execute(
            "UPDATE runs SET ended_at=?, exit_code=?, reason=?, counts=? WHERE run_id=?",
            (_now(), exit_code, reason, json.dumps(counts), run_id),
        )

    def status_counts(self) -> dict[str, int]:
        """How many keys are in each state: sent, failed, unknown (left `sending`)."""
        counts: dict[str, int] = {}
        for status, permanent, n in self.db.execute(
            "SELECT status, permanent, count(*) FROM deliveries GROUP BY status, permanent"
        ):
            name = {"sending": "unknown"}.get(status, status)
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


@dataclass(frozen=True)
class JournalState:
    """What `campaign status` shows: the journal's counts per state and the last run."""

    journal: Path
    counts: dict[str, int]
    last_run: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`campaign status --json`)."""
        return {"journal": str(self.journal), "counts": self.counts, "last_run": self.last_run}


def read_state(name: str, state_dir: Path | None = None) -> JournalState:
    """The state of campaign NAME's journal, read without disturbing a run in progress."""
    path = journal_path(state_dir or default_state_dir(), name)
    if not path.exists():
        return JournalState(path, {}, None)
    journal = Journal(path, readonly=True)
    try:
        return JournalState(path, journal.status_counts(), journal.last_run())
    finally:
        journal.close()


class Lock:
    """An OS file lock for one campaign: it dies with its process, so a crash never wedges cron."""

    def __init__(self, path: Path):
        self.path = path
        self._handle: TextIO | None = None

    def acquire(self) -> None:
        """Take the lock, or raise `RunBusy` naming the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunBusy(
                Problem(
                    str(self.path),
                    None,
                    None,
                    f"this campaign is already running ({holder}); nothing was sent",
                )
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"pid {os.getpid()}, started {datetime.now().astimezone():%Y-%m-%d %H:%M:%S %z}"
        )
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Let go of the lock (the OS also does this when the process dies)."""
        if self._handle is not None:
            with suppress(OSError):
                self._handle.seek(0)
                self._handle.truncate()
                fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
