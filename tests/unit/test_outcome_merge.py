"""The merge rules for what Meta reports after "sent": the same statuses in any order, any
number of times, give the same record; nothing moves backwards. Tables, no ledger."""

from __future__ import annotations

import itertools

import pytest

from campaign_runner.webhooks.outcome import Outcome, merge
from campaign_runner.webhooks.payload import StatusUpdate


def at(second: int) -> str:
    return f"2026-11-28T10:00:{second:02d}.000+00:00"


SENT = StatusUpdate("w", "sent", at(1), pricing_category="marketing")
DELIVERED = StatusUpdate("w", "delivered", at(2))
READ = StatusUpdate("w", "read", at(3))
FAILED = StatusUpdate("w", "failed", at(4), code=131049, title="healthy ecosystem")
EARLIER_FAILURE = StatusUpdate("w", "failed", at(0), code=131026, title="not on WhatsApp")


def apply(*updates: StatusUpdate) -> Outcome:
    outcome = Outcome()
    for update in updates:
        outcome = merge(outcome, update)
    return outcome


@pytest.mark.parametrize(
    ("updates", "final", "reached", "code"),
    [
        ((), "accepted", None, None),
        ((SENT,), "sent", "sent", None),
        ((SENT, DELIVERED), "delivered", "delivered", None),
        ((READ,), "read", "read", None),  # a read without its delivered
        ((SENT, FAILED), "failed", "sent", 131049),
        ((FAILED, DELIVERED), "delivered", "delivered", 131049),  # delivered after failed
        ((DELIVERED, FAILED), "delivered", "delivered", 131049),  # the failure is kept
        ((READ, DELIVERED, SENT), "read", "read", None),  # never backwards
        ((FAILED, EARLIER_FAILURE), "failed", None, 131026),  # the first failure wins
    ],
)
def test_the_final_outcome_of_each_sequence(updates, final, reached, code):
    outcome = apply(*updates)
    assert (outcome.final, outcome.reached, outcome.code) == (final, reached, code)


@pytest.mark.parametrize(
    "updates", [(SENT, DELIVERED, READ, FAILED), (SENT, FAILED, EARLIER_FAILURE)]
)
def test_every_order_and_every_duplicate_gives_the_same_record(updates):
    expected = apply(*updates)
    for order in itertools.permutations(updates):
        assert apply(*order) == expected
        assert apply(*order, *order) == expected


def test_each_state_keeps_the_time_it_was_first_reached():
    late_read = StatusUpdate("w", "read", at(9))
    outcome = apply(READ, late_read, DELIVERED, SENT)
    assert (outcome.sent_at, outcome.delivered_at, outcome.read_at) == (at(1), at(2), at(3))
    assert outcome.pricing_category == "marketing"


def test_a_status_that_adds_nothing_gives_the_same_object_back():
    outcome = apply(SENT, DELIVERED)
    assert merge(outcome, SENT) is outcome
    assert merge(outcome, DELIVERED) is outcome
