"""What the two ways in (`campaign webhook`, `campaign ingest`) count, in the same words:
the receiver's log lines and ingest's summary show the same fields.

    payloads     webhook bodies (receiver) or lines (ingest) read
    statuses     statuses read from them (of a kind the runner tracks)
    matched      statuses of a delivery the ledger has
    changed      deliveries whose record moved on (the rest were duplicates or older news)
    kept_aside   statuses for a wamid no delivery has yet (matched later by reconcile)
    matched_later  statuses kept aside earlier, matched once their delivery was recorded
    replies, preferences   inbound messages and marketing opt-outs/opt-ins kept
    suppressed   numbers put on the suppression list
    held         campaigns held back (a paused template), by name
    commits      ledger transactions that wrote them (group commit: many payloads each)
    problems     payload parts that could not be read (each logged with its JSON path)
    refused      requests refused before reading (bad signature, too large, not JSON)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from campaign_runner.ledger import Applied
from campaign_runner.webhooks.payload import Events


@dataclass
class Counts:
    """One period's (or one file's) figures; see the module's docstring."""

    payloads: int = 0
    statuses: int = 0
    ignored: int = 0
    problems: int = 0
    refused: int = 0
    commits: int = 0
    applied: Applied = field(default_factory=Applied)
    later: Applied = field(default_factory=Applied)  # what reconcile matched

    def read(self, events: Events) -> None:
        """One payload read: its events and the parts it could not read."""
        self.payloads += 1
        self.statuses += len(events.statuses)
        self.ignored += events.ignored
        self.problems += len(events.problems)

    def __bool__(self) -> bool:
        return bool(self.payloads or self.refused or self.later.matched)

    def fields(self) -> dict[str, object]:
        """The figures as `key=value` fields, in the order the docstring lists them."""
        held = sorted(set(self.applied.held + self.later.held))
        return {
            "payloads": self.payloads,
            "statuses": self.statuses,
            "matched": self.applied.matched,
            "changed": self.applied.changed + self.later.changed,
            "kept_aside": self.applied.unmatched,
            "matched_later": self.later.matched,
            "replies": self.applied.replies,
            "preferences": self.applied.preferences,
            "suppressed": len(set(self.applied.suppressed + self.later.suppressed)),
            "held": ",".join(held) if held else "none",
            "commits": self.commits,
            "problems": self.problems,
            **({"ignored": self.ignored} if self.ignored else {}),
            **({"refused": self.refused} if self.refused else {}),
        }


class Tally:
    """Counts shared by the threads of the receiver (requests on the event loop, commits in
    the writer): `take` hands over what was counted since the last call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = Counts()

    def read(self, events: Events) -> None:
        """One payload read: its events and the parts it could not read."""
        with self._lock:
            self._counts.read(events)

    def refuse(self) -> None:
        """One request refused before its payload was read."""
        with self._lock:
            self._counts.refused += 1

    def applied(self, applied: Applied, later: bool = False) -> None:
        """What one commit (or, LATER, one reconcile) did to the ledger."""
        with self._lock:
            (self._counts.later if later else self._counts.applied).add(applied)
            self._counts.commits += not later

    def take(self) -> Counts:
        """The counts since the last `take`, and start afresh."""
        with self._lock:
            counts, self._counts = self._counts, Counts()
        return counts
