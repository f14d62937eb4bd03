"""Dispatch stage: POST bodies to the gateway, read its answers, retry what may be retried.

Only this module knows about HTTP: it speaks through httpcore, the transport under httpx,
with one keep-alive connection per concurrency slot for the whole run. A token bucket
holds `send.rate`, and the gateway's 429s pause every sender. Answers are classified by
Meta's error code first and the HTTP status second (see the README's retry table).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import select
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import httpcore

# Meta error codes (../shared/reference/whatsapp-limits.md §10) by what the runner does.
RETRY_CODES = {130429, 131056, 4, 80007, 131000, 1, 2, 131016, 133004, 131057}
PERMANENT_CODES = {
    131026,
    131047,
    131050,
    132000,
    132001,
    100,
    131051,
    131008,
    131009,
    132005,
    132007,
    132012,
    131049,
}
ABORT_CODES = {131048, 133010, 131031, 190, 0, 368, 131064, 132015, 132016}
_MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class Outcome:
    """How one recipient's delivery ended."""

    status: str  # sent | failed | unknown
    message_id: str | None = None
    http_status: int | None = None
    error: str | None = None
    permanent: bool = False
    abort: str | None = None  # set when every later recipient would fail the same way


@dataclass(frozen=True)
class Verdict:
    kind: str  # sent | retry | permanent | abort
    message_id: str | None
    error: str | None
    retry_after: float | None = None
    pair_limited: bool = False


def classify(status: int, content: bytes, headers: dict[str, str]) -> Verdict:
    """What an answer means for the recipient: sent, retry, permanent failure, or abort the run.

    HEADERS are the answer's, with lower-case names.
    """
    try:
        payload = json.loads(content) if content else None
    except ValueError:
        payload = None
    retry_after = _retry_after(headers)
    if 200 <= status < 300:
        message_id = _message_id(payload)
        if message_id:
            return Verdict("sent", message_id, None)
        return Verdict("permanent", None, f"answer {status} had no message id: {_snippet(content)}")
    error_obj = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error_obj, dict) and isinstance(error_obj.get("code"), int):
        code = error_obj["code"]
        details = (
            (error_obj.get("error_data") or {}).get("details")
            if isinstance(error_obj.get("error_data"), dict)
            else None
        )
        text = f"{code} {error_obj.get('message', '')}".strip()
        if details:
            text += f": {details}"
        if code in RETRY_CODES:
            return Verdict("retry", None, text, retry_after, pair_limited=code == 131056)
        if code in PERMANENT_CODES:
            return Verdict("permanent", None, text)
        if code in ABORT_CODES:
            return Verdict("abort", None, text)
        return _by_status(status, text, retry_after)
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return _by_status(status, payload["message"], retry_after)
    return _by_status(status, _snippet(content) or f"HTTP {status}", retry_after)


def _by_status(status: int, text: str, retry_after: float | None) -> Verdict:
    if status in (401, 403):
        return Verdict("abort", None, text)
    if status == 429 or status >= 500 or status == 408:
        return Verdict("retry", None, text, retry_after)
    return Verdict("permanent", None, text)


def _message_id(payload) -> str | None:
    try:
        message_id = payload["messages"][0]["id"]
    except (KeyError, IndexError, TypeError):
        return None
    return message_id if isinstance(message_id, str) and message_id else None


def _retry_after(headers) -> float | None:
    for name in ("retry-after", "ratelimit-reset"):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    return None


def _snippet(content: bytes) -> str:
    return content[:200].decode("utf-8", "replace").strip()


class RateLimiter:
    """A token bucket for the whole run; `pause` holds every sender back (after a 429)."""

    def __init__(self, rate_per_s: float | None):
        self.rate = rate_per_s
        self.capacity = max(1.0, rate_per_s or 1.0) if rate_per_s else 0.0
        self.tokens = 1.0  # start gently: no burst of a whole second's quota at once
        self.updated = time.monotonic()
        self.paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Hold every sender back for SECONDS, and halve the pace if one is set."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)
        if self.rate:
            self.rate = max(self.rate / 2, 0.1)

    def recover(self, target: float | None) -> None:
        """After a success, creep back toward the configured pace."""
        if self.rate and target and self.rate < target:
            self.rate = min(target, self.rate * 1.02)

    async def acquire(self) -> None:
        """Wait for a token (and for any pause to end)."""
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self.paused_until:
                    await asyncio.sleep(self.paused_until - now)
                    continue
                if not self.rate:
                    return
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


@dataclass(frozen=True)
class SendSettings:
    url: str
    headers: dict[str, str]
    params: dict[str, str]
    timeout_s: float
    retries: int = 3
    retry_timeouts: bool = False
    rate_per_s: float | None = None
    backoff_s: float = 1.0


class Sender:
    """Sends bodies with retries and the shared pace, one keep-alive connection per slot.

    Requests go through httpcore, the transport under httpx, without httpx's request and
    response models: profiling at concurrency 64 showed those models, cookies and
    redirect handling costing as much as the HTTP itself. Each of the CONCURRENCY slots
    owns one connection, because a shared pool scans every connection on every request
    (64 shared connections made the runner CPU-bound at about 100 requests/s).
    """

    def __init__(self, settings: SendSettings, concurrency: int = 1):
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_per_s)
        self._url = _with_params(settings.url, settings.params)
        self._headers = [(k.encode(), v.encode()) for k, v in settings.headers.items()]
        self._timeouts = {key: settings.timeout_s for key in ("connect", "read", "write", "pool")}
        # One TLS context for every slot: building one costs ~30 ms (it loads the CA file).
        tls = ssl.create_default_context(cafile=certifi.where())
        backend = _AsyncioBackend()
        if concurrency == 1:
            self._slots: list[_Slot] = [_BlockingSlot(settings.url, tls)]
        else:
            self._slots = [_Slot(settings.url, tls, backend) for _ in range(concurrency)]
        self._idle: asyncio.Queue[_Slot] = asyncio.Queue()
        for slot in self._slots:
            self._idle.put_nowait(slot)

    async def lease(self) -> _Slot:
        """Wait for a free slot and take its connection; hand it back with `release`."""
        return await self._idle.get()

    def free_slots(self) -> int:
        """How many slots are idle right now."""
        return self._idle.qsize()

    def release(self, slot: _Slot) -> None:
        """Give a slot back."""
        self._idle.put_nowait(slot)

    async def aclose(self) -> None:
        """Close every connection."""
        for slot in self._slots:
            await slot.aclose()

    async def send(
        self,
        body: dict,
        slot: _Slot,
        idempotency_key: str | None = None,
        paced: bool = False,
    ) -> Outcome:
        """POST BODY through SLOT until it is sent, fails for good, or the retries run out.

        IDEMPOTENCY_KEY goes out as the `Idempotency-Key` header on every attempt, so a
        gateway that honours it (the sandbox does) never delivers one message twice.
        PACED: the caller already took the first attempt's token from `limiter`.
        """
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [*self._headers, (b"Content-Length", str(len(content)).encode())]
        if idempotency_key:
            headers.append((b"Idempotency-Key", idempotency_key.encode()))
        extensions = {"timeout": self._timeouts}
        settings = self.settings
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1 or not paced:
                await self.limiter.acquire()
            try:
                response = await slot.request(self._url, headers, content, extensions)
            except (
                httpcore.ConnectError,
                httpcore.ConnectTimeout,
                httpcore.PoolTimeout,
                httpcore.WriteError,
                httpcore.WriteTimeout,
            ) as error:
                # The gateway cannot have acted on a request it never fully received.
                verdict = Verdict("retry", None, f"connection failed: {_describe(error)}")
                status = None
            except (
                httpcore.ReadTimeout,
                httpcore.RemoteProtocolError,
                httpcore.ReadError,
            ) as error:
                text = f"no answer after the request was sent ({_describe(error)})"
                if not settings.retry_timeouts:
                    return Outcome("unknown", error=text)
                verdict, status = Verdict("retry", None, text), None
            else:
                status = response.status
                answer_headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers
                }
                verdict = classify(status, response.content, answer_headers)
            if verdict.kind == "sent":
                self.limiter.recover(settings.rate_per_s)
                return Outcome("sent", verdict.message_id, status)
            if verdict.kind == "abort":
                return Outcome(
                    "failed",
                    None,
                    status,
                    verdict.error,
                    permanent=False,
                    abort=verdict.error,
                )
            if verdict.kind == "permanent" or attempt > settings.retries:
                permanent = verdict.kind == "permanent"
                return Outcome("failed", None, status, verdict.error, permanent)
            await self._wait_before_retry(verdict, status, attempt)

    async def _wait_before_retry(self, verdict: Verdict, status: int | None, attempt: int) -> None:
        if verdict.pair_limited:
            # Meta: retry a pair-rate-limited recipient after 4^X seconds; others go on.
            await asyncio.sleep(min(_MAX_BACKOFF_S, 4 ** (attempt - 1)))
            return
        if verdict.retry_after is not None:
            delay = verdict.retry_after
        else:
            ceiling = min(_MAX_BACKOFF_S, self.settings.backoff_s * 2 ** (attempt - 1))
            delay = random.uniform(ceiling / 2, ceiling)  # jitter so that senders spread out
        if status == 429 or (verdict.error or "").startswith(("130429", "80007", "4 ")):
            self.limiter.pause(delay)  # throttling concerns the whole run, not this recipient
        await asyncio.sleep(delay)


class _AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection on plain asyncio streams.

    httpcore's default backend goes through anyio, which took a third of the runner's
    time at concurrency 64; this is httpcore's documented network-backend interface.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader, self._writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("timed out reading the answer") from None
        except OSError as error:
            raise httpcore.ReadError(str(error)) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("timed out sending the request") from None
        except OSError as error:
            raise httpcore.WriteError(str(error)) from error

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, ssl.SSLError) as error:
            raise httpcore.ConnectError(str(error)) from error
        return self

    def get_extra_info(self, info: str):
        if info == "is_readable":  # asked of an idle connection: did the server close it?
            sock = self._writer.get_extra_info("socket")
            return self._reader.at_eof() or (sock is not None and _socket_readable(sock))
        names = {
            "ssl_object": "ssl_object",
            "client_addr": "sockname",
            "server_addr": "peername",
            "socket": "socket",
        }
        return self._writer.get_extra_info(names[info]) if info in names else None


class _AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(local_address, 0) if local_address else None
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as error:
            raise httpcore.ConnectError(str(error)) from error
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
        return _AsyncioStream(reader, writer)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("unix sockets are not used by the runner")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Slot:
    """One keep-alive connection to the gateway, opened again whenever it was closed."""

    def __init__(self, url: str, tls: ssl.SSLContext, backend: httpcore.AsyncNetworkBackend | None):
        parts = urlsplit(url)
        default_port = 443 if parts.scheme == "https" else 80
        self._origin = httpcore.Origin(
            parts.scheme.encode(), (parts.hostname or "").encode(), parts.port or default_port
        )
        self._tls, self._backend = tls, backend
        self._connection: httpcore.AsyncHTTPConnection | None = None

    async def request(self, url: str, headers, content: bytes, extensions) -> httpcore.Response:
        """POST CONTENT on this slot's connection (a new one if the last was closed)."""
        connection = self._connection
        if connection is None or not connection.is_available() or connection.has_expired():
            if connection is not None:
                await connection.aclose()
            connection = self._connection = httpcore.AsyncHTTPConnection(
                self._origin, ssl_context=self._tls, network_backend=self._backend
            )
        return await connection.request(
            b"POST", url, headers=headers, content=content, extensions=extensions
        )

    async def aclose(self) -> None:
        """Close the connection, if one is open."""
        if self._connection is not None:
            await self._connection.aclose()


class _BlockingSlot(_Slot):
    """The slot of a sequential run: the same connection, driven without the event loop.

    With one request in flight there is nothing to overlap, and a blocking call spares
    each message the event-loop turns of the async stack (which, measured, cost a third
    of the sequential throughput next to a plain httpx.Client loop). Signals still reach
    the run: their handlers run as soon as the request in flight returns.
    """

    def __init__(self, url: str, tls: ssl.SSLContext):
        super().__init__(url, tls, None)
        self._connection: httpcore.HTTPConnection | None = None

    async def request(self, url: str, headers, content: bytes, extensions) -> httpcore.Response:
        connection = self._connection
        if connection is None or not connection.is_available() or connection.has_expired():
            if connection is not None:
                connection.close()
            connection = self._connection = httpcore.HTTPConnection(
                self._origin, ssl_context=self._tls, socket_options=_NODELAY
            )
        return connection.request(
            b"POST", url, headers=headers, content=content, extensions=extensions
        )

    async def aclose(self) -> None:
        if self._connection is not None:
            self._connection.close()


_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def _socket_readable(sock) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True  # a broken socket reads as readable: the pool then drops it
    return bool(readable)


def _with_params(url: str, params: dict[str, str]) -> str:
    if not params:
        return url
    from urllib.parse import urlencode

    return url + ("&" if "?" in url else "?") + urlencode(params)


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
