"""The `campaign` command line: a thin shell over the core.

commands.py   the click group and one function per command
params.py     option values with a shape of their own, and options several commands share
terminal.py   what commands print: problems, warnings, progress, colours, summaries
outcome_commands.py  webhook, ingest, report, resume: what happened after "sent"
"""

from campaign_runner.cli import outcome_commands  # noqa: F401  (registers its commands)
from campaign_runner.cli.commands import main

__all__ = ["main"]
