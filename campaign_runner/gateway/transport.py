"""The wire: keep-alive connections to the gateway over httpcore, and what their errors mean.

Requests go through httpcore, the transport under httpx, without httpx's request and
response models: profiling at concurrency 64 showed those models, cookies and redirect
handling costing as much as the HTTP itself. The sender owns one `Connection` per
concurrency slot: `AsyncConnection` on the event loop, or `BlockingConnection` for a
sequential run. `TRANSPORT_ERRORS` says, in one table, what each transport error means.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpcore

from campaign_runner.gateway.answers import Answer, AnswerKind

Headers = list[tuple[bytes, bytes]]

# What a transport error says about the request, like httpx's HTTPCORE_EXC_MAP.
#   RETRY: the request never fully reached the gateway, so it cannot have acted on it.
#   UNANSWERED: it was sent, and no answer came: it may have been delivered.
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


class Connection(Protocol):
    """One keep-alive connection to the gateway, opened again whenever it was closed."""

    async def request(
        self, url: str, headers: Headers, content: bytes, extensions: dict[str, Any]
    ) -> httpcore.Response:
        """POST CONTENT (a new connection if the last one was closed)."""
        ...

    async def aclose(self) -> None:
        """Close the connection, if one is open."""
        ...


class AsyncConnection:
    """A connection driven by the event loop, for runs with several requests in flight."""

    def __init__(self, url: str, tls: ssl.SSLContext, backend: httpcore.AsyncNetworkBackend):
        self._origin = _origin(url)
        self._tls, self._backend = tls, backend
        self._connection: httpcore.AsyncHTTPConnection | None = None

    async def request(
        self, url: str, headers: Headers, content: bytes, extensions: dict[str, Any]
    ) -> httpcore.Response:
        """POST CONTENT on this connection (a new one if the last was closed)."""
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


class BlockingConnection:
    """The connection of a sequential run: driven without the event loop.

    With one request in flight there is nothing to overlap, and a blocking call spares
    each message the event-loop turns of the async stack (which, measured, cost a third
    of the sequential throughput next to a plain httpx.Client loop). Signals still reach
    the run: their handlers run as soon as the request in flight returns.
    """

    def __init__(self, url: str, tls: ssl.SSLContext):
        self._origin = _origin(url)
        self._tls = tls
        self._connection: httpcore.HTTPConnection | None = None

    async def request(
        self, url: str, headers: Headers, content: bytes, extensions: dict[str, Any]
    ) -> httpcore.Response:
        """POST CONTENT on this connection (a new one if the last was closed), blocking."""
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
        """Close the connection, if one is open."""
        if self._connection is not None:
            self._connection.close()


def _origin(url: str) -> httpcore.Origin:
    parts = urlsplit(url)
    default_port = 443 if parts.scheme == "https" else 80
    return httpcore.Origin(
        parts.scheme.encode(), (parts.hostname or "").encode(), parts.port or default_port
    )


_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on plain asyncio streams.

    httpcore's default backend goes through anyio, which took a third of the runner's
    time at concurrency 64; this is httpcore's documented network-backend interface.
    """

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
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

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by the runner")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection on asyncio streams, raising httpcore's errors."""

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

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
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
