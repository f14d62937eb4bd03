"""Load stage for Excel workbooks: a `.xlsx` sheet read as a table of text, streaming.

A marketer's recipients often live in a workbook, where a phone number is stored as a
number and a spreadsheet shows it as `5,51195E+12`. `open_sheet` reads the sheet with
openpyxl in read-only mode (rows stream; memory stays flat) and turns every cell into the
text a person typed: whole numbers as their digits, other numbers in plain decimal
notation, dates as ISO text, empty cells as blanks. Like a CSV, the sheet is read whole
once before its rows are used (to count them and to find a damaged file), so a file error
still comes before anything is sent. Row numbers are the sheet's own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from decimal import Decimal
from typing import Any, BinaryIO

from campaign_runner.cells import quoted
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.suggest import did_you_mean

ZIP_MAGIC = b"PK\x03\x04"  # an .xlsx (and an .ods) is a ZIP archive
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary Excel format (.xls)
MAX_LISTED_SHEETS = 10  # "the sheets are: ..." names this many


def cell_text(value: Any) -> str:
    """The text a person typed into a cell: 5511948489500.0 -> `5511948489500`, never 5.5E+12."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        # repr is the shortest text that reads back as this float; Decimal writes it plainly.
        return format(Decimal(repr(value)), "f")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(timespec="seconds" if not value.microsecond else "auto")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


class Sheet:
    """One sheet of an open workbook, read as rows of text (row number, cells, problem)."""

    def __init__(self, raw: BinaryIO, shown: str, name: str | None):
        import openpyxl  # imported here: a CSV campaign never pays for loading it

        self.shown = shown
        self.raw = raw  # the workbook reads from it; closing the book does not close it
        try:
            self.book = openpyxl.load_workbook(raw, read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises many kinds for a damaged workbook
            raw.close()
            raise CampaignInvalid(Problem(shown, None, None, _unreadable(error))) from None
        self.name = self._choose(name)

    def _choose(self, name: str | None) -> str:
        names = self.book.sheetnames
        if name is None:
            if not names:
                self._fail("the workbook has no sheet")
            return names[0]
        if name in names:
            return name
        listed = ", ".join(quoted(n) for n in names[:MAX_LISTED_SHEETS])
        self._fail(
            f"no sheet {quoted(name)}{did_you_mean(name, names)}; the sheets are: {listed} "
            "(set recipients.sheet to the one to use)"
        )
        raise AssertionError  # unreachable: _fail raises

    def _fail(self, text: str, row: int | None = None) -> None:
        self.close()
        raise CampaignInvalid(Problem(self.shown, row, None, text))

    def records(self) -> Generator[tuple[int, list[str], str | None], None, None]:
        """Every row from row 1: (its number, its cells as text, why it is unusable or None)."""
        sheet = self.book[self.name]
        number = 0
        try:
            # no max_col: openpyxl would pad every row to it with empty cells, at a cost per
            # cell; the header's width is checked by the caller against the column cap.
            for cells in sheet.iter_rows():
                number += 1
                texts = [cell_text(cell.value) for cell in cells]
                errors = [cell for cell in cells if cell.data_type == "e"]
                problem = None
                if errors:
                    problem = f"a cell holds the spreadsheet error {errors[0].value}"
                yield number, texts, problem
        except CampaignInvalid:
            raise
        except Exception as error:
            raise CampaignInvalid(
                Problem(self.shown, number + 1, None, _unreadable(error))
            ) from None

    def count_rows(self) -> int:
        """Read every row once: how many after the header hold anything. A formula with no
        saved value (a file written by a program that never computed it) is an error here,
        as a blank that is really a missing value would be a wrong message."""
        import openpyxl

        formulas = openpyxl.load_workbook(self.raw, read_only=True, data_only=False)
        total = number = 0
        try:
            values = self.book[self.name].iter_rows()
            texts = formulas[self.name].iter_rows(values_only=True)  # a formula as `=...`
            for number, (cells, written) in enumerate(zip(values, texts, strict=False), 1):
                if number > 1 and any(_holds_something(cell.value) for cell in cells):
                    total += 1
                for cell, text in zip(cells, written, strict=False):
                    # never computed: no value and no type; a computed "" has type `str`
                    if cell.value is None and cell.data_type == "n" and text is not None:
                        self._fail(_unsaved_formula(cell.coordinate), number)
        except CampaignInvalid:
            raise
        except Exception as error:
            self.close()
            raise CampaignInvalid(
                Problem(self.shown, number + 1, None, _unreadable(error))
            ) from None
        finally:
            formulas.close()
        return total

    def close(self) -> None:
        """Close the workbook and its file."""
        try:
            self.book.close()
        finally:
            self.raw.close()


def _holds_something(value: Any) -> bool:
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


def _unsaved_formula(coordinate: str) -> str:
    return (
        f"cell {coordinate} holds a formula whose value was never saved (the file was "
        "written by a program that does not compute formulas); open it in a spreadsheet "
        "and save it again, or replace the formula by its value"
    )


def _unreadable(error: Exception) -> str:
    return (
        f"cannot be read as an Excel workbook ({type(error).__name__}); open it in a "
        "spreadsheet and save it again as .xlsx, or as CSV UTF-8"
    )


def format_problem(head: bytes, suffix: str) -> str | None:
    """Why a file that starts with HEAD is no table we read (an old .xls, an .ods...)."""
    if head.startswith(OLE_MAGIC):
        return (
            "is an old binary Excel workbook (.xls) or another Office file; open it in a "
            "spreadsheet and save it as .xlsx (Excel Workbook) or CSV UTF-8"
        )
    if suffix in (".ods", ".numbers"):
        return f"is a {suffix} spreadsheet; save it as .xlsx (Excel Workbook) or CSV UTF-8"
    return None


def is_workbook(head: bytes) -> bool:
    """True when HEAD (a file's first bytes) opens a ZIP archive, as every .xlsx does."""
    return head.startswith(ZIP_MAGIC)


def trim_header(cells: list[str]) -> list[str]:
    """The header without the blank cells after its last name (a sheet is often wider)."""
    end = len(cells)
    while end and not cells[end - 1].strip():
        end -= 1
    return cells[:end]


def stream_rows(sheet: Sheet, columns: list[str], row_type: Any) -> Generator[Any, None, None]:
    """The sheet's data rows as ROW_TYPE(number, values, problem); closes the sheet at the end."""
    width = len(columns)
    try:
        records = sheet.records()
        next(records, None)  # the header, checked before
        for number, cells, problem in records:
            if not "".join(cells).strip():
                continue
            if len(cells) > width and any(cell.strip() for cell in cells[width:]):
                problem = problem or f"has {len(cells)} cells but the header has {width}"
            values = dict(zip(columns, cells[:width], strict=False))
            for name in columns[len(cells) :]:
                values[name] = ""
            yield row_type(number, values, problem)
    finally:
        sheet.close()
