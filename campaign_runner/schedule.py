"""When a campaign may send: a daily window on some weekdays, and a moment after which never.

`Schedule.closed(now)` is the one answer to "may we send now, and if not, why": the run
asks it before the first message and between messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})(?:\s+(\S+))?$")


@dataclass(frozen=True)
class Window:
    """Hours of the day (in a time zone, on some weekdays) when a campaign may send."""

    start: time
    end: time
    zone: str | None
    days: tuple[int, ...] = tuple(range(7))  # Monday is 0

    def _local(self, now: datetime) -> datetime:
        from zoneinfo import ZoneInfo  # imported when needed: it costs 10 ms at start-up

        return now.astimezone(ZoneInfo(self.zone)) if self.zone else now.astimezone()

    def is_open(self, now: datetime) -> bool:
        """True when NOW (an aware datetime) falls inside the window."""
        local = self._local(now)
        moment = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= moment < self.end
        # Across midnight: the hours after midnight belong to the day the window opened.
        if moment >= self.start:
            return local.weekday() in self.days
        return moment < self.end and (local.weekday() - 1) % 7 in self.days

    def next_open(self, now: datetime) -> datetime:
        """The next moment at or after NOW when the window opens (in the window's zone)."""
        local = self._local(now)
        for day in range(8):
            date = (local + timedelta(days=day)).date()
            opening = datetime.combine(date, self.start, tzinfo=local.tzinfo)
            if opening.weekday() in self.days and opening >= local:
                return opening
        return local


@dataclass(frozen=True)
class Closed:
    """Why sending is not allowed now; `expired` means for good, else the window opens later."""

    expired: bool
    reason: str
    opens_at: datetime | None = None


@dataclass(frozen=True)
class Schedule:
    """A campaign's `send.window` and `send.days` (as a `Window`) and its `send.not_after`."""

    window: Window | None = None
    not_after: datetime | None = None

    def closed(self, now: datetime) -> Closed | None:
        """Why the campaign may not send at NOW (an aware datetime); None when it may."""
        if self.not_after and now > self.not_after:
            return Closed(
                True, f"the campaign expired at {self.not_after.isoformat()} (send.not_after)"
            )
        if self.window and not self.window.is_open(now):
            opens = self.window.next_open(now)
            return Closed(
                False, f"outside the send window; it opens at {opens:%Y-%m-%d %H:%M %Z}", opens
            )
        return None


def parse_window(text: str, days: list[str] | None) -> Window:
    """The window written as `09:00-20:00 America/Sao_Paulo` on DAYS (`mon`...); else ValueError."""
    match = _WINDOW.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a window like '09:00-20:00 America/Sao_Paulo'")
    h1, m1, h2, m2, zone = match.groups()
    try:
        start, end = time(int(h1), int(m1)), time(int(h2), int(m2))
    except ValueError:
        raise ValueError(f"'{text}' has an hour or minute out of range") from None
    if zone:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone '{zone}' (use an IANA name like America/Sao_Paulo)"
            ) from None
    if start == end:
        raise ValueError(f"'{text}' opens and closes at the same time")
    weekdays = tuple(DAYS.index(d) for d in days) if days else tuple(range(7))
    return Window(start, end, zone, weekdays)


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date and time (`2026-12-01T20:00:00-03:00`); without an offset, local time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"'{text}' is not a date and time like 2026-12-01T20:00:00-03:00"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()
