"""The commands about what happened after "sent" (issue 14): receiving Meta's webhooks,
ingesting logged payloads, reports from the ledger and resuming a held campaign. Each
parses its options and calls one core function, like the commands in `commands`."""

from __future__ import annotations

import sys

import click

from campaign_runner.cli.commands import main
from campaign_runner.cli.params import EXISTING_FILE, OutputFile, state_option
from campaign_runner.cli.runlog import logfmt, stamp
from campaign_runner.cli.terminal import reports_errors

__all__ = ["main"]


# ---- webhook and ingest ------------------------------------------------------------------


def _log_line(event: str, fields: dict[str, object]) -> None:
    """One receiver line on stderr: `2026-11-28T18:19:25Z webhook EVENT key=value ...`."""
    click.echo(f"{stamp()} webhook {event} {logfmt(**fields)}".rstrip(), err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8788, show_default=True, type=click.IntRange(0, 65535))
@state_option
@click.option("--quiet", is_flag=True, help="Log only problems, not the start and the counts.")
@reports_errors
def webhook(host, port, state, quiet):
    """Receive Meta's status webhooks at /webhook and write them to the ledger.

    Every POST must be signed (X-Hub-Signature-256) with the app secret in
    $WHATSAPP_APP_SECRET; Meta's subscription check (GET) is answered with the verify token
    in $WHATSAPP_VERIFY_TOKEN. Serve it behind a TLS reverse proxy (Meta posts to https
    only). GET /healthz answers 200 while the ledger takes writes. Runs until SIGTERM or
    Ctrl-C, then exits 0; exit 2 when it cannot start (no app secret, a ledger it cannot
    open, an address in use).
    """
    from campaign_runner.webhooks.receiver import ReceiverConfig, serve

    serve(ReceiverConfig(host=host, port=port, state=state, quiet=quiet), _log_line)


@main.command()
@click.argument("source", metavar="FILE|-")
@state_option
@reports_errors
def ingest(source, state):
    """Write the webhook payloads of FILE (JSON Lines: one payload a line, as a gateway or
    proxy logs them; `-` reads stdin) to the ledger, for when the webhook endpoint belongs
    to another system. Lines that cannot be read are listed as FILE:LINE and skipped;
    ingesting a file again changes nothing.

    Exit 0 when every line was read, 1 when some lines or payload parts were skipped, 2
    when the file or the ledger cannot be opened, 3 when the ledger failed on the way.
    """
    from campaign_runner.webhooks.ingest import ingest as ingest_file

    result = ingest_file(source, state, lambda line: click.echo(line, err=True))
    click.echo(result.summary())
    note = result.skipped_note()
    if note:
        click.echo(note, err=True)
    sys.exit(result.exit_code)


# ---- report ------------------------------------------------------------------------------


@main.command()
@click.argument("campaign_file", metavar="CAMPAIGN", type=EXISTING_FILE)
@state_option
@click.option(
    "--sandbox",
    "rehearsal",
    is_flag=True,
    help="Report the campaign's rehearsals (run --sandbox), kept apart from its real sends.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "html"]),
    default="csv",
    show_default=True,
    help="csv: one line per delivery; html: a one-page summary with the funnel.",
)
@click.option(
    "--output",
    type=OutputFile(),
    help="File to write (default: NAME-outcomes-YYYYmmdd-HHMMSS.csv or .html in the "
    "campaign's report folder, never over an earlier one).",
)
@reports_errors
def report(campaign_file, state, rehearsal, fmt, output):
    """Write a fresh report of what became of each message, from the ledger: accepted,
    sent, delivered, read or failed (with Meta's code), with times and pricing.

    Read-only: it never disturbs a run or the webhook receiver. Exit 0 when written; 2 when
    the campaign is invalid, has no delivery in the ledger, or the report cannot be written
    (then nothing is written).
    """
    from campaign_runner import campaign as campaign_mod
    from campaign_runner.outcome_report import ReportRequest, write_report

    loaded = campaign_mod.load(campaign_file)
    written = write_report(loaded, ReportRequest(fmt, output, state, rehearsal))
    for line in written.lines():
        click.echo(line)


# ---- resume ------------------------------------------------------------------------------


@main.command()
@click.argument("campaign_file", metavar="CAMPAIGN", type=EXISTING_FILE)
@state_option
@click.option("--sandbox", is_flag=True, help="Lift the hold on the campaign's rehearsals.")
@reports_errors
def resume(campaign_file, state, sandbox):
    """Lift the hold on a campaign, so its next run sends again.

    A campaign is held when Meta pauses or disables its template (132015, 132016, from a
    status webhook or the gateway's answer) or when its quality breaker
    (send.quality_stop) stops a run; held, every run sends nothing and exits 3. Exit 0
    also when the campaign was not held.
    """
    from campaign_runner import campaign as campaign_mod
    from campaign_runner.holds import resume_campaign

    resumed = resume_campaign(campaign_mod.load(campaign_file), state, sandbox)
    for line in resumed.lines():
        click.echo(line)
