"""One run of a campaign: the policy around the plan and the delivery loop.

`run_campaign` decides what a run is (a real send, a dry run, or a rehearsal against an
in-process sandbox), takes the campaign's lock, opens the recipients and the journal through
one `ExitStack`, makes the plan (`plan.make_plan`), lets the person see and approve it, then
opens the report and hands the planned rows to `delivery.Delivery`, and writes the JSON
summary. A run outside its send window stops after the plan: the summary says what waits.
Every path a run uses is decided here, once.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaign_runner.attention import LABEL, RowsToFix
from campaign_runner.campaign import Campaign
from campaign_runner.delivery import Delivery
from campaign_runner.errors import CampaignInvalid, ExitCode, Problem
from campaign_runner.gateway.settings import (
    SendSettings,
    gateway_headers,
    rehearsal_settings,
    send_settings,
)
from campaign_runner.holds import RunHolds, journal_name, resume_command, since
from campaign_runner.ledger import (
    Hold,
    Identity,
    Journal,
    LedgerError,
    State,
    open_journal,
    other_ledgers,
    other_ledgers_warning,
    state_from,
)
from campaign_runner.lock import Lock
from campaign_runner.outputs import check_outputs
from campaign_runner.plan import EXAMPLES, DeliveryPolicy, Plan, Spool, make_plan
from campaign_runner.prepare import PreparedRow, input_files, open_source, prepare
from campaign_runner.report import (
    SUMMARY_VERSION,
    ReportWriter,
    default_report_path,
    summary_path,
    write_summary,
)
from campaign_runner.schedule import Closed
from campaign_runner.status import Status


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunOptions:
    """What the person asked for; the run derives everything else from it and the campaign."""

    recipients: str | os.PathLike[str] | None = None
    dry_run: bool = False
    limit: int | None = None
    report: Path | None = None
    report_dir: Path | None = None  # --report-dir: wins over the campaign's report_dir
    failed_rows: Path | None = None  # --failed-rows: the rows that need attention, as they came
    state: str | os.PathLike[str] | None = None  # --state: a folder or a postgresql:// URL
    retry_failed: bool = False
    resend_unknown: bool = False
    rehearsal: bool = False  # send to a sandbox gateway started in this process
    accept_changed_message: bool = False  # the message changed on purpose: same campaign
    gateway_url: str | None = None  # ops' pin (--gateway-url): wins over $CAMPAIGN_GATEWAY_URL
    apikey: str | None = None  # given directly; else read from the campaign's variable
    clock: Callable[[], datetime] = _utc_now
    progress: Callable[[Counter[Status]], None] | None = None
    notify: Callable[[str], None] | None = None  # a line for the person running it
    # Shown the plan before the first request; False: send nothing (the person said no).
    approve: Callable[[Plan], bool] | None = None
    examples: int | None = EXAMPLES  # rows not sent the plan keeps with their reasons
    handle_signals: bool = True
    ignore_schedule: bool = False  # rehearsals and dry runs may run at any hour

    def journal_name(self, campaign: Campaign) -> str:
        """A rehearsal keeps its own journal, so it never counts as a real send."""
        return journal_name(campaign, self.sends_to_sandbox)

    @property
    def sends_to_sandbox(self) -> bool:
        """True when this run sends, and sends to an in-process sandbox."""
        return self.rehearsal and not self.dry_run


@dataclass
class Rehearsal:
    """What the in-process sandbox received during a rehearsal."""

    url: str
    received: int = 0
    record: Path | None = None


@dataclass
class RunResult:
    """How a run ended: exit code and reason, counts per status, and where its outputs are."""

    exit_code: ExitCode
    reason: str
    counts: Counter[Status]
    started: datetime
    ended: datetime
    report: Path | None = None
    summary: Path | None = None
    warnings: list[str] = field(default_factory=list)
    rehearsal: Rehearsal | None = None
    errors: list[str] = field(default_factory=list)  # outputs that could not be written
    crash: Exception | None = None  # the bug that broke the run off, if one did
    rows_to_fix: Path | None = None  # --failed-rows, once written
    plan: Plan | None = None
    record: dict[str, Any] = field(default_factory=dict)  # the JSON summary, as written

    @property
    def duration_s(self) -> float:
        """Seconds from start to end."""
        return (self.ended - self.started).total_seconds()

    @property
    def attempted(self) -> int:
        """Rows that went out as requests (or would have, in a dry run)."""
        return sum(n for status, n in self.counts.items() if status.attempted)


def report_folder(campaign: Campaign, options: RunOptions) -> Path:
    """`--report-dir`, else the campaign's `report_dir`, else `reports/` beside the campaign
    file: never the folder cron happened to start in."""
    return options.report_dir or campaign.report_dir or campaign.path.parent / "reports"


def report_path(campaign: Campaign, options: RunOptions, started: datetime) -> Path:
    """Where the run's CSV report goes: `--report`, else NAME-YYYYmmdd-HHMMSS.csv in the
    report folder."""
    folder = report_folder(campaign, options)
    return options.report or default_report_path(campaign.name, started.astimezone(), folder)


def record_path(report: Path) -> Path:
    """Where a rehearsal leaves what the sandbox received: beside the report."""
    return report.with_suffix(".sandbox.jsonl")


def _output_files(options: RunOptions, report: Path) -> dict[str, Path]:
    outputs = {"the report": report, "the JSON summary": summary_path(report)}
    if options.sends_to_sandbox:
        outputs["the sandbox record"] = record_path(report)
    if options.failed_rows is not None:
        outputs[LABEL] = options.failed_rows
    return outputs


def _input_files(campaign: Campaign, options: RunOptions) -> dict[str, Path]:
    state = state_from(options.state)
    return {
        **input_files(campaign, options.recipients),
        **state.files_of(options.journal_name(campaign)),
    }


def run_campaign(campaign: Campaign, options: RunOptions) -> RunResult:
    """Plan the run, let the person approve it, send every row that should go, write the
    report and the JSON summary (also when nothing is sent: the window, a "no")."""
    started = options.clock()
    ignore_schedule = options.ignore_schedule or options.rehearsal
    closed = None if ignore_schedule or options.dry_run else campaign.send.schedule.closed(started)
    report = report_path(campaign, options, started)
    check_outputs(_output_files(options, report), _input_files(campaign, options))
    if options.sends_to_sandbox:
        gateway_headers(campaign, "sandbox")  # the environment is checked before it starts
    policy = _policy(options, ignore_schedule, campaign)
    policy.shared = state_from(options.state).url is not None and not options.dry_run
    with ExitStack() as stack:
        rehearsal = stack.enter_context(_rehearsal_gateway(options, report))
        settings = _send_settings(campaign, options, rehearsal)  # the apikey before the lock
        sends = settings is not None and closed is None
        state, name = state_from(options.state), options.journal_name(campaign)
        lock_file = state.lock_path(name)
        if sends and lock_file is not None:  # a busy campaign is refused before any read
            stack.enter_context(Lock(lock_file))
        source = open_source(campaign, options.recipients)
        stack.callback(source.close)
        notes: list[str] = []
        journal = _open_journal(stack, state, name, not sends, notes)
        holds = _run_holds(campaign, options, journal)
        hold = holds.current() if holds is not None else None
        changed = _changed_message(campaign, journal, options)
        if changed and sends:
            raise CampaignInvalid(changed)
        notes += [changed.message] if changed else []
        state_warning = other_ledgers_warning(name, other_ledgers(name, state, remember=sends))
        plan = Plan(
            campaign.name,
            str(source.table.path.absolute()),
            warnings=[*notes, *source.warnings, *([state_warning] if state_warning else [])],
            gateway=settings.url if settings else None,
            closed=closed,
            examples_limit=options.examples,
        )
        spool = stack.enter_context(_removed(Spool()))
        held = hold is not None and not options.dry_run  # a held plan claims nobody
        make_plan(plan, prepare(source, options.limit), journal, policy, spool, sends and not held)
        _note_hold(plan, holds, hold, options)
        stopped = _stopped_before_sending(plan, options)
        if stopped is not None:
            return _ended_before_sending(campaign, options, plan, stopped, started, report)
        table = source.table
        fix = None
        if options.failed_rows is not None:
            fix = stack.enter_context(RowsToFix(options.failed_rows, table))
        shared = sends and state.url is not None  # workers on PostgreSQL share the work
        writer = stack.enter_context(
            ReportWriter(
                report, table.columns, semicolons=table.semicolons, sink=fix, ordered=not shared
            )
        )
        delivery = Delivery(
            campaign, policy, journal, writer, options.clock, options.progress, holds
        )
        identity = Identity(
            str(campaign.path.absolute()), campaign.fingerprint, plan.recipients or None
        )
        walk = _Walk(delivery, settings, journal, started, identity)
        if shared:
            walk.share(campaign, spool, writer)
        else:
            walk.rows = _noted(spool.rows(), writer)
        crash = walk()
    exit_code, reason = delivery.verdict()
    result = RunResult(
        exit_code,
        reason,
        writer.counts,
        started,
        options.clock(),
        report,
        summary_path(report),
        plan.warnings,
        rehearsal,
        crash=crash,
        plan=plan,
    )
    if writer.failure and writer.failure not in reason:
        result.errors.append(writer.failure)
    _rows_to_fix_done(fix, result, options)
    _write_summary(campaign, result, delivery.run_id, options)
    return result


def plan_only(campaign: Campaign, options: RunOptions) -> Plan:
    """The plan a run would make now, without its lock and without writing anything (for
    `campaign status`: how many are left)."""
    state, name = state_from(options.state), options.journal_name(campaign)
    with ExitStack() as stack:
        source = open_source(campaign, options.recipients)
        stack.callback(source.close)
        journal = _open_journal(stack, state, name, readonly=True)
        plan = Plan(campaign.name, str(source.table.path.absolute()), warnings=source.warnings)
        policy = _policy(options, False, campaign)
        return make_plan(plan, prepare(source, options.limit), journal, policy, None)


def _changed_message(
    campaign: Campaign, journal: Journal | None, options: RunOptions
) -> Problem | None:
    """The problem when the message differs from the one the campaign's last run sent
    (its fingerprint), unless --accept-changed-message says it is the same campaign."""
    if journal is None or options.accept_changed_message or journal.is_empty():
        return None
    last = journal.last_run()
    before = last.get("fingerprint") if last else None
    if before is None or before == campaign.fingerprint:
        return None
    sent = journal.status_counts().get("sent", 0)
    return campaign.source.problem(
        ("message",),
        f"the message changed since campaign '{campaign.name}' last ran (fingerprint "
        f"{before} -> {campaign.fingerprint}): {sent} recipient(s) got the earlier message and "
        "would be skipped as already-sent. If this is a new campaign, give it a new `name:`; "
        "if it is the same campaign with a corrected message, run again with "
        "--accept-changed-message; nothing was sent",
        at_key=True,
    )


def _run_holds(campaign: Campaign, options: RunOptions, journal: Journal | None) -> RunHolds | None:
    """The run's holds (holds.py), in the journal it keeps: a rehearsal's are its own."""
    if journal is None:
        return None
    resume = resume_command(campaign, options.state, options.sends_to_sandbox)
    return RunHolds(journal, options.journal_name(campaign), resume)


def _note_hold(plan: Plan, holds: RunHolds | None, hold: Hold | None, options: RunOptions) -> None:
    """A held campaign's run sends nothing (`plan.held`, the reason); its dry run warns.
    A rehearsal also warns while the real campaign is held (it is not held by it)."""
    if holds is None:
        return
    real = holds.journal.hold_of(plan.campaign) if options.sends_to_sandbox else None
    if real is not None:
        plan.warnings.append(
            f"campaign '{plan.campaign}' is held for real runs since {since(real.held_at)}: "
            f"{real.reason}; this rehearsal sends to the sandbox all the same"
        )
    if hold is None:
        return
    if options.dry_run:
        plan.warnings.append(
            f"campaign '{plan.campaign}' is {holds.sentence(hold)}; a real run now sends nothing"
        )
    else:
        plan.held = holds.sentence(hold, plan.to_send)


def _stopped_before_sending(plan: Plan, options: RunOptions) -> tuple[ExitCode, str] | None:
    """Why the run ends with its plan (the campaign is held, the window is closed, the
    person said no), or None. The plan is shown (`approve`) in every case; the question is
    only asked if it can send. A hold needs a person: exit 3, whatever the window says."""
    approved = options.approve is None or options.approve(plan)
    if plan.held is not None:
        return ExitCode.ABORTED, plan.held
    if plan.closed is not None:
        return ExitCode.OK, _nothing_sent_because(plan.closed, plan)
    if not approved:
        return ExitCode.INVALID, "nothing sent: not confirmed"
    return None


def _nothing_sent_because(closed: Closed, plan: Plan) -> str:
    waiting = plan.to_send
    if closed.expired:
        return f"nothing sent: {closed.reason}; {waiting} recipient(s) were left unsent"
    return f"nothing sent: {closed.reason}; {waiting} recipient(s) wait for the window"


def _ended_before_sending(
    campaign: Campaign,
    options: RunOptions,
    plan: Plan,
    stopped: tuple[ExitCode, str],
    started: datetime,
    report: Path,
) -> RunResult:
    """A run that ends with its plan: no report, but a JSON summary beside where it would be."""
    exit_code, reason = stopped
    result = RunResult(
        exit_code, reason, Counter(), started, options.clock(), warnings=plan.warnings, plan=plan
    )
    result.summary = summary_path(report)
    _write_summary(campaign, result, "", options)
    return result


def _write_summary(campaign: Campaign, result: RunResult, run_id: str, options: RunOptions) -> None:
    assert result.summary is not None or result.report is not None
    path = result.summary or summary_path(result.report)  # type: ignore[arg-type]
    result.record = {"version": SUMMARY_VERSION, **_summary(campaign, result, run_id, options)}
    failure = write_summary(path, result.record)
    if failure:
        result.errors.append(failure)


@contextmanager
def _removed(spool: Spool) -> Iterator[Spool]:
    try:
        yield spool
    finally:
        spool.close()


def _rows_to_fix_done(fix: RowsToFix | None, result: RunResult, options: RunOptions) -> None:
    """Say where the rows to fix went (or why they could not be written)."""
    if fix is None:
        return
    result.rows_to_fix = fix.path
    if fix.failure:
        result.errors.append(fix.failure)
    elif options.notify:
        options.notify(f"rows to fix: {fix.written} in {fix.path.absolute()}")


def _noted(rows: Iterator[PreparedRow], writer: ReportWriter) -> Iterator[PreparedRow]:
    """ROWS, each one's values handed to the report first (its line carries them)."""
    for item in rows:
        writer.note(item.seq, item.values)
        yield item


class _Walk:
    """Dry-run or send every row; the ledger notes the run's start and how it ended.

    A bug that breaks the run off is returned, after the run is recorded as crashed.
    """

    def __init__(
        self,
        delivery: Delivery,
        settings: SendSettings | None,
        journal: Journal | None,
        started: datetime,
        identity: Identity,
    ):
        self.delivery, self.settings, self.journal = delivery, settings, journal
        self.started, self.identity = started, identity
        self.rows: Iterator[PreparedRow] | AsyncIterator[PreparedRow] = iter(())
        self.keepalive: tuple[float, Callable[[], None]] | None = None
        self.work: Any = None  # workers.SharedWork, for a worker on a PostgreSQL ledger
        self.note: Callable[[int, dict[str, str]], None] | None = None

    def share(self, campaign: Campaign, spool: Spool, writer: ReportWriter) -> None:
        """Work as one of the campaign's workers on a PostgreSQL ledger (`workers`)."""
        from campaign_runner.workers import SharedWork

        work = SharedWork(
            self.journal,  # type: ignore[arg-type]
            campaign.name,
            self.delivery.run_id,
            self.delivery.policy.resend_unknown,
            (campaign.send.concurrency, campaign.send.rate_per_s),
        )
        work.publish(spool)
        self.delivery.shared_pace = self.journal  # type: ignore[assignment]
        self.rows, self.keepalive = work.rows(spool, writer.note), (work.renew_every_s, work.renew)
        self.work, self.note = work, writer.note

    async def _send(self) -> None:
        """Send the rows; a worker then waits for the others and takes over what a dead one
        left (its claims lapse), until nothing of the plan is left anywhere."""
        assert self.settings is not None
        delivery = self.delivery
        await delivery.send_all(self.rows, self.settings, self.keepalive)
        while self.work is not None and not delivery.stop.reason:
            if not await self.work.others_finish():
                return
            await delivery.send_all(self.work.claimed(self.note), self.settings, self.keepalive)

    def __call__(self) -> Exception | None:
        delivery, journal = self.delivery, self.journal
        if self.settings is None:
            assert isinstance(self.rows, Iterator)
            delivery.dry_run(self.rows)
            return None
        assert journal is not None  # a run that sends always keeps its ledger
        crash = None
        try:
            journal.start_run(delivery.run_id, self.started.isoformat(), self.identity)
            asyncio.run(self._send())
        except LedgerError as error:
            delivery.journal_failed(error)
        except Exception as error:  # a bug: the ledger and the report must say so, not "exit 0"
            crash = error
            delivery.stop.request(
                f"crashed: {type(error).__name__} (a bug in campaign-runner; set "
                "CAMPAIGN_DEBUG=1 to see where)",
                ExitCode.CRASHED,
            )
        finally:
            _record_end(delivery, journal)
        return crash


def _record_end(delivery: Delivery, journal: Journal) -> None:
    exit_code, reason = delivery.verdict()
    counts = {str(status): n for status, n in delivery.writer.counts.items()}
    try:
        journal.end_run(delivery.run_id, int(exit_code), reason, counts)
        # Status webhooks that came before this run committed their wamids waited aside:
        # match them now, rather than only at the receiver's next reconcile.
        journal.reconcile(run_id=delivery.run_id)
    except LedgerError as error:
        delivery.journal_failed(error)


def _policy(options: RunOptions, ignore_schedule: bool, campaign: Campaign) -> DeliveryPolicy:
    return DeliveryPolicy(
        frequency_cap=campaign.send.frequency_cap,
        follow_up=campaign.follow_up,
        retry_failed=options.retry_failed,
        resend_unknown=options.resend_unknown,
        ignore_schedule=ignore_schedule,
        handle_signals=options.handle_signals,
    )


def _open_journal(
    stack: ExitStack, state: State, name: str, readonly: bool, notes: list[str] | None = None
) -> Journal | None:
    """Campaign NAME's view of the ledger: written by a sending run; a dry run, or a run
    outside its window, only reads it if it exists (already-sent)."""
    journal = open_journal(state, name, readonly, notes)
    return None if journal is None else stack.enter_context(_closing(journal))


@contextmanager
def _closing(journal: Journal) -> Iterator[Journal]:
    try:
        yield journal
    finally:
        journal.close()


@contextmanager
def _rehearsal_gateway(options: RunOptions, report: Path) -> Iterator[Rehearsal | None]:
    """For a rehearsal, a sandbox gateway on a free loopback port for the run's duration;
    what it accepts is recorded beside the report."""
    if not options.sends_to_sandbox:
        yield None
        return
    from campaign_runner.sandbox import Sandbox, SandboxConfig

    record = record_path(report)
    with Sandbox(SandboxConfig(port=0, record=record)) as gateway:
        rehearsal = Rehearsal(gateway.messages_url, record=record)
        if options.notify:
            options.notify(f"sandbox gateway on {gateway.messages_url}")
        try:
            yield rehearsal
        finally:
            rehearsal.received = gateway.message_count()


def _send_settings(
    campaign: Campaign, options: RunOptions, rehearsal: Rehearsal | None
) -> SendSettings | None:
    """How to reach the gateway (None for a dry run); the apikey must be set by now."""
    if options.dry_run:
        return None
    if rehearsal is not None:
        return rehearsal_settings(campaign, rehearsal.url, apikey="sandbox")
    return send_settings(campaign, pinned_url=options.gateway_url, apikey=options.apikey)


def _summary(
    campaign: Campaign, result: RunResult, run_id: str, options: RunOptions
) -> dict[str, Any]:
    return {
        "campaign": campaign.name,
        "campaign_file": str(campaign.path.absolute()),
        "run_id": run_id or None,
        "dry_run": options.dry_run,
        "started_at": result.started.isoformat(),
        "ended_at": result.ended.isoformat(),
        "duration_s": round(result.duration_s, 3),
        "counts": {str(status): n for status, n in result.counts.items()},
        "exit_code": int(result.exit_code),
        "reason": result.reason,
        "report": str(result.report.absolute()) if result.report else None,
        "plan": result.plan.as_dict() if result.plan else None,
        **({"rows_to_fix": str(result.rows_to_fix)} if result.rows_to_fix else {}),
    }
