"""How an earlier run's journal record decides a key now, and what counts as trouble."""

from __future__ import annotations

import pytest

from campaign_runner.delivery import StopRule
from campaign_runner.errors import ExitCode
from campaign_runner.ledger import Previous
from campaign_runner.plan import DeliveryPolicy, earlier_outcome
from campaign_runner.status import Status, format_counts

SENT = Previous("sent", False, "wamid.1", 200, None)
IN_DOUBT = Previous("sending", False, None, None, None)
FAILED_FOR_GOOD = Previous("failed", True, None, 400, "131026 Message Undeliverable")
FAILED_FOR_NOW = Previous("failed", False, None, 500, "An unexpected error occurred")

DEFAULT = DeliveryPolicy()
RETRY_FAILED = DeliveryPolicy(retry_failed=True)
RESEND_UNKNOWN = DeliveryPolicy(resend_unknown=True)


@pytest.mark.parametrize(
    ("previous", "policy", "status"),
    [
        (None, DEFAULT, None),
        (SENT, DEFAULT, Status.ALREADY_SENT),
        (SENT, RETRY_FAILED, Status.ALREADY_SENT),  # nothing sends a sent key again
        (SENT, RESEND_UNKNOWN, Status.ALREADY_SENT),
        (IN_DOUBT, DEFAULT, Status.UNKNOWN),
        (IN_DOUBT, RETRY_FAILED, Status.UNKNOWN),
        (IN_DOUBT, RESEND_UNKNOWN, None),
        (FAILED_FOR_GOOD, DEFAULT, Status.ALREADY_FAILED),
        (FAILED_FOR_GOOD, RESEND_UNKNOWN, Status.ALREADY_FAILED),
        (FAILED_FOR_GOOD, RETRY_FAILED, None),
        (FAILED_FOR_NOW, DEFAULT, None),  # a transient failure is tried again
    ],
)
def test_earlier_outcome(previous, policy, status):
    decided = earlier_outcome(previous, policy)
    assert (decided.status if decided else None) == status


def test_what_an_earlier_outcome_reports():
    sent = earlier_outcome(SENT, DEFAULT)
    assert sent and (sent.message_id, sent.http_status) == ("wamid.1", 200)
    failed = earlier_outcome(FAILED_FOR_GOOD, DEFAULT)
    assert failed and failed.error and "131026" in failed.error and "--retry-failed" in failed.error
    unknown = earlier_outcome(IN_DOUBT, DEFAULT)
    assert unknown and unknown.error and "--resend-unknown" in unknown.error


@pytest.mark.parametrize(
    ("status", "intentional", "attempted", "trouble"),
    [
        (Status.READY, True, False, False),
        (Status.SENT, True, True, False),
        (Status.DRY_RUN, True, True, False),
        (Status.ALREADY_SENT, True, False, False),
        (Status.ALREADY_FAILED, True, False, False),
        (Status.DUPLICATE, True, False, False),
        (Status.EXCLUDED, True, False, False),
        (Status.FAILED, False, True, True),
        (Status.INVALID, False, False, True),
        (Status.UNKNOWN, False, True, True),
        (Status.NOT_ATTEMPTED, False, False, False),
    ],
)
def test_status_vocabulary(status, intentional, attempted, trouble):
    assert (status.intentional, status.attempted, status.trouble) == (
        intentional,
        attempted,
        trouble,
    )


@pytest.mark.parametrize(
    ("counts", "text"),
    [
        ({}, "no recipients"),
        ({Status.INVALID: 2, Status.SENT: 98}, "sent 98, invalid 2"),
        ({Status.UNKNOWN: 1, Status.FAILED: 0, Status.DUPLICATE: 3}, "duplicate 3, unknown 1"),
    ],
)
def test_counts_are_listed_in_the_vocabulary_order(counts, text):
    assert format_counts(counts) == text


def test_the_first_stop_reason_wins_and_signals_are_told_apart():
    stop = StopRule()
    assert not stop.by_signal
    stop.request("interrupted by SIGTERM", ExitCode.SIGTERM)
    stop.request("aborted: the gateway answered 401", ExitCode.ABORTED)
    assert (stop.reason, stop.exit_code, stop.by_signal) == (
        "interrupted by SIGTERM",
        ExitCode.SIGTERM,
        True,
    )
