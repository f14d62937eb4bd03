"""Load stage for people: check a CSV (or an `.xlsx` sheet) whole, then stream it row by row.

Spreadsheets export CSV in many shapes: UTF-8 with or without BOM, Windows-1252, `,` or `;`,
quoted fields with newlines inside. `open_table` reads any of them, but only after two
streaming passes over the whole file have proved it is one: the bytes (`scan`: one encoding
fits all of it, no NUL, no stray quote, sizes within the limits) and the records (`csv`'s C
reader in strict mode, which also counts the rows). A file error therefore always comes
before the first row is used, so "nothing sent" is true. Row numbers are the ones a
spreadsheet shows: the header is row 1, a blank line is a row, a cell with newlines is one.
A workbook (`spreadsheet.py`) goes through the same header checks and gives the same `Row`s.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from campaign_runner import spreadsheet
from campaign_runner.cells import quoted, unsafe_reason
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.scan import CHUNK_BYTES, ByteScan, FileFault
from campaign_runner.suggest import did_you_mean

MAX_FILE_BYTES = 2 * 1024**3  # 2 GiB: some 20 million rows, beyond any real campaign
MAX_COLUMNS = 1_000  # CRM exports have tens of columns; a header past this is not a header
MAX_CELL_CHARS = 131_072  # csv's own field limit, stated here: a message body is 4,096 at most
MAX_SHOWN_COLUMNS = 20  # "the columns are: ..." lists this many names, then "and N more"
MAX_SHOWN_NAME = 40  # characters of a column name in that list
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")

csv.field_size_limit(MAX_CELL_CHARS)


@dataclass(frozen=True)
class Row:
    """One CSV record: its row number as a spreadsheet shows it (header = 1) and its cells."""

    number: int
    values: dict[str, str]
    problem: str | None = None  # the record itself is malformed (too many fields)


@dataclass
class Table:
    """An open, checked CSV file: its columns, how it was read, its row count, its rows.

    `rows` streams the file and holds it open until exhausted or closed (`table.rows.close()`).
    `total` counts the rows that are not entirely empty.
    """

    path: Path
    columns: list[str]
    encoding: str
    delimiter: str
    warnings: list[str]
    total: int
    rows: Generator[Row, None, None]
    sheet: str | None = None  # the workbook sheet read, for an .xlsx; None for a CSV

    @property
    def semicolons(self) -> bool:
        """True when files written for this table's readers should use `;` (and a BOM): the
        table came from a `;` CSV or a workbook, as a spreadsheet in a comma-decimal locale
        (Portuguese, Spanish, German...) writes and expects."""
        return self.sheet is not None or self.delimiter == ";"


def open_table(
    path: Path,
    encoding: str | None = None,
    delimiter: str | None = None,
    *,
    role: str = "recipients",
    sheet: str | None = None,
) -> Table:
    """Check the CSV or `.xlsx` workbook at PATH whole, then open it; rows stream lazily.

    Which it is comes from the file's first bytes, not its name. SHEET names the workbook's
    sheet to read (default: the first). ROLE names the file in errors.
    """
    shown = str(path)
    raw = _open_regular_file(path, role)
    try:
        head = raw.read(CHUNK_BYTES)
        unreadable = spreadsheet.format_problem(head, path.suffix.lower())
        if unreadable:
            raise CampaignInvalid(Problem(shown, None, None, unreadable))
        raw.seek(0)
        if spreadsheet.is_workbook(head):
            return _open_workbook(raw, path, sheet)
        delimiter = delimiter or detect_delimiter(head)
        raw.seek(0)
        scan = _scan(raw, shown, encoding, delimiter)
        raw.seek(0)
        handle = io.TextIOWrapper(raw, encoding=scan.encoding, newline="", errors="strict")
    except BaseException:
        raw.close()
        raise
    try:
        header = next(_reader(handle, delimiter), None)
        columns = _clean_header(header, shown, scan.warnings)
        handle.seek(0)
        total = _count_records(handle, delimiter, shown)
        handle.seek(0)
        reader = _reader(handle, delimiter)
        next(reader)  # the header, checked above
    except BaseException:
        handle.close()
        raise
    rows = _rows(handle, reader, columns, shown)
    warnings = scan.warnings
    if path.suffix.lower() in WORKBOOK_SUFFIXES:
        warnings.append(f"{shown}: named {path.suffix} but holds CSV text; read as CSV")
    if sheet is not None:
        warnings.append(f"{shown}: a CSV has no sheets; recipients.sheet is ignored")
    return Table(path, columns, scan.encoding, delimiter, warnings, total, rows)


def _open_workbook(raw: BinaryIO, path: Path, name: str | None) -> Table:
    """An `.xlsx` checked whole (header, every row read once), then opened to stream."""
    shown = str(path)
    book = spreadsheet.Sheet(raw, shown, name)
    warnings: list[str] = []
    try:
        records = book.records()
        first = next(records, None)
        header = spreadsheet.trim_header(first[1]) if first else None
        columns = _clean_header(header, shown, warnings)
        records.close()
        # every row is parsed once before any is used: a damaged sheet fails now, not mid-send
        total = book.count_rows()
    except BaseException:
        book.close()
        raise
    rows = spreadsheet.stream_rows(book, columns, Row)
    return Table(path, columns, "xlsx", ";", warnings, total, rows, sheet=book.name)


def _open_regular_file(path: Path, role: str) -> BinaryIO:
    """PATH opened for reading, once it is known to be a regular file (never blocks on a FIFO)."""
    shown = str(path)
    try:
        # O_NONBLOCK: a FIFO swapped in after a check must not hang the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CampaignInvalid(Problem(shown, None, None, f"no such {role} file")) from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise CampaignInvalid(
            Problem(shown, None, None, f"cannot open the {role} file: {reason}")
        ) from None
    info = os.fstat(fd)
    problem = _not_a_csv_file(info, role)
    if problem:
        os.close(fd)
        raise CampaignInvalid(Problem(shown, None, None, problem))
    os.set_blocking(fd, True)
    return open(fd, "rb")  # closed by the Table (its row stream) or on an error


def _not_a_csv_file(info: os.stat_result, role: str) -> str | None:
    kinds = {
        stat.S_IFDIR: "a folder",
        stat.S_IFIFO: "a pipe (FIFO)",
        stat.S_IFCHR: "a device",
        stat.S_IFBLK: "a device",
        stat.S_IFSOCK: "a socket",
    }
    if not stat.S_ISREG(info.st_mode):
        kind = kinds.get(stat.S_IFMT(info.st_mode), "not a regular file")
        return f"is {kind}; the {role} file must be a CSV file on disk"
    if info.st_size > MAX_FILE_BYTES:
        return f"is {info.st_size:,} bytes; a {role} file may be at most {MAX_FILE_BYTES:,}"
    return None


def _scan(raw: BinaryIO, shown: str, encoding: str | None, delimiter: str) -> ByteScan:
    """Pass one over the bytes; its faults become located problems."""
    try:
        named = _codec_name(encoding, shown) if encoding else None
        scan = ByteScan.of(raw, named, delimiter, MAX_FILE_BYTES)
    except FileFault as fault:
        raise CampaignInvalid(Problem(shown, fault.line, None, str(fault))) from None
    scan.warnings = [f"{shown}: {warning}" for warning in scan.warnings]
    return scan


def _codec_name(encoding: str, shown: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise CampaignInvalid(
            Problem(shown, None, None, f"unknown encoding {quoted(encoding)}")
        ) from None
    return "utf-8-sig" if name == "utf-8" else name  # a declared UTF-8 file may carry a BOM


def detect_delimiter(head: bytes) -> str:
    """The separator of a CSV from its first bytes HEAD: the most frequent of `,` `;` and a
    tab in the header line (`,` when none is there)."""
    first_line = head.split(b"\n", 1)[0]
    counts = {d: first_line.count(d.encode()) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _reader(handle: io.TextIOBase, delimiter: str):
    # strict: a quoted cell followed by more text, or a quote never closed, is an error,
    # never text silently moved from one cell or row into another.
    return csv.reader(handle, delimiter=delimiter, strict=True)


def _clean_header(header: list[str] | None, shown: str, warnings: list[str]) -> list[str]:
    if not header or not any(cell.strip() for cell in header):
        raise CampaignInvalid(Problem(shown, 1, None, "the file is empty: it needs a header row"))
    if len(header) > MAX_COLUMNS:
        raise CampaignInvalid(
            Problem(
                shown, 1, None, f"the header has {len(header):,} columns; at most {MAX_COLUMNS:,}"
            )
        )
    columns: list[str] = []
    seen: set[str] = set()
    problems = []
    for index, raw in enumerate(header, start=1):
        name = raw.strip()
        if name != raw:
            warnings.append(
                f"{shown}:1: column name {quoted(raw)} has stray spaces; read as {quoted(name)}"
            )
        problem = _header_name_problem(index, name, seen)
        if problem:
            problems.append(Problem(shown, 1, None, problem))
        seen.add(name)
        columns.append(name)
    if problems:
        raise CampaignInvalid(problems)
    return columns


def _header_name_problem(index: int, name: str, seen: set[str]) -> str | None:
    if not name:
        return f"column {index} has no name"
    unsafe = unsafe_reason(name)
    if unsafe:
        return f"column {index}'s name {unsafe}: {quoted(name)}"
    if name in seen:
        return f"column {quoted(name)} appears twice in the header"
    return None


def _count_records(handle: io.TextIOBase, delimiter: str, shown: str) -> int:
    """Pass two: every record parsed by csv's C reader; the count of rows that hold anything."""
    reader = _reader(handle, delimiter)
    total = 0
    start = 1  # the line the record being read starts on
    try:
        for record in reader:
            if "".join(record).strip():
                total += 1
            start = reader.line_num + 1
    except csv.Error as error:
        raise CampaignInvalid(
            _structure_problem(str(error), start, reader.line_num, shown)
        ) from None
    except UnicodeDecodeError as error:  # the file changed since the byte scan
        raise CampaignInvalid(
            Problem(shown, start, None, f"cannot be decoded: {error.reason}")
        ) from None
    return max(total - 1, 0)  # the header is not a recipient


def _structure_problem(error: str, start: int, now: int, shown: str) -> Problem:
    """csv's complaint, said in a spreadsheet user's words, at the line where the record starts."""
    if "unexpected end of data" in error:
        text = (
            "a quote opens a cell on this line and is never closed, so the rest of the file "
            'would be one cell; close it (a quote inside a quoted cell is written "")'
        )
    elif "field larger than field limit" in error and now > start:
        text = (
            f"a cell that starts on this line runs to line {now} and past {MAX_CELL_CHARS:,} "
            "characters: a quote opened here and never closed?"
        )
    elif "field larger than field limit" in error:
        text = f"a cell is longer than {MAX_CELL_CHARS:,} characters, the most a cell may hold"
    elif "expected after" in error:
        start = now
        text = (
            "a quoted cell goes on after its closing quote; quote the whole cell and write "
            'a quote inside it as ""'
        )
    else:
        start = now
        text = f"malformed CSV: {error}"
    return Problem(shown, start, None, text)


def _rows(
    handle: io.TextIOBase, reader, columns: list[str], shown: str
) -> Generator[Row, None, None]:
    width = len(columns)
    number = 1
    try:
        for record in reader:
            number += 1  # a spreadsheet shows a blank line as a row: count it, skip it
            if not "".join(record).strip():
                continue
            problem = None
            if len(record) > width:
                extra = record[width:]
                if any(cell.strip() for cell in extra):
                    problem = f"has {len(record)} fields but the header has {width}"
                record = record[:width]
            yield Row(number, dict(zip(columns, record, strict=False)), problem)
    except UnicodeDecodeError as error:  # the file changed since it was checked
        raise CampaignInvalid(
            Problem(shown, None, None, f"changed while being read: {error.reason}")
        ) from None
    except csv.Error as error:
        raise CampaignInvalid(
            Problem(shown, None, None, f"changed while being read: {error}")
        ) from None
    finally:
        handle.close()


def column_list(columns: list[str]) -> str:
    """`phone, name, ...`: the header's names for a message, capped in count and length."""
    names = [quoted(name, MAX_SHOWN_NAME)[1:-1] for name in columns[:MAX_SHOWN_COLUMNS]]
    more = len(columns) - MAX_SHOWN_COLUMNS
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def require_column(table: Table, column: str, setting: str = "recipients.phone_column") -> None:
    """Raise a located error when COLUMN is not in the table's header."""
    if column in table.columns:
        return
    hint = did_you_mean(column, table.columns)
    if len(table.columns) == 1 and table.sheet is None:
        # One "column" may be a whole line of something that is not a CSV: never echo it.
        listed = f"; the first line has no {table.delimiter!r}: is it a CSV with a header row?"
    else:
        listed = f"; the columns are: {column_list(table.columns)}"
    raise CampaignInvalid(
        Problem(
            str(table.path),
            1,
            None,
            f"no column {quoted(column)}{hint}{listed} (set {setting} to the one to use)",
        )
    )
