"""The schedule: a daily window on some weekdays, and a moment after which nothing is sent."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from campaign_runner.schedule import Closed, Schedule, Window, parse_moment, parse_window

SAO_PAULO = "America/Sao_Paulo"


def at(text: str) -> datetime:
    """A moment written in São Paulo time (UTC-3, no daylight saving since 2019), held in UTC."""
    return datetime.fromisoformat(text + "-03:00").astimezone(UTC)


# 2026-11-27 is a Friday, 2026-11-28 a Saturday, 2026-11-30 a Monday.
IS_OPEN = {
    "inside a day window": ("09:00-20:00", None, "2026-11-27T12:00:00", True),
    "at the opening minute": ("09:00-20:00", None, "2026-11-27T09:00:00", True),
    "at the closing minute": ("09:00-20:00", None, "2026-11-27T20:00:00", False),
    "before the opening": ("09:00-20:00", None, "2026-11-27T08:59:00", False),
    "on a day it is open": ("09:00-20:00", ["fri"], "2026-11-27T12:00:00", True),
    "on a day it is not": ("09:00-20:00", ["fri"], "2026-11-28T12:00:00", False),
    "across midnight, late evening": ("22:00-06:00", None, "2026-11-28T23:30:00", True),
    "across midnight, early morning": ("22:00-06:00", None, "2026-11-29T05:59:00", True),
    "across midnight, at its end": ("22:00-06:00", None, "2026-11-29T06:00:00", False),
    "across midnight, midday": ("22:00-06:00", None, "2026-11-29T12:00:00", False),
    "Friday's night goes on into Saturday": ("22:00-06:00", ["fri"], "2026-11-28T02:00:00", True),
    "Saturday's night is not Friday's": ("22:00-06:00", ["fri"], "2026-11-28T22:30:00", False),
    "Thursday's early hours are not Friday's": (
        "22:00-06:00",
        ["fri"],
        "2026-11-27T02:00:00",
        False,
    ),
}


@pytest.mark.parametrize("hours, days, moment, expected", IS_OPEN.values(), ids=IS_OPEN.keys())
def test_a_window_is_open_or_not(hours, days, moment, expected):
    window = parse_window(f"{hours} {SAO_PAULO}", days)
    assert window.is_open(at(moment)) is expected


NEXT_OPEN = {
    "later the same day": ("09:00-20:00", None, "2026-11-27T07:00:00", "2026-11-27 09:00"),
    "the next day": ("09:00-20:00", None, "2026-11-27T21:00:00", "2026-11-28 09:00"),
    "after the weekend": (
        "09:00-20:00",
        ["mon", "tue", "wed", "thu", "fri"],
        "2026-11-27T21:00:00",
        "2026-11-30 09:00",
    ),
    "a night window, the same evening": (
        "22:00-06:00",
        None,
        "2026-11-28T12:00:00",
        "2026-11-28 22:00",
    ),
    "a week later": ("09:00-20:00", ["fri"], "2026-11-27T21:00:00", "2026-12-04 09:00"),
}


@pytest.mark.parametrize("hours, days, moment, expected", NEXT_OPEN.values(), ids=NEXT_OPEN.keys())
def test_the_next_opening_is_in_the_windows_zone(hours, days, moment, expected):
    opening = parse_window(f"{hours} {SAO_PAULO}", days).next_open(at(moment))
    assert f"{opening:%Y-%m-%d %H:%M}" == expected
    assert opening.utcoffset() is not None and opening.utcoffset().total_seconds() == -3 * 3600


WINDOWS = parse_window(f"09:00-20:00 {SAO_PAULO}", ["mon", "tue", "wed", "thu", "fri"])
NOT_AFTER = datetime.fromisoformat("2026-11-20T20:00:00-03:00")
CLOSED = {
    "no schedule at all": (Schedule(), "2026-11-27T12:00:00", None),
    "inside the window": (Schedule(WINDOWS), "2026-11-27T12:00:00", None),
    "before not_after": (Schedule(not_after=NOT_AFTER), "2026-11-20T19:59:59", None),
    "at not_after exactly": (Schedule(not_after=NOT_AFTER), "2026-11-20T20:00:00", None),
    "after not_after": (
        Schedule(not_after=NOT_AFTER),
        "2026-11-20T20:00:01",
        Closed(True, "the campaign expired at 2026-11-20T20:00:00-03:00 (send.not_after)"),
    ),
    "outside the window": (
        Schedule(WINDOWS),
        "2026-11-28T12:00:00",
        Closed(
            False,
            "outside the send window; it opens at 2026-11-30 09:00 -03",
            datetime.fromisoformat("2026-11-30T09:00:00-03:00"),
        ),
    ),
    "expired wins over a closed window": (
        Schedule(WINDOWS, NOT_AFTER),
        "2026-11-28T12:00:00",
        Closed(True, "the campaign expired at 2026-11-20T20:00:00-03:00 (send.not_after)"),
    ),
}


@pytest.mark.parametrize("schedule, moment, expected", CLOSED.values(), ids=CLOSED.keys())
def test_closed_says_why_not_now(schedule, moment, expected):
    assert schedule.closed(at(moment)) == expected


BAD_WINDOWS = {
    "not a window": ("9 to 5", "'9 to 5' is not a window like '09:00-20:00 America/Sao_Paulo'"),
    "hour out of range": ("09:00-25:00", "'09:00-25:00' has an hour or minute out of range"),
    "unknown zone": (
        "09:00-20:00 Mars/Olympus",
        "unknown time zone 'Mars/Olympus' (use an IANA name like America/Sao_Paulo)",
    ),
    "empty window": ("09:00-09:00", "'09:00-09:00' opens and closes at the same time"),
}


@pytest.mark.parametrize("text, message", BAD_WINDOWS.values(), ids=BAD_WINDOWS.keys())
def test_a_window_that_cannot_be_read_says_why(text, message):
    with pytest.raises(ValueError) as raised:
        parse_window(text, None)
    assert str(raised.value) == message


def test_a_window_without_a_zone_uses_local_time_on_every_day():
    assert parse_window("09:00-20:00", None) == Window(time(9), time(20), None, tuple(range(7)))


MOMENTS = {
    "with an offset": ("2026-12-01T20:00:00-03:00", "2026-12-01T23:00:00+00:00"),
    "in UTC": ("2026-12-01T20:00:00+00:00", "2026-12-01T20:00:00+00:00"),
}


@pytest.mark.parametrize("text, in_utc", MOMENTS.values(), ids=MOMENTS.keys())
def test_a_moment_is_read_with_its_offset(text, in_utc):
    assert parse_moment(text).astimezone(UTC).isoformat() == in_utc


def test_a_moment_without_an_offset_is_local_time_and_a_bad_one_says_how_to_write_it():
    assert parse_moment("2026-12-01T20:00:00").tzinfo is not None
    with pytest.raises(ValueError, match="is not a date and time like 2026-12-01T20:00:00-03:00"):
        parse_moment("next friday")
