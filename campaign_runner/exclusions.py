"""Opt-out lists (`recipients.exclude`): read as strictly as the recipients, never skipped.

An opt-out that is silently dropped is a message sent to someone who asked not to get one.
So each list's column is found (the one named in the campaign, else `phone` or the
campaign's phone column, else the only column) or the campaign stops and asks for it; a list
with no header row holds one number a line; and any entry that cannot be read as a phone
number is an error naming its file and row, before anything is sent.
"""

from __future__ import annotations

import re

from campaign_runner import phones
from campaign_runner.campaign import Exclusion, Recipients
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.recipients import Table, column_list, open_table, require_column

MAX_LISTED_PROBLEMS = 20  # unreadable entries listed one by one; then a count
_NUMBER_LIKE = re.compile(r"[\d\s+().,\-/eE]*\d[\d\s+().,\-/eE]*")  # mangled numbers too


def read_exclusions(spec: Recipients) -> set[str]:
    """The E.164 numbers on every opt-out list of SPEC; raise when any entry cannot be read."""
    numbers: set[str] = set()
    for listing in spec.exclude:
        numbers |= _read_list(listing, spec)
    return numbers


def _read_list(listing: Exclusion, spec: Recipients) -> set[str]:
    table = open_table(listing.file, role="exclusion")
    try:
        column, headerless = _number_column(table, listing, spec)
        entries = _entries(table, column, headerless)
        return _numbers(entries, str(listing.file), spec.default_region)
    finally:
        table.rows.close()


def _number_column(table: Table, listing: Exclusion, spec: Recipients) -> tuple[str, bool]:
    """The column holding the numbers, and whether the file's first row is an entry itself."""
    if listing.column is not None:
        require_column(table, listing.column, "the exclude entry's column")
        return listing.column, False
    if all(_NUMBER_LIKE.fullmatch(name) for name in table.columns):
        if len(table.columns) == 1:
            return table.columns[0], True
        raise CampaignInvalid(
            Problem(
                str(table.path),
                1,
                None,
                "the first row holds numbers, not column names: a list with several "
                "columns needs a header row, and the exclude entry must name the column",
            )
        )
    for name in (spec.phone_column, "phone"):
        if name in table.columns:
            return name, False
    if len(table.columns) == 1:
        return table.columns[0], False
    raise CampaignInvalid(
        Problem(
            str(table.path),
            1,
            None,
            f"which column holds the numbers? the columns are: {column_list(table.columns)}; "
            f"name it in the campaign: exclude: [{{file: {table.path.name}, column: ...}}]",
        )
    )


def _entries(table: Table, column: str, headerless: bool):
    """(row, text) of every entry, the header itself first when the list has none."""
    if headerless:
        yield 1, column
    for row in table.rows:
        if row.problem:
            yield row.number, None
        else:
            yield row.number, row.values.get(column, "")


def _numbers(entries, shown: str, region: str | None) -> set[str]:
    numbers: set[str] = set()
    problems: list[Problem] = []
    unlisted = 0
    for number, text in entries:
        reason = None
        if text is None:
            reason = "the row has more fields than the header"
        elif not text.strip():
            reason = "no number in this row (delete the row if it holds no opt-out)"
        else:
            try:
                numbers.add(phones.any_number(text, region))
            except phones.PhoneError as error:
                reason = str(error)
        if reason and len(problems) < MAX_LISTED_PROBLEMS:
            problems.append(Problem(shown, number, None, f"opt-out cannot be read: {reason}"))
        elif reason:
            unlisted += 1
    if unlisted:
        problems.append(Problem(shown, None, None, f"and {unlisted} more that cannot be read"))
    if problems:
        raise CampaignInvalid(problems)
    return numbers
