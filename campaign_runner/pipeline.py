"""The pipeline: load -> validate -> render -> validate -> dispatch -> report, for one campaign.

`prepare` turns the CSV into one `Prepared` item per row (a body to send, or the reason
not to); `run_campaign` sends the ready ones once each, keeping the journal and the report.
Both are plain functions over plain data; the CLI only maps their results to output.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaign_runner import recipients as recipients_mod
from campaign_runner import schemas
from campaign_runner.campaign import Campaign
from campaign_runner.errors import (
    EXIT_ABORTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
)
from campaign_runner.gateway.settings import send_settings
from campaign_runner.journal import Journal, Lock, default_state_dir
from campaign_runner.render import Renderer, RenderError
from campaign_runner.report import (
    INTENTIONAL,
    ReportWriter,
    Result,
    default_report_path,
    summary_path,
    write_summary,
)

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class Prepared:
    """One CSV row after render and validation: either a body to send or a status saying why not."""

    seq: int
    row: int
    phone: str
    key: str | None = None
    body: dict[str, Any] | None = None
    status: str | None = None  # None: ready to send
    error: str | None = None
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class Source:
    """Everything `prepare` needs, opened and checked once per run."""

    campaign: Campaign
    table: recipients_mod.Table
    renderer: Renderer
    exclusions: set[str]

    @property
    def warnings(self) -> list[str]:
        return self.table.warnings


def open_source(campaign: Campaign, recipients: str | os.PathLike | None = None) -> Source:
    """Open the recipients CSV and compile the message; raise if a placeholder has no column."""
    spec = campaign.recipients
    path = Path(recipients) if recipients else spec.file
    renderer = Renderer(campaign)
    table = recipients_mod.open_table(path, spec.encoding, spec.delimiter)
    try:
        recipients_mod.require_column(table, spec.phone_column)
        renderer.check_columns(table.columns, campaign.source, str(path))
        exclusions = recipients_mod.read_exclusions(spec.exclude, spec.default_region)
    except BaseException:
        table.rows.close()
        raise
    return Source(campaign, table, renderer, exclusions)


class SeenKeys:
    """Delivery keys met so far in this run, kept on disk so memory stays flat for any CSV size."""

    def __init__(self):
        handle, self._path = tempfile.mkstemp(prefix="campaign-seen-", suffix=".sqlite")
        os.close(handle)
        self.db = sqlite3.connect(self._path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")
        self.db.execute("BEGIN")
        self._since_commit = 0

    def add(self, key: str) -> bool:
        """Remember KEY; False when it was already there (a duplicate row)."""
        cursor = self.db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (key,))
        self._since_commit += 1
        if self._since_commit >= 20_000:
            self.db.execute("COMMIT")
            self.db.execute("BEGIN")
            self._since_commit = 0
        return cursor.rowcount == 1

    def close(self) -> None:
        """Drop the temporary file."""
        self.db.close()
        Path(self._path).unlink(missing_ok=True)


def prepare(source: Source, limit: int | None = None) -> Iterator[Prepared]:
    """One `Prepared` per CSV row, in order: rendered and validated, or the reason it cannot be."""
    spec = source.campaign.recipients
    renderer = source.renderer
    seen = SeenKeys()
    try:
        for seq, row in enumerate(source.table.rows):
            if limit is not None and seq >= limit:
                break
            yield _prepare_row(seq, row, spec, renderer, source.exclusions, seen)
    finally:
        seen.close()
        source.table.rows.close()


def _prepare_row(seq, row, spec, renderer: Renderer, exclusions, seen: SeenKeys) -> Prepared:
    raw_phone = row.values.get(spec.phone_column, "")
    item = Prepared(seq, row.number, raw_phone.strip(), values=row.values)
    if row.problem:
        item.status, item.error = "invalid", f"row {row.problem}"
        return item
    try:
        item.phone = recipients_mod.normalise_phone(raw_phone, spec.default_region)
    except recipients_mod.PhoneError as error:
        item.status, item.error = "invalid", str(error)
        return item
    if item.phone in exclusions:
        item.status, item.error = "excluded", "on the exclusion list"
        return item
    try:
        item.key = renderer.key(row.values, item.phone)
    except RenderError as error:
        item.status, item.error = "invalid", f"recipients.key: {error}"
        return item
    if not seen.add(item.key):
        item.status, item.error = "duplicate", f"an earlier row has the same key {item.key}"
        return item
    try:
        body = renderer.body(row.values, item.phone)
    except RenderError as error:
        item.status, item.error = "invalid", str(error)
        return item
    if not schemas.is_valid(body):
        item.status = "invalid"
        item.error = "; ".join(str(issue) for issue in schemas.check(body))
        return item
    item.body = body
    return item


def count_rows(source_path: Path, campaign: Campaign) -> int:
    """How many recipient rows the CSV has (a quick pass, for the confirmation question)."""
    spec = campaign.recipients
    table = recipients_mod.open_table(source_path, spec.encoding, spec.delimiter)
    return sum(1 for _ in table.rows)


# ---- run ---------------------------------------------------------------------------------


@dataclass
class RunOptions:
    recipients: str | os.PathLike | None = None
    dry_run: bool = False
    limit: int | None = None
    report: Path | None = None
    state_dir: Path | None = None
    retry_failed: bool = False
    resend_unknown: bool = False
    gateway_url: str | None = None  # overrides the campaign's (the in-process sandbox)
    apikey: str | None = None  # given directly (the in-process sandbox); else from the environment
    journal_name: str | None = None  # defaults to the campaign name
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    progress: Callable[[Counter], None] | None = None
    handle_signals: bool = True
    ignore_schedule: bool = False  # rehearsals (--sandbox) and dry runs may run at any hour


@dataclass
class RunResult:
    exit_code: int
    reason: str
    counts: Counter
    started: datetime
    ended: datetime
    report: Path | None = None
    summary: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return (self.ended - self.started).total_seconds()

    @property
    def attempted(self) -> int:
        return sum(self.counts[s] for s in ("sent", "failed", "unknown", "dry-run"))


def run_campaign(campaign: Campaign, options: RunOptions) -> RunResult:
    """Send CAMPAIGN once to every recipient that should get it, then write the report."""
    started = options.clock()
    early = None if options.ignore_schedule else _refuse_to_start(campaign, started)
    if early and not options.dry_run:
        return RunResult(EXIT_OK, early, Counter(), started, options.clock())
    settings = None
    if not options.dry_run:
        settings = send_settings(campaign, url=options.gateway_url, apikey=options.apikey)
    state_dir = options.state_dir or default_state_dir()
    journal_name = options.journal_name or campaign.name
    lock = Lock(state_dir / f"{journal_name}.lock")
    journal = None
    if not options.dry_run:
        lock.acquire()  # first: a busy campaign is refused before any file is read
    try:
        source = open_source(campaign, options.recipients)
    except BaseException:
        lock.release()
        raise
    if not options.dry_run:
        journal = Journal(state_dir / f"{journal_name}.sqlite")
    elif (state_dir / f"{journal_name}.sqlite").exists():
        journal = Journal(state_dir / f"{journal_name}.sqlite", readonly=True)  # already-sent
    report_path = options.report or default_report_path(campaign.name, started.astimezone())
    writer = ReportWriter(report_path)
    run_id = uuid.uuid4().hex
    engine = _Engine(campaign, options, journal, writer, run_id)
    try:
        if journal is not None and not options.dry_run:
            journal.start_run(run_id, started.isoformat())
        items = prepare(source, options.limit)
        if options.dry_run:
            engine.dry_run(items)
        else:
            asyncio.run(engine.send_all(items, settings))
    finally:
        writer.close()
        ended = options.clock()
        exit_code, reason = engine.verdict()
        if journal is not None:
            if not options.dry_run:
                journal.end_run(run_id, exit_code, reason, dict(writer.counts))
            journal.close()
        lock.release()
    result = RunResult(
        exit_code,
        reason,
        writer.counts,
        started,
        ended,
        report_path,
        summary_path(report_path),
        source.warnings,
    )
    write_summary(result.summary, _summary(campaign, result, run_id, options))
    return result


def _refuse_to_start(campaign: Campaign, now: datetime) -> str | None:
    send = campaign.send
    if send.not_after and now > send.not_after:
        return (
            f"nothing sent: the campaign expired at {send.not_after.isoformat()} (send.not_after)"
        )
    if send.window and not send.window.is_open(now):
        opens = send.window.next_open(now)
        return f"nothing sent: outside the send window; it opens at {opens:%Y-%m-%d %H:%M %Z}"
    return None


def _summary(campaign: Campaign, result: RunResult, run_id: str, options: RunOptions) -> dict:
    return {
        "campaign": campaign.name,
        "campaign_file": str(campaign.path),
        "run_id": run_id,
        "dry_run": options.dry_run,
        "started_at": result.started.isoformat(),
        "ended_at": result.ended.isoformat(),
        "duration_s": round(result.duration_s, 3),
        "counts": dict(result.counts),
        "exit_code": result.exit_code,
        "reason": result.reason,
        "report": str(result.report),
    }


class _Engine:
    """Walks the prepared rows: decides from the journal, sends, and records every outcome."""

    def __init__(
        self,
        campaign: Campaign,
        options: RunOptions,
        journal: Journal | None,
        writer: ReportWriter,
        run_id: str,
    ):
        self.campaign = campaign
        self.options = options
        self.journal = journal
        # A journal empty at the start knows no key: this run's own repeats are duplicates,
        # caught before here, so a first run skips one lookup per row.
        self._journal_knows_keys = journal is not None and not journal.is_empty()
        self.writer = writer
        self.run_id = run_id
        self.stop_reason: str | None = None
        self.stop_exit: int | None = None
        self.consecutive_failures = 0
        self._last_progress = 0.0

    # -- shared ---------------------------------------------------------------------------

    def _full_key(self, item: Prepared) -> str:
        return f"{self.campaign.name}:{item.key}"

    def _emit(
        self,
        item: Prepared,
        status: str,
        error: str | None = None,
        message_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.writer.add(
            Result(item.seq, item.row, item.phone, status, message_id, http_status, error)
        )
        if self.options.progress:
            now = time.monotonic()
            if now - self._last_progress >= 0.2:
                self._last_progress = now
                self.options.progress(self.writer.counts)

    def _decided_by_journal(self, item: Prepared) -> bool:
        """Report a key an earlier run already handled; True when it must not be sent now."""
        if not self._journal_knows_keys:
            return False
        previous = self.journal.lookup(self._full_key(item))
        if previous is None:
            return False
        if previous.status == "sent":
            self._emit(item, "already-sent", None, previous.message_id, previous.http_status)
            return True
        if previous.status == "sending" and not self.options.resend_unknown:
            self._emit(
                item,
                "unknown",
                "an earlier run stopped during this request; its outcome "
                "is unknown (check the gateway, then --resend-unknown to send it again)",
            )
            return True
        if previous.status == "failed" and previous.permanent and not self.options.retry_failed:
            self._emit(
                item,
                "already-failed",
                f"failed for good in an earlier run: {previous.error} "
                "(--retry-failed sends it again)",
                None,
                previous.http_status,
            )
            return True
        return False

    def _stop(self, reason: str, exit_code: int | None = None) -> None:
        if self.stop_reason is None:
            self.stop_reason, self.stop_exit = reason, exit_code

    def _check_clock(self) -> None:
        if self.options.ignore_schedule:
            return
        send = self.campaign.send
        now = self.options.clock()
        if send.not_after and now > send.not_after:
            self._stop(f"the campaign expired at {send.not_after.isoformat()} (send.not_after)")
        elif send.window and not send.window.is_open(now):
            self._stop("the send window closed; the next run continues")

    def verdict(self) -> tuple[int, str]:
        """The exit code and a one-line reason for the whole run."""
        if self.stop_exit is not None:
            return self.stop_exit, self.stop_reason or ""
        counts = self.writer.counts
        trouble = sum(
            n
            for status, n in counts.items()
            if status not in INTENTIONAL and status != "not-attempted"
        )
        if self.stop_reason:
            return (EXIT_SOME_FAILED if trouble else EXIT_OK), f"stopped: {self.stop_reason}"
        if trouble:
            return EXIT_SOME_FAILED, "some recipients were not sent"
        return EXIT_OK, "every recipient handled"

    # -- dry run --------------------------------------------------------------------------

    def dry_run(self, items: Iterator[Prepared]) -> None:
        for item in items:
            if item.status is not None:
                self._emit(item, item.status, item.error)
            elif not self._decided_by_journal(item):
                self._emit(item, "dry-run")

    # -- sending --------------------------------------------------------------------------

    async def send_all(self, items: Iterator[Prepared], settings) -> None:
        from campaign_runner.gateway.sender import Sender

        sender = Sender(settings, self.campaign.send.concurrency)
        in_flight: set[asyncio.Task] = set()
        ready: list[tuple[Prepared, object]] = []  # leased, not yet marked and started

        sequential = self.campaign.send.concurrency == 1

        async def start_ready() -> None:
            # One commit marks every leased key `sending` before any of their POSTs: when
            # several slots are free at once, they share a commit instead of one each.
            if not ready:
                return
            if self.stop_reason:  # a request that finished meanwhile stopped the run
                for item, slot in ready:
                    sender.release(slot)
                    self._emit(item, "not-attempted", f"not sent: {self.stop_reason}")
                ready.clear()
                return
            marks = [(self._full_key(item), item.row, item.phone) for item, _ in ready]
            self.journal.mark_sending(marks, self.run_id)
            started, ready[:] = list(ready), []
            for item, slot in started:
                if sequential:  # one at a time: no task to schedule, nothing to overlap
                    await self._deliver(sender, slot, item)
                    await asyncio.sleep(0)  # a turn of the loop, so a signal is heard now
                    continue
                task = asyncio.create_task(self._deliver(sender, slot, item))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)

        self._install_signal_handlers(in_flight)
        try:
            for item in items:
                if item.seq % 1000 == 0:
                    await asyncio.sleep(0)  # long runs of skipped rows must still hear signals
                if item.status is not None:
                    self._emit(item, item.status, item.error)
                    continue
                if self._decided_by_journal(item):
                    continue
                if self.stop_reason:
                    self._emit(item, "not-attempted", f"not sent: {self.stop_reason}")
                    continue
                if sender.free_slots() == 0 or sender.limiter.rate:
                    await start_ready()  # about to wait: send what is leased first
                slot = await sender.lease()
                await sender.limiter.acquire()
                self._check_clock()
                if self.stop_reason:
                    sender.release(slot)
                    self._emit(item, "not-attempted", f"not sent: {self.stop_reason}")
                    continue
                ready.append((item, slot))
                if sender.free_slots() == 0:
                    await start_ready()
            await start_ready()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        finally:
            for item, slot in ready:  # leased when the run broke off: never marked or sent
                sender.release(slot)
                self._emit(item, "not-attempted", "not sent: the run broke off")
            self._remove_signal_handlers()
            await sender.aclose()
            self.journal.flush()

    async def _deliver(self, sender, client, item: Prepared) -> None:
        idempotency_key = str(uuid.uuid5(uuid.NAMESPACE_URL, self._full_key(item)))
        try:
            outcome = await sender.send(item.body, client, idempotency_key, paced=True)
        except asyncio.CancelledError:
            self._emit(item, "unknown", "the run was interrupted during this request")
            raise
        finally:
            sender.release(client)
        if outcome.status != "unknown":
            self.journal.record(
                self._full_key(item),
                outcome.status,
                permanent=outcome.permanent,
                message_id=outcome.message_id,
                http_status=outcome.http_status,
                error=outcome.error,
            )
        self._emit(item, outcome.status, outcome.error, outcome.message_id, outcome.http_status)
        if outcome.abort:
            status = f" {outcome.http_status}" if outcome.http_status else ""
            self._stop(f"aborted: the gateway answered{status} {outcome.abort}", EXIT_ABORTED)
        elif outcome.status == "sent":
            self.consecutive_failures = 0
        else:
            self.consecutive_failures += 1
            limit = self.campaign.send.max_consecutive_failures
            if self.consecutive_failures >= limit:
                self._stop(
                    f"aborted after {limit} failures in a row (send.max_consecutive_failures);"
                    f" the last: {outcome.error}",
                    EXIT_ABORTED,
                )

    def _install_signal_handlers(self, in_flight: set[asyncio.Task]) -> None:
        self._signals: list[int] = []
        if not self.options.handle_signals:
            return
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            name = signal.Signals(signum).name
            if self.stop_reason and self.stop_exit in SIGNAL_EXIT.values():
                for task in list(in_flight):  # a second signal: abandon the requests in flight
                    task.cancel()
                return
            self._stop(f"interrupted by {name}", SIGNAL_EXIT[signum])

        for signum in SIGNAL_EXIT:
            try:
                loop.add_signal_handler(signum, on_signal, signum)
                self._signals.append(signum)
            except (RuntimeError, ValueError):
                pass  # not the main thread: the caller handles signals

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in self._signals:
            loop.remove_signal_handler(signum)
