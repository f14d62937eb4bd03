"""The rows to fix (`run --failed-rows FILE`): recipients that need attention, as they came.

After a run, a marketer wants the rows that did not go out (invalid, failed, unknown, not
attempted) back in the shape of the file they came from, to correct and run again. This
writer takes each row's outcome in row order (a `ReportWriter` sink) and copies the rows
that need attention with the recipients' own header: a CSV in the recipients' delimiter
and encoding (`;` and UTF-8 with a BOM for a workbook's rows), or an `.xlsx` when FILE is
named so, every cell written as text so nothing becomes a formula or loses its digits.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, TextIO

from campaign_runner.cells import quoted
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.recipients import Table
from campaign_runner.report import RowResult
from campaign_runner.status import Status

NEEDS_ATTENTION = frozenset({Status.INVALID, Status.FAILED, Status.UNKNOWN, Status.NOT_ATTEMPTED})
LABEL = "the rows to fix"


class RowsToFix:
    """Copies the rows that need attention to PATH in the recipients' own columns."""

    def __init__(self, path: Path, table: Table):
        self.path = path
        self.columns = table.columns
        self.written = 0
        self.failure: str | None = None
        self._handle: TextIO | None = None
        self._book: Any = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix.lower() == ".xlsx":
                self._open_workbook(table)
            else:
                self._open_csv(table)
        except OSError as error:
            raise CampaignInvalid(
                Problem(str(path), None, None, f"cannot write {LABEL}: {_reason(error)}")
            ) from None

    def _open_csv(self, table: Table) -> None:
        encoding = table.encoding
        if encoding == "utf-8-sig" and not table.semicolons:
            encoding = (
                "utf-8"  # any UTF-8 is read as utf-8-sig; a BOM only where the report has one
            )
        elif table.sheet is not None:
            encoding = "utf-8-sig"
        delimiter = ";" if table.sheet is not None else table.delimiter
        self._handle = open(self.path, "w", newline="", encoding=encoding)  # noqa: SIM115
        self._csv = csv.writer(self._handle, delimiter=delimiter)
        self._csv.writerow(self.columns)

    def _open_workbook(self, table: Table) -> None:
        import openpyxl

        with open(self.path, "wb"):  # a place that cannot be written is refused now
            pass
        self._book = openpyxl.Workbook(write_only=True)
        self._sheet = self._book.create_sheet(table.sheet or "recipients")
        self._sheet.append([self._text_cell(name) for name in self.columns])

    def _text_cell(self, value: str) -> Any:
        """A cell that holds VALUE as text: never a formula, a number or a date."""
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        if ILLEGAL_CHARACTERS_RE.search(value):  # a workbook cannot hold them: show them
            value = quoted(value, len(value))[1:-1]
        cell = WriteOnlyCell(self._sheet, value=value)
        cell.data_type = "s"
        return cell

    def __call__(self, result: RowResult, values: Mapping[str, str]) -> None:
        """Copy the row behind RESULT when it needs attention."""
        if result.status not in NEEDS_ATTENTION or self.failure:
            return
        cells = [values.get(name, "") for name in self.columns]
        try:
            if self._book is not None:
                self._sheet.append([self._text_cell(cell) for cell in cells])
            else:
                self._csv.writerow(cells)
        except (OSError, UnicodeEncodeError) as error:
            self.failure = f"cannot write {LABEL} {self.path}: {_reason(error)}"
        else:
            self.written += 1

    def close(self) -> None:
        """Finish the file (a workbook is saved now); a failure is kept in `failure`."""
        try:
            if self._book is not None and not self.failure:
                self._book.save(self.path)
            elif self._handle is not None:
                self._handle.close()
        except OSError as error:
            self.failure = f"cannot write {LABEL} {self.path}: {_reason(error)}"
        finally:
            if self._handle is not None:
                with suppress(OSError):
                    self._handle.close()
            self._book = self._handle = None

    def __enter__(self) -> RowsToFix:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _reason(error: Exception) -> str:
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return str(error)
