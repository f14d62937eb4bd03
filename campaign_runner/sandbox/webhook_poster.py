"""Posting status webhooks in the background, with retries as Meta does, and a log of them.

The Messages API hands each accepted message to `WebhookPoster.accepted`, which only draws
its statuses (statuses.py) and schedules them: the gateway's answer never waits on a
webhook. On the same event loop, a releaser moves each status to the ready queue when it
is due, and CONNECTIONS workers post it, signed (status_webhook.py), over httpcore.
A message's next status is due no earlier than the answer to the first attempt of the one
before it, so statuses arrive in the order drawn (reversed too, when asked) however busy
the machine is; a retried status may still arrive after its successor, as with Meta.


    due ─► ready queue ─► worker: POST ─► 2xx           posted
                                       └► other answer,  again after FIRST_RETRY_S, doubled
                                          no answer      each time up to MAX_RETRY_S; given
                                                         up after `attempts` (echoed)

Memory stays bounded on a long run: at most MAX_PENDING statuses wait (a message beyond
that gets none, counted as dropped and echoed), and the log keeps the last MAX_LOGGED posts.
On shutdown every waiting status is posted at once, for up to SHUTDOWN_GRACE_S, without
retries; what is left is counted as dropped and said.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import ssl
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpcore

from campaign_runner.sandbox.status_webhook import Accepted, signed, status_payload
from campaign_runner.sandbox.statuses import Scheduled, StatusPlan, Webhooks

CONNECTIONS = 8  # posts in flight at once, as Meta opens several connections
POST_TIMEOUT_S = 5.0  # connect, write and read each; no answer by then is a failed attempt
MAX_ANSWER_READ = 64 * 1024  # the most of a receiver's answer read (its status is what counts)
MAX_PENDING = 200_000  # statuses scheduled, queued or in flight at once
MAX_LOGGED = 10_000  # the most recent finished posts kept for GET /webhooks
SHUTDOWN_GRACE_S = 3.0  # how long a stopping sandbox keeps posting what is still waiting
MAX_RETRY_S = 30.0  # the longest wait between two attempts (Meta's waits grow to hours)
DUPLICATE_GAP_S = 0.05  # a status Meta sends twice comes again this long after the first

POSTED, GAVE_UP, DROPPED = "posted", "gave-up", "dropped"
_TIMEOUTS = {"connect": POST_TIMEOUT_S, "read": POST_TIMEOUT_S, "write": POST_TIMEOUT_S}
_NO_ANSWER = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    OSError,
    ssl.SSLError,
)


@dataclass(slots=True)
class _Post:
    """One status on its way: what it is, its signed bytes once built, and how it went."""

    message: Accepted
    scheduled: Scheduled
    origin: float = 0.0  # the loop's clock when the message was accepted
    then: tuple[Scheduled, ...] = ()  # the message's statuses after this one
    body: bytes | None = None
    headers: list[tuple[bytes, bytes]] | None = None
    attempts: int = 0
    duplicate: bool = False  # the second posting of a status Meta sends twice


class PostLog:
    """The last MAX_LOGGED finished posts and the counts since start; read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._posts: deque[dict] = deque(maxlen=MAX_LOGGED)
        self.counts = {"pending": 0, POSTED: 0, GAVE_UP: 0, DROPPED: 0, "attempts": 0}

    def add(self, post: _Post, answer: int | str, outcome: str) -> None:
        """Keep how POST ended: its last ANSWER (a status, or why none came) and OUTCOME."""
        entry = {
            "wamid": post.message.wamid,
            "status": post.scheduled.status,
            "code": post.scheduled.code,  # Meta's code of a `failed`, else None
            "recipient_id": post.message.recipient_id,
            "duplicate": post.duplicate,
            "attempts": post.attempts,
            "answer": answer,
            "outcome": outcome,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        with self._lock:
            self._posts.append(entry)
            self.counts[outcome] += 1

    def count(self, name: str, by: int = 1) -> None:
        """Add BY to the count NAME."""
        with self._lock:
            self.counts[name] += by

    def posts(self, limit: int | None = None) -> list[dict]:
        """Copies of the LIMIT most recent finished posts (all kept if None), oldest first."""
        with self._lock:
            posts = [dict(entry) for entry in self._posts]
        return posts[-limit:] if limit else ([] if limit == 0 else posts)

    def snapshot(self) -> dict[str, int]:
        """The counts: pending, posted, gave-up, dropped, attempts."""
        with self._lock:
            return dict(self.counts)


class WebhookPoster:
    """Schedules the statuses of each accepted message and posts them (see the module)."""

    def __init__(self, hooks: Webhooks, say: Callable[[str], None]):
        self.hooks = hooks
        self.plan = StatusPlan(hooks)
        self.log = PostLog()
        self._say = say
        self._waiting: list[tuple[float, int, _Post]] = []  # a heap, by due time
        self._order = itertools.count()
        self._ready: asyncio.Queue[_Post] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._closing = False
        self._told_full = False

    def accepted(self, record: dict) -> None:
        """Schedule the statuses of the message the sandbox just accepted (its RECORD).
        Called by the Messages API on the loop; never raises into the gateway's answer."""
        try:
            statuses = self.plan.statuses()  # drawn even when dropped: the pattern holds
            if self.log.counts["pending"] + 2 * len(statuses) > MAX_PENDING:
                self._drop_for_backlog(record, len(statuses))
                return
            message = Accepted.from_record(record, time.time())
            now = asyncio.get_running_loop().time()
            self.log.count("pending", len(statuses))
            first = _Post(message, statuses[0], now, tuple(statuses[1:]))
            self._schedule(first, now + first.scheduled.post_after_s, new=False)
        except Exception as exc:  # a sandbox bug must not turn an accepted message into a 500
            self._say(f"webhook sandbox-error {record.get('id')} {exc!r}")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Post in the background while inside; on leaving, flush for SHUTDOWN_GRACE_S."""
        # Made on this loop: a Sandbox started again runs on a new one.
        self._ready, self._wake, self._closing = asyncio.Queue(), asyncio.Event(), False
        async with httpcore.AsyncConnectionPool(max_connections=CONNECTIONS) as pool:
            tasks = [asyncio.create_task(self._release())]
            tasks += [asyncio.create_task(self._work(pool)) for _ in range(CONNECTIONS)]
            try:
                yield
            finally:
                await self._flush()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._say_dropped()

    def _schedule(self, post: _Post, due: float, new: bool = True) -> None:
        if new:
            self.log.count("pending")
        if self._closing:
            self._ready.put_nowait(post)
            return
        heapq.heappush(self._waiting, (due, next(self._order), post))
        if self._waiting[0][2] is post:  # a new earliest: the releaser sleeps too long
            self._wake.set()

    async def _release(self) -> None:
        """Move each waiting status to the ready queue when it is due."""
        loop = asyncio.get_running_loop()
        while True:
            while self._waiting and self._waiting[0][0] <= loop.time():
                self._ready.put_nowait(heapq.heappop(self._waiting)[2])
            wait = self._waiting[0][0] - loop.time() if self._waiting else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _work(self, pool: httpcore.AsyncConnectionPool) -> None:
        while True:
            post = await self._ready.get()
            try:
                await self._attempt(pool, post)
            except Exception as exc:  # a sandbox bug must not stop the posting
                self._finish(post, f"sandbox error {exc!r}", GAVE_UP)
                self._next(post)
            finally:
                self._ready.task_done()

    async def _attempt(self, pool: httpcore.AsyncConnectionPool, post: _Post) -> None:
        """Post once; then the post is done, or scheduled again after its backoff."""
        if post.body is None:
            self._sign(post)
        post.attempts += 1
        self.log.count("attempts")
        answer = await _post(pool, self.hooks.url, post)
        self._next(post)
        if isinstance(answer, int) and 200 <= answer < 300:
            self._finish(post, answer, POSTED)
            return
        what = f"webhook {post.scheduled.status} {post.message.wamid} -> {answer}"
        if self._closing:
            self._finish(post, answer, DROPPED)
            self._say(f"{what}: dropped, the sandbox is stopping")
        elif post.attempts >= self.hooks.attempts:
            self._finish(post, answer, GAVE_UP)
            self._say(f"{what}: gave up after {post.attempts} attempts")
        else:
            wait = min(self.hooks.first_retry_s * 2 ** (post.attempts - 1), MAX_RETRY_S)
            self._say(f"{what}: attempt {post.attempts + 1} in {wait:g} s")
            self._schedule(post, asyncio.get_running_loop().time() + wait, new=False)

    def _sign(self, post: _Post) -> None:
        """Build POST's bytes once, at its first attempt (its duplicate shares them)."""
        payload = status_payload(post.message, post.scheduled, time.time())
        post.body, post.headers = signed(payload, self.hooks.secret)
        if post.scheduled.twice and not post.duplicate:
            twin = _Post(post.message, post.scheduled, body=post.body, headers=post.headers)
            twin.duplicate = True
            self._schedule(twin, asyncio.get_running_loop().time() + DUPLICATE_GAP_S)

    def _next(self, post: _Post) -> None:
        """Schedule the status after POST's, once POST had its first answer (only once)."""
        if not post.then:
            return
        following = _Post(post.message, post.then[0], post.origin, post.then[1:])
        post.then = ()
        due = max(post.origin + following.scheduled.post_after_s, asyncio.get_running_loop().time())
        self._schedule(following, due, new=False)

    def _finish(self, post: _Post, answer: int | str, outcome: str) -> None:
        self.log.count("pending", -1)
        self.log.add(post, answer, outcome)
        if outcome == POSTED:
            self._say(f"webhook {post.scheduled.status} {post.message.wamid} -> {answer}")

    async def _flush(self) -> None:
        """Post everything still waiting now, for up to SHUTDOWN_GRACE_S, without retries."""
        self._closing = True
        while self._waiting:
            self._ready.put_nowait(heapq.heappop(self._waiting)[2])
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_GRACE_S):
                await self._ready.join()

    def _drop_for_backlog(self, record: dict, statuses: int) -> None:
        self.log.count(DROPPED, statuses)
        if not self._told_full:
            self._told_full = True
            self._say(
                f"webhook backlog full ({MAX_PENDING} statuses waiting): the statuses of "
                f"{record.get('id')} and of later messages are dropped until it drains"
            )

    def _say_dropped(self) -> None:
        left = self.log.counts["pending"]
        if left:
            self.log.count(DROPPED, left)
            self.log.count("pending", -left)
        counts = self.log.snapshot()
        line = (
            f"webhooks: {counts[POSTED]} posted, {counts[GAVE_UP]} given up, "
            f"{counts[DROPPED]} dropped"
        )
        if left:
            line += f" ({left} still waiting after {SHUTDOWN_GRACE_S:g} s of stopping)"
        self._say(line)


async def _post(pool: httpcore.AsyncConnectionPool, url: str, post: _Post) -> int | str:
    """One POST of POST's bytes: the answer's HTTP status, or why no answer came."""
    assert post.body is not None and post.headers is not None
    try:
        async with pool.stream(
            "POST", url, headers=post.headers, content=post.body, extensions={"timeout": _TIMEOUTS}
        ) as response:
            read = 0
            async for chunk in response.aiter_stream():
                read += len(chunk)
                if read > MAX_ANSWER_READ:
                    break  # its status is what counts; the connection is closed unread
            return response.status
    except httpcore.TimeoutException:
        return f"no answer within {POST_TIMEOUT_S:g} s"
    except _NO_ANSWER as exc:
        return f"no answer ({type(exc).__name__})"
