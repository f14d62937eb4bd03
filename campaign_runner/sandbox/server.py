"""The sandbox's HTTP/1.1 server: h11 on one asyncio loop, every keep-alive connection.

It knows nothing of the gateway: a handler turns each request into a `Reply`, and the
server reads requests (refusing runaway bodies), waits out the reply's latency, writes
it, and lingers on a closing connection so the client reads the answer, not a reset.
"""

from __future__ import annotations

import asyncio
import http
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import h11

_MAX_HEADER_BYTES = 16 * 1024
_READ_SIZE = 64 * 1024
_LINGER_S = 1.0  # keep reading after a closing answer so the client sees it, not a reset
_JSON = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")


@dataclass(slots=True)
class Reply:
    """What to do with one request: answer STATUS with PAYLOAD (as JSON), or close silently."""

    status: int
    payload: object = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    close: bool = False
    silent: bool = False  # close the connection without any answer (drop, lost)
    delay_s: float = 0.0  # the gateway's latency, waited before answering (or closing)
    note: str = ""  # the echo line, after the clock


# The handler: a request and its body (None when over the size limit) -> what to answer.
Handler = Callable[[h11.Request, bytes | None], Reply]


class HttpServer:
    """Serves HANDLER's replies over HTTP/1.1; SAY echoes a line about a refused request."""

    def __init__(self, handler: Handler, max_body_bytes: int, say: Callable[[str], None]):
        self._handler = handler
        self._max_body_bytes = max_body_bytes
        self._say = say
        self._connections: set[asyncio.Task] = set()
        self.port: int | None = None

    async def run(
        self, host: str, port: int, stop: asyncio.Event, on_listening: Callable[[int], None]
    ) -> None:
        """Serve until STOP is set; call ON_LISTENING with the bound port once listening."""
        server = await asyncio.start_server(self._serve_connection, host, port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        on_listening(self.port)
        try:
            await stop.wait()
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None  # a stream callback always runs as a task
        self._connections.add(task)
        try:
            await self._exchange(
                h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADER_BYTES),
                reader,
                writer,
            )
        except (ConnectionError, OSError, h11.LocalProtocolError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            pass  # stopping; swallowed because 3.11's stream callback logs a cancelled handler
        finally:
            self._connections.discard(task)
            writer.close()

    async def _exchange(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer request after request on one connection, until either side closes it."""
        while True:
            try:
                received = await self._read_request(conn, reader)
            except h11.RemoteProtocolError as exc:
                if not reader.at_eof():  # a client that hung up mid-request gets nothing
                    await self._refuse_garbage(exc, reader, writer)
                return
            if received is None:
                return
            reply = self._handler(*received)
            if reply.delay_s > 0:
                await asyncio.sleep(reply.delay_s)
            if reply.silent:
                return
            writer.write(_encode(conn, reply))
            keep_alive = conn.our_state is h11.DONE and conn.their_state is h11.DONE
            if reply.close or not keep_alive:
                await _linger(reader, writer)
                return
            await writer.drain()
            conn.start_next_cycle()

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request, bytes | None] | None:
        """The next request and its body (None when too large), or None once the client left."""
        request: h11.Request | None = None
        chunks: list[bytes] = []
        size, limit = 0, self._max_body_bytes
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(_READ_SIZE))
            elif type(event) is h11.Data:
                size += len(event.data)
                if size <= limit:
                    chunks.append(event.data)
                elif size > max(16 * limit, 16 * 1024 * 1024):
                    assert request is not None  # h11 gives the request before its body
                    return request, None  # stop reading a runaway upload; answer and close now
            elif type(event) is h11.Request:
                request = event
            elif type(event) is h11.EndOfMessage:
                assert request is not None
                return request, (b"".join(chunks) if size <= limit else None)
            else:  # ConnectionClosed
                return None

    async def _refuse_garbage(
        self,
        exc: h11.RemoteProtocolError,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        status = getattr(exc, "error_status_hint", 400) or 400
        body = json.dumps({"message": f"Bad request: {exc}"}).encode()
        head = (
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        self._say(f"{status} bad-request - {exc}")
        await _linger(reader, writer)


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Closing with unread input makes the kernel send a reset, which can wipe our answer
    # before the client reads it; half-close and drain its leftovers for a moment first.
    try:
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(_LINGER_S):
            while await reader.read(_READ_SIZE):
                pass
    except (TimeoutError, ConnectionError, OSError):
        pass


def _encode(conn: h11.Connection, reply: Reply) -> bytes:
    body = json.dumps(reply.payload, ensure_ascii=False).encode()
    headers = [_JSON, (b"content-length", str(len(body)).encode()), *reply.headers]
    if reply.close:
        headers.append(_CLOSE)
    head = h11.Response(
        status_code=reply.status,
        headers=headers,
        reason=http.HTTPStatus(reply.status).phrase.encode(),
    )
    return conn.send(head) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
