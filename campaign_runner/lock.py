"""One run per campaign at a time: an OS file lock beside the journal.

The run holding the lock writes `pid N, started TIME` into the lock file; `Lock.holder`
reads it back without taking the lock from anyone, for `campaign status`.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from campaign_runner.errors import CampaignInvalid, Problem, RunBusy

# `Lock.holder` may hold a shared lock for the microseconds of its probe: a run starting in
# that instant waits this long for it rather than being refused as busy (no run holds a
# shared lock, so a real holder is still refused at once).
PROBE_GRACE_S = 5.0
# A run writes who it is just after taking the lock: how long a probe waits to read that.
HOLDER_WAIT_S = 1.0
_POLL_S = 0.01
_HOLDER_LINE = re.compile(r"pid (\d+), started (\S+)")


@dataclass(frozen=True)
class Holder:
    """The process that holds a campaign's lock, as its lock file tells."""

    pid: int | None  # None: it took the lock and has not yet written who it is
    started: str | None  # ISO 8601, UTC

    def __str__(self) -> str:
        if self.pid is None:
            return "another process"
        return f"pid {self.pid}, started {self.started}"

    @classmethod
    def parse(cls, text: str) -> Holder:
        """The holder described by a lock file's TEXT."""
        found = _HOLDER_LINE.fullmatch(text.strip())
        return cls(int(found[1]), found[2]) if found else cls(None, None)

    @classmethod
    def me(cls) -> Holder:
        """This process, starting now."""
        return cls(os.getpid(), datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


class Lock:
    """An OS file lock for one campaign: it dies with its process, so a crash never wedges cron."""

    def __init__(self, path: Path):
        self.path = path
        self._handle: TextIO | None = None

    def acquire(self) -> None:
        """Take the lock, or raise `RunBusy` naming the process that holds it (or
        `CampaignInvalid` when the state folder cannot hold a lock file)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        except OSError as error:
            raise CampaignInvalid(
                self._problem(
                    f"cannot take the campaign's lock: {error.strerror or error}; check that "
                    "the state folder is writable; nothing was sent"
                )
            ) from None
        if not _take(handle):
            holder = _read_holder(handle.fileno())
            handle.close()
            raise RunBusy(
                self._problem(f"this campaign is already running ({holder}); nothing was sent")
            )
        handle.seek(0)
        handle.truncate()
        handle.write(str(Holder.me()))
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

    @staticmethod
    def holder(path: Path) -> Holder | None:
        """The process running the campaign whose lock file is PATH, or None when no run is.

        Read-only: creates nothing, and never keeps a run from starting (see `PROBE_GRACE_S`).
        `CampaignInvalid` when the lock file exists but cannot be read.
        """
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise CampaignInvalid(_unreadable(path, error)) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # a run holds it (exclusively)
                return _read_holder(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        except OSError as error:
            raise CampaignInvalid(_unreadable(path, error)) from None
        finally:
            os.close(fd)

    def _problem(self, message: str) -> Problem:
        return Problem(str(self.path), None, None, message)

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _take(handle: TextIO) -> bool:
    """Lock HANDLE exclusively; False when a run holds it. Only `Lock.holder` probes hold it
    shared, and for an instant: wait those out rather than refuse the run."""
    deadline = time.monotonic() + PROBE_GRACE_S
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # an exclusive holder: a run
        fcntl.flock(handle, fcntl.LOCK_UN)
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)


def _read_holder(fd: int) -> Holder:
    """Who holds the lock on FD, waiting a moment for a run that has just taken it to say."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        holder = Holder.parse(os.pread(fd, 200, 0).decode("utf-8", "replace"))
        if holder.pid is not None or time.monotonic() > deadline:
            return holder
        time.sleep(_POLL_S)


def _unreadable(path: Path, error: OSError) -> Problem:
    return Problem(
        str(path),
        None,
        None,
        f"cannot read the campaign's lock: {error.strerror or error}; cannot tell whether "
        "a run is in progress; check the state folder's permissions",
    )
