"""Rate limits: one token bucket, the sender's pace built on it, and waits a stop cuts short.

`TokenBucket` is pure: every call is given the time, so a test drives it with a table of
instants. The sandbox uses it as Kong's per-second limit (refuse when empty); the sender's
`RateLimiter` waits on it instead, and slows the whole run down when the gateway throttles.
`Stopping` ends every wait of the run at once when it stops (a signal, an abort): a run
paced at 2/min, or waiting out a 429, stops as soon as it is asked to.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

_MIN_RATE_PER_S = 0.1  # however often the gateway throttles, the run keeps crawling on
_SHARED_SYNC_S = 0.1  # a worker reserves this long's worth of slots of a shared pace
_RECOVERY_STEP = 1.02  # each success brings a halved pace 2% back toward the configured one


class TokenBucket:
    """RATE_PER_S tokens a second, refilled continuously up to CAPACITY (by default one
    second's worth, at least one), so a burst is judged the same wherever it falls."""

    def __init__(
        self,
        rate_per_s: float,
        now: float,
        *,
        capacity: float | None = None,
        tokens: float | None = None,
    ):
        self.rate_per_s = rate_per_s
        self.capacity = max(1.0, rate_per_s) if capacity is None else capacity
        self.tokens = self.capacity if tokens is None else tokens
        self.updated = now

    def take(self, now: float) -> bool:
        """Take one token if there is one at NOW; False (and nothing taken) when empty."""
        elapsed = now - self.updated
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait_s(self) -> float:
        """Seconds until the next token, as of the last `take`."""
        return max(0.0, (1 - self.tokens) / self.rate_per_s)


# Sleep for the given seconds; False when something cut the sleep short.
Sleep = Callable[[float], Awaitable[bool]]


async def sleep_through(seconds: float) -> bool:
    """Sleep SECONDS, never cut short (a `Sleep` for code that has no stop to obey)."""
    await asyncio.sleep(seconds)
    return True


class Stopping:
    """The run's stop as its waits see it: once `set`, every `sleep` ends at once."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """The run is stopping: end every wait now, and every later one before it starts."""
        self._event.set()

    def is_set(self) -> bool:
        """True once the run is stopping."""
        return self._event.is_set()

    async def sleep(self, seconds: float) -> bool:
        """Sleep SECONDS unless the run stops first; True when the whole time passed."""
        if self._event.is_set():
            return False
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return True
        return False


class SharedPace(Protocol):
    """The pace of a campaign whose workers share it (through their ledger)."""

    def reserve(self, count: int, rate_per_s: float | None) -> tuple[float, float]:
        """Reserve COUNT send slots at RATE_PER_S for the campaign as a whole (none to
        reserve: COUNT 0 or no rate); (seconds until the first slot, seconds every worker
        must still hold back for a throttle)."""

    def pause(self, seconds: float) -> None:
        """Hold every worker of the campaign back for SECONDS."""


class RateLimiter:
    """The sender's pace over the whole run: `send.rate` as a token bucket, and `pause`,
    which holds every sender back (and halves the pace) when the gateway throttles.

    With SHARED (workers of one campaign on a PostgreSQL ledger), `send.rate` holds for the
    campaign as a whole: slots are reserved from the shared pace, a tenth of a second's
    worth at a time, and a pause any worker takes holds them all back. Its waits go through
    SLEEP, so a stop cuts them short (and a test moves CLOCK instead).
    """

    def __init__(
        self,
        rate_per_s: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = sleep_through,
        shared: SharedPace | None = None,
    ):
        self._clock = clock
        self._sleep = sleep
        # Start with one token: no burst of a whole second's quota at once.
        self.bucket = TokenBucket(rate_per_s, clock(), tokens=1.0) if rate_per_s else None
        self.paused_until = 0.0
        self._lock = asyncio.Lock()
        self.shared = shared
        self._slots: deque[float] = deque()  # reserved send times, on this clock
        self._synced = float("-inf")  # when the shared pause was last read

    @property
    def rate(self) -> float | None:
        """The pace now, in messages a second (None: as fast as the gateway answers)."""
        return self.bucket.rate_per_s if self.bucket is not None else None

    def pause(self, seconds: float) -> None:
        """Hold every sender back for SECONDS, and halve the pace if one is set."""
        self.paused_until = max(self.paused_until, self._clock() + seconds)
        if self.bucket is not None:
            self.bucket.rate_per_s = max(self.bucket.rate_per_s / 2, _MIN_RATE_PER_S)
        if self.shared is not None:
            self.shared.pause(seconds)

    def recover(self, target: float | None) -> None:
        """After a success, creep back toward the configured pace TARGET."""
        bucket = self.bucket
        if bucket is not None and target and bucket.rate_per_s < target:
            bucket.rate_per_s = min(target, bucket.rate_per_s * _RECOVERY_STEP)

    def wait_s(self, now: float) -> float:
        """Seconds to wait at NOW before sending; 0.0 means go, and a token was taken."""
        if self.shared is not None:
            self._sync(now)
        if now < self.paused_until:
            return self.paused_until - now
        if self.shared is not None and self.bucket is not None:
            return self._shared_slot(now)
        if self.bucket is None or self.bucket.take(now):
            return 0.0
        return self.bucket.wait_s()

    def _sync(self, now: float) -> None:
        """Read the shared pause (and reserve slots when these run out), at most every
        `_SHARED_SYNC_S`: a throttle one worker meets holds every worker back soon after."""
        assert self.shared is not None
        rate = self.bucket.rate_per_s if self.bucket is not None else None
        if self._slots and now - self._synced < _SHARED_SYNC_S:
            return
        if not rate and now - self._synced < _SHARED_SYNC_S:
            return
        count = 0 if self._slots or not rate else max(1, math.ceil(rate * _SHARED_SYNC_S))
        self._synced = now
        try:
            first_in, paused_for = self.shared.reserve(count, rate)
        except Exception:  # the ledger's own errors stop the run where it is written
            return
        self.paused_until = max(self.paused_until, now + paused_for)
        if count and rate:
            self._slots.extend(now + first_in + i / rate for i in range(count))

    def _shared_slot(self, now: float) -> float:
        """Take the next reserved slot when its time has come; else the wait until it."""
        if not self._slots:
            return _SHARED_SYNC_S  # none reserved (the shared pace could not be read)
        if self._slots[0] <= now:
            self._slots.popleft()
            return 0.0
        return self._slots[0] - now

    async def acquire(self) -> bool:
        """Wait for a token (and for any pause to end); False: a stop cut the wait short,
        and no token was taken."""
        async with self._lock:
            while (delay := self.wait_s(self._clock())) > 0:
                if not await self._sleep(delay):
                    return False
        return True
