"""Rules across campaigns, kept in the ledger so that every campaign and every host obeys them.

    suppression list  a person on it is `suppressed` in every campaign: added by ops
                      (`campaign suppress`), or learned from Meta's answers (131050: stopped
                      marketing messages; 131026: not a WhatsApp user)
    frequency cap     `send.frequency_cap: 1/24h`: at most N messages per person in the
                      window, whatever the campaign; one over it is `deferred` until when
    daily budget      unique people reached in a rolling 24 h across all campaigns (Meta's
                      messaging limit), set by ops (`campaign budget set`); new people past
                      it are `deferred`

The plan applies them (`apply_rules`) to the rows still ready after the journal's own
checks, in chunks (one query per chunk, not per row). A sending run's plan holds the
ledger's planning lock and claims the people it is about to message, so two campaigns
planned at the same time, on any host, never both take the last of the budget or both
message a person under a cap. `deferred` rows are not recorded: the next run plans them
again.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from campaign_runner.ledger.rules_tables import REHEARSAL_SUFFIX
from campaign_runner.status import Status

if TYPE_CHECKING:
    from campaign_runner.ledger import Journal, Suppression
    from campaign_runner.prepare import PreparedRow

CHUNK = 500  # rows decided together: one query for their phones
BUDGET_WINDOW = timedelta(hours=24)  # Meta counts unique people in a rolling 24 hours
BUDGET_SETTING = "daily_recipients"  # the ledger's setting that holds the budget
MAX_CAP_MESSAGES = 1000  # `N/...` in a frequency cap
MAX_CAP_WINDOW = timedelta(days=366)  # `.../Nd` in a frequency cap
_CAP = re.compile(r"^([1-9][0-9]{0,5})/([1-9][0-9]{0,5})(h|d)$")


class SuppressionKind(StrEnum):
    """Why a number is on the suppression list."""

    MANUAL = "manual"  # ops added it (`campaign suppress add|import`)
    OPTED_OUT = "opted-out"  # Meta 131050: the person stopped marketing messages
    NOT_ON_WHATSAPP = "not-on-whatsapp"  # Meta 131026: the number cannot receive messages


# Meta's answers that put a number on the list, and the reason it then carries.
LEARNED_FROM_META: dict[int, tuple[SuppressionKind, str]] = {
    131050: (SuppressionKind.OPTED_OUT, "stopped marketing messages (Meta 131050)"),
    131026: (SuppressionKind.NOT_ON_WHATSAPP, "not a WhatsApp user (Meta 131026)"),
}


# Meta's answers that hold a campaign back: its next runs send nothing, with this reason,
# until the operator resumes it (`campaign resume`), since every message would fail alike.
HOLDING_CODES: dict[int, str] = {
    132015: "the template is paused by Meta for low quality (Meta 132015)",
    132016: "the template is disabled by Meta (Meta 132016)",
}


def learn(journal: Journal | None, phone: str, code: int | None) -> None:
    """Put PHONE on the suppression list when Meta's CODE says so; written with the run's
    next commit of outcomes (nothing is written per message)."""
    learned = LEARNED_FROM_META.get(code) if code is not None else None
    if learned is not None and journal is not None:
        journal.suppress_later(phone, *learned)


def suppression_reason(entry: Suppression) -> str:
    """What a suppressed row's report says: why, when and who added the number."""
    by = f"campaign {entry.campaign}" if entry.campaign else "ops"
    return f"on the suppression list: {entry.reason} (added {entry.added_at[:10]} by {by})"


# ---- the frequency cap -------------------------------------------------------------------


@dataclass(frozen=True)
class FrequencyCap:
    """At most MESSAGES messages to one person in any WINDOW, across campaigns."""

    messages: int
    window: timedelta
    text: str  # as written: `1/24h`


def parse_frequency_cap(text: str) -> FrequencyCap:
    """`N/Hh` or `N/Dd` (`1/24h`, `3/7d`); `ValueError` saying what is wrong."""
    found = _CAP.match(text.strip())
    if not found:
        raise ValueError(f"'{text}' is not a frequency cap like 1/24h or 3/7d")
    messages, amount, unit = int(found[1]), int(found[2]), found[3]
    window = timedelta(hours=amount) if unit == "h" else timedelta(days=amount)
    if messages > MAX_CAP_MESSAGES:
        raise ValueError(f"'{text}': at most {MAX_CAP_MESSAGES} messages per window")
    if window > MAX_CAP_WINDOW:
        raise ValueError(f"'{text}': the window is at most {MAX_CAP_WINDOW.days} days")
    return FrequencyCap(messages, window, text.strip())


# ---- the budget --------------------------------------------------------------------------


def daily_budget(journal: Journal) -> int | None:
    """The ledger's daily budget of unique recipients; None: unlimited."""
    value = journal.setting(BUDGET_SETTING)
    return None if value is None else int(value)


# ---- the plan's pass ---------------------------------------------------------------------


def stamp(moment: datetime) -> str:
    """MOMENT as the ledger stores times (ledger.base.now), so they compare as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def when(text: str) -> datetime:
    """A time as the ledger stores it, read back."""
    return datetime.fromisoformat(text)


class _PlannedSends:
    """Messages this plan sends, per phone, in a temporary SQLite file (memory stays flat)."""

    def __init__(self) -> None:
        handle, self._path = tempfile.mkstemp(prefix="campaign-planned-", suffix=".sqlite")
        os.close(handle)
        self.db = sqlite3.connect(self._path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE planned (phone TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID")
        self.db.execute("BEGIN")  # never committed: a throwaway file, read by this connection

    def counts(self, phones: Sequence[str]) -> dict[str, int]:
        """How many messages this plan already sends to each of PHONES."""
        marks = ",".join("?" * len(phones))
        query = f"SELECT phone, n FROM planned WHERE phone IN ({marks})"
        return dict(self.db.execute(query, list(phones)).fetchall())

    def add(self, phones: Sequence[str]) -> None:
        """Count one more message to each of PHONES."""
        self.db.executemany(
            "INSERT INTO planned VALUES (?, 1) ON CONFLICT(phone) DO UPDATE SET n = n + 1",
            [(phone,) for phone in phones],
        )

    def close(self) -> None:
        """Drop the temporary file."""
        self.db.close()
        Path(self._path).unlink(missing_ok=True)


@dataclass
class _Budget:
    """What is left of the daily budget for this plan, and when the next place frees."""

    remaining: int
    frees_at: datetime


class RulesPass:
    """The rules decided for one plan: suppression, then the cap, then the budget."""

    def __init__(self, journal: Journal, campaign: str, cap: FrequencyCap | None, claims: bool):
        self.journal = journal
        self.campaign = campaign
        self.cap = cap
        self.claims = claims
        self.now = datetime.now(UTC)
        self.budget = self._budget()
        self.planned = _PlannedSends() if self.counting else None
        self.earliest: datetime | None = None  # the earliest "until" of a deferred row

    def _budget(self) -> _Budget | None:
        limit = daily_budget(self.journal)
        if limit is None:
            return None
        used, earliest = self.journal.reached_since(stamp(self.now - BUDGET_WINDOW))
        frees_at = (when(earliest) if earliest else self.now) + BUDGET_WINDOW
        return _Budget(max(0, limit - used), frees_at)

    @property
    def counting(self) -> bool:
        """True when a cap or a budget counts who is reached (and a sending plan claims)."""
        return self.cap is not None or self.budget is not None

    @property
    def _since(self) -> datetime:
        windows = [BUDGET_WINDOW] if self.budget is not None else []
        windows += [self.cap.window] if self.cap is not None else []
        return self.now - max(windows)

    def decide(self, items: list[PreparedRow]) -> None:
        """Decide the ready ITEMS (one chunk, in row order) and claim the people kept."""
        ready = [item for item in items if item.status is Status.READY]
        phones = sorted({item.phone for item in ready})
        if not phones:
            return
        suppressed = self.journal.suppressions_of(phones)
        recent: dict[str, list[tuple[datetime, bool]]] = {}
        planned: dict[str, int] = {}
        if self.counting:
            for phone, at, ours in self.journal.recent(phones, stamp(self._since)):
                recent.setdefault(phone, []).append((when(at), bool(ours)))
            assert self.planned is not None
            planned = self.planned.counts(phones)
        kept = []
        for item in ready:
            entry = suppressed.get(item.phone)
            if entry is not None:
                item.status, item.error = Status.SUPPRESSED, suppression_reason(entry)
                continue
            held = self._held_until(item.phone, recent.get(item.phone, []), planned)
            if held is not None:
                until, why = held
                item.status, item.error = Status.DEFERRED, f"deferred until {stamp(until)}: {why}"
                self.earliest = min(until, self.earliest or until)
                continue
            planned[item.phone] = planned.get(item.phone, 0) + 1
            kept.append(item.phone)
        if self.planned is not None and kept:
            self.planned.add(kept)
            if self.claims:
                self.journal.claim(kept)

    def _held_until(
        self, phone: str, times: list[tuple[datetime, bool]], planned: dict[str, int]
    ) -> tuple[datetime, str] | None:
        """Until when PHONE waits, and why (the cap, the budget); None: send it now.

        TIMES: its messages in the window, each flagged when it is a claim of this same
        campaign (another worker's plan of these very rows: the cap does not count it)."""
        mine = planned.get(phone, 0)
        if self.cap is not None:
            since = self.now - self.cap.window
            sent = sorted([t for t, ours in times if t >= since and not ours] + [self.now] * mine)
            if len(sent) >= self.cap.messages:
                until = sent[len(sent) - self.cap.messages] + self.cap.window
                why = f"frequency cap {self.cap.text} ({len(sent)} message(s) in the window)"
                return until, why
        budget = self.budget
        if budget is None:
            return None
        if mine > 0 or any(t >= self.now - BUDGET_WINDOW for t, _ in times):
            return None  # a person already reached in the window takes no new place
        if budget.remaining > 0:
            budget.remaining -= 1
            return None
        return budget.frees_at, "the daily budget of unique recipients is used up"

    def close(self) -> None:
        """Drop the temporary counts."""
        if self.planned is not None:
            self.planned.close()


def apply_rules(
    items: Iterator[PreparedRow],
    journal: Journal | None,
    campaign: str,
    cap: FrequencyCap | None,
    sends: bool,
    deferred: Callable[[str], None] | None = None,
) -> Iterator[PreparedRow]:
    """ITEMS in order, the ready ones decided by the ledger's rules. SENDS: this plan is a
    sending run's, so it holds the planning lock and claims whom it keeps (a rehearsal
    reaches nobody: it claims nothing). DEFERRED is told the earliest "until" at the end."""
    if journal is None or not journal.rules_ready():
        yield from items
        return
    counts = cap is not None or daily_budget(journal) is not None
    claims = sends and counts and not campaign.endswith(REHEARSAL_SUFFIX)
    with contextlib.ExitStack() as stack:
        if claims:  # counted and claimed under the lock: no other plan counts meanwhile
            stack.enter_context(journal.planning_lock())
        rules = RulesPass(journal, campaign, cap, claims)
        stack.callback(rules.close)
        yield from in_chunks(items, rules.decide)
        if deferred is not None and rules.earliest is not None:
            deferred(stamp(rules.earliest))


def in_chunks(
    items: Iterator[PreparedRow], decide: Callable[[list[PreparedRow]], None]
) -> Iterator[PreparedRow]:
    """ITEMS in order, DECIDE called on each `CHUNK` of them before they go on: a pass that
    asks the ledger about rows asks once per chunk, never once per row."""
    chunk: list[PreparedRow] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= CHUNK:
            decide(chunk)
            yield from chunk
            chunk = []
    decide(chunk)
    yield from chunk
