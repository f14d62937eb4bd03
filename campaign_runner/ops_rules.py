"""What ops set in the ledger for every campaign: the suppression list and the daily budget
(`campaign suppress ...`, `campaign budget ...`). What they mean for a run: rules.py.

Numbers are read as strictly as the opt-out lists (exclusions.py): any entry that cannot be
read is an error naming it (and its file and line), and nothing is changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaign_runner import phones
from campaign_runner.campaign import Exclusion, Recipients
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.exclusions import read_exclusions
from campaign_runner.ledger import Journal, Suppression, open_ledger, state_from
from campaign_runner.rules import (
    BUDGET_SETTING,
    BUDGET_WINDOW,
    SuppressionKind,
    daily_budget,
    stamp,
    when,
)

UNLIMITED = "unlimited"
MAX_BUDGET = 10_000_000  # above Meta's highest counted tier (100,000): a typo, not a limit


@contextmanager
def _ledger(state: str | os.PathLike[str] | None, readonly: bool) -> Iterator[Journal | None]:
    journal = open_ledger(state_from(state), readonly)
    try:
        yield journal
    finally:
        if journal is not None:
            journal.close()


def _read_numbers(texts: Sequence[str], region: str | None) -> list[str]:
    numbers, problems = [], []
    for text in texts:
        try:
            numbers.append(phones.any_number(text, region))
        except phones.PhoneError as error:
            problems.append(Problem("PHONE", None, None, f"{error}; nothing was changed"))
    if problems:
        raise CampaignInvalid(problems)
    return list(dict.fromkeys(numbers))


@dataclass(frozen=True)
class Changed:
    """What a `suppress` command did: the numbers it changed, and those left as they were."""

    verb: str  # added | removed
    changed: list[str]
    unchanged: list[str]

    def lines(self) -> list[str]:
        """What the command prints."""
        why = "already on the list" if self.verb == "added" else "not on the list"
        return [f"{self.verb} {len(self.changed)} number(s); {len(self.unchanged)} {why}"]


def suppress_numbers(
    state: str | os.PathLike[str] | None,
    texts: Sequence[str],
    reason: str | None,
    region: str | None = None,
) -> Changed:
    """Put the numbers TEXTS on the suppression list, for every campaign of the ledger."""
    numbers = _read_numbers(texts, region)
    return _suppress(state, numbers, reason or "added by ops")


def import_suppressions(
    state: str | os.PathLike[str] | None,
    path: Path,
    column: str | None,
    reason: str | None,
    region: str | None = None,
) -> Changed:
    """Put every number of the list at PATH (a CSV, or one number a line) on the list."""
    spec = Recipients(file=path, default_region=region, exclude=(Exclusion(path, column),))
    numbers = sorted(read_exclusions(spec))
    return _suppress(state, numbers, reason or f"imported from {path.name}")


def _suppress(state: str | os.PathLike[str] | None, numbers: list[str], reason: str) -> Changed:
    with _ledger(state, readonly=False) as journal:
        assert journal is not None
        listed = set(journal.suppressions_of(numbers)) if numbers else set()
        journal.suppress((phone, SuppressionKind.MANUAL.value, reason, None) for phone in numbers)
    new = [phone for phone in numbers if phone not in listed]
    return Changed("added", new, [phone for phone in numbers if phone in listed])


def unsuppress_numbers(
    state: str | os.PathLike[str] | None, texts: Sequence[str], region: str | None = None
) -> Changed:
    """Take the numbers TEXTS off the suppression list, whatever put them there."""
    numbers = _read_numbers(texts, region)
    with _ledger(state, readonly=False) as journal:
        assert journal is not None
        listed = set(journal.suppressions_of(numbers))
        journal.unsuppress([phone for phone in numbers if phone in listed])
    return Changed(
        "removed", [p for p in numbers if p in listed], [p for p in numbers if p not in listed]
    )


def list_suppressions(state: str | os.PathLike[str] | None) -> list[Suppression]:
    """Every number on the suppression list, oldest first."""
    with _ledger(state, readonly=True) as journal:
        return [] if journal is None else journal.suppression_list()


def suppression_dict(entry: Suppression) -> dict[str, Any]:
    """ENTRY for `suppress list --json`."""
    return {
        "phone": entry.phone,
        "kind": entry.kind,
        "reason": entry.reason,
        "campaign": entry.campaign,
        "added_at": entry.added_at,
    }


# ---- the daily budget --------------------------------------------------------------------


def parse_budget(text: str) -> int | None:
    """A budget as ops write it: a number of people (0 pauses every campaign), or
    `unlimited` (None); `ValueError` otherwise."""
    if text.strip().lower() == UNLIMITED:
        return None
    if not text.strip().isdigit() or int(text) > MAX_BUDGET:
        raise ValueError(
            f"'{text}' is not a budget: give the number of unique recipients per 24 hours "
            f"(0 to {MAX_BUDGET}; Meta's tiers are 250, 2000, 10000, 100000) or {UNLIMITED}"
        )
    return int(text)


@dataclass(frozen=True)
class Budget:
    """The daily budget and how much of it the last 24 hours used."""

    limit: int | None
    used: int
    frees_at: str | None  # when the earliest person reached leaves the 24-hour window

    @property
    def remaining(self) -> int | None:
        """New people the campaigns may still reach now; None: no limit."""
        return None if self.limit is None else max(0, self.limit - self.used)

    def as_dict(self) -> dict[str, Any]:
        """For `budget show --json`."""
        return {
            "limit": self.limit,
            "used_24h": self.used,
            "remaining": self.remaining,
            "frees_at": self.frees_at,
        }

    def lines(self) -> list[str]:
        """What `budget show` prints."""
        limit = UNLIMITED if self.limit is None else str(self.limit)
        lines = [f"daily budget: {limit} unique recipient(s) per 24 hours, all campaigns"]
        lines.append(f"reached in the last 24 hours: {self.used}")
        if self.remaining is not None:
            lines.append(f"remaining now: {self.remaining}")
            if self.frees_at:
                lines.append(f"the next place frees at {self.frees_at}")
        return lines


def set_budget(state: str | os.PathLike[str] | None, limit: int | None) -> Budget:
    """Set the ledger's daily budget (None: unlimited); return it with today's use."""
    with _ledger(state, readonly=False) as journal:
        assert journal is not None
        journal.set_setting(BUDGET_SETTING, None if limit is None else str(limit))
    return show_budget(state)


def show_budget(state: str | os.PathLike[str] | None) -> Budget:
    """The ledger's daily budget and the unique people reached in the last 24 hours."""
    with _ledger(state, readonly=True) as journal:
        if journal is None:
            return Budget(None, 0, None)
        current = datetime.now(UTC)
        used, earliest = journal.reached_since(stamp(current - BUDGET_WINDOW))
        frees_at = stamp(when(earliest) + BUDGET_WINDOW) if earliest else None
        return Budget(daily_budget(journal), used, frees_at)
