"""Option values with a shape of their own (`click.ParamType`s) and options shared by commands."""

from __future__ import annotations

from pathlib import Path

import click

EXISTING_FILE = click.Path(dir_okay=False, path_type=Path)


class FaultShare(click.ParamType):
    """`KIND=SHARE` (`429=0.05`): a sandbox fault and the share of requests it hits."""

    name = "KIND=SHARE"

    def convert(self, value, param, ctx) -> tuple[str, float]:
        if isinstance(value, tuple):
            return value
        kind, _, share = str(value).partition("=")
        try:
            number = float(share)
        except ValueError:
            self.fail(f"'{value}' is not KIND=SHARE, e.g. 429=0.05", param, ctx)
        if not 0 <= number <= 1:
            self.fail(f"share in '{value}' must be between 0 and 1", param, ctx)
        return kind.strip(), number


class OutputFile(click.ParamType):
    """A file to write: not empty, not a folder (what it may not be, the core checks)."""

    name = "FILE"

    def convert(self, value, param, ctx) -> Path:
        if isinstance(value, Path):
            return value
        if not str(value).strip():
            self.fail("is empty: give a file name", param, ctx)
        path = Path(value)
        if path.is_dir():
            self.fail(f"'{value}' is a folder: give a file name", param, ctx)
        return path


recipients_option = click.option(
    "--recipients",
    type=EXISTING_FILE,
    help="Recipients file (CSV or .xlsx) to use instead of recipients.file.",
)
limit_option = click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
state_option = click.option(
    "--state",
    "state",
    metavar="FOLDER|URL",
    help="The delivery ledger: a folder (SQLite, ledger.sqlite) or a postgresql:// URL "
    "(default $CAMPAIGN_STATE, else ~/.local/state/campaign-runner).",
)
