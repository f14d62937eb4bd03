"""Rows to ready bodies: each CSV row becomes a `PreparedRow`, sendable or with the reason why not.

A row goes through a short list of named steps (phone, exclusion, delivery key, duplicate,
body, validation); the first step that refuses it gives its status and reason.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign_runner import phones, schemas
from campaign_runner import recipients as recipients_mod
from campaign_runner.campaign import Campaign
from campaign_runner.render import Renderer, RenderError
from campaign_runner.status import Status


@dataclass(slots=True)
class PreparedRow:
    """One CSV row after rendering and validation.

    `status` is READY with a `body` to send, or the status (invalid, excluded, duplicate)
    that says why not, with the reason in `error`.
    """

    seq: int  # position among the rows read, 0-based
    row: int  # the row number a spreadsheet shows
    phone: str
    status: Status = Status.READY
    key: str | None = None
    body: dict[str, Any] | None = None
    error: str | None = None
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class RecipientSource:
    """Everything `prepare` needs, opened and checked once per run: close it when done."""

    campaign: Campaign
    table: recipients_mod.Table
    renderer: Renderer
    exclusions: set[str]

    @property
    def warnings(self) -> list[str]:
        """What reading the recipients noticed (encoding guessed, stray spaces...)."""
        return self.table.warnings

    def close(self) -> None:
        """Close the recipients file."""
        self.table.rows.close()


def recipients_file(campaign: Campaign, override: str | os.PathLike[str] | None = None) -> Path:
    """The recipients CSV a run reads: OVERRIDE (`--recipients`) or the campaign's own."""
    return Path(override) if override else campaign.recipients.file


def input_files(
    campaign: Campaign, recipients: str | os.PathLike[str] | None = None
) -> dict[str, Path]:
    """Every file a campaign reads, by what a person calls it: never to be written over."""
    inputs = {
        "the campaign file": campaign.path,
        "the recipients file": recipients_file(campaign, recipients),
    }
    for path in campaign.recipients.exclude:
        inputs[f"the exclusion list {path}"] = path
    return inputs


def open_source(
    campaign: Campaign, recipients: str | os.PathLike[str] | None = None
) -> RecipientSource:
    """Open the recipients CSV and compile the message; raise if a placeholder has no column."""
    spec = campaign.recipients
    path = recipients_file(campaign, recipients)
    renderer = Renderer(campaign)
    table = recipients_mod.open_table(path, spec.encoding, spec.delimiter)
    try:
        recipients_mod.require_column(table, spec.phone_column)
        renderer.check_columns(table.columns, campaign.source, str(path))
        exclusions = recipients_mod.read_exclusions(spec.exclude, spec.default_region)
    except BaseException:
        table.rows.close()
        raise
    return RecipientSource(campaign, table, renderer, exclusions)


def count_rows(campaign: Campaign, recipients: str | os.PathLike[str] | None = None) -> int:
    """How many recipient rows the CSV has (a quick pass that renders nothing)."""
    spec = campaign.recipients
    path = recipients_file(campaign, recipients)
    table = recipients_mod.open_table(path, spec.encoding, spec.delimiter)
    return sum(1 for _ in table.rows)


class DuplicateKeys:
    """Delivery keys met so far in this run, kept on disk so memory stays flat for any CSV size."""

    _COMMIT_EVERY = 20_000

    def __init__(self) -> None:
        handle, self._path = tempfile.mkstemp(prefix="campaign-seen-", suffix=".sqlite")
        os.close(handle)
        self.db = sqlite3.connect(self._path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")
        self.db.execute("BEGIN")
        self._since_commit = 0

    def first_time(self, key: str) -> bool:
        """Remember KEY; False when it was already there (a duplicate row)."""
        cursor = self.db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (key,))
        self._since_commit += 1
        if self._since_commit >= self._COMMIT_EVERY:
            self.db.execute("COMMIT")
            self.db.execute("BEGIN")
            self._since_commit = 0
        return cursor.rowcount == 1

    def close(self) -> None:
        """Drop the temporary file."""
        self.db.close()
        Path(self._path).unlink(missing_ok=True)


def prepare(source: RecipientSource, limit: int | None = None) -> Iterator[PreparedRow]:
    """One `PreparedRow` per CSV row, in order: rendered and validated, or why it cannot be.

    Closes SOURCE when the rows run out or the caller stops reading.
    """
    steps = _RowSteps(source)
    try:
        for seq, row in enumerate(source.table.rows):
            if limit is not None and seq >= limit:
                break
            yield steps.prepare(seq, row)
    finally:
        steps.close()
        source.close()


class _Refused(Exception):
    """A step's refusal: the row gets STATUS with the reason."""

    def __init__(self, status: Status, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class _RowSteps:
    """The steps from a CSV row to a ready body, in the order they are taken."""

    def __init__(self, source: RecipientSource):
        self.spec = source.campaign.recipients
        self.renderer = source.renderer
        self.exclusions = source.exclusions
        self.seen = DuplicateKeys()

    def close(self) -> None:
        self.seen.close()

    def prepare(self, seq: int, row: recipients_mod.Row) -> PreparedRow:
        raw_phone = row.values.get(self.spec.phone_column, "")
        item = PreparedRow(seq, row.number, raw_phone.strip(), values=row.values)
        try:
            if row.problem:
                raise _Refused(Status.INVALID, f"row {row.problem}")
            item.phone = self.phone(raw_phone)
            item.key = self.key(item)
            item.body = self.body(item)
        except _Refused as refusal:
            item.status, item.error = refusal.status, refusal.reason
        return item

    def phone(self, raw: str) -> str:
        try:
            phone = phones.normalise_phone(raw, self.spec.default_region)
        except phones.PhoneError as error:
            raise _Refused(Status.INVALID, str(error)) from None
        if phone in self.exclusions:
            raise _Refused(Status.EXCLUDED, "on the exclusion list")
        return phone

    def key(self, item: PreparedRow) -> str:
        try:
            key = self.renderer.key(item.values, item.phone)
        except RenderError as error:
            raise _Refused(Status.INVALID, f"recipients.key: {error}") from None
        if not self.seen.first_time(key):
            raise _Refused(Status.DUPLICATE, f"an earlier row has the same key {key}")
        return key

    def body(self, item: PreparedRow) -> dict[str, Any]:
        try:
            body = self.renderer.body(item.values, item.phone)
        except RenderError as error:
            raise _Refused(Status.INVALID, str(error)) from None
        if not schemas.is_valid(body):
            reason = "; ".join(str(issue) for issue in schemas.check(body))
            raise _Refused(Status.INVALID, reason)
        return body
