"""The `campaign` commands: each parses its options, calls one core function, prints what
came back (through `terminal`) and exits with the documented code. Heavy modules are
imported inside the commands so `campaign --help` is quick."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import click

from campaign_runner.cli.params import (
    EXISTING_FILE,
    FaultShare,
    OutputFile,
    limit_option,
    recipients_option,
    state_option,
    webhook_options,
)
from campaign_runner.cli.runlog import PlanShown, Progress, final_line, refused
from campaign_runner.cli.terminal import (
    ROLE_STYLES,
    interactive,
    print_problems,
    print_warnings,
    reports_errors,
    run_summary,
)
from campaign_runner.errors import CampaignError, ExitCode
from campaign_runner.schemas import MESSAGE_TYPES


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="campaign-runner")
@click.pass_context
def main(ctx):
    """Validate, preview and send WhatsApp campaigns written in YAML, one message per CSV row.

    Exit codes: 0 all sent (or skipped on purpose), 1 some recipients failed or were
    invalid, 2 invalid campaign or usage (nothing sent), 3 run aborted or campaign held
    (`campaign resume`), 4 campaign busy.
    NO_COLOR=1 turns colours off.
    """
    if os.environ.get("NO_COLOR"):  # https://no-color.org: set and not empty
        ctx.color = False


# ---- validate ----------------------------------------------------------------------------


@main.command()
@click.argument("campaigns", nargs=-1, required=True, type=EXISTING_FILE)
@recipients_option
def validate(campaigns, recipients):
    """Check campaign files and every rendered message, without sending anything."""
    from campaign_runner.validate import validate_campaign

    worst = ExitCode.OK
    for path in campaigns:
        check = validate_campaign(path, recipients)
        print_problems(check.problems)
        print_warnings(check.warnings)
        for line in check.findings():
            click.echo(line, err=True)
        if not check.problems:
            click.echo(check.verdict())
        worst = max(worst, check.exit_code)
    sys.exit(worst)


# ---- run ---------------------------------------------------------------------------------


@main.command()
@click.argument("campaign_file", metavar="CAMPAIGN", type=EXISTING_FILE)
@recipients_option
@click.option("--dry-run", is_flag=True, help="Do everything but send.")
@limit_option
@click.option(
    "--report",
    type=OutputFile(),
    help="Report CSV (default NAME-YYYYmmdd-HHMMSS.csv in the report folder).",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the report (default: the campaign's report_dir, else reports/ beside "
    "the campaign file).",
)
@click.option(
    "--failed-rows",
    type=OutputFile(),
    help="Also write the rows that need attention (invalid, failed, unknown, not attempted) "
    "with the recipients' own columns, ready to fix and run again: .xlsx or CSV by its name.",
)
@state_option
@click.option(
    "--sandbox",
    is_flag=True,
    help="Send to a sandbox gateway started in this process, not the real one.",
)
@click.option(
    "--retry-failed", is_flag=True, help="Send again to keys that failed for good before."
)
@click.option(
    "--accept-changed-message",
    is_flag=True,
    help="The message changed since the last run and this is still the same campaign: "
    "those already sent are not sent again.",
)
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Send again to keys whose earlier request's outcome is unknown (after a crash).",
)
@click.option(
    "--gateway-url",
    metavar="URL",
    help="Ops' gateway (else $CAMPAIGN_GATEWAY_URL): wins over the campaign's, and a campaign "
    "naming another gateway is refused.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation on a terminal.")
@click.option(
    "--quiet", "-q", is_flag=True, help="No plan and no progress: warnings, errors, the final line."
)
@click.option(
    "--verbose", "-v", is_flag=True, help="List every row the plan will not send, with why."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the JSON summary on stdout instead of the closing lines.",
)
@reports_errors
def run(campaign_file, sandbox, yes, quiet, verbose, as_json, **choices):
    """Plan the run, show the plan (and ask, on a terminal), send, then write the report.

    Under cron every line on stderr starts with a UTC timestamp and campaign=NAME: a start
    line with the plan's figures, a progress line every few seconds, one final line.
    """
    from campaign_runner import campaign as campaign_mod
    from campaign_runner import run as run_mod
    from campaign_runner.plan import EXAMPLES

    name = Path(campaign_file).stem  # until the file is read: what the log lines say
    progress = Progress(sys.stderr.isatty(), enabled=not quiet)
    asks = not (sandbox or choices["dry_run"] or yes) and interactive()
    options = run_mod.RunOptions(
        rehearsal=sandbox,
        progress=progress.show,
        notify=lambda line: click.echo(line, err=True),
        approve=PlanShown(progress, asks, quiet).approve,
        examples=None if verbose else EXAMPLES,
        **choices,
    )
    try:
        loaded = campaign_mod.load(campaign_file)
        name = loaded.name
        result = run_mod.run_campaign(loaded, options)
    except CampaignError as refusal:  # nothing was sent: say so in the log as every run does
        progress.finish({})
        refused(name, refusal, as_json)
    progress.finish(result.counts)
    for failure in result.errors:
        click.echo(f"error: {failure}", err=True)
    if result.crash is not None and os.environ.get("CAMPAIGN_DEBUG"):
        traceback.print_exception(result.crash)
    if as_json:
        click.echo(json.dumps(result.record, indent=2, ensure_ascii=False))
    elif not quiet:
        click.echo(run_summary(result))
    click.echo(final_line(loaded.name, result), err=True)
    sys.exit(result.exit_code)


# ---- preview -----------------------------------------------------------------------------


@main.command()
@click.argument("campaign_file", metavar="CAMPAIGN", type=EXISTING_FILE)
@recipients_option
@limit_option
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    help="Only N messages that would be sent, spread evenly over the file (5 on a terminal).",
)
@click.option("--all", "show_all", is_flag=True, help="Every message, even on a terminal.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "jsonl", "html"]),
    default="text",
    show_default=True,
)
@click.option(
    "--output",
    type=OutputFile(),
    help="HTML file to write (default: NAME-preview.html in the campaign's report folder).",
)
@reports_errors
def preview(campaign_file, recipients, limit, sample, show_all, fmt, output):
    """Show what each recipient would receive (jsonl: the exact request bodies; html: as chats)."""
    from campaign_runner import campaign as campaign_mod
    from campaign_runner.preview import build, jsonl, text
    from campaign_runner.preview.selection import terminal_sample

    if output and fmt != "html":
        raise click.UsageError("--output is for --format html; redirect text or jsonl with >")
    on_terminal = fmt == "text" and sys.stdout.isatty()
    sample = terminal_sample(limit, sample, show_all, on_terminal)
    shown = build(campaign_mod.load(campaign_file), recipients, limit, sample)
    print_warnings(shown.warnings)
    if fmt == "jsonl":
        for line, to_stderr in jsonl.lines(shown.rows(), shown.recipients_file):
            click.echo(line, err=to_stderr)
    elif fmt == "html":
        from campaign_runner.preview import html  # phonenumbers' formatting: only for pages

        page = html.write(shown.summary, shown.rows(), shown.page_path(output))
        click.echo(f"preview of {page.shown} of {shown.summary.total} recipient(s): {page.path}")
    else:
        for line, role in text.lines(shown.summary, shown.rows()):
            click.echo(ROLE_STYLES[role](line) if role else line)
        if on_terminal and not show_all and shown.summary.total > (sample or 0):
            click.echo("--all shows every message, --sample N or --limit N another number")
    sys.exit(shown.exit_code)


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
    "--apikey",
    envvar="SANDBOX_APIKEY",
    help="Accept only this key, on /messages too (default: any non-empty key, and only "
    "on loopback).",
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
    type=FaultShare(),
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
@click.option("--seed", type=int, help="Repeat the same fault and webhook pattern.")
@click.option(
    "--idempotency",
    is_flag=True,
    help="Answer a repeated Idempotency-Key with its first answer, not a second message.",
)
@webhook_options
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
    webhook_url,
    webhook_secret,
    **webhook,
):
    """Serve a local Messages API gateway for rehearsals, with faults on demand, and post
    Meta's signed status webhooks for what it accepts when given --webhook-url."""
    from campaign_runner.sandbox import Faults, SandboxConfig, serve

    try:
        faults = Faults(
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            rates=dict(fails),
            seed=seed,
            retry_after_s=retry_after,
            rate_limit_per_s=rate_limit,
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--fail") from None
    webhooks = _sandbox_webhooks(webhook_url, webhook_secret, seed, webhook)
    try:  # no key: loopback only, since /messages shows every recipient's phone and message
        config = SandboxConfig(
            host=host,
            port=port,
            apikey=apikey,
            record=record,
            faults=faults,
            idempotency=idempotency,
            webhooks=webhooks,
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    try:
        serve(config, echo=lambda line: click.echo(line))
    except OSError as error:
        click.echo(f"cannot listen on {host}:{port}: {error.strerror or error}", err=True)
        sys.exit(ExitCode.INVALID)


def _sandbox_webhooks(url, secret, seed, given):
    """The sandbox's status webhooks from its options (None without --webhook-url); a
    usage error, never naming the secret, when they cannot be used."""
    from campaign_runner.sandbox import Webhooks

    chosen = {name: value for name, value in given.items() if value not in (None, ())}
    if url is None:
        if chosen:
            flags = {p.name: p.opts[0] for p in click.get_current_context().command.params}
            raise click.UsageError(f"{flags[next(iter(chosen))]} needs --webhook-url")
        return None
    if not secret:
        raise click.UsageError(
            "--webhook-url needs the app secret that signs the webhooks: set "
            "WHATSAPP_APP_SECRET (or give --webhook-secret)"
        )
    codes = [code for code, _ in chosen.get("fail_later", ())]
    twice = sorted({code for code in codes if codes.count(code) > 1})
    if twice:
        raise click.UsageError(f"--fail-later {twice[0]} is given twice; give each code once")
    if "fail_later" in chosen:
        chosen["fail_later"] = dict(chosen["fail_later"])
    try:
        return Webhooks(url=url, secret=secret, seed=seed, **chosen)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


# ---- status ------------------------------------------------------------------------------


@main.command()
@click.argument("campaign_file", metavar="CAMPAIGN", type=EXISTING_FILE)
@state_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable, for monitoring.")
@click.option("--sandbox", is_flag=True, help="The campaign's rehearsals (run --sandbox).")
@reports_errors
def status(campaign_file, state, as_json, sandbox):
    """Show whether a run is in progress (its pid), how the last run ended or that it died,
    and the journal's counts: sent, failed, unknown.

    Read-only: it never disturbs a run in progress nor creates the state folder or the
    lock file. Exit 0
    whatever the runs' state (read it from `state` in --json: running, finished, died or
    never-run); 2 when the campaign file is invalid or the journal or the lock cannot be
    read.
    """
    from campaign_runner import campaign as campaign_mod
    from campaign_runner.monitor import campaign_status

    found = campaign_status(campaign_mod.load(campaign_file), state, sandbox)
    print_warnings(found.warnings)
    if as_json:
        click.echo(json.dumps(found.as_dict(), indent=2))
        return
    for line in found.lines():
        click.echo(line)


# ---- suppress ----------------------------------------------------------------------------

region_option = click.option(
    "--default-region",
    "region",
    metavar="CC",
    help="Read numbers without + as numbers of this country (BR, PT...); else they must "
    "start with their country code.",
)


@main.group()
def suppress():
    """The suppression list, for every campaign of the ledger: a person on it is `suppressed`
    in every plan and report. Meta's 131050 (stopped marketing messages) and 131026 (not a
    WhatsApp user) add numbers by themselves; `remove` clears any entry."""


@suppress.command("add")
@click.argument("numbers", metavar="PHONE...", nargs=-1, required=True)
@click.option("--reason", help="Why (shown in every report that skips them).")
@region_option
@state_option
@reports_errors
def suppress_add(numbers, reason, region, state):
    """Never message these numbers again, in any campaign."""
    from campaign_runner.ops_rules import suppress_numbers

    for line in suppress_numbers(state, numbers, reason, region).lines():
        click.echo(line)


@suppress.command("remove")
@click.argument("numbers", metavar="PHONE...", nargs=-1, required=True)
@region_option
@state_option
@reports_errors
def suppress_remove(numbers, region, state):
    """Take numbers off the list (added by ops or learned from Meta)."""
    from campaign_runner.ops_rules import unsuppress_numbers

    for line in unsuppress_numbers(state, numbers, region).lines():
        click.echo(line)


@suppress.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for machines.")
@state_option
@reports_errors
def suppress_list(as_json, state):
    """Every number on the list: why, when, and which campaign learned it."""
    from campaign_runner.ops_rules import list_suppressions, suppression_dict

    entries = list_suppressions(state)
    if as_json:
        click.echo(json.dumps([suppression_dict(e) for e in entries], indent=2))
        return
    for entry in entries:
        by = f"campaign {entry.campaign}" if entry.campaign else "ops"
        click.echo(f"{entry.phone}\t{entry.kind}\t{entry.added_at}\t{by}\t{entry.reason}")
    click.echo(f"{len(entries)} number(s) on the suppression list", err=True)


@suppress.command("import")
@click.argument("file", type=EXISTING_FILE)
@click.option("--column", help="The column with the numbers (default: phone, or the only one).")
@click.option("--reason", help="Why (default: imported from FILE).")
@region_option
@state_option
@reports_errors
def suppress_import(file, column, reason, region, state):
    """Add every number of a CSV (or a list with one number a line), read as strictly as
    an opt-out list: one entry that cannot be read and nothing is added."""
    from campaign_runner.ops_rules import import_suppressions

    for line in import_suppressions(state, file, column, reason, region).lines():
        click.echo(line)


# ---- budget ------------------------------------------------------------------------------


@main.group()
def budget():
    """The daily budget: unique recipients in a rolling 24 hours across every campaign of
    the ledger (Meta's messaging limit: 250, 2000, 10000, 100000 or unlimited). New people
    past it are `deferred` to a later run."""


@budget.command("set")
@click.argument("limit", metavar="N|unlimited")
@state_option
@reports_errors
def budget_set(limit, state):
    """Set the budget: a number of unique recipients per 24 hours, or `unlimited`."""
    from campaign_runner.ops_rules import parse_budget, set_budget

    try:
        value = parse_budget(limit)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="N") from None
    for line in set_budget(state, value).lines():
        click.echo(line)


@budget.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
@state_option
@reports_errors
def budget_show(as_json, state):
    """The budget, how many people the last 24 hours reached, and what is left."""
    from campaign_runner.ops_rules import show_budget

    found = show_budget(state)
    if as_json:
        click.echo(json.dumps(found.as_dict(), indent=2))
        return
    for line in found.lines():
        click.echo(line)


# ---- init --------------------------------------------------------------------------------


@main.command()
@click.argument(
    "kind",
    metavar="TYPE",
    type=click.Choice(MESSAGE_TYPES),
)
@click.option(
    "--output",
    type=OutputFile(),
    help="Campaign file to write (default TYPE.yaml); the CSV goes beside it.",
)
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
@reports_errors
def init(kind, output, force):
    """Write a commented starter campaign of one message type and a sample CSV beside it."""
    from campaign_runner import starters

    campaign_path, csv_path = starters.write_starter(kind, output or Path(f"{kind}.yaml"), force)
    click.echo(f"wrote {campaign_path.absolute()} and {csv_path.absolute()}")
    click.echo(f"next: campaign validate {campaign_path} && campaign run {campaign_path} --sandbox")


if __name__ == "__main__":  # pragma: no cover
    main()
