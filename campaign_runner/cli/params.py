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
        number = _number(share)
        if number is None:
            self.fail(f"'{value}' is not KIND=SHARE, e.g. 429=0.05", param, ctx)
        if not 0 <= number <= 1:
            self.fail(f"share in '{value}' must be between 0 and 1", param, ctx)
        return kind.strip(), number


class CodeShare(click.ParamType):
    """`CODE=SHARE` (`131026=0.03`): a Meta error code and the share of messages it hits."""

    name = "CODE=SHARE"

    def convert(self, value, param, ctx) -> tuple[int, float]:
        if isinstance(value, tuple):
            return value
        code, _, share = str(value).partition("=")
        code = code.strip()
        number = _number(share)
        if number is None or not (code.isascii() and code.isdigit()):
            self.fail(f"'{value}' is not CODE=SHARE, e.g. 131026=0.03", param, ctx)
        if not 0 <= number <= 1:
            self.fail(f"share in '{value}' must be between 0 and 1", param, ctx)
        return int(code), number


def _number(text: str) -> float | None:
    """TEXT as a number (a share, checked by the caller), or None when it is not one."""
    try:
        return float(text)
    except ValueError:
        return None


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


def _share(*names: str, dest: str, help: str):
    return click.option(*names, dest, type=click.FloatRange(0, 1), metavar="SHARE", help=help)


def _seconds(*names: str, dest: str, help: str):
    return click.option(*names, dest, type=click.FloatRange(min=0), metavar="SECONDS", help=help)


# `campaign sandbox`'s status webhooks; each dest is a field of sandbox.Webhooks, and None
# (not given) keeps its default.
_WEBHOOK_OPTIONS = (
    click.option(
        "--webhook-url",
        metavar="URL",
        help="Post Meta's signed status webhooks (sent, delivered, read, failed) for each "
        "accepted message to this http(s) URL.",
    ),
    click.option(
        "--webhook-secret",
        envvar="WHATSAPP_APP_SECRET",
        metavar="SECRET",
        help="The app secret that signs them; better in $WHATSAPP_APP_SECRET, since a "
        "command line shows in `ps`.",
    ),
    _seconds("--sent-after", dest="sent_after_s", help="`sent` this long after accepting [0]."),
    _seconds("--delivered-after", dest="delivered_after_s", help="`delivered` after this [1]."),
    _seconds("--read-after", dest="read_after_s", help="`read` after this [3]."),
    _share(
        "--delivered-share",
        dest="delivered_share",
        help="Share of messages delivered [all that do not fail later].",
    ),
    _share("--read-share", dest="read_share", help="Share of the delivered also read [0.5]."),
    click.option(
        "--fail-later",
        "fail_later",
        multiple=True,
        type=CodeShare(),
        help="A share of messages gets a `failed` status with this Meta code instead of "
        "`delivered`. Repeatable, e.g. --fail-later 131026=0.03.",
    ),
    _share("--webhook-duplicates", dest="duplicates", help="Share of statuses posted twice [0]."),
    _share(
        "--webhook-out-of-order",
        dest="out_of_order",
        help="Share of messages whose statuses come newest first (read before delivered) [0].",
    ),
    click.option(
        "--webhook-attempts",
        "attempts",
        type=click.IntRange(1, 100),
        metavar="N",
        help="Post a status at most this many times when the receiver fails [10].",
    ),
)


def webhook_options(command):
    """The status-webhook options of `campaign sandbox`: webhook_url, webhook_secret, and
    the rest named after the fields of sandbox.Webhooks (None when not given)."""
    for option in reversed(_WEBHOOK_OPTIONS):
        command = option(command)
    return command
