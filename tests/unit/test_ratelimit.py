"""The token bucket and the sender's pace, on a clock the test moves: no sleeping."""

from __future__ import annotations

import asyncio

import pytest

from campaign_runner import ratelimit
from campaign_runner.ratelimit import RateLimiter, TokenBucket


@pytest.mark.parametrize(
    ("rate", "capacity", "tokens", "takes"),
    [
        # A full bucket of 2/s lets two through at once, then one every half second.
        (2.0, None, None, [(0.0, True), (0.0, True), (0.0, False), (0.25, False), (0.5, True)]),
        # Capacity is a second's worth: a long quiet spell does not bank more than that.
        (2.0, None, None, [(0.0, True), (0.0, True), (60.0, True), (60.0, True), (60.0, False)]),
        # Below 1/s the capacity is still one token.
        (0.5, None, None, [(0.0, True), (0.0, False), (1.9, False), (2.1, True)]),
        # Starting with one token (the sender's gentle start) instead of a full bucket.
        (10.0, None, 1.0, [(0.0, True), (0.0, False), (0.2, True), (0.2, True), (0.2, False)]),
        # An explicit capacity.
        (1.0, 3.0, 0.0, [(3.0, True), (3.0, True), (3.0, True), (3.0, False)]),
    ],
)
def test_a_bucket_refills_continuously_up_to_its_capacity(rate, capacity, tokens, takes):
    bucket = TokenBucket(rate, 0.0, capacity=capacity, tokens=tokens)
    assert [bucket.take(now) for now, _ in takes] == [allowed for _, allowed in takes]


def test_an_empty_bucket_says_how_long_until_the_next_token():
    bucket = TokenBucket(4.0, 0.0, tokens=0.0)
    assert not bucket.take(0.1)  # 0.4 tokens by now
    assert bucket.wait_s() == pytest.approx(0.15)
    assert bucket.take(0.3)
    assert bucket.tokens == pytest.approx(0.2)


def test_a_refused_take_takes_nothing():
    bucket = TokenBucket(1.0, 0.0, tokens=0.5)
    assert not bucket.take(0.0)
    assert bucket.tokens == pytest.approx(0.5)


class Clock:
    """A clock the test moves; `sleep` moves it instead of waiting."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_pace_starts_with_one_token_then_spaces_sends():
    clock = Clock()
    limiter = RateLimiter(4.0, clock)
    assert limiter.wait_s(clock.now) == 0.0
    assert limiter.wait_s(clock.now) == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.wait_s(clock.now) == 0.0


def test_without_a_rate_nothing_waits_but_a_pause():
    clock = Clock()
    limiter = RateLimiter(None, clock)
    assert limiter.rate is None
    assert [limiter.wait_s(clock.now) for _ in range(100)] == [0.0] * 100
    limiter.pause(3.0)
    assert limiter.rate is None
    assert limiter.wait_s(clock.now) == pytest.approx(3.0)
    assert limiter.wait_s(clock.now + 3.0) == 0.0


@pytest.mark.parametrize(
    ("rate", "pauses", "expected"),
    [(8.0, 1, 4.0), (8.0, 3, 1.0), (0.3, 1, 0.15), (0.3, 2, 0.1), (0.3, 5, 0.1)],
)
def test_a_pause_halves_the_pace_down_to_a_crawl(rate, pauses, expected):
    limiter = RateLimiter(rate, Clock())
    for _ in range(pauses):
        limiter.pause(1.0)
    assert limiter.rate == pytest.approx(expected)


def test_pauses_hold_back_until_the_latest_one_ends():
    clock = Clock()
    limiter = RateLimiter(None, clock)
    limiter.pause(5.0)
    limiter.pause(2.0)  # shorter: does not cut the first one short
    assert limiter.wait_s(clock.now) == pytest.approx(5.0)
    clock.now += 1.0
    limiter.pause(10.0)
    assert limiter.wait_s(clock.now) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("start", "target", "successes", "expected"),
    [
        (5.0, 10.0, 1, 5.1),
        (5.0, 10.0, 2, 5.202),
        (9.9, 10.0, 1, 10.0),  # never past the configured pace
        (5.0, 10.0, 100, 10.0),
        (5.0, None, 10, 5.0),  # no target: nothing to recover toward
    ],
)
def test_successes_bring_the_pace_back_toward_the_configured_one(
    start, target, successes, expected
):
    limiter = RateLimiter(start, Clock())
    for _ in range(successes):
        limiter.recover(target)
    assert limiter.rate == pytest.approx(expected)


def test_recovering_without_a_rate_keeps_no_rate():
    limiter = RateLimiter(None, Clock())
    limiter.recover(10.0)
    assert limiter.rate is None


def test_acquire_sleeps_out_the_pause_and_then_the_pace(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ratelimit.asyncio, "sleep", clock.sleep)
    limiter = RateLimiter(2.0, clock)

    async def four_sends() -> None:
        await limiter.acquire()  # the starting token
        limiter.pause(3.0)  # a 429: three seconds for everyone, and 1/s from now on
        await limiter.acquire()
        await limiter.acquire()
        await limiter.acquire()

    asyncio.run(four_sends())
    # 3 s of pause refilled the bucket (capacity 2): two go at once, the next at the new 1/s.
    assert clock.slept == [pytest.approx(3.0), pytest.approx(1.0)]
    assert clock.now == pytest.approx(104.0)
