"""The wire: keep-alive connections to the gateway over httpcore, and what their errors mean.

Requests go through httpcore, the transport under httpx, without httpx's request and
response models: profiling at concurrency 64 showed those models, cookies and redirect
handling costing as much as the HTTP itself. The sender owns one `Connection` per
concurrency slot: `AsyncConnection` on the event loop, or `BlockingConnection` for a
sequential run. `TRANSPORT_ERRORS` says, in one table, what each transport error means.

Each exchange is bounded twice: in time, by a `Deadline` that every connect, write and read
of the exchange shares (`gateway.timeout_s` is the whole exchange, so a gateway trickling a
byte at a time cannot hold a request for longer), and in size, by MAX_ANSWER_BYTES (answers.py).
The status line and headers are bounded by httpcore itself (h11's 100 KiB event limit;
over it is a RemoteProtocolError: no answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import select
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpcore

from campaign_runner.gateway.answers import MAX_ANSWER_BYTES, Answer, AnswerKind

Headers = list[tuple[bytes, bytes]]

# What a transport error says about the request, like httpx's HTTPCORE_EXC_MAP.
#   RETRY: the request never fully reached the gateway, so it cannot have acted on it.
#   UNANSWERED: it was sent, and no answer came: it may have been delivered.
# A deadline passing maps the same way: while connecting or writing, RETRY; while reading,
# UNANSWERED (unless send.retry_timeouts, that is `unknown`).
TRANSPORT_ERRORS: dict[type[Exception], AnswerKind] = {
    httpcore.ConnectError: AnswerKind.RETRY,
    httpcore.ConnectTimeout: AnswerKind.RETRY,
    httpcore.PoolTimeout: AnswerKind.RETRY,
    httpcore.WriteError: AnswerKind.RETRY,
    httpcore.WriteTimeout: AnswerKind.RETRY,
    httpcore.ReadTimeout: AnswerKind.UNANSWERED,
    httpcore.RemoteProtocolError: AnswerKind.UNANSWERED,
    httpcore.ReadError: AnswerKind.UNANSWERED,
}
TRANSPORT_FAILURES = tuple(TRANSPORT_ERRORS)  # for `except`: any other error is a bug, raised


def failure_answer(error: Exception) -> Answer:
    """The answer an attempt gets when ERROR (one of TRANSPORT_FAILURES) ended it."""
    kind = next(kind for cls, kind in TRANSPORT_ERRORS.items() if isinstance(error, cls))
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if kind is AnswerKind.RETRY:
        return Answer(kind, error=f"connection failed: {what}")
    return Answer(kind, error=f"no answer after the request was sent ({what})")


@dataclass(frozen=True, slots=True)
class Received:
    """One request's answer as it came: STATUS, HEADERS (lower-case names) and CONTENT,
    unless the body was over MAX_ANSWER_BYTES: then OVERSIZED, CONTENT empty."""

    status: int
    headers: dict[str, str]
    content: bytes
    oversized: bool = False


class Deadline:
    """When the exchange in progress must be over: each connect, write and read gets what
    is left of TIMEOUT_S from `start`, and the one that finds nothing left fails."""

    __slots__ = ("at", "timeout_s", "_clock")

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic):
        self.timeout_s = timeout_s
        self._clock = clock
        self.at = math.inf  # no exchange yet: nothing to bound

    def start(self) -> None:
        """A new exchange begins now."""
        self.at = self._clock() + self.timeout_s

    def left(self, error: type[Exception]) -> float:
        """Seconds left for the next step; ERROR (an httpcore timeout) when none are."""
        left = self.at - self._clock()
        if left <= 0:
            raise self.passed(error)
        return left

    def passed(self, error: type[Exception]) -> Exception:
        """ERROR (an httpcore timeout), saying that the deadline passed."""
        return error(f"the exchange took longer than gateway.timeout_s ({self.timeout_s:g} s)")


class Connection(Protocol):
    """One keep-alive connection to the gateway, opened again whenever it was closed."""

    async def exchange(self, request: httpcore.Request) -> Received:
        """Send REQUEST and read its answer, within the deadline and the size bound."""
        ...

    async def aclose(self) -> None:
        """Close the connection, if one is open."""
        ...


def post_request(url: httpcore.URL, headers: Headers, content: bytes) -> httpcore.Request:
    """The POST of CONTENT to URL (HEADERS must carry Host and Content-Length)."""
    return httpcore.Request(b"POST", url, headers=headers, content=content)


def host_header(url: str) -> tuple[bytes, bytes]:
    """The Host header for URL, as written in it (port included when given)."""
    return (b"Host", urlsplit(url).netloc.rpartition("@")[2].encode())


class AsyncConnection:
    """A connection driven by the event loop, for runs with several requests in flight."""

    def __init__(self, url: str, tls: ssl.SSLContext, timeout_s: float):
        self._origin = _origin(url)
        self._tls = tls
        self.deadline = Deadline(timeout_s)
        self._backend = AsyncioBackend(self.deadline)
        self._connection: httpcore.AsyncHTTPConnection | None = None

    async def exchange(self, request: httpcore.Request) -> Received:
        """POST on this connection (a new one if the last was closed), within the bounds."""
        connection = self._connection
        if connection is None or not connection.is_available() or connection.has_expired():
            if connection is not None:
                await connection.aclose()
            connection = self._connection = httpcore.AsyncHTTPConnection(
                self._origin, ssl_context=self._tls, network_backend=self._backend
            )
        self.deadline.start()
        response = await connection.handle_async_request(request)
        try:
            content, oversized = await _read_bounded_async(response.aiter_stream())
        finally:
            await response.aclose()  # unread (oversized): httpcore closes the connection
        return _received(response, content, oversized)

    async def aclose(self) -> None:
        """Close the connection, if one is open."""
        if self._connection is not None:
            await self._connection.aclose()


class BlockingConnection:
    """The connection of a sequential run: driven without the event loop.

    With one request in flight there is nothing to overlap, and a blocking call spares
    each message the event-loop turns of the async stack (which, measured, cost a third
    of the sequential throughput next to a plain httpx.Client loop). Signals still reach
    the run: their handlers run as soon as the request in flight returns, which the
    deadline keeps within gateway.timeout_s.
    """

    def __init__(self, url: str, tls: ssl.SSLContext, timeout_s: float):
        self._origin = _origin(url)
        self._tls = tls
        self.deadline = Deadline(timeout_s)
        self._backend = _BlockingBackend(self.deadline)
        self._connection: httpcore.HTTPConnection | None = None

    async def exchange(self, request: httpcore.Request) -> Received:
        """POST on this connection (a new one if the last was closed), blocking."""
        connection = self._connection
        if connection is None or not connection.is_available() or connection.has_expired():
            if connection is not None:
                connection.close()
            connection = self._connection = httpcore.HTTPConnection(
                self._origin, ssl_context=self._tls, network_backend=self._backend
            )
        self.deadline.start()
        response = connection.handle_request(request)
        try:
            content, oversized = _read_bounded(response.iter_stream())
        finally:
            response.close()  # unread (oversized): httpcore closes the connection
        return _received(response, content, oversized)

    async def aclose(self) -> None:
        """Close the connection, if one is open."""
        if self._connection is not None:
            self._connection.close()


def _read_bounded(chunks: Iterator[bytes]) -> tuple[bytes, bool]:
    """The body from CHUNKS, or (b"", True) once it passes MAX_ANSWER_BYTES."""
    parts, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return b"", True
        parts.append(chunk)
    return b"".join(parts), False


async def _read_bounded_async(chunks: AsyncIterator[bytes]) -> tuple[bytes, bool]:
    """`_read_bounded` for an async body."""
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return b"", True
        parts.append(chunk)
    return b"".join(parts), False


def _received(response: httpcore.Response, content: bytes, oversized: bool) -> Received:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
    return Received(response.status, headers, content, oversized)


def _origin(url: str) -> httpcore.Origin:
    parts = urlsplit(url)
    default_port = 443 if parts.scheme == "https" else 80
    return httpcore.Origin(
        parts.scheme.encode(), (parts.hostname or "").encode(), parts.port or default_port
    )


class _BlockingBackend(httpcore.NetworkBackend):
    """httpcore's blocking sockets, each step bounded by what is left of the DEADLINE."""

    def __init__(self, deadline: Deadline):
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline.left(httpcore.ConnectTimeout)
        try:
            stream = self._inner.connect_tcp(host, port, left, local_address, socket_options or [])
        except httpcore.ConnectTimeout:
            raise self._deadline.passed(httpcore.ConnectTimeout) from None
        return _BoundedStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by the runner")


class _BoundedStream(httpcore.NetworkStream):
    """A blocking stream whose every step gets what is left of the DEADLINE."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: Deadline):
        self._stream, self._deadline = stream, deadline

    # Each step's timeout is what is left of the deadline, so a timeout is the deadline's.
    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._stream.read(max_bytes, self._deadline.left(httpcore.ReadTimeout))
        except httpcore.ReadTimeout:
            raise self._deadline.passed(httpcore.ReadTimeout) from None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._stream.write(buffer, self._deadline.left(httpcore.WriteTimeout))
        except httpcore.WriteTimeout:
            raise self._deadline.passed(httpcore.WriteTimeout) from None

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline.left(httpcore.ConnectTimeout)
        return _BoundedStream(
            self._stream.start_tls(ssl_context, server_hostname, left), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on plain asyncio streams, each step bounded by DEADLINE.

    httpcore's default backend goes through anyio, which took a third of the runner's
    time at concurrency 64; this is httpcore's documented network-backend interface.
    """

    def __init__(self, deadline: Deadline):
        self._deadline = deadline

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(self._deadline.left(httpcore.ConnectTimeout)):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(local_address, 0) if local_address else None
                )
        except TimeoutError:
            raise self._deadline.passed(httpcore.ConnectTimeout) from None
        except OSError as error:
            raise httpcore.ConnectError(str(error)) from error
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
        return _AsyncioStream(reader, writer, self._deadline)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by the runner")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection on asyncio streams, raising httpcore's errors."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deadline: Deadline
    ):
        self._reader, self._writer, self._deadline = reader, writer, deadline

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(self._deadline.left(httpcore.ReadTimeout)):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise self._deadline.passed(httpcore.ReadTimeout) from None
        except OSError as error:
            raise httpcore.ReadError(str(error)) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            left = self._deadline.left(httpcore.WriteTimeout)
            self._writer.write(buffer)
            async with asyncio.timeout(left):
                await self._writer.drain()
        except TimeoutError:
            raise self._deadline.passed(httpcore.WriteTimeout) from None
        except OSError as error:
            raise httpcore.WriteError(str(error)) from error

    async def aclose(self) -> None:
        transport = self._writer.transport
        if transport.get_write_buffer_size():
            transport.abort()  # close() would first flush to a gateway that may never read
        else:
            self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(self._deadline.left(httpcore.ConnectTimeout)):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            raise self._deadline.passed(httpcore.ConnectTimeout) from None
        except (OSError, ssl.SSLError) as error:
            raise httpcore.ConnectError(str(error)) from error
        return self

    def get_extra_info(self, info: str) -> Any:
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


def _socket_readable(sock: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True  # a broken socket reads as readable: the pool then drops it
    return bool(readable)
