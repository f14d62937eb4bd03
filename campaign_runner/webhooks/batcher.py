"""Group commit: the events of many requests written in one ledger transaction, and each
request answered only once its events are committed.

    request ─► GroupCommit.commit(events) ─► waiting list ─► the writer task takes it whole
                  (awaits)                   (a moment more when only a few wait)
                     ▲                                 ─► ledger.apply_events(batch)
                     └──── answered after the COMMIT ◄──┘  (one transaction per batch)

A 200 therefore means "in the ledger": a receiver killed before the commit has answered
nobody, so Meta posts those payloads again. Requests wait on the event loop and are handed
over a batch at a time. Where the transaction runs depends on the ledger: a SQLite commit
(WAL, synchronous=NORMAL) never waits for the disk and takes about a millisecond for a
batch, so the event loop runs it itself, between requests (a thread would cost more in
hand-overs of the interpreter lock than the commit: measured, 20% more CPU per request); a
PostgreSQL commit waits for the server, so one thread owns that connection and the loop
goes on meanwhile. The writer also runs `reconcile` every RECONCILE_EVERY_S, so statuses
that arrived before their run committed the wamid are matched.

A batch that fails is tried again one request at a time on a connection opened afresh (a
PostgreSQL restart, a connection a proxy closed, a transaction left open), so a lost
connection costs no refusal and one request the ledger refuses (a value PostgreSQL will
not store) cannot refuse the others; a request that still fails is answered 503 and Meta
retries it later. A ledger that cannot be opened is not tried more than once per
REOPEN_PAUSE_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from campaign_runner.errors import CampaignError
from campaign_runner.ledger import Journal, LedgerError
from campaign_runner.webhooks.payload import Events
from campaign_runner.webhooks.tally import Tally

# A transaction costs ~60 us whatever its size (SQLite, measured): when only a few requests
# wait, others are given a moment to join; under heavy load batches are big anyway.
BATCH_GATHER_BELOW = 8  # requests
BATCH_GATHER_S = 0.001
BATCH_MAX_EVENTS = 5_000  # at most this many events in one transaction
RECONCILE_EVERY_S = 5.0  # match the statuses kept aside this often
# ... looking at those received this recently: a status beats its run's commit of the wamid
# by seconds; a run that ends matches its own whatever their age (`reconcile(run_id=)`).
RECONCILE_WINDOW = timedelta(minutes=15)
REOPEN_PAUSE_S = 1.0  # a ledger that could not be opened is not tried again sooner


_T = TypeVar("_T")


class LedgerUnavailable(Exception):
    """The events could not be committed: the request is refused (503), Meta retries."""


@dataclass(slots=True)
class _Waiting:
    events: Events
    future: asyncio.Future[None]


class GroupCommit:
    """The one writer of a receiver's ledger (see the module's docstring).

    JOURNAL is the ledger opened by the caller; OPEN_AGAIN opens it afresh after a failure.
    NOTE is told of failures and holds (a word and fields, for the log); TALLY counts what
    was applied. IN_THREAD: the ledger's work is done in a thread of its own (PostgreSQL),
    else on the event loop (SQLite). `run` is the writer task, `commit` what requests await.
    """

    def __init__(
        self,
        journal: Journal,
        open_again: Callable[[], Journal],
        tally: Tally,
        note: Callable[[str, dict[str, object]], None],
        in_thread: bool,
    ):
        self._ledger = _Ledger(journal, open_again, note)
        self._tally = tally
        self._note = note
        self._waiting: list[_Waiting] = []
        self._wake = asyncio.Event()
        self._stopping = self._ran = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the writer's, once it runs
        self._thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
            if in_thread
            else None
        )

    async def commit(self, events: Events) -> None:
        """Return once EVENTS are committed; `LedgerUnavailable` when they could not be.
        An empty EVENTS proves the ledger takes writes (the health check)."""
        if self._stopping:
            raise LedgerUnavailable("the receiver is stopping")
        # the loop's own create_future: asyncio.get_running_loop() costs a getpid() call
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append(_Waiting(events, future))
        self._wake.set()
        await future

    async def run(self) -> None:
        """The writer task: commit what waits, batch after batch, and reconcile now and
        then, until `stop`; then close the ledger."""
        next_reconcile = time.monotonic() + RECONCILE_EVERY_S
        self._ran, self._loop = True, asyncio.get_running_loop()
        try:
            while not (self._stopping and not self._waiting):
                with contextlib.suppress(TimeoutError):
                    timeout = max(0.0, next_reconcile - time.monotonic())
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
                if self._waiting:
                    if len(self._waiting) < BATCH_GATHER_BELOW:
                        await asyncio.sleep(BATCH_GATHER_S)
                    batch = self._take()
                    failures = await self._in_writer(self._commit, batch)
                    _settle(batch, failures)
                if time.monotonic() >= next_reconcile:
                    await self._in_writer(self._reconcile)
                    next_reconcile = time.monotonic() + RECONCILE_EVERY_S
        finally:
            await self._in_writer(self._ledger.close)
            if self._thread is not None:
                self._thread.shutdown(wait=False)

    def stop(self) -> None:
        """Take no more requests: `run` commits those waiting, closes the ledger and ends."""
        self._stopping = True
        self._wake.set()

    def close(self) -> None:
        """Close the ledger if `run` never ran (a receiver that could not start)."""
        if not self._ran:
            self._ledger.close()
            if self._thread is not None:
                self._thread.shutdown(wait=False)

    async def _in_writer(self, work: Callable[..., _T], *args: Any) -> _T:
        """WORK(*ARGS) where the ledger's work is done: its thread, or here."""
        if self._thread is None:
            return work(*args)
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    def _take(self) -> list[_Waiting]:
        """The waiting requests, up to BATCH_MAX_EVENTS events (the rest wait their turn)."""
        size = count = 0
        while count < len(self._waiting) and size < BATCH_MAX_EVENTS:
            size += len(self._waiting[count].events)
            count += 1
        batch, self._waiting = self._waiting[:count], self._waiting[count:]
        if self._waiting:
            self._wake.set()
        return batch

    # ---- where the ledger's work is done (see `_in_writer`) ---------------------------

    def _commit(self, batch: list[_Waiting]) -> list[Exception | None]:
        """Write BATCH in one transaction; what went wrong for each request (None: ok)."""
        try:
            self._apply(batch)
        except LedgerUnavailable as error:
            return [error] * len(batch)
        except Exception as error:  # LedgerError, or a bug: Meta will retry, we go on
            self._ledger.failed(error, len(batch))
            return self._commit_each(batch)  # on a fresh connection: a lost one costs no 503
        return [None] * len(batch)

    def _commit_each(self, batch: list[_Waiting]) -> list[Exception | None]:
        failures: list[Exception | None] = []
        for i, item in enumerate(batch):
            try:
                self._apply([item])
            except LedgerUnavailable as error:
                return failures + [error] * (len(batch) - i)
            except Exception as error:
                self._ledger.failed(error, 1)
                failures.append(LedgerUnavailable(str(error)))
            else:
                failures.append(None)
        return failures

    def _apply(self, batch: Sequence[_Waiting]) -> None:
        if len(batch) == 1:
            events = batch[0].events
        else:
            events = Events()
            for item in batch:
                events.extend(item.events)
        applied = self._ledger.open().apply_events(events)
        self._tally.applied(applied)
        self._held(applied.held)

    def _reconcile(self) -> None:
        try:
            applied = self._ledger.open().reconcile(recent=RECONCILE_WINDOW)
        except LedgerUnavailable:
            return
        except Exception as error:
            self._ledger.failed(error, 0)
            return
        if applied.matched:
            self._tally.applied(applied, later=True)
            self._held(applied.held)

    def _held(self, campaigns: list[str]) -> None:
        for campaign in campaigns:  # at once, not with the next counts: its runs stop
            self._note("held", {"campaign": campaign})


class _Ledger:
    """The writer's connection: opened afresh after a failure, not more than once per
    REOPEN_PAUSE_S (used by the writer only)."""

    def __init__(
        self,
        journal: Journal,
        open_again: Callable[[], Journal],
        note: Callable[[str, dict[str, object]], None],
    ):
        self._journal: Journal | None = journal
        self._open_again, self._note = open_again, note
        self._tried_at = time.monotonic()

    def open(self) -> Journal:
        """The open ledger; `LedgerUnavailable` when it cannot be opened now."""
        if self._journal is not None:
            return self._journal
        if time.monotonic() - self._tried_at < REOPEN_PAUSE_S:
            raise LedgerUnavailable("the ledger is being opened again")
        self._tried_at = time.monotonic()
        try:
            self._journal = self._open_again()
        except CampaignError as error:
            message = error.problems[0].message if error.problems else str(error)
            self._note("ledger-error", {"error": message})
            raise LedgerUnavailable(message) from None
        self._note("ledger-reopened", {})
        return self._journal

    def failed(self, error: Exception, requests: int) -> None:
        """Note ERROR and drop the connection: it may be lost, or left in a transaction."""
        said = str(error) if isinstance(error, LedgerError) else f"{type(error).__name__}: {error}"
        self._note("ledger-error", {"requests": requests, "error": said})
        self.close()
        self._tried_at = time.monotonic() - REOPEN_PAUSE_S  # the first reopen is at once

    def close(self) -> None:
        """Close the connection (committing nothing more: every batch commits itself)."""
        journal, self._journal = self._journal, None
        if journal is not None:
            with contextlib.suppress(Exception):
                journal.close()


def _settle(batch: Sequence[_Waiting], failures: Sequence[Exception | None]) -> None:
    """Answer BATCH's requests (on the event loop): their events are committed, or not."""
    for item, failure in zip(batch, failures, strict=True):
        if item.future.done():  # the client went away
            continue
        if failure is None:
            item.future.set_result(None)
        else:
            item.future.set_exception(failure)
