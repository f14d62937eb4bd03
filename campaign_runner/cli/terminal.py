"""What the commands print: located problems, warnings, progress, colours, the run's summary."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable
from typing import Any

import click

from campaign_runner.errors import CampaignError, ExitCode, Problem
from campaign_runner.status import Status, format_counts

_INTERRUPTED = (ExitCode.SIGINT, ExitCode.SIGTERM)


def reports_errors(command):
    """Print a `CampaignError` as `FILE:LINE:COL: message` lines and exit with its code;
    Ctrl-C where no run is listening for it exits 130 without a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except CampaignError as error:
            print_problems(error.problems)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            if sys.stderr.isatty():
                click.echo("\r\033[K", nl=False, err=True)  # off the progress bar's line
            click.echo("interrupted; nothing more was done", err=True)
            sys.exit(ExitCode.SIGINT)

    return wrapper


def print_problems(problems: Iterable[Problem]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)


def run_summary(result: Any) -> str:
    """The closing lines of a run: counts and rate, the reason, and where the report is."""
    if result.counts or result.plan is None:
        lines = [format_counts(result.counts)]
        rate = result.attempted / result.duration_s if result.duration_s > 0 else 0.0
        lines[0] += f" in {result.duration_s:.1f} s ({rate:.{0 if rate >= 10 else 1}f} messages/s)"
    else:  # ended with its plan: the reason says why, and how many wait
        lines = [f"{result.plan.rows} row(s) planned, none sent"]
    lines.append(result.reason)
    if result.exit_code in _INTERRUPTED:
        left = result.counts[Status.NOT_ATTEMPTED]
        lines.append(
            "interrupted: run the same command again to continue; "
            f"{left} recipient(s) were not attempted, and none already sent is sent twice"
        )
    if result.report and result.report.exists():
        lines.append(f"report: {result.report.absolute()}")
    elif result.summary and result.summary.exists():
        lines.append(f"summary: {result.summary.absolute()}")
    if result.rehearsal is not None:
        received, record = result.rehearsal.received, result.rehearsal.record
        lines.append(f"sandbox received {received} message(s); bodies in {record.absolute()}")
    return "\n".join(lines)


def interactive() -> bool:
    """True when a person can answer a question (stdin and stderr are a terminal)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def print_warnings(warnings: Iterable[str]) -> None:
    """Each warning on stderr, as `warning: ...`."""
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


# click.echo drops these colours when stdout is not a terminal; keys are preview roles.
ROLE_STYLES = {
    "title": functools.partial(click.style, bold=True),
    "good": functools.partial(click.style, fg="green"),
    "bad": functools.partial(click.style, fg="red"),
    "note": functools.partial(click.style, fg="yellow"),
    "head": functools.partial(click.style, fg="cyan", bold=True),
}
