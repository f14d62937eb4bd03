"""The preview's result, in no format: the summary over every row and each row it shows.

Reporters (text, jsonl, html) only format these. Status order and the colour role of each
status are decided here, once, for all of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from campaign_runner.preview.message import Message, describe
from campaign_runner.status import Status

if TYPE_CHECKING:
    from campaign_runner.approved_text import ApprovedText

MAX_LISTED = 1000  # rows listed as not sendable; the rest are counted, to keep memory flat

# Name-like CSV columns, in the order a chat's title looks for the recipient's name.
_NAME_COLUMNS = ("name", "nome", "first_name", "firstname", "full_name", "customer", "cliente")


class Role(StrEnum):
    """What a piece of the preview is, so a reporter can colour it (terminal or page)."""

    TITLE = "title"
    GOOD = "good"
    BAD = "bad"
    NOTE = "note"
    HEAD = "head"


def role_of(status: Status) -> Role:
    """Ready is good, invalid is bad; any other reason not to send (duplicate...) is a note."""
    if status == Status.READY:
        return Role.GOOD
    return Role.BAD if status == Status.INVALID else Role.NOTE


_STATUS_ORDER = {status: position for position, status in enumerate(Status)}


def in_status_order(counts: Mapping[Status, int]) -> list[tuple[Status, int]]:
    """COUNTS as (status, count) pairs in the order `Status` declares them (ready first)."""
    return sorted(counts.items(), key=lambda pair: _STATUS_ORDER[pair[0]])


@dataclass(frozen=True)
class Unsendable:
    """A row that would not be sent, and why."""

    row: int
    phone: str
    status: Status
    error: str


@dataclass
class Summary:
    """What a preview says above the messages: totals per status and the rows that would not go."""

    campaign: str
    recipients_file: str
    total: int = 0
    counts: Counter[Status] = field(default_factory=Counter)
    unsendable: list[Unsendable] = field(default_factory=list)
    unlisted: int = 0  # unsendable rows beyond MAX_LISTED, only counted
    warnings: list[str] = field(default_factory=list)
    shown: str = "every recipient"  # which rows the preview shows, in words

    @property
    def invalid(self) -> int:
        """How many rows are invalid."""
        return self.counts[Status.INVALID]

    @property
    def not_ready(self) -> int:
        """How many rows would not be sent, for a reason other than being sent before (those
        are counted as `already-sent`, not listed)."""
        return (
            self.total - self.counts.get(Status.READY, 0) - self.counts.get(Status.ALREADY_SENT, 0)
        )


@dataclass(frozen=True)
class ShownRow:
    """One recipient row as the preview shows it: who, its status, and its body when ready."""

    row: int
    phone: str
    status: Status
    error: str = ""
    body: dict[str, Any] | None = None
    values: dict[str, str] = field(default_factory=dict)
    approved: ApprovedText | None = None  # the campaign's `preview:` texts, to fill in

    @cached_property
    def name(self) -> str:
        """The recipient's name from a name-like CSV column (`name`, `nome`, ...), or ''."""
        return recipient_name(self.values)

    @cached_property
    def message(self) -> Message | None:
        """What the customer sees, described once; None when the row would not be sent."""
        return describe(self.body, self.approved) if self.body is not None else None


def recipient_name(values: Mapping[str, str]) -> str:
    """The recipient's name from a name-like CSV column (`name`, `nome`, ...), or ''."""
    lowered = {key.lower(): value for key, value in values.items()}
    for column in _NAME_COLUMNS:
        if (lowered.get(column) or "").strip():
            return lowered[column].strip()
    return ""


def summarise(rows: Iterable[ShownRow], campaign: str, recipients_file: str) -> Summary:
    """Count ROWS per status and list the ones that would not be sent (MAX_LISTED at most)."""
    summary = Summary(campaign, recipients_file)
    for row in rows:
        summary.total += 1
        summary.counts[row.status] += 1
        if row.status in (Status.READY, Status.ALREADY_SENT):
            continue  # sent now, or sent before: neither needs a look
        if len(summary.unsendable) < MAX_LISTED:
            summary.unsendable.append(Unsendable(row.row, row.phone, row.status, row.error))
        else:
            summary.unlisted += 1
    return summary
