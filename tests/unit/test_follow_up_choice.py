"""The follow-up's choice for one row, table by table: the delivery's final outcome in `of`
against the outcomes wanted, Meta's codes, and `after` (follow_up.verdict), and the
section's duration (parse_after)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from campaign_runner.follow_up import FollowUp, outcome_time, parse_after, verdict
from campaign_runner.ledger import DeliveryOutcome
from campaign_runner.rules import stamp
from campaign_runner.status import Status
from campaign_runner.webhooks.outcome import Outcome

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SENT_AT = stamp(NOW - timedelta(days=5))


def ago(**delta: float) -> str:
    return stamp(NOW - timedelta(**delta))


def delivery(status: str = "sent", permanent: bool = False, **outcome) -> DeliveryOutcome:
    """A delivery of `sale` as the ledger reads it back."""
    return DeliveryOutcome(
        "sale:+5511948489500",
        2,
        "+5511948489500",
        status,
        "wamid.1" if status == "sent" else None,
        None,
        SENT_AT,
        Outcome(**outcome),
        permanent,
    )


RETRY = FollowUp("sale", ("failed",), frozenset({131049}), timedelta(hours=24), "24h")
REMINDER = FollowUp("sale", ("delivered",), after=timedelta(hours=48), after_text="48h")
ANY_FAILURE = FollowUp("sale", ("failed",))
SEVERAL = FollowUp("sale", ("failed", "accepted"), frozenset({131049, 131026}))

FAILED_LONG_AGO = delivery(failed_at=ago(days=2), code=131049)
FAILED_NOW = delivery(failed_at=ago(hours=1), code=131049)
NOT_ON_WHATSAPP = delivery(failed_at=ago(days=2), code=131026)
DELIVERED_3_DAYS = delivery(reached="delivered", sent_at=ago(days=3), delivered_at=ago(days=3))
DELIVERED_1_DAY = delivery(reached="delivered", delivered_at=ago(days=1))
READ = delivery(reached="read", delivered_at=ago(days=3), read_at=ago(days=2))
DELIVERED_THEN_FAILED = delivery(
    reached="delivered", delivered_at=ago(days=3), failed_at=ago(days=2), code=131049
)
ACCEPTED = delivery()
SENT_ONLY = delivery(reached="sent", sent_at=ago(days=1))
REFUSED_AT_ONCE = delivery("failed", permanent=True)
FAILED_FOR_NOW = delivery("failed", permanent=False)
IN_DOUBT = delivery("sending")

CASES = {
    "failed 131049 long ago: sent": (RETRY, FAILED_LONG_AGO, Status.READY, None),
    "failed 131049 an hour ago: deferred": (
        RETRY,
        FAILED_NOW,
        Status.DEFERRED,
        f"deferred until {stamp(NOW + timedelta(hours=23))}: follow-up of sale: failed 131049 "
        f"at {ago(hours=1)}, sent 24h after it",
    ),
    "another code": (
        RETRY,
        NOT_ON_WHATSAPP,
        Status.NOT_SELECTED,
        "follow-up of sale: its outcome is failed 131026, not failed 131049",
    ),
    "read": (
        RETRY,
        READ,
        Status.NOT_SELECTED,
        "follow-up of sale: its outcome is read, not failed 131049",
    ),
    "never sent": (RETRY, None, Status.NOT_SELECTED, "follow-up of sale: never sent in sale"),
    "delivered, and a failure after it: the person has it": (
        RETRY,
        DELIVERED_THEN_FAILED,
        Status.NOT_SELECTED,
        "follow-up of sale: its outcome is delivered, not failed 131049",
    ),
    "refused by the gateway at once: no code recorded": (
        RETRY,
        REFUSED_AT_ONCE,
        Status.NOT_SELECTED,
        "follow-up of sale: its outcome is failed (no Meta error code recorded), not failed 131049",
    ),
    "any failure, refused at once long ago": (ANY_FAILURE, REFUSED_AT_ONCE, Status.READY, None),
    "a failure the campaign retries itself": (
        ANY_FAILURE,
        FAILED_FOR_NOW,
        Status.NOT_SELECTED,
        "follow-up of sale: its send failed for now and sale's next run tries it again, "
        "so it is not failed",
    ),
    "delivered 3 days ago, not read: reminded": (REMINDER, DELIVERED_3_DAYS, Status.READY, None),
    "delivered yesterday: not yet": (
        REMINDER,
        DELIVERED_1_DAY,
        Status.DEFERRED,
        f"deferred until {stamp(NOW + timedelta(days=1))}: follow-up of sale: delivered at "
        f"{ago(days=1)}, sent 48h after it",
    ),
    "read: no reminder": (
        REMINDER,
        READ,
        Status.NOT_SELECTED,
        "follow-up of sale: its outcome is read, not delivered",
    ),
    "sent, never delivered": (
        REMINDER,
        SENT_ONLY,
        Status.NOT_SELECTED,
        "follow-up of sale: its outcome is sent, not delivered",
    ),
    "in doubt": (
        REMINDER,
        IN_DOUBT,
        Status.NOT_SELECTED,
        "follow-up of sale: its outcome is unknown, not delivered",
    ),
    "one of several codes": (SEVERAL, NOT_ON_WHATSAPP, Status.READY, None),
    "one of several outcomes": (SEVERAL, ACCEPTED, Status.READY, None),
    "none of several": (
        SEVERAL,
        SENT_ONLY,
        Status.NOT_SELECTED,
        "follow-up of sale: its outcome is sent, not failed (131026 or 131049) or accepted",
    ),
}


@pytest.mark.parametrize("follow_up, found, status, reason", CASES.values(), ids=CASES.keys())
def test_the_choice_for_one_row(follow_up, found, status, reason):
    choice = verdict(follow_up, found, NOW)
    assert (choice.status, choice.reason) == (status, reason)
    assert (choice.until is not None) == (status is Status.DEFERRED)


def test_the_wait_starts_at_the_outcome_itself():
    assert outcome_time(FAILED_NOW) == NOW - timedelta(hours=1)
    assert outcome_time(READ) == NOW - timedelta(days=2)
    assert outcome_time(DELIVERED_THEN_FAILED) == NOW - timedelta(days=3)  # delivered wins
    assert outcome_time(ACCEPTED) == NOW - timedelta(days=5)  # when the send was recorded
    assert outcome_time(SENT_ONLY) == NOW - timedelta(days=1)


@pytest.mark.parametrize(
    "text, after",
    [("24h", timedelta(hours=24)), ("2d", timedelta(days=2)), ("366d", timedelta(days=366))],
)
def test_a_duration_reads_as_a_frequency_caps_window(text, after):
    assert parse_after(text) == after


@pytest.mark.parametrize(
    "text, message",
    [
        ("24", "'24' is not a duration like 24h or 2d"),
        ("0h", "'0h' is not a duration like 24h or 2d"),
        ("1.5d", "'1.5d' is not a duration like 24h or 2d"),
        ("367d", "'367d': at most 366 days"),
        ("8785h", "'8785h': at most 366 days"),
    ],
)
def test_a_duration_that_cannot_be_read_says_why(text, message):
    with pytest.raises(ValueError) as error:
        parse_after(text)
    assert str(error.value) == message
