"""Load stage for people: stream the recipients CSV, one row at a time, and read opt-out lists.

Spreadsheets export CSV in many shapes: UTF-8 with or without BOM, Windows-1252, `,` or `;`,
quoted fields with newlines inside. This module reads them all without loading the file,
and says clearly what it could not read.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.phones import PhoneError, normalise_phone
from campaign_runner.suggest import did_you_mean

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Row:
    """One CSV record: its row number as a spreadsheet shows it (header = 1) and its cells."""

    number: int
    values: dict[str, str]
    problem: str | None = None  # the record itself is malformed (too many fields)


@dataclass
class Table:
    """An open recipients file: its columns, how it was read, and its rows (a stream).

    `rows` holds the file open until it is exhausted or closed (`table.rows.close()`).
    """

    path: Path
    columns: list[str]
    encoding: str
    delimiter: str
    warnings: list[str]
    rows: Generator[Row, None, None]


def open_table(path: Path, encoding: str | None = None, delimiter: str | None = None) -> Table:
    """Open the CSV at PATH, detecting encoding and delimiter unless given; rows stream lazily."""
    shown = str(path)
    if not path.is_file():
        raise CampaignInvalid(Problem(shown, None, None, "no such recipients file"))
    warnings: list[str] = []
    if encoding is None:
        encoding = detect_encoding(path)
        if encoding == "cp1252":
            warnings.append(
                f"{shown}: not UTF-8; read as Windows-1252 (set recipients.encoding to say so)"
            )
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise CampaignInvalid(
            Problem(shown, None, None, f"unknown encoding '{encoding}'")
        ) from None
    handle = open(path, encoding=encoding, newline="", errors="strict")  # noqa: SIM115
    try:
        header_text = _first_record_text(handle)
        if delimiter is None:
            delimiter = _detect_delimiter(header_text)
        reader = csv.reader(handle, delimiter=delimiter)
        handle.seek(0)
        header = next(reader, None)
    except UnicodeDecodeError as error:
        handle.close()
        raise CampaignInvalid(
            Problem(shown, 1, None, f"cannot be read as {encoding}: {error.reason}")
        ) from None
    if not header or not any(cell.strip() for cell in header):
        handle.close()
        raise CampaignInvalid(Problem(shown, 1, None, "the file is empty: it needs a header row"))
    columns = _clean_header(header, shown, warnings)
    return Table(
        path, columns, encoding, delimiter, warnings, _rows(handle, reader, columns, shown)
    )


def detect_encoding(path: Path) -> str:
    """`utf-8-sig` when the whole file decodes as UTF-8, else Windows-1252 (spreadsheet export)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        try:
            while chunk := handle.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8-sig"


def _first_record_text(handle: io.TextIOBase) -> str:
    text = handle.read(64 * 1024)
    handle.seek(0)
    return text.split("\n", 1)[0]


def _detect_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _clean_header(header: list[str], shown: str, warnings: list[str]) -> list[str]:
    columns = []
    problems = []
    for index, raw in enumerate(header, start=1):
        name = raw.strip()
        if name != raw:
            warnings.append(f"{shown}:1: column name {raw!r} has stray spaces; read as {name!r}")
        if not name:
            problems.append(Problem(shown, 1, None, f"column {index} has no name"))
        elif name in columns:
            problems.append(Problem(shown, 1, None, f"column '{name}' appears twice in the header"))
        columns.append(name)
    if problems:
        raise CampaignInvalid(problems)
    return columns


def _rows(
    handle: io.TextIOBase, reader, columns: list[str], shown: str
) -> Generator[Row, None, None]:
    width = len(columns)
    number = 1
    try:
        for record in reader:
            number += 1
            if not record or (len(record) == 1 and not record[0].strip()):
                number -= 1  # a blank line is not a record, and a spreadsheet would not number it
                continue
            problem = None
            if len(record) > width:
                extra = record[width:]
                if any(cell.strip() for cell in extra):
                    problem = f"has {len(record)} fields but the header has {width}"
                record = record[:width]
            yield Row(number, dict(zip(columns, record, strict=False)), problem)
    except UnicodeDecodeError as error:
        raise CampaignInvalid(
            Problem(shown, number, None, f"cannot be decoded: {error.reason}")
        ) from None
    except csv.Error as error:
        raise CampaignInvalid(Problem(shown, number, None, f"malformed CSV: {error}")) from None
    finally:
        handle.close()


def require_column(table: Table, column: str) -> None:
    """Raise a located error when COLUMN is not in the table's header."""
    if column in table.columns:
        return
    hint = did_you_mean(column, table.columns)
    raise CampaignInvalid(
        Problem(
            str(table.path),
            1,
            None,
            f"no column '{column}'{hint}; the columns are: {', '.join(table.columns)}",
        )
    )


def read_exclusions(paths: tuple[Path, ...], default_region: str | None) -> set[str]:
    """The E.164 numbers listed in the opt-out files PATHS (a `phone` column, or the first one)."""
    numbers: set[str] = set()
    for path in paths:
        table = open_table(path)
        column = "phone" if "phone" in table.columns else table.columns[0]
        for row in table.rows:
            try:
                numbers.add(normalise_phone(row.values.get(column, ""), default_region))
            except PhoneError:
                continue  # an unreadable opt-out cannot match a valid recipient anyway
    return numbers
