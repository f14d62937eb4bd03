"""What `campaign run` tells people and log files: the plan, progress, a start and a final line.

On a terminal the plan is a readable block before the y/N question and progress is a live
bar; under cron (stderr not a terminal) everything is a line that starts with an ISO-8601
UTC timestamp and `campaign=NAME`, so the lines of several campaigns sharing one log file
can be told apart and grepped:

    2026-11-28T18:19:25Z campaign=big start rows=3000 to_send=2057 gateway=gw.example.com
    2026-11-28T18:19:30Z campaign=big progress done=120 total=2057 pct=5.8 rate=24/s eta=80s
    2026-11-28T18:21:02Z campaign=big exit=0 sent=2057 already-sent=943 report=/abs/big.csv
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click

from campaign_runner.errors import CampaignError
from campaign_runner.plan import Plan, shown_url
from campaign_runner.status import Status

CRON_PROGRESS_EVERY_S = 5.0  # one progress line per this many seconds in a log file
_BARE = re.compile(r"^[^\s\"=\\]+$")


def stamp(now: datetime | None = None) -> str:
    """NOW (default: the current time) as `2026-11-28T18:19:25Z`."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def logfmt(**fields: object) -> str:
    """`key=value` pairs; a value with spaces, quotes or `=` is quoted as a JSON string, so
    a path with spaces or a reason stays one field (and a control character stays escaped)."""
    out = []
    for key, value in fields.items():
        text = "" if value is None else str(value)
        out.append(f"{key}={text if _BARE.match(text) else json.dumps(text)}")
    return " ".join(out)


def log_line(campaign: str, event: str | None = None, **fields: object) -> str:
    """One log line: timestamp, campaign, the EVENT word if any, then FIELDS."""
    head = f"{stamp()} {logfmt(campaign=campaign)}"
    if event:
        head += f" {event}"
    return f"{head} {logfmt(**fields)}" if fields else head


def gateway_host(url: str | None) -> str:
    """Where requests go, for a log: the host (and port), never a path, query or password."""
    if not url:
        return "none (dry run)"
    parts = urlsplit(url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "?"


def _gateway_shown(url: str | None) -> str:
    """The gateway for a person: scheme, host and path; no query, since params may be keys."""
    return shown_url(url) if url else "none: a dry run sends nothing"


def _counts(counts: Mapping[Status, int]) -> dict[str, int]:
    """The non-zero counts by status word, in the order statuses are declared."""
    return {str(s): counts[s] for s in Status if counts.get(s) and s is not Status.READY}


# ---- the plan --------------------------------------------------------------------------


def start_line(plan: Plan) -> str:
    """The line a run logs before its first request: the plan's figures (`plan` instead of
    `start` when the window is closed or the campaign held, and nothing will be sent)."""
    return log_line(
        plan.campaign,
        "plan" if plan.closed or plan.held else "start",
        rows=plan.rows,
        to_send=plan.to_send,
        **_counts(plan.counts),
        **({"deferred_until": plan.deferred_until} if plan.deferred_until else {}),
        gateway=gateway_host(plan.gateway),
    )


def plan_log_lines(plan: Plan) -> Iterator[str]:
    """The plan under cron: its rows not to be sent, one line each, after the start line."""
    for item in plan.examples:
        yield log_line(plan.campaign, row=item.row, status=item.status, reason=item.error)
    unlisted = plan.trouble - len(plan.examples)
    if unlisted > 0:
        yield log_line(plan.campaign, more_rows_not_sent=unlisted)


def plan_block(plan: Plan, sample: list[str]) -> Iterator[str]:
    """The plan for a person, before the question: what will happen, row counts, the sample."""
    closed = f" ({plan.closed.reason})" if plan.closed else ""
    closed = f" ({plan.held})" if plan.held else closed
    yield f"Plan for campaign '{plan.campaign}': {plan.rows} row(s) in {plan.recipients}"
    yield f"  to send now: {plan.to_send}{closed}"
    for word, count in _counts(plan.counts).items():
        until = f" (the earliest until {plan.deferred_until})" if word == Status.DEFERRED else ""
        yield f"  {word}: {count}{until}"
    if plan.examples:
        yield "  not sent, with why:"
        for item in plan.examples:
            yield f"    row {item.row} {item.phone or '(no phone)'}: {item.status}: {item.error}"
        unlisted = plan.trouble - len(plan.examples)
        if unlisted > 0:
            yield f"    ... and {unlisted} more (--verbose lists them all)"
    yield f"  gateway: {_gateway_shown(plan.gateway)}"
    if sample:
        yield "  sample message (the first to send):"
        yield from (f"    {line}" for line in sample)


def question(plan: Plan) -> str:
    """The y/N question after the plan: the number that will really be sent."""
    return f"Send campaign '{plan.campaign}' to {plan.to_send} recipient(s) now?"


# ---- the end ---------------------------------------------------------------------------


def final_line(campaign: str, result: Any) -> str:
    """The one greppable line a run ends with: exit code, counts, reason, absolute paths."""
    fields: dict[str, object] = {"exit": int(result.exit_code)}
    fields.update(_counts(result.counts))
    if result.report is not None and result.report.exists():
        fields["report"] = result.report.absolute()
    elif result.summary is not None and result.summary.exists():
        fields["summary"] = result.summary.absolute()
    fields["reason"] = result.reason
    return log_line(campaign, None, **fields)


def refused(campaign: str, error: CampaignError, as_json: bool) -> NoReturn:
    """End a run that could not start (a broken file, a busy campaign...): its problems,
    then the final line like any run's (and the JSON on stdout with `--json`); exit."""
    from campaign_runner.cli.terminal import print_problems

    print_problems(error.problems)
    first = error.problems[0].message if error.problems else "refused"
    reason = f"nothing sent: {first}"
    if as_json:
        problems = [str(problem) for problem in error.problems]
        record = {"version": 1, "campaign": campaign, "exit_code": int(error.exit_code)}
        click.echo(json.dumps({**record, "reason": reason, "problems": problems}, indent=2))
    click.echo(log_line(campaign, None, exit=int(error.exit_code), reason=reason), err=True)
    sys.exit(error.exit_code)


# ---- progress ----------------------------------------------------------------------------


def _done(counts: Mapping[Status, int]) -> int:
    """Rows of the plan's to-send set that are finished (sent, failed, unknown, stopped)."""
    return sum(n for s, n in counts.items() if s.attempted or s is Status.NOT_ATTEMPTED)


class Progress:
    """`N/total, %, rate, ETA`: click's progress bar on a terminal, a log line every few
    seconds otherwise. `start(plan)` once the plan is approved, `show(counts)` as rows finish."""

    def __init__(self, on_terminal: bool, enabled: bool = True):
        self.on_terminal, self.enabled = on_terminal, enabled
        self.campaign = ""
        self.total = 0
        self.started = time.monotonic()
        self.last = self.started
        self.bar: Any = None

    def start(self, plan: Plan) -> None:
        """Begin counting towards the plan's to-send total."""
        self.campaign, self.total = plan.campaign, plan.to_send
        self.started = self.last = time.monotonic()
        if self.enabled and self.on_terminal and self.total:
            self.bar = click.progressbar(
                length=self.total,
                label=f"sending {plan.campaign}",
                show_pos=True,
                show_percent=True,
                show_eta=True,
                item_show_func=lambda rate: rate,
                file=sys.stderr,
            )
            self.bar.__enter__()

    def show(self, counts: Mapping[Status, int]) -> None:
        """Refresh the bar, or log a line if the last one is a few seconds old."""
        if not self.enabled or not self.total:
            return
        now = time.monotonic()
        done = min(_done(counts), self.total)
        rate = done / (now - self.started) if now > self.started else 0.0
        if self.bar is not None:
            self.bar.update(done - self.bar.pos, f"{rate:.0f}/s")
            return
        if now - self.last < CRON_PROGRESS_EVERY_S:
            return
        self.last = now
        eta = (self.total - done) / rate if rate > 0 else None
        click.echo(
            log_line(
                self.campaign,
                "progress",
                done=done,
                total=self.total,
                pct=f"{100 * done / self.total:.1f}",
                rate=f"{rate:.0f}/s",
                eta="?" if eta is None else f"{eta:.0f}s",
                **_counts(counts),
            ),
            err=True,
        )

    def finish(self, counts: Mapping[Status, int]) -> None:
        """Show the last figures and end the bar, so what follows starts on a clean line."""
        if self.bar is not None:
            self.show(counts)
            self.bar.__exit__(None, None, None)
            self.bar = None


def sample_lines(plan: Plan) -> list[str]:
    """The plan's sample message as the text preview shows it (nothing when none is sent)."""
    if plan.sample is None:
        return []
    from campaign_runner.preview.message import describe
    from campaign_runner.preview.text import message_lines

    return message_lines(describe(plan.sample))


class PlanShown:
    """Shows the plan the moment the run has made it (a block on a terminal, log lines under
    cron), warnings first, then asks on a terminal; `approve` is the run's `approve` hook."""

    def __init__(self, progress: Progress, asks: bool, quiet: bool):
        self.progress, self.asks, self.quiet = progress, asks, quiet

    def approve(self, plan: Plan) -> bool:
        """Show PLAN; True to go ahead (and start the progress), False to send nothing."""
        from campaign_runner.cli.terminal import print_warnings

        print_warnings(plan.warnings)  # before the question, not after the "y"
        if not self.quiet:
            if self.progress.on_terminal:
                for line in plan_block(plan, sample_lines(plan)):
                    click.echo(line, err=True)
            else:
                click.echo(start_line(plan), err=True)
                for line in plan_log_lines(plan):
                    click.echo(line, err=True)
        if plan.closed is not None or plan.held is not None:
            return True  # nothing will be sent: the run ends after its plan
        if self.asks and plan.to_send and not _confirmed(question(plan)):
            click.echo("Nothing sent.", err=True)
            return False
        self.progress.start(plan)
        return True


def _confirmed(asked: str) -> bool:
    """The person's answer; Ctrl-C or end of input at the question is a no."""
    try:
        return click.confirm(asked, err=True)
    except click.Abort:
        click.echo("", err=True)
        return False
