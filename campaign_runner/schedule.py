"""When a campaign may send: its window (hours, days) and its expiry, with one "why closed"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Closed:
    """Why sending is not allowed now."""

    expired: bool  # past not_after: for good; else outside the window, which opens later
    reason: str
    opens_at: datetime | None = None


@dataclass(frozen=True)
class Schedule:
    """The send window and the expiry of a campaign."""

    window: Any = None
    not_after: datetime | None = None

    def closed(self, now: datetime) -> Closed | None:
        """Why sending is not allowed at NOW, or None when it is."""
        if self.not_after and now > self.not_after:
            reason = f"the campaign expired at {self.not_after.isoformat()} (send.not_after)"
            return Closed(True, reason)
        if self.window and not self.window.is_open(now):
            opens = self.window.next_open(now)
            return Closed(
                False, f"outside the send window; it opens at {opens:%Y-%m-%d %H:%M %Z}", opens
            )
        return None
