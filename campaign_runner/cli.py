"""The `campaign` command: a thin click layer over the pipeline.

Each command parses options, calls the library, prints what came back and exits with the
documented code. Heavy modules are imported inside the commands so `campaign --help` is quick.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from datetime import datetime
from pathlib import Path

import click

from campaign_runner.errors import EXIT_INVALID, EXIT_OK, CampaignError
from campaign_runner.schemas import MESSAGE_TYPES

_EXISTING_FILE = click.Path(dir_okay=False, path_type=Path)


def _reports_errors(command):
    """Print a `CampaignError` as `FILE:LINE:COL: message` lines and exit with its code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except CampaignError as error:
            for problem in error.problems:
                click.echo(str(problem), err=True)
            sys.exit(error.exit_code)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="campaign-runner")
def main():
    """Validate, preview and send WhatsApp campaigns written in YAML, one message per CSV row.

    Exit codes: 0 all sent (or skipped on purpose), 1 some recipients failed or were
    invalid, 2 invalid campaign or usage (nothing sent), 3 run aborted, 4 campaign busy.
    """


# ---- validate ----------------------------------------------------------------------------


@main.command()
@click.argument("campaigns", nargs=-1, required=True, type=_EXISTING_FILE)
@click.option("--recipients", type=_EXISTING_FILE, help="CSV to use instead of recipients.file.")
def validate(campaigns, recipients):
    """Check campaign files and every rendered message, without sending anything."""
    from campaign_runner import campaign as campaign_mod
    from campaign_runner import pipeline

    worst = EXIT_OK
    for path in campaigns:
        try:
            loaded = campaign_mod.load(path)
            source = pipeline.open_source(loaded, recipients)
        except CampaignError as error:
            for problem in error.problems:
                click.echo(str(problem), err=True)
            worst = EXIT_INVALID
            continue
        _print_warnings(source.warnings)
        counts: dict[str, int] = {}
        for item in pipeline.prepare(source):
            status = item.status or "ok"
            counts[status] = counts.get(status, 0) + 1
            if item.status == "invalid":
                click.echo(f"{source.table.path}:{item.row}: {item.error}", err=True)
            elif item.status in ("duplicate", "excluded"):
                click.echo(
                    f"{source.table.path}:{item.row}: note: {item.status}: {item.error}", err=True
                )
        ok = counts.get("ok", 0)
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if s != "ok")
        if counts.get("invalid"):
            worst = EXIT_INVALID
            click.echo(
                f"{path}: {counts['invalid']} invalid recipient(s); {ok} ready"
                + (f" ({summary})" if summary else "")
            )
        else:
            click.echo(f"{path}: OK, {ok} message(s) ready" + (f" ({summary})" if summary else ""))
    sys.exit(worst)


# ---- run ---------------------------------------------------------------------------------


@main.command()
@click.argument("campaign_file", metavar="CAMPAIGN", type=_EXISTING_FILE)
@click.option("--recipients", type=_EXISTING_FILE, help="CSV to use instead of recipients.file.")
@click.option("--dry-run", is_flag=True, help="Do everything but send.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Report CSV (default reports/NAME-YYYYmmdd-HHMMSS.csv).",
)
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Journal folder (default $CAMPAIGN_STATE_DIR or ~/.local/state/campaign-runner).",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Send to a sandbox gateway started in this process, not the real one.",
)
@click.option(
    "--retry-failed", is_flag=True, help="Send again to keys that failed for good before."
)
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Send again to keys whose earlier request's outcome is unknown (after a crash).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation on a terminal.")
@_reports_errors
def run(
    campaign_file,
    recipients,
    dry_run,
    limit,
    report,
    state_dir,
    sandbox,
    retry_failed,
    resend_unknown,
    yes,
):
    """Render, validate and send the campaign, then write the report."""
    from campaign_runner import campaign as campaign_mod
    from campaign_runner import pipeline
    from campaign_runner.report import default_report_path

    loaded = campaign_mod.load(campaign_file)
    report = report or default_report_path(loaded.name, datetime.now().astimezone())
    options = pipeline.RunOptions(
        recipients=recipients,
        dry_run=dry_run,
        limit=limit,
        report=report,
        state_dir=state_dir,
        retry_failed=retry_failed,
        resend_unknown=resend_unknown,
        progress=_progress_printer(),
    )
    gateway = None
    if sandbox and not dry_run:
        from campaign_runner.sandbox import Sandbox, SandboxConfig

        record = report.with_suffix(".sandbox.jsonl")
        gateway = Sandbox(SandboxConfig(port=0, record=record)).start()
        options.gateway_url, options.apikey = gateway.messages_url, "sandbox"
        options.journal_name = f"{loaded.name}.sandbox"  # rehearsals never count as real sends
        options.ignore_schedule = True
        click.echo(f"sandbox gateway on {gateway.messages_url}", err=True)
    elif not dry_run and not yes and _interactive():
        from campaign_runner.gateway.settings import resolve_apikey

        resolve_apikey(loaded)  # say so before asking, not after
        path = Path(recipients) if recipients else loaded.recipients.file
        rows = pipeline.count_rows(path, loaded)
        if limit:
            rows = min(rows, limit)
        if not click.confirm(
            f"Send campaign '{loaded.name}' to up to {rows} recipient(s) through "
            f"{loaded.gateway.url}?",
            err=True,
        ):
            click.echo("Nothing sent.", err=True)
            sys.exit(EXIT_INVALID)
    try:
        result = pipeline.run_campaign(loaded, options)
    finally:
        if gateway is not None:
            received = len(gateway.messages())
            gateway.stop()
    _clear_progress()
    _print_warnings(result.warnings)
    click.echo(_run_summary(result))
    if gateway is not None:
        click.echo(f"sandbox received {received} message(s); bodies in {gateway.config.record}")
    sys.exit(result.exit_code)


def _run_summary(result) -> str:
    from campaign_runner.report import format_counts

    lines = [format_counts(result.counts)]
    rate = result.attempted / result.duration_s if result.duration_s > 0 else 0.0
    lines[0] += f" in {result.duration_s:.1f} s ({rate:.{0 if rate >= 10 else 1}f} messages/s)"
    lines.append(result.reason)
    if result.report and result.report.exists():
        lines.append(f"report: {result.report}")
    return "\n".join(lines)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _progress_printer():
    """A live line on a terminal; under cron, a plain line every few seconds."""
    from campaign_runner.report import format_counts

    tty = sys.stderr.isatty()
    started = time.monotonic()
    last = [started]

    def show(counts) -> None:
        now = time.monotonic()
        if not tty and now - last[0] < 5:
            return
        last[0] = now
        done = sum(counts.values())
        rate = done / (now - started) if now > started else 0
        line = f"{done} rows: {format_counts(counts)} ({rate:.0f}/s)"
        if tty:
            click.echo("\r\033[K" + line, nl=False, err=True)
        else:
            click.echo(time.strftime("%H:%M:%S ") + line, err=True)

    return show


def _clear_progress() -> None:
    if sys.stderr.isatty():
        click.echo("\r\033[K", nl=False, err=True)


def _print_warnings(warnings) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


# ---- preview -----------------------------------------------------------------------------


@main.command()
@click.argument("campaign_file", metavar="CAMPAIGN", type=_EXISTING_FILE)
@click.option("--recipients", type=_EXISTING_FILE, help="CSV to use instead of recipients.file.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
@click.option(
    "--sample", type=click.IntRange(min=1), help="Only N recipients, spread evenly over the file."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "jsonl", "html"]),
    default="text",
    show_default=True,
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write (default reports/NAME-preview.html).",
)
@_reports_errors
def preview(campaign_file, recipients, limit, sample, fmt, output):
    """Show what each recipient would receive (jsonl: the exact request bodies; html: as chats)."""
    from campaign_runner import campaign as campaign_mod
    from campaign_runner import pipeline
    from campaign_runner import preview as preview_mod

    if output and fmt != "html":
        raise click.UsageError("--output is for --format html; redirect text or jsonl with >")
    loaded = campaign_mod.load(campaign_file)
    source = pipeline.open_source(loaded, recipients)
    _print_warnings(source.warnings)
    if fmt == "jsonl":
        troubled = False
        for line in preview_mod.jsonl_lines(preview_mod.shown_rows(source, limit, sample)):
            if isinstance(line, str):
                click.echo(line)
            else:
                troubled |= line.status == "invalid"
                click.echo(f"{source.table.path}:{line.row}: {line.status}: {line.error}", err=True)
        sys.exit(1 if troubled else EXIT_OK)
    # Two passes keep memory flat: counts over every row first, then only the rows shown.
    summary = preview_mod.summarise_source(source)
    summary.shown = preview_mod.describe_selection(summary.total, limit, sample)
    source = pipeline.open_source(loaded, recipients)
    items = preview_mod.shown_rows(source, limit, sample, summary.total)
    if fmt == "html":
        from campaign_runner import preview_html

        path = output or Path("reports") / f"{loaded.name}-preview.html"
        shown = preview_html.write_page(path, summary, items)
        click.echo(f"preview of {shown} of {summary.total} recipient(s): {path}")
    else:
        for text, role in preview_mod.text_lines(summary, items):
            click.echo(click.style(text, **_ROLE_STYLES[role]) if role else text)
    sys.exit(1 if summary.invalid else EXIT_OK)


# click.echo drops these colours when stdout is not a terminal.
_ROLE_STYLES = {
    "title": {"bold": True},
    "good": {"fg": "green"},
    "bad": {"fg": "red"},
    "note": {"fg": "yellow"},
    "head": {"fg": "cyan", "bold": True},
}


# ---- schema ------------------------------------------------------------------------------


@main.command()
@click.argument("name", required=False, default="campaign")
def schema(name):
    """Print a JSON Schema: campaign (default), message, or one message type."""
    from campaign_runner import schemas

    if name not in schemas.schema_names():
        raise click.BadParameter(
            f"choose one of: {', '.join(schemas.schema_names())}", param_hint="NAME"
        )
    click.echo(json.dumps(schemas.load_schema(name), indent=2, ensure_ascii=False))


# ---- sandbox -----------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--apikey", envvar="SANDBOX_APIKEY", help="Accept only this key (default: any non-empty key)."
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append each accepted message to this JSON Lines file.",
)
@click.option(
    "--latency-ms", type=click.FloatRange(min=0), default=0, help="Added to every answer."
)
@click.option("--jitter-ms", type=click.FloatRange(min=0), default=0, help="Random extra latency.")
@click.option(
    "--fail",
    "fails",
    multiple=True,
    metavar="KIND=SHARE",
    help="Answer a share of requests with a fault: 500, 429, drop, lost or a Meta code "
    "(130429, 131026, 131047, 132001...). Repeatable, e.g. --fail 429=0.05.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0.001),
    help="Answer Kong's 429 above this many requests per second.",
)
@click.option(
    "--retry-after",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Seconds in Retry-After on a 429.",
)
@click.option("--seed", type=int, help="Repeat the same fault pattern.")
@click.option(
    "--idempotency",
    is_flag=True,
    help="Answer a repeated Idempotency-Key with its first answer, not a second message.",
)
def sandbox(
    host,
    port,
    apikey,
    record,
    latency_ms,
    jitter_ms,
    fails,
    rate_limit,
    retry_after,
    seed,
    idempotency,
):
    """Serve a local Messages API gateway for rehearsals, with faults on demand."""
    from campaign_runner.sandbox import Faults, SandboxConfig, serve

    rates = {}
    for spec in fails:
        kind, _, share = spec.partition("=")
        try:
            rates[kind.strip()] = float(share)
        except ValueError:
            raise click.BadParameter(
                f"'{spec}' is not KIND=SHARE, e.g. 429=0.05", param_hint="--fail"
            ) from None
        if not 0 <= rates[kind.strip()] <= 1:
            raise click.BadParameter(
                f"share in '{spec}' must be between 0 and 1", param_hint="--fail"
            )
    try:
        faults = Faults(
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            rates=rates,
            seed=seed,
            retry_after_s=retry_after,
            rate_limit_per_s=rate_limit,
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--fail") from None
    config = SandboxConfig(
        host=host, port=port, apikey=apikey, record=record, faults=faults, idempotency=idempotency
    )
    try:
        serve(config, echo=lambda line: click.echo(line))
    except OSError as error:
        click.echo(f"cannot listen on {host}:{port}: {error.strerror or error}", err=True)
        sys.exit(EXIT_INVALID)


# ---- status ------------------------------------------------------------------------------


@main.command()
@click.argument("campaign_file", metavar="CAMPAIGN", type=_EXISTING_FILE)
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Journal folder (default $CAMPAIGN_STATE_DIR or ~/.local/state/campaign-runner).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable, for monitoring.")
@_reports_errors
def status(campaign_file, state_dir, as_json):
    """Show the journal: how many keys are sent, failed or unknown, and the last run."""
    from campaign_runner import campaign as campaign_mod
    from campaign_runner.journal import Journal, default_state_dir

    loaded = campaign_mod.load(campaign_file)
    path = (state_dir or default_state_dir()) / f"{loaded.name}.sqlite"
    counts, last = {}, None
    if path.exists():
        journal = Journal(path, readonly=True)
        counts, last = journal.status_counts(), journal.last_run()
        journal.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "version": 1,
                    "campaign": loaded.name,
                    "journal": str(path),
                    "counts": counts,
                    "last_run": last,
                },
                indent=2,
            )
        )
        return
    click.echo(f"campaign {loaded.name}: journal {path}")
    if not counts:
        click.echo("  no deliveries yet")
    for name, count in sorted(counts.items()):
        click.echo(f"  {name}: {count}")
    if last:
        click.echo(
            f"  last run: started {last['started_at']}, "
            f"ended {last['ended_at'] or '(running or killed)'}"
            f", exit {last['exit_code']}: {last['reason']}"
        )


# ---- init --------------------------------------------------------------------------------


@main.command()
@click.argument(
    "kind",
    metavar="TYPE",
    type=click.Choice(MESSAGE_TYPES),
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Campaign file to write (default TYPE.yaml); the CSV goes beside it.",
)
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
@_reports_errors
def init(kind, output, force):
    """Write a commented starter campaign of one message type and a sample CSV beside it."""
    from campaign_runner import starters

    campaign_path, csv_path = starters.write_starter(kind, output or Path(f"{kind}.yaml"), force)
    click.echo(f"wrote {campaign_path} and {csv_path}")
    click.echo(f"next: campaign validate {campaign_path} && campaign run {campaign_path} --sandbox")


if __name__ == "__main__":  # pragma: no cover
    main()
