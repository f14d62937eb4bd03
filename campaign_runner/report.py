"""The report: one CSV line per recipient row, in row order, and a JSON summary beside it.

Each line is the row's outcome (`COLUMNS`) followed by the recipient's own columns, so the
report alone says who got what. Cells that a spreadsheet would run as a formula are
neutralised, so a hostile CSV value or gateway answer cannot execute when the report is
opened. A report for recipients that came as a `;` CSV or a workbook is written the way a
spreadsheet in a comma-decimal locale (Brazil, Portugal) opens on a double click: `;`
between cells and UTF-8 with a byte-order mark; otherwise as before, `,` and plain UTF-8.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from campaign_runner.cells import quoted, unsafe_pattern
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.outputs import open_output
from campaign_runner.status import Status

COLUMNS = ("row", "phone", "status", "message_id", "http_status", "error")
RECIPIENT_SUFFIX = " (recipients)"  # marks a recipient column named like an outcome column
SUMMARY_VERSION = 1
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
_UNSAFE = unsafe_pattern(allow_bidi=False)


def neutralise(cell: object) -> str:
    """Prefix a quote to a cell a spreadsheet would treat as a formula (= + - @ tab CR)."""
    text = "" if cell is None else str(cell)
    if text and text[0] in "=+-@\t\r" and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def recipient_cell(value: str) -> str:
    """A recipient's value for the report: neutralised, and any control or bidi character
    escaped (`\\x1b`), so no byte from a hostile file reaches a terminal or a viewer."""
    if _UNSAFE.search(value):
        value = quoted(value, len(value))[1:-1]
    return neutralise(value)


@dataclass(frozen=True, slots=True)
class RowResult:
    """What happened to one CSV row: a line of the report."""

    seq: int  # position among the rows read (0-based): the order lines are written in
    row: int  # the row number a spreadsheet shows
    phone: str
    status: Status
    message_id: str | None = None
    http_status: int | None = None
    error: str | None = None

    def cells(self) -> list[str]:
        """The report line's cells, neutralised."""
        values = (self.row, self.phone, self.status, self.message_id, self.http_status, self.error)
        return [neutralise(value) for value in values]


def default_report_path(name: str, started: datetime, folder: Path = Path("reports")) -> Path:
    """`reports/NAME-YYYYmmdd-HHMMSS.csv`; `-2`, `-3`... before `.csv` when a run in the
    same second already left a report or a summary by that name (never written over)."""
    stem = f"{name}-{started:%Y%m%d-%H%M%S}"
    path, n = folder / f"{stem}.csv", 1
    while path.exists() or summary_path(path).exists():
        n += 1
        path = folder / f"{stem}-{n}.csv"
    return path


def summary_path(report: Path) -> Path:
    """The JSON summary's path: the report's, ending in `.json`."""
    return report.with_suffix(".json")


def report_header(columns: Sequence[str]) -> list[str]:
    """`COLUMNS`, then the recipients' COLUMNS; one named like an outcome column (`phone`)
    becomes `phone (recipients)`, so every name in the header is distinct."""
    header = list(COLUMNS)
    taken = set(header) | set(columns)
    for name in columns:
        shown = name
        if name in COLUMNS:
            shown = name + RECIPIENT_SUFFIX
            while shown in taken:
                shown += RECIPIENT_SUFFIX
            taken.add(shown)
        header.append(shown)
    return header


# What a row's outcome passes on besides the report line: the result and the row's values.
RowSink = Callable[[RowResult, Mapping[str, str]], None]


class ReportWriter:
    """Writes row results in CSV row order, whatever order they finish in, and counts them.

    PATH None counts without writing (a preview's or a validation's tally). COLUMNS are the
    recipients' own, written after the outcome from the values given to `note`; SEMICOLONS
    writes `;` and a byte-order mark (see the module's docstring). SINK also gets each
    result with its values, in row order. ORDERED False writes each result as it comes: a
    worker that shares its campaign with others gets only some of the rows.
    """

    def __init__(
        self,
        path: Path | None,
        columns: Sequence[str] = (),
        *,
        semicolons: bool = False,
        sink: RowSink | None = None,
        ordered: bool = True,
    ):
        self.path = path
        self.ordered = ordered  # False: each result as it comes (a worker's share of rows)
        self.columns = list(columns)
        self.sink = sink
        self.counts: Counter[Status] = Counter()
        self.failure: str | None = None  # why the report could not be written, once it failed
        self._waiting: dict[int, RowResult] = {}
        self._values: dict[int, Mapping[str, str]] = {}  # by seq, until the row is written
        self._next = 0
        self._handle: TextIO | None = None
        if path is not None:
            self._handle = open_output("the report", path)
            if semicolons:
                self._handle.write("\ufeff")  # Excel reads UTF-8 only with its BOM
            self._csv = csv.writer(self._handle, delimiter=";" if semicolons else ",")
            self._write(report_header(self.columns))
            self._flush()  # a place that takes no bytes (a full disk) is refused now
            if self.failure:
                self._handle.close()
                raise CampaignInvalid(
                    Problem(str(path), None, None, f"{self.failure}; nothing was sent")
                )

    def note(self, seq: int, values: Mapping[str, str]) -> None:
        """Keep the recipient's VALUES for row SEQ until its result is written."""
        if self.columns or self.sink:
            self._values[seq] = values

    def add(self, result: RowResult) -> None:
        """Take one result; write every result that is now next in row order."""
        self.counts[result.status] += 1
        self._waiting[result.seq] = result
        if not self.ordered:
            self._next = result.seq
        while self._next in self._waiting:
            ready = self._waiting.pop(self._next)
            values = self._values.pop(self._next, {})
            self._next += 1
            cells = ready.cells()
            if self.columns:
                cells += [recipient_cell(values.get(name, "")) for name in self.columns]
            self._write(cells)
            if self.sink is not None:
                self.sink(ready, values)

    def _write(self, cells: Iterable[object]) -> None:
        if self._handle is None or self.failure:
            return
        try:
            self._csv.writerow(cells)
        except OSError as error:
            self._failed(error)

    def _flush(self) -> None:
        if self._handle is not None and not self.failure:
            try:
                self._handle.flush()
            except OSError as error:
                self._failed(error)

    def _failed(self, error: OSError) -> None:
        self.failure = f"cannot write the report {self.path}: {error.strerror or error}"

    def close(self) -> None:
        """Flush and close the CSV file (a failure is kept in `failure`)."""
        if self._handle is not None:
            self._flush()
            with suppress(OSError):  # its cause is already in `failure`
                self._handle.close()
            self._handle = None

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def write_summary(path: Path, summary: dict[str, Any]) -> str | None:
    """Write the machine-readable summary (for monitoring, with its `version`: SUMMARY_VERSION)
    next to the CSV report; the reason when it could not be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
    except OSError as error:
        return f"cannot write the summary {path}: {error.strerror or error}"
    return None
