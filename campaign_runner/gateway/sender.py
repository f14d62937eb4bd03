"""The sender: POST a body to the gateway until it is sent, fails for good, or retries run out.

One layer per policy, as in httpx's client:

    Sender.send                  encode the body and headers once
    -> _send_handling_retries    pace every attempt; retry, back off, slow the run down
    -> _send_once                one POST on one connection -> an `Answer` (answers.py)
    -> Connection.request        the wire (transport.py)

Naming: an `Answer` is what one attempt came back with; an `Outcome` is how one
recipient's sending ended, after every attempt.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import certifi

from campaign_runner.gateway.answers import Answer, AnswerKind, classify
from campaign_runner.gateway.settings import SendSettings
from campaign_runner.gateway.transport import (
    TRANSPORT_FAILURES,
    AsyncConnection,
    AsyncioBackend,
    BlockingConnection,
    Connection,
    Headers,
    failure_answer,
)
from campaign_runner.ratelimit import RateLimiter
from campaign_runner.status import Status

_MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class Outcome:
    """How one recipient's sending ended: SENT, FAILED or UNKNOWN (sent, never answered)."""

    status: Status
    message_id: str | None = None
    http_status: int | None = None
    error: str | None = None
    permanent: bool = False  # failed for good: a re-run does not try again
    abort: str | None = None  # set when every later recipient would fail the same way


def outcome_of(answer: Answer, attempt: int, settings: SendSettings) -> Outcome | None:
    """The retry policy: how the recipient ends after ANSWER to try ATTEMPT; None: try again."""
    kind = answer.kind
    if kind is AnswerKind.SENT:
        return Outcome(Status.SENT, answer.message_id, answer.status)
    if kind is AnswerKind.ABORT:
        return Outcome(Status.FAILED, None, answer.status, answer.error, abort=answer.error)
    if kind is AnswerKind.UNANSWERED and not settings.retry_timeouts:
        return Outcome(Status.UNKNOWN, error=answer.error)
    if kind is AnswerKind.PERMANENT or attempt > settings.retries:
        permanent = kind is AnswerKind.PERMANENT
        return Outcome(Status.FAILED, None, answer.status, answer.error, permanent)
    return None


def backoff_s(answer: Answer, attempt: int, settings: SendSettings) -> float:
    """How long to wait after ANSWER to try ATTEMPT before the next try."""
    if answer.kind is AnswerKind.PAIR_LIMIT:
        # Meta: retry a pair-rate-limited recipient after 4^X seconds; the gateway's hint aside.
        return min(_MAX_BACKOFF_S, 4 ** (attempt - 1))
    if answer.retry_after is not None:
        return answer.retry_after
    ceiling = min(_MAX_BACKOFF_S, settings.backoff_s * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # jitter so that senders spread out


class Sender:
    """Sends bodies with retries and the shared pace, one keep-alive connection per slot.

    Each of the CONCURRENCY slots owns one connection, because a shared pool scans every
    connection on every request (64 shared connections made the runner CPU-bound at
    about 100 requests/s). `lease` a connection, `send` on it, `release` it.
    """

    def __init__(self, settings: SendSettings, concurrency: int = 1):
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_per_s)
        self._url = _with_params(settings.url, settings.params)
        self._headers = [(k.encode(), v.encode()) for k, v in settings.headers.items()]
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), settings.timeout_s)
        self._extensions: dict[str, Any] = {"timeout": timeouts}
        # One TLS context for every connection: building one costs ~30 ms (it loads the CA file).
        tls = ssl.create_default_context(cafile=certifi.where())
        self._connections: list[Connection]
        if concurrency == 1:
            self._connections = [BlockingConnection(settings.url, tls)]
        else:
            backend = AsyncioBackend()
            self._connections = [
                AsyncConnection(settings.url, tls, backend) for _ in range(concurrency)
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
        body: dict,
        connection: Connection,
        idempotency_key: str | None = None,
        paced: bool = False,
    ) -> Outcome:
        """POST BODY on CONNECTION until it is sent, fails for good, or the retries run out.

        IDEMPOTENCY_KEY goes out as the `Idempotency-Key` header on every attempt, so a
        gateway that honours it (the sandbox does) never delivers one message twice.
        PACED: the caller already took the first attempt's token from `limiter`.
        """
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [*self._headers, (b"Content-Length", str(len(content)).encode())]
        if idempotency_key:
            headers.append((b"Idempotency-Key", idempotency_key.encode()))
        return await self._send_handling_retries(connection, headers, content, paced)

    async def _send_handling_retries(
        self, connection: Connection, headers: Headers, content: bytes, paced: bool
    ) -> Outcome:
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1 or not paced:
                await self.limiter.acquire()
            answer = await self._send_once(connection, headers, content)
            outcome = outcome_of(answer, attempt, self.settings)
            if outcome is not None:
                if answer.kind is AnswerKind.SENT:
                    self.limiter.recover(self.settings.rate_per_s)
                return outcome
            delay = backoff_s(answer, attempt, self.settings)
            if answer.kind is AnswerKind.THROTTLE:
                self.limiter.pause(delay)  # throttling concerns the whole run, not one recipient
            await asyncio.sleep(delay)

    async def _send_once(self, connection: Connection, headers: Headers, content: bytes) -> Answer:
        try:
            response = await connection.request(self._url, headers, content, self._extensions)
        except TRANSPORT_FAILURES as error:
            return failure_answer(error)
        answer_headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers
        }
        return classify(response.status, response.content, answer_headers)


def _with_params(url: str, params: dict[str, str]) -> str:
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)
