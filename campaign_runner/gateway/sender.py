"""The sender: POST a body to the gateway until it is sent, fails for good, or retries run out.

One layer per policy, as in httpx's client:

    Sender.send                  encode the body and headers once
    -> _send_handling_retries    pace every attempt; retry, back off, slow the run down
    -> _send_once                one POST on one connection -> an `Answer` (answers.py)
    -> Connection.exchange       the wire, bounded in time and size (transport.py)

Naming: an `Answer` is what one attempt came back with; an `Outcome` is how one
recipient's sending ended, after every attempt; its `Progress` is how far it got, which
decides how it ends when the run stops in the middle (`cut_short`).

Every wait (the pace, a pause after a 429, a backoff) ends at once when the run stops
(`Stopping`, ratelimit.py). A gateway asking to wait longer than MAX_RETRY_AFTER_S is
not waited out: the run stops, and the rest is left for a later run.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import certifi
import httpcore

from campaign_runner.gateway.answers import Answer, AnswerKind, classify
from campaign_runner.gateway.settings import SendSettings
from campaign_runner.gateway.transport import (
    TRANSPORT_FAILURES,
    AsyncConnection,
    BlockingConnection,
    Connection,
    Headers,
    failure_answer,
    host_header,
    post_request,
)
from campaign_runner.ratelimit import RateLimiter, SharedPace, Stopping
from campaign_runner.status import Status

_MAX_BACKOFF_S = 60.0
# The longest Retry-After (or RateLimit-Reset) waited out. A gateway asking for longer is
# not retried in this run: it stops, the recipient and the rest `not-attempted`, and the
# reason says when to run again (a cron run then picks up where this one stopped).
MAX_RETRY_AFTER_S = 300.0


def encode_body(body: dict) -> bytes:
    """BODY as a request carries it: compact JSON, UTF-8, non-ASCII text as written."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Outcome:
    """How one recipient's sending ended: SENT, FAILED, UNKNOWN (sent, never answered) or
    NOT_ATTEMPTED (the run stopped before a request of it could reach the gateway)."""

    status: Status
    message_id: str | None = None
    http_status: int | None = None
    error: str | None = None
    permanent: bool = False  # failed for good: a re-run does not try again
    abort: str | None = None  # set when every later recipient would fail the same way
    code: int | None = None  # Meta's error code of the last answer (rules.py learns from it)


@dataclass(slots=True)
class Progress:
    """How far one recipient's sending got, read when the run stops in the middle of it."""

    on_the_wire: bool = False  # a request is out: the gateway may be acting on it now
    doubt: str | None = None  # why an earlier attempt may have reached the gateway
    last: Answer | None = None  # the last attempt's answer


def cut_short(progress: Progress, abort: str | None = None) -> Outcome:
    """How a recipient ends when the run stops during or between its attempts: UNKNOWN when
    a request may have reached the gateway, else NOT_ATTEMPTED (the next run sends it)."""
    if progress.on_the_wire:
        why = "the run was interrupted during this request"
        return Outcome(Status.UNKNOWN, error=why, abort=abort)
    if progress.doubt is not None:
        why = f"{progress.doubt}; the run stopped before a retry"
        return Outcome(Status.UNKNOWN, error=why, abort=abort)
    last = progress.last
    if last is None:
        return Outcome(Status.NOT_ATTEMPTED, abort=abort)
    return Outcome(Status.NOT_ATTEMPTED, None, last.status, last.error, abort=abort)


def outcome_of(answer: Answer, attempt: int, settings: SendSettings) -> Outcome | None:
    """The retry policy: how the recipient ends after ANSWER to try ATTEMPT; None: try again."""
    kind = answer.kind
    if kind is AnswerKind.SENT:
        return Outcome(Status.SENT, answer.message_id, answer.status)
    if kind is AnswerKind.ABORT:
        return Outcome(
            Status.FAILED, None, answer.status, answer.error, abort=answer.error, code=answer.code
        )
    if kind is AnswerKind.UNANSWERED and not settings.retry_timeouts:
        return Outcome(Status.UNKNOWN, error=answer.error)
    if kind is AnswerKind.PERMANENT or attempt > settings.retries:
        permanent = kind is AnswerKind.PERMANENT
        return Outcome(
            Status.FAILED, None, answer.status, answer.error, permanent, code=answer.code
        )
    wait = answer.retry_after
    if wait is not None and wait > MAX_RETRY_AFTER_S and kind is not AnswerKind.PAIR_LIMIT:
        return Outcome(Status.NOT_ATTEMPTED, None, answer.status, answer.error, abort=_later(wait))
    return None


def _later(wait_s: float) -> str:
    """Why the run stops when the gateway asks to wait WAIT_S, and when to come back."""
    why = f"asking to wait {wait_s:g} s, longer than the {MAX_RETRY_AFTER_S:g} s a run waits"
    try:
        when = datetime.now(UTC) + timedelta(seconds=wait_s)
    except OverflowError:
        return f"{why}; run the campaign again much later"
    return f"{why}; run the campaign again after {when.isoformat(timespec='seconds')}"


def backoff_s(answer: Answer, attempt: int, settings: SendSettings) -> float:
    """How long to wait after ANSWER to try ATTEMPT before the next try."""
    if answer.kind is AnswerKind.PAIR_LIMIT:
        # Meta: retry a pair-rate-limited recipient after 4^X seconds; the gateway's hint aside.
        return min(_MAX_BACKOFF_S, 4 ** (attempt - 1))
    if answer.retry_after is not None:
        return min(answer.retry_after, MAX_RETRY_AFTER_S)
    ceiling = min(_MAX_BACKOFF_S, settings.backoff_s * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # jitter so that senders spread out


class Sender:
    """Sends bodies with retries and the shared pace, one keep-alive connection per slot.

    Each of the CONCURRENCY slots owns one connection, because a shared pool scans every
    connection on every request (64 shared connections made the runner CPU-bound at
    about 100 requests/s). `lease` a connection, `send` on it, `release` it.
    """

    def __init__(
        self,
        settings: SendSettings,
        concurrency: int = 1,
        stopping: Stopping | None = None,
        shared: SharedPace | None = None,
    ):
        self.settings = settings
        self.stopping = stopping or Stopping()
        self.limiter = RateLimiter(settings.rate_per_s, sleep=self.stopping.sleep, shared=shared)
        self._url = httpcore.URL(_with_params(settings.url, settings.params))
        self._headers = [host_header(settings.url)]
        self._headers += [(k.encode(), v.encode()) for k, v in settings.headers.items()]
        # One TLS context for every connection: building one costs ~30 ms (it loads the CA file).
        tls = ssl.create_default_context(cafile=certifi.where())
        self._connections: list[Connection]
        if concurrency == 1:
            self._connections = [BlockingConnection(settings.url, tls, settings.timeout_s)]
        else:
            self._connections = [
                AsyncConnection(settings.url, tls, settings.timeout_s) for _ in range(concurrency)
            ]
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()
        for connection in self._connections:
            self._idle.put_nowait(connection)

    async def lease(self) -> Connection:
        """Wait for an idle connection and take it; hand it back with `release`."""
        return await self._idle.get()

    def free_slots(self) -> int:
        """How many connections are idle right now."""
        return self._idle.qsize()

    def release(self, connection: Connection) -> None:
        """Give a leased connection back."""
        self._idle.put_nowait(connection)

    async def aclose(self) -> None:
        """Close every connection."""
        for connection in self._connections:
            await connection.aclose()

    async def send(
        self,
        content: bytes,
        connection: Connection,
        idempotency_key: str | None = None,
        paced: bool = False,
        progress: Progress | None = None,
    ) -> Outcome:
        """POST CONTENT (a body from `encode_body`) on CONNECTION until it is sent, fails for
        good, the retries run out, or the run stops (then `cut_short`).

        IDEMPOTENCY_KEY goes out as the `Idempotency-Key` header on every attempt, so a
        gateway that honours it (the sandbox does) never delivers one message twice.
        PACED: the caller already took the first attempt's token from `limiter`.
        PROGRESS is kept up to date, for the caller to read if it is cancelled meanwhile.
        """
        headers = [*self._headers, (b"Content-Length", str(len(content)).encode())]
        if idempotency_key:
            headers.append((b"Idempotency-Key", idempotency_key.encode()))
        progress = progress if progress is not None else Progress()
        return await self._send_handling_retries(connection, headers, content, paced, progress)

    async def _send_handling_retries(
        self,
        connection: Connection,
        headers: Headers,
        content: bytes,
        paced: bool,
        progress: Progress,
    ) -> Outcome:
        attempt = 0
        while True:
            attempt += 1
            if (attempt > 1 or not paced) and not await self.limiter.acquire():
                return cut_short(progress)
            answer = await self._send_once(connection, headers, content, progress)
            outcome = outcome_of(answer, attempt, self.settings)
            if outcome is not None:
                if outcome.status is Status.NOT_ATTEMPTED:  # told to wait too long: stop
                    return cut_short(progress, outcome.abort)
                if answer.kind is AnswerKind.SENT:
                    self.limiter.recover(self.settings.rate_per_s)
                return outcome
            delay = backoff_s(answer, attempt, self.settings)
            if answer.kind is AnswerKind.THROTTLE:
                self.limiter.pause(delay)  # throttling concerns the whole run, not one recipient
            if not await self.stopping.sleep(delay):
                return cut_short(progress)

    async def _send_once(
        self, connection: Connection, headers: Headers, content: bytes, progress: Progress
    ) -> Answer:
        progress.on_the_wire = True  # left True if cancelled meanwhile: then it may have arrived
        try:
            received = await connection.exchange(post_request(self._url, headers, content))
        except TRANSPORT_FAILURES as error:
            answer = failure_answer(error)
        else:
            answer = classify(
                received.status, received.content, received.headers, received.oversized
            )
        progress.on_the_wire = False
        progress.last = answer
        if answer.kind is AnswerKind.UNANSWERED:
            progress.doubt = answer.error
        return answer


def _with_params(url: str, params: dict[str, str]) -> str:
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)
