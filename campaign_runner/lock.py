"""One run per campaign at a time: an OS file lock beside the journal."""

from __future__ import annotations

import fcntl
import os
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import TextIO

from campaign_runner.errors import CampaignInvalid, Problem, RunBusy


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
                Problem(
                    str(self.path),
                    None,
                    None,
                    f"cannot take the campaign's lock: {error.strerror or error}; check that "
                    "the state folder is writable; nothing was sent",
                )
            ) from None
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
