"""The delivery loop: each planned row is reported, and each one to send is sent at most once.

    planned rows ──► not to send (the plan decided: invalid, already sent...) ──► report
               │ send it
               ▼
             _Launcher: lease a connection, take a token, mark `sending` (one commit
               │        for every key leased together), then POST
               ▼
             deliver: the sender's outcome ──► journal, report, and the run's stop rules

A `StopRule` collects why the run must stop (a signal, the window closing, an abort); the
rows after it are `not-attempted` and `verdict()` turns it all into an exit code. A stop
also ends every wait at once (its `waits`: the pace, pauses, backoffs). Besides each
answer, the run looks at the ledger every WATCH_EVERY_S (its watch, never per message): a
hold placed meanwhile (holds.py) and the quality breaker (breaker.py) stop it too. A key
marked `sending` whose request may have reached the gateway stays so, with the reason
(`unknown`); one the run stopped before it could (only waiting, or definitely refused) is
released as a transient failure, which the next run sends.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from campaign_runner.breaker import QualityBreaker
from campaign_runner.campaign import Campaign
from campaign_runner.errors import ExitCode
from campaign_runner.gateway.sender import Outcome, Progress, Sender, cut_short
from campaign_runner.gateway.settings import SendSettings
from campaign_runner.gateway.transport import Connection
from campaign_runner.holds import RunHolds
from campaign_runner.ledger import Journal, LedgerError
from campaign_runner.plan import DeliveryPolicy
from campaign_runner.prepare import PreparedRow
from campaign_runner.ratelimit import SharedPace, Stopping
from campaign_runner.report import ReportWriter, RowResult
from campaign_runner.rules import HOLDING_CODES, learn
from campaign_runner.status import Status

SIGNAL_EXIT = {signal.SIGINT: ExitCode.SIGINT, signal.SIGTERM: ExitCode.SIGTERM}
LAPSED = "this run's claim on it lapsed and another worker took it over"
_PROGRESS_EVERY_S = 0.2
# How often a sending run looks at the ledger for a hold placed meanwhile and weighs the
# quality breaker: webhooks arrive seconds after a send, so looking more often gains nothing.
WATCH_EVERY_S = 2.0


@dataclass
class StopRule:
    """Why the run stops before its last row; the first reason given wins."""

    reason: str | None = None
    exit_code: ExitCode | None = None
    waits: Stopping = field(default_factory=Stopping)  # set on the first request

    def request(self, reason: str, exit_code: ExitCode | None = None) -> None:
        """Stop the run for REASON (with EXIT_CODE, or the one the rows' statuses give)."""
        if self.reason is None:
            self.reason, self.exit_code = reason, exit_code
        self.waits.set()

    @property
    def by_signal(self) -> bool:
        """True once a SIGINT or SIGTERM stopped the run."""
        return self.exit_code in SIGNAL_EXIT.values()


class Delivery:
    """One run's walk over the prepared rows: decides, sends and records every outcome."""

    def __init__(
        self,
        campaign: Campaign,
        policy: DeliveryPolicy,
        journal: Journal | None,
        writer: ReportWriter,
        clock: Callable[[], datetime],
        progress: Callable[[Any], None] | None = None,
        holds: RunHolds | None = None,
    ):
        self.campaign = campaign
        self.policy = policy
        self.journal = journal
        self.writer = writer
        self.clock = clock
        self.progress = progress
        self.stop = StopRule()
        self.run_id = uuid.uuid4().hex
        self.shared_pace: SharedPace | None = None  # a worker's: the campaign's pace on its ledger
        self._consecutive_failures = 0
        self._last_progress = 0.0
        self.holds = holds  # None for a dry run: it places and obeys no hold while it goes
        self._placed = False
        quality = campaign.send.quality_stop
        self.breaker = (
            QualityBreaker(quality, holds.journal, holds.name, self.run_id)
            if quality is not None and holds is not None
            else None
        )

    # ---- what every row goes through ------------------------------------------------------

    def delivery_key(self, item: PreparedRow) -> str:
        """The key the journal knows this row's delivery by: `CAMPAIGN:KEY`."""
        return f"{self.campaign.name}:{item.key}"

    def emit(
        self,
        item: PreparedRow,
        status: Status,
        error: str | None = None,
        message_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        """Report ITEM's outcome (in row order) and refresh the progress line now and then."""
        self.writer.add(
            RowResult(item.seq, item.row, item.phone, status, message_id, http_status, error)
        )
        if self.writer.failure and not self.stop.reason:
            self.stop.request(f"aborted: {self.writer.failure}", ExitCode.ABORTED)
        if self.progress:
            now = time.monotonic()
            if now - self._last_progress >= _PROGRESS_EVERY_S:
                self._last_progress = now
                self.progress(self.writer.counts)

    def decided_without_sending(self, item: PreparedRow) -> bool:
        """Report a row the plan decided not to send (invalid, already sent...)."""
        if item.status is Status.READY:
            return False
        self.emit(item, item.status, item.error, item.message_id, item.http_status)
        return True

    def check_schedule(self) -> None:
        """Stop the run when the send window has closed or the campaign expired meanwhile."""
        if self.policy.ignore_schedule:
            return
        closed = self.campaign.send.schedule.closed(self.clock())
        if closed is None:
            return
        self.stop.request(
            closed.reason if closed.expired else "the send window closed; the next run continues"
        )

    def not_attempted(self, item: PreparedRow) -> None:
        """Report a row the run stopped before."""
        self.emit(item, Status.NOT_ATTEMPTED, f"not sent: {self.stop.reason}")

    def verdict(self) -> tuple[ExitCode, str]:
        """The exit code and a one-line reason for the whole run."""
        if self.stop.exit_code is not None:
            return self.stop.exit_code, self.stop.reason or ""
        trouble = any(n for status, n in self.writer.counts.items() if status.trouble)
        code = ExitCode.SOME_FAILED if trouble else ExitCode.OK
        if self.stop.reason:
            return code, f"stopped: {self.stop.reason}"
        return code, ("some recipients were not sent" if trouble else "every recipient handled")

    # ---- a dry run: everything but the POST -----------------------------------------------

    def dry_run(self, items: Iterator[PreparedRow]) -> None:
        """Report what a real run would do with each row."""
        for item in items:
            if not self.decided_without_sending(item):
                self.emit(item, Status.DRY_RUN)

    # ---- sending ------------------------------------------------------------------------

    async def send_all(
        self,
        items: Iterator[PreparedRow] | AsyncIterator[PreparedRow],
        settings: SendSettings,
        keepalive: tuple[float, Callable[[], None]] | None = None,
    ) -> None:
        """Send every ready row to the gateway, honouring the journal, the pace and stops.

        KEEPALIVE (seconds, call): called that often while the run lasts (a worker renews
        its claims on shared work with it)."""
        sender = Sender(settings, self.campaign.send.concurrency, self.stop.waits, self.shared_pace)
        launcher = _Launcher(self, sender)
        beating = asyncio.create_task(_every(*keepalive)) if keepalive else None
        watching = asyncio.create_task(self._watch()) if self.holds is not None else None
        with _StopOnSignals(self.stop, launcher.in_flight, self.policy.handle_signals):
            try:
                await self._walk(items, launcher)
                await launcher.finish()
            finally:
                launcher.abandon_leased("the run broke off")
                await sender.aclose()
                for task in (beating, watching):
                    if task is not None:
                        task.cancel()
                self.settle_journal()

    def settle_journal(self) -> None:
        """Commit the outcomes still pending; if the journal cannot take them, say so."""
        if self.journal is None:
            return
        try:
            self.journal.flush()
        except LedgerError as error:
            self.journal_failed(error)

    def journal_failed(self, error: LedgerError) -> None:
        """Stop the run: without its journal it cannot promise exactly-once any more."""
        self.stop.request(
            f"aborted: {error}; nothing more was sent, and the requests whose outcome it could "
            "not record will show as unknown",
            ExitCode.ABORTED,
        )

    # ---- the watch: a look at the ledger every few seconds ----------------------------------

    async def _watch(self) -> None:
        """Look at the ledger every WATCH_EVERY_S until the run ends (cancelled)."""
        while not self.stop.reason:
            await asyncio.sleep(WATCH_EVERY_S)
            try:
                self.look_at_ledger()
            except LedgerError as error:
                self.journal_failed(error)
            except Exception:  # a read the ledger could not answer now: the next look tries
                continue  # again, and a ledger that is gone stops the run at its next mark

    def look_at_ledger(self) -> None:
        """Stop the run for a hold placed meanwhile (a webhook's 132015, another worker's
        breaker), or when the quality breaker trips (it then holds the campaign)."""
        if self.holds is None or self.stop.reason:
            return
        hold = self.holds.current()
        if hold is not None:
            self.stop.request(self.holds.sentence(hold), ExitCode.ABORTED)
            return
        breaker = self.breaker
        tripped = breaker.weigh() if breaker is not None and breaker.due() else None
        if tripped is not None:
            self.stop.request(f"{tripped}; {self._hold(tripped, None)}", ExitCode.ABORTED)

    def _hold(self, reason: str, code: int | None) -> str:
        """Hold the campaign for REASON; what the run's reason adds (how to lift it)."""
        assert self.holds is not None
        self._placed = True  # once a run: requests in flight may all meet the same refusal
        try:
            return self.holds.place(reason, code)
        except LedgerError as error:  # the run stops for the ledger: the reason says so
            self.journal_failed(error)
            return f"the campaign could not be held ({error})"

    # ---- the walk ---------------------------------------------------------------------------

    async def _walk(
        self, items: Iterator[PreparedRow] | AsyncIterator[PreparedRow], launcher: _Launcher
    ) -> None:
        async for item in _each(items):
            if item.seq % 1000 == 0:
                await asyncio.sleep(0)  # long runs of skipped rows must still hear signals
            if self.decided_without_sending(item):
                continue
            if self.stop.reason:
                self.not_attempted(item)
                continue
            await launcher.admit(item)

    async def deliver(self, sender: Sender, connection: Connection, item: PreparedRow) -> None:
        """POST one row's body, then apply the run's stop rules and record the outcome."""
        assert item.content is not None  # only READY rows are launched, and the plan encoded them
        key = self.delivery_key(item)
        idempotency_key = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
        progress = Progress()
        try:
            outcome = await sender.send(item.content, connection, idempotency_key, True, progress)
        except asyncio.CancelledError:
            self._settle(key, item, cut_short(progress))  # in doubt only if it may have arrived
            raise
        finally:
            sender.release(connection)
        self._apply_stop_rules(outcome)
        self._settle(key, item, outcome)

    def _settle(self, key: str, item: PreparedRow, outcome: Outcome) -> None:
        """Journal and report OUTCOME: an unknown one stays `sending` with its reason; one
        the run stopped before is released as a transient failure (the next run sends it)."""
        status, error = outcome.status, outcome.error
        recorded = "sending" if status is Status.UNKNOWN else str(status)
        if status is Status.NOT_ATTEMPTED:
            recorded = "failed"
            error = f"not sent: {self.stop.reason or 'the run stopped'}"
            if outcome.error and not outcome.abort:
                error += f"; the last attempt: {outcome.error}"
        self._record(
            key,
            recorded,
            permanent=outcome.permanent,
            message_id=outcome.message_id,
            http_status=outcome.http_status,
            error=error,
            code=outcome.code,
        )
        learn(self.journal, item.phone, outcome.code)  # 131050, 131026: the suppression list
        self.emit(item, status, error, outcome.message_id, outcome.http_status)

    def _record(self, key: str, status: str, **outcome: Any) -> None:
        if self.journal is not None:
            self.journal.record(key, status, **outcome)

    def _apply_stop_rules(self, outcome: Outcome) -> None:
        if outcome.abort:
            status = f" {outcome.http_status}" if outcome.http_status else ""
            reason = f"aborted: the gateway answered{status} {outcome.abort}"
            held = HOLDING_CODES.get(outcome.code) if outcome.code is not None else None
            if held is not None and self.holds is not None and not self._placed:
                reason += f"; {self._hold(held, outcome.code)}"  # cron must not keep trying
            self.stop.request(reason, ExitCode.ABORTED)
        elif outcome.status == Status.SENT:
            self._consecutive_failures = 0
        elif outcome.status != Status.NOT_ATTEMPTED:
            if self.breaker is not None:
                self.breaker.note(outcome.code)  # a refusal with a quality code, at once
            self._consecutive_failures += 1
            limit = self.campaign.send.max_consecutive_failures
            if self._consecutive_failures >= limit:
                self.stop.request(
                    f"aborted after {limit} failures in a row (send.max_consecutive_failures);"
                    f" the last: {outcome.error}",
                    ExitCode.ABORTED,
                )


async def _each(
    items: Iterator[PreparedRow] | AsyncIterator[PreparedRow],
) -> AsyncIterator[PreparedRow]:
    """ITEMS one by one, whether they come from the spool or from shared work."""
    if isinstance(items, AsyncIterator):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def _every(seconds: float, call: Callable[[], None]) -> None:
    """Call CALL every SECONDS until cancelled; a failure is left to the next call."""
    while True:
        await asyncio.sleep(seconds)
        with suppress(Exception):  # the claims lapse and others take over: never a resend
            call()


class _Launcher:
    """Rows admitted for sending: each leases a connection and a token, then all the leased
    keys are marked `sending` in one journal commit before any of their POSTs goes out."""

    def __init__(self, delivery: Delivery, sender: Sender):
        self.delivery = delivery
        self.sender = sender
        self.in_flight: set[asyncio.Task[None]] = set()
        self.leased: list[tuple[PreparedRow, Connection]] = []
        self.sequential = delivery.campaign.send.concurrency == 1
        journal = delivery.journal
        self.gather_s = getattr(journal, "GATHER_MARKS_S", 0.0) if journal is not None else 0.0

    async def admit(self, item: PreparedRow) -> None:
        """Lease a connection and a token for ITEM; launch the leased rows when none is left."""
        sender, delivery = self.sender, self.delivery
        if sender.free_slots() == 0 or sender.limiter.rate:
            await self.launch()  # about to wait: send what is leased first
        connection = await sender.lease()
        if self.gather_s and not self.leased and sender.free_slots() == 0 and not self.sequential:
            # One slot was free: let a few more free up, so that one commit marks them all
            # (a ledger whose commit waits for the disk, PostgreSQL's, makes this pay).
            await asyncio.sleep(self.gather_s)
        await sender.limiter.acquire()  # cut short (no token) only by a stop, seen below
        delivery.check_schedule()
        if delivery.stop.reason:
            sender.release(connection)
            delivery.not_attempted(item)
            return
        self.leased.append((item, connection))
        if sender.free_slots() == 0:
            await self.launch()

    async def launch(self) -> None:
        """Mark every leased key `sending` in one commit, then start their requests."""
        if not self.leased:
            return
        delivery = self.delivery
        if delivery.stop.reason:  # a request that finished meanwhile stopped the run
            self.abandon_leased(delivery.stop.reason)
            return
        assert delivery.journal is not None  # sending always keeps a journal
        marks = [(delivery.delivery_key(item), item.row, item.phone) for item, _ in self.leased]
        try:
            lost = delivery.journal.mark_sending(marks, delivery.run_id)
        except LedgerError as error:
            delivery.journal_failed(error)
            self.abandon_leased(delivery.stop.reason or str(error))
            return
        started, self.leased = self.leased, []
        for item, connection in started:
            if lost and delivery.delivery_key(item) in lost:  # another worker has it now
                self.sender.release(connection)
                delivery.emit(item, Status.NOT_ATTEMPTED, f"not sent: {LAPSED}")
                continue
            if self.sequential:  # one at a time: no task to schedule, nothing to overlap
                await delivery.deliver(self.sender, connection, item)
                await asyncio.sleep(0)  # a turn of the loop, so a signal is heard now
                continue
            task = asyncio.create_task(delivery.deliver(self.sender, connection, item))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def finish(self) -> None:
        """Launch what is still leased and wait for every request in flight."""
        await self.launch()
        if self.in_flight:
            await asyncio.gather(*self.in_flight, return_exceptions=True)

    def abandon_leased(self, reason: str) -> None:
        """Give back the connections of rows never marked or sent: `not-attempted`, REASON."""
        for item, connection in self.leased:
            self.sender.release(connection)
            self.delivery.emit(item, Status.NOT_ATTEMPTED, f"not sent: {reason}")
        self.leased = []


class _StopOnSignals:
    """SIGINT/SIGTERM stop the run after the requests on the wire (every wait ends at once);
    a second one abandons those too."""

    def __init__(self, stop: StopRule, in_flight: set[asyncio.Task[None]], enabled: bool):
        self.stop, self.in_flight, self.enabled = stop, in_flight, enabled
        self.installed: list[signal.Signals] = []
        self.heard = 0

    def __enter__(self) -> _StopOnSignals:
        if not self.enabled:
            return self
        loop = asyncio.get_running_loop()
        for signum in SIGNAL_EXIT:
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
                self.installed.append(signum)
            except (RuntimeError, ValueError):
                pass  # not the main thread: the caller handles signals
        return self

    def _on_signal(self, signum: signal.Signals) -> None:
        self.heard += 1
        if self.heard > 1:  # counted here: the run may have been stopping for another reason
            for task in list(self.in_flight):
                task.cancel()
            return
        self.stop.request(f"interrupted by {signum.name}", SIGNAL_EXIT[signum])

    def __exit__(self, *exc_info: object) -> None:
        loop = asyncio.get_running_loop()
        for signum in self.installed:
            loop.remove_signal_handler(signum)
