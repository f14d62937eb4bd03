"""Rows to ready bodies: each CSV row becomes a `PreparedRow`, sendable or with the reason why not.

A row goes through a short list of named steps (data, phone, exclusion, delivery key, body,
validation, duplicate); the first step that refuses it gives its status and reason. A row
claims its delivery key only once it is ready, so an invalid row never makes a later, valid
row with the same key a duplicate.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign_runner import cells, phones, schemas
from campaign_runner import recipients as recipients_mod
from campaign_runner.campaign import CALLBACK_FIELD, Campaign
from campaign_runner.exclusions import read_exclusions
from campaign_runner.render import Renderer, RenderError
from campaign_runner.status import Status

MAX_CALLBACK_CHARS = 512  # Meta's limit on biz_opaque_callback_data (whatsapp-limits.md)


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
    untrimmed_key: str | None = None  # the key before values were trimmed, if it differs
    body: dict[str, Any] | None = None
    error: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    # The schema rules the rendered body broke: `validate` groups rows by rule and place.
    issues: tuple[schemas.SchemaIssue, ...] = ()
    content: bytes | None = None  # the body as the request carries it, once planned
    message_id: str | None = None  # an earlier run's, for a row the journal settled
    http_status: int | None = None


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
    for exclusion in campaign.recipients.exclude:
        inputs[f"the exclusion list {exclusion.file}"] = exclusion.file
    return inputs


def open_source(
    campaign: Campaign, recipients: str | os.PathLike[str] | None = None
) -> RecipientSource:
    """Check the recipients CSV whole (structure, encoding), open it, compile the message and
    read the opt-out lists; raise if anything cannot be read, before any row is used."""
    spec = campaign.recipients
    path = recipients_file(campaign, recipients)
    renderer = Renderer(campaign)
    table = recipients_mod.open_table(path, spec.encoding, spec.delimiter, sheet=spec.sheet)
    try:
        recipients_mod.require_column(table, spec.phone_column)
        renderer.check_columns(table.columns, campaign.source, str(path))
        exclusions = read_exclusions(spec)
    except BaseException:
        table.rows.close()
        raise
    return RecipientSource(campaign, table, renderer, exclusions)


def count_rows(campaign: Campaign, recipients: str | os.PathLike[str] | None = None) -> int:
    """How many recipient rows the CSV has (the check `open_table` makes counts them)."""
    spec = campaign.recipients
    path = recipients_file(campaign, recipients)
    table = recipients_mod.open_table(path, spec.encoding, spec.delimiter, sheet=spec.sheet)
    table.rows.close()
    return table.total


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

    def taken(self, key: str) -> bool:
        """True when KEY was already remembered (nothing is added)."""
        return self.db.execute("SELECT 1 FROM seen WHERE key = ?", (key,)).fetchone() is not None

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
        self.unsafe = cells.unsafe_pattern(self.spec.allow_bidi)
        self.seen = DuplicateKeys()
        # `send.callback_data`: the delivery key (delivery.Delivery.delivery_key) in the body.
        callback = source.campaign.send.callback_data
        self.callback_prefix = f"{source.campaign.name}:" if callback else None

    def close(self) -> None:
        self.seen.close()

    def prepare(self, seq: int, row: recipients_mod.Row) -> PreparedRow:
        raw_phone = row.values.get(self.spec.phone_column, "")
        item = PreparedRow(seq, row.number, raw_phone.strip(), values=row.values)
        try:
            if row.problem:
                raise _Refused(Status.INVALID, f"row {row.problem}")
            self.data(row.values)
            item.phone = self.phone(raw_phone)
            item.key = self.key(item)
            callback = self.callback(item.key)
            item.body = self.body(item, callback)
            self.claim(item.key)
        except _Refused as refusal:
            item.status, item.error = refusal.status, refusal.reason
            if item.phone == raw_phone.strip():
                item.phone = cells.quoted(item.phone)[1:-1]  # a cell as written, made printable
            item.body = None
        return item

    def data(self, values: dict[str, str]) -> None:
        """Refuse a row with a control or bidi character in any cell: it could make the
        message read otherwise than the file, or rewrite a terminal that prints it."""
        # Every column is checked, not only those the message names: a template can reach
        # any column (`row[...]`, loops), and values reach the report and the previews.
        # One test per row: every unsafe character is Unicode category Cc or Cf, which
        # `isprintable` (C speed) rejects; only rows with tabs, newlines, emoji joiners...
        # pay for the search. A space joins the cells, so a CR at a cell's end stays lone.
        text = " ".join(values.values())
        if text.isprintable() or not self.unsafe.search(text):
            return
        for name, value in values.items():
            reason = cells.unsafe_reason(value, self.spec.allow_bidi)
            if reason:
                raise _Refused(Status.INVALID, f"column {cells.quoted(name)} {reason}")

    def phone(self, raw: str) -> str:
        try:
            phone = phones.normalise_phone(raw, self.spec.default_region)
        except phones.PhoneError as error:
            raise _Refused(Status.INVALID, str(error)) from None
        if phone in self.exclusions:
            raise _Refused(Status.EXCLUDED, "on the exclusion list")
        return phone

    def key(self, item: PreparedRow) -> str:
        """The delivery key, from trimmed values: `" 7"` and `"7"` are the same cart."""
        values = item.values
        if self.renderer.key_template is not None:
            values = {name: value.strip() for name, value in values.items()}
        try:
            key = self.renderer.key(values, item.phone)
            if values != item.values:
                # Journals written before keys were trimmed know this row by its old key.
                untrimmed = self.renderer.key(item.values, item.phone)
                item.untrimmed_key = untrimmed if untrimmed != key else None
        except RenderError as error:
            raise _Refused(Status.INVALID, f"recipients.key: {error}") from None
        return key

    def callback(self, key: str) -> str | None:
        """The body's biz_opaque_callback_data under `send.callback_data` (None: off): the
        delivery key whole, or the row is invalid (cut, it would match no delivery)."""
        if self.callback_prefix is None:
            return None
        data = self.callback_prefix + key
        if len(data) > MAX_CALLBACK_CHARS:
            raise _Refused(
                Status.INVALID,
                f"send.callback_data: the delivery key is {len(data)} characters long; "
                f"{CALLBACK_FIELD} takes at most {MAX_CALLBACK_CHARS} (Meta's limit): "
                "shorten recipients.key, or turn send.callback_data off",
            )
        return data

    def body(self, item: PreparedRow, callback: str | None = None) -> dict[str, Any]:
        try:
            body = self.renderer.body(item.values, item.phone)
        except RenderError as error:
            raise self._invalid_unless_duplicate(item.key, str(error)) from None
        if callback is not None:  # before validation: the body checked is the body sent
            body[CALLBACK_FIELD] = callback
        if not schemas.is_valid(body):
            item.issues = tuple(schemas.check(body))
            reason = "; ".join(str(issue) for issue in item.issues)
            raise self._invalid_unless_duplicate(item.key, reason)
        return body

    def claim(self, key: str | None) -> None:
        """Take KEY for this (ready) row; a later row with the same key is a duplicate.
        (Keys hold no control characters: `data` refused those rows.)"""
        assert key is not None
        if not self.seen.first_time(key):
            raise _Refused(Status.DUPLICATE, f"an earlier row has the same key {key}")

    def _invalid_unless_duplicate(self, key: str | None, reason: str) -> _Refused:
        # A row whose key a ready row already took would not be sent anyway: say so first.
        if key is not None and self.seen.taken(key):
            return _Refused(Status.DUPLICATE, f"an earlier row has the same key {key}")
        return _Refused(Status.INVALID, reason)
