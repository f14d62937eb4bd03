"""The commands about what happened after "sent" (issue 14): receiving Meta's webhooks,
ingesting logged payloads, reports from the ledger and resuming a held campaign. Each
parses its options and calls one core function, like the commands in `commands`."""

from __future__ import annotations

import click

from campaign_runner.cli.commands import main
from campaign_runner.cli.params import EXISTING_FILE, state_option
from campaign_runner.cli.terminal import reports_errors

__all__ = ["main"]


# ---- webhook and ingest ------------------------------------------------------------------


# ---- report ------------------------------------------------------------------------------


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
