"""`campaign report`: a fresh report of what became of a campaign's messages, from the
ledger, at any time.

A run's own report is written when the run ends, before most of Meta's status webhooks
arrive; this one reads what the ledger holds now (ledger/outcomes.py), opened read-only, so
it never disturbs a run or the webhook receiver:

    csv   one line per delivery of the campaign, in row order (`COLUMNS`), streamed
    html  one self-contained page: the funnel, failures by code, pricing (`outcome_page`)

It goes where the run's reports go (`run.report_folder`) as NAME-outcomes-YYYYmmdd-HHMMSS,
never over an earlier file (the name is taken by an exclusive create: a second report in
the same second is `-2`), or to `--output`, which may be none of the files the campaign
reads nor the ledger. The cells follow the run's report: formula-like text neutralised,
control characters escaped, `;` and a byte-order mark when the recipients are a `;` CSV or
a workbook. A rehearsal's deliveries (`run --sandbox`) are reported with `rehearsal`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

from campaign_runner import funnel as funnel_words
from campaign_runner import outcome_page
from campaign_runner.campaign import Campaign
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.holds import journal_name
from campaign_runner.ledger import (
    DeliveryOutcome,
    Journal,
    State,
    open_journal,
    other_ledgers,
    state_from,
)
from campaign_runner.ledger.base import shown_time
from campaign_runner.outputs import check_outputs
from campaign_runner.prepare import input_files, recipients_file
from campaign_runner.recipients import detect_delimiter
from campaign_runner.report import recipient_cell
from campaign_runner.spreadsheet import is_workbook

COLUMNS = (
    "row",
    "phone",
    "key",
    "status",  # the send's own record: sent | failed | unknown
    "outcome",  # accepted | sent | delivered | read | failed | unknown (DeliveryOutcome.final)
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "failure_code",
    "failure_title",
    "failure_details",
    "pricing_category",
    "message_id",
    "error",  # why the send itself failed, as the run's report says it
)
FORMATS = ("csv", "html")
MAX_SAME_SECOND = 1000  # reports named for one second before giving up (-2 ... -1000)
SNIFF_BYTES = 64 * 1024  # of the recipients file, to tell `;` from `,` as the run does
_OLDER_LEDGER = (
    "this ledger was written by an earlier campaign-runner, before outcomes were kept, so it "
    "holds no status from Meta yet; the next `campaign run`, `campaign webhook` or `campaign "
    "ingest` with it upgrades it (a report reads it and never changes it); nothing written"
)
_SEND_WORDS = {"sending": "unknown"}  # a key left `sending`: no receipt, as the run reports it


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReportRequest:
    """What the person asked for (`campaign report`'s options)."""

    fmt: str = "csv"  # one of FORMATS
    output: Path | None = None  # --output; else a fresh name in the report folder
    state: str | os.PathLike[str] | None = None  # --state: a folder or a postgresql:// URL
    rehearsal: bool = False  # --sandbox: the deliveries of `run --sandbox`
    clock: Callable[[], datetime] = _utc_now


@dataclass(frozen=True)
class Written:
    """The report written: where, how many deliveries it covers, and the funnel in words."""

    path: Path
    deliveries: int
    campaign: str  # the journal reported: NAME, or NAME.sandbox for rehearsals
    outcomes: str  # funnel.sentence

    def lines(self) -> list[str]:
        """What the command prints: where the report is (absolute), then the funnel."""
        what = "1 delivery" if self.deliveries == 1 else f"{self.deliveries} deliveries"
        return [f"report of {what} of {self.campaign}: {self.path}", self.outcomes]


def write_report(campaign: Campaign, request: ReportRequest) -> Written:
    """Write CAMPAIGN's outcomes as REQUEST asks; `CampaignInvalid` (exit 2, nothing written)
    when the campaign has no delivery in the ledger or the report cannot be written."""
    if request.fmt not in FORMATS:
        raise ValueError(f"unknown report format {request.fmt!r}")
    state = state_from(request.state)
    name = journal_name(campaign, request.rehearsal)
    made = request.clock()
    with _journal(campaign, state, name, request.rehearsal) as journal:
        funnel = journal.funnel(name)
        destination = _destination(campaign, request, state, name, made)
        with _created(destination, exclusive=request.output is None) as (path, handle):
            if request.fmt == "csv":
                deliveries = _write_csv(handle, journal, campaign, name)
            else:
                deliveries = _write_page(handle, name, request, made)
    return Written(path, deliveries, name, funnel_words.sentence(funnel))


# ---- the ledger ----------------------------------------------------------------------------


@contextmanager
def _journal(campaign: Campaign, state: State, name: str, rehearsal: bool) -> Iterator[Journal]:
    """The journal NAME, read-only; `CampaignInvalid` when it holds no delivery."""
    journal = open_journal(state, name, readonly=True)
    try:
        if journal is None or journal.is_empty():
            raise _never_run(campaign, state, rehearsal)
        if not journal.outcomes_ready():
            raise CampaignInvalid(Problem(state.shown, None, None, _OLDER_LEDGER))
        yield journal
    finally:
        if journal is not None:
            journal.close()


def _never_run(campaign: Campaign, state: State, rehearsal: bool) -> CampaignInvalid:
    """Why there is nothing to report, with where the deliveries may be instead."""
    what = "rehearsal deliveries" if rehearsal else "deliveries"
    message = (
        f"campaign '{campaign.name}' has no {what} in the ledger {state.shown}: nothing to report"
    )
    hints = []
    if _has_deliveries(state, journal_name(campaign, not rehearsal)):
        hints.append(
            "its real sends are reported without --sandbox"
            if rehearsal
            else "it was only rehearsed: add --sandbox to report the rehearsals"
        )
    elsewhere = other_ledgers(campaign.name, state)
    if elsewhere:
        hints.append(f"it was run with the ledger {', '.join(elsewhere)}: give that as --state")
    if not hints:
        hints.append("it was never run with this ledger (--state, $CAMPAIGN_STATE); run it first")
    return CampaignInvalid(
        Problem(str(campaign.path), None, None, f"{message}; {'; '.join(hints)}; nothing written")
    )


def _has_deliveries(state: State, name: str) -> bool:
    journal = open_journal(state, name, readonly=True)
    if journal is None:
        return False
    try:
        return not journal.is_empty()
    finally:
        journal.close()


# ---- where it goes -------------------------------------------------------------------------


def _destination(
    campaign: Campaign, request: ReportRequest, state: State, name: str, made: datetime
) -> Path:
    """--output, else the first name of NAME-outcomes-YYYYmmdd-HHMMSS in the report folder
    (the exclusive create moves on to -2, -3... when it is taken); absolute, and checked to
    be none of the campaign's inputs nor the ledger."""
    from campaign_runner.run import RunOptions, report_folder

    if request.output is not None:
        path = Path(os.path.abspath(request.output))
    else:
        folder = report_folder(campaign, RunOptions())
        stem = f"{name}-outcomes-{made.astimezone():%Y%m%d-%H%M%S}"
        path = Path(os.path.abspath(folder / f"{stem}.{request.fmt}"))
    check_outputs({"the report": path}, _inputs(campaign, state, name))
    return path


def _inputs(campaign: Campaign, state: State, name: str) -> dict[str, Path]:
    return {**input_files(campaign), **state.files_of(name)}


@contextmanager
def _created(path: Path, exclusive: bool) -> Iterator[tuple[Path, TextIO]]:
    """PATH opened for writing (EXCLUSIVE: a new file, PATH or PATH-2, -3... when taken);
    on any failure the partial file is removed and the error says so."""
    path, handle = _open_new(path) if exclusive else (path, _open(path, "w"))
    try:
        with handle:
            yield path, handle
    except OSError as error:
        path.unlink(missing_ok=True)
        raise _unwritable(path, error) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _open_new(first: Path) -> tuple[Path, TextIO]:
    for n in range(1, MAX_SAME_SECOND + 1):
        path = first if n == 1 else first.with_name(f"{first.stem}-{n}{first.suffix}")
        try:
            return path, _open(path, "x")
        except FileExistsError:
            continue
    raise _unwritable(first, FileExistsError(f"{MAX_SAME_SECOND} reports this second already"))


def _open(path: Path, mode: Literal["w", "x"]) -> TextIO:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, mode, newline="", encoding="utf-8")
    except FileExistsError:
        if mode == "x" and path.parent.is_dir():
            raise  # the name is taken: the caller tries the next one
        raise _unwritable(path, "a part of its folder is a file, not a folder") from None
    except OSError as error:
        raise _unwritable(path, error) from None


def _unwritable(path: Path, reason: OSError | str) -> CampaignInvalid:
    if isinstance(reason, OSError):
        reason = reason.strerror or str(reason)
    return CampaignInvalid(
        Problem(str(path), None, None, f"cannot write the report: {reason}; nothing written")
    )


# ---- the CSV -------------------------------------------------------------------------------


def _write_csv(handle: TextIO, journal: Journal, campaign: Campaign, name: str) -> int:
    """Every delivery of journal NAME, one line each in row order; how many."""
    semicolons = spreadsheet_locale(campaign)
    if semicolons:
        handle.write("\ufeff")  # Excel reads UTF-8 only with its byte-order mark
    writer = csv.writer(handle, delimiter=";" if semicolons else ",")
    writer.writerow(COLUMNS)
    prefix = f"{campaign.name}:"  # the ledger's keys are CAMPAIGN:KEY (delivery.delivery_key)
    written = 0
    for delivery in journal.outcome_rows(name):
        writer.writerow(cells(delivery, prefix))
        written += 1
    return written


def cells(delivery: DeliveryOutcome, key_prefix: str = "") -> list[str]:
    """One delivery's line of the report (`COLUMNS`), every cell made safe to open: text
    that came from outside (the recipient's key, Meta's words) neutralised and escaped; the
    runner's own words, numbers and times are safe as they are."""
    outcome = delivery.outcome
    return [
        "" if delivery.row is None else str(delivery.row),
        _safe(delivery.phone),
        _safe(delivery.key.removeprefix(key_prefix)),
        _SEND_WORDS.get(delivery.status, delivery.status),
        delivery.final,
        utc_second(outcome.sent_at),
        utc_second(outcome.delivered_at),
        utc_second(outcome.read_at),
        utc_second(outcome.failed_at),
        "" if outcome.code is None else str(outcome.code),
        _safe(outcome.title),
        _safe(outcome.details),
        _safe(outcome.pricing_category),
        _safe(delivery.message_id),
        _safe(delivery.error),
    ]


def _safe(text: str | None) -> str:
    return "" if text is None else recipient_cell(text)


def utc_second(stored: str | None) -> str:
    """A time the ledger stored, as ISO 8601 UTC to the second (`2026-11-28T18:19:25Z`);
    empty when none."""
    if not stored:
        return ""
    shown = shown_time(stored)
    return shown if shown != stored else _safe(stored)  # not a time: a cell like any other


def spreadsheet_locale(campaign: Campaign) -> bool:
    """True when the report should be `;` with a BOM, as the run's report is: the recipients
    are a workbook or a `;` CSV (`recipients.delimiter`, else the header line's separator).
    A recipients file that is gone or unreadable leaves the plain `,` report."""
    if campaign.recipients.delimiter:
        return campaign.recipients.delimiter == ";"
    path = recipients_file(campaign)
    try:
        if not path.is_file():  # gone, or a pipe that would block the read
            return False
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return False
    return is_workbook(head) or detect_delimiter(head) == ";"


# ---- the page ------------------------------------------------------------------------------


def _write_page(handle: TextIO, name: str, request: ReportRequest, made: datetime) -> int:
    """The HTML summary of journal NAME, as `campaign status` reads it; how many deliveries."""
    from campaign_runner.monitor import read_status

    status = read_status(name, request.state)
    handle.writelines(outcome_page.page(status, made, request.rehearsal))
    return sum(status.counts.values())
