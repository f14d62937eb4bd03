"""The sandbox's status webhooks: which settings it refuses, how statuses are drawn and
timed, and the body of one status."""

from __future__ import annotations

import json

import pytest

from campaign_runner.sandbox.status_webhook import Accepted, signed, status_payload
from campaign_runner.sandbox.statuses import (
    OUT_OF_ORDER_GAP_S,
    Scheduled,
    StatusPlan,
    Webhooks,
    webhook_problems,
)
from campaign_runner.webhooks.payload import parse_payload
from campaign_runner.webhooks.signature import signature_valid

URL = "http://127.0.0.1:8000/webhook"
SECRET = "unit-secret-1234"


def hooks(**settings) -> Webhooks:
    return Webhooks(**{"url": URL, "secret": SECRET, **settings})


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"url": "ftp://h/x"}, "--webhook-url must start with http:// or https://, not 'ftp:'"),
        ({"url": "localhost:8000/x"}, "must start with http:// or https://, not 'localhost:'"),
        ({"url": ""}, "--webhook-url must start with http:// or https://, e.g."),
        ({"url": "https:///x"}, "--webhook-url: no host"),
        ({"url": "http://a b/x"}, "--webhook-url: contains a space"),
        ({"url": "http://u:p@h/x"}, "--webhook-url: a user or password in the URL is not sent"),
        ({"url": "http://h:70000/x"}, "--webhook-url: Port out of range"),
        ({"secret": ""}, "--webhook-secret: the app secret is empty"),
        ({"secret": " \t"}, "--webhook-secret: the app secret is empty"),
        ({"sent_after_s": -1}, "--sent-after: -1 seconds; it must not be negative"),
        ({"delivered_after_s": -0.5}, "--delivered-after: -0.5 seconds"),
        ({"read_after_s": float("nan")}, "--read-after: nan seconds"),
        ({"first_retry_s": -1}, "first_retry_s: -1 seconds"),
        ({"read_share": 1.5}, "--read-share: share 1.5; it must be between 0 and 1"),
        ({"delivered_share": -0.1}, "--delivered-share: share -0.1"),
        ({"duplicates": 2}, "--webhook-duplicates: share 2"),
        ({"out_of_order": -1}, "--webhook-out-of-order: share -1"),
        ({"fail_later": {131026: 1.2}}, "--fail-later 131026: share 1.2"),
        ({"fail_later": {999999: 0.1}}, "--fail-later 999999: not a Meta error code"),
        ({"fail_later": {131064: 0.1}}, "--fail-later 131064: not a Meta error code"),  # no title
        ({"fail_later": {131026: 0.7, 131050: 0.4}}, "--fail-later: the shares add up to 1.1"),
        (
            {"fail_later": {131026: 0.5}, "delivered_share": 0.6},
            "--delivered-share: 0.6 and --fail-later's 0.5 add up to 1.1; at most 1 allowed",
        ),
        ({"attempts": 0}, "--webhook-attempts: 0; it must be 1 to 100"),
        ({"attempts": 101}, "--webhook-attempts: 101"),
    ],
)
def test_webhook_settings_that_cannot_be_used_are_refused(settings, problem):
    with pytest.raises(ValueError) as refused:
        hooks(**settings)
    assert problem in str(refused.value)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"url": "https://example.org:8443/hooks/wa?token=x"},
        {"url": "http://[::1]:9000/w"},
        {"fail_later": {131026: 0.5, 131050: 0.5}, "delivered_share": 0},
        {"read_share": 1, "duplicates": 1, "out_of_order": 1, "attempts": 100},
        {"sent_after_s": 5, "delivered_after_s": 0, "read_after_s": 0},
    ],
)
def test_webhook_settings_that_can_be_used_have_no_problems(settings):
    assert webhook_problems(hooks(**settings)) == []


def test_the_secret_and_the_query_never_show():
    configured = hooks(url="https://example.org/w?token=abc")
    assert SECRET not in repr(configured)
    assert "abc" not in configured.describe() and SECRET not in configured.describe()
    assert configured.describe().startswith(
        "posting signed status webhooks to https://example.org/w: sent after 0 s"
    )


def test_by_default_every_message_is_sent_then_delivered_and_half_are_read():
    plan = StatusPlan(hooks(seed=1))
    drawn = [plan.statuses() for _ in range(200)]
    sequences = {tuple(s.status for s in statuses) for statuses in drawn}
    assert sequences == {("sent", "delivered"), ("sent", "delivered", "read")}
    read = sum(len(statuses) == 3 for statuses in drawn)
    assert 70 <= read <= 130
    assert drawn[0][:2] == [
        Scheduled(0.0, "sent", 0.0),
        Scheduled(1.0, "delivered", 1.0),
    ]


def test_a_status_never_comes_before_the_one_before_it():
    plan = StatusPlan(hooks(sent_after_s=2, delivered_after_s=1, read_after_s=0.5, read_share=1))
    assert [(s.status, s.post_after_s) for s in plan.statuses()] == [
        ("sent", 2),
        ("delivered", 2),
        ("read", 2),
    ]


def test_shares_decide_the_fates():
    failing = StatusPlan(hooks(fail_later={131049: 1.0}))
    assert [(s.status, s.code) for s in failing.statuses()] == [("sent", None), ("failed", 131049)]
    only_sent = StatusPlan(hooks(delivered_share=0))
    assert [s.status for s in only_sent.statuses()] == ["sent"]
    mixed = StatusPlan(hooks(fail_later={131026: 0.2}, delivered_share=0.5, seed=3))
    ends = [mixed.statuses()[-1] for _ in range(1000)]
    assert 150 <= sum(s.status == "failed" for s in ends) <= 250
    assert 230 <= sum(s.status == "sent" for s in ends) <= 370  # neither failed nor delivered


def test_out_of_order_posts_the_newest_first_after_the_last_event():
    plan = StatusPlan(hooks(read_share=1, out_of_order=1, delivered_after_s=1, read_after_s=3))
    assert plan.statuses() == [
        Scheduled(3, "read", 3),
        Scheduled(3 + OUT_OF_ORDER_GAP_S, "delivered", 1),
        Scheduled(3 + 2 * OUT_OF_ORDER_GAP_S, "sent", 0),
    ]


def test_duplicates_mark_each_status_to_be_posted_twice():
    assert all(s.twice for s in StatusPlan(hooks(duplicates=1)).statuses())
    assert not any(s.twice for s in StatusPlan(hooks()).statuses())


def test_a_seed_repeats_the_draws_and_another_seed_does_not():
    settings = {"fail_later": {131026: 0.3}, "duplicates": 0.3, "out_of_order": 0.3}
    one, two, other = (StatusPlan(hooks(seed=s, **settings)) for s in (7, 7, 8))
    first = [one.statuses() for _ in range(50)]
    assert first == [two.statuses() for _ in range(50)]
    assert first != [other.statuses() for _ in range(50)]


def test_one_status_reads_back_with_no_problems_and_its_signature_holds():
    message = Accepted("wamid.ABC", "5511900000001", 1_800_000_000.0, callback_data="k:1")
    for scheduled in (Scheduled(0, "sent", 0), Scheduled(1, "failed", 1, code=131050)):
        payload = status_payload(message, scheduled, now=1_800_000_000.5)
        events = parse_payload(payload)
        assert events.problems == [] and events.ignored == 0
        (status,) = events.statuses
        assert status.message_id == "wamid.ABC" and status.recipient == "+5511900000001"
        assert status.callback_data == "k:1"
        assert status.at.startswith("2027-01-15T08:00:00")  # never later than now
        body, headers = signed(payload, SECRET)
        assert json.loads(body) == payload
        assert signature_valid(body, dict(headers)[b"X-Hub-Signature-256"].decode(), SECRET)
    assert (status.code, status.title) == (131050, "Unable to deliver the message")
