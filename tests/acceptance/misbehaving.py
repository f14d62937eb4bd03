"""A loopback HTTP gateway that misbehaves on purpose, one scripted answer per request.

The sandbox answers the way the gateway documents; this one does what a broken proxy, a
maintenance page or a stuck gateway does: a 2xx without an id, an HTML page, 50 MB of
body, one byte every half second, an answer held back for as long as the test likes. It
keeps every request it read (`received`), so a test can say what "the gateway" got.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# How to answer one request: given the connected socket, write (or withhold) the answer.
Way = Callable[[socket.socket], None]

_wamids = itertools.count(1)


def raw(status: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> Way:
    """Answer STATUS with BODY (and a Content-Length), then close."""

    def answer(sock: socket.socket) -> None:
        head = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {len(body)}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in headers]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    return answer


def as_json(status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()) -> Way:
    """Answer STATUS with PAYLOAD as JSON."""
    return raw(
        status, json.dumps(payload).encode(), (("Content-Type", "application/json"), *headers)
    )


def ok() -> Way:
    """The documented success: a fresh wamid."""

    def answer(sock: socket.socket) -> None:
        as_json(200, {"messages": [{"id": f"wamid.M{next(_wamids)}"}]})(sock)

    return answer


def trickle(every_s: float, then: Way | None = None) -> Way:
    """Send THEN's answer (a success by default) one byte every EVERY_S seconds."""

    def answer(sock: socket.socket) -> None:
        captured = _Capture()
        (then or ok())(captured)  # type: ignore[arg-type]
        for byte in captured.data:
            sock.sendall(bytes([byte]))
            time.sleep(every_s)

    return answer


@dataclass
class Endless:
    """STATUS with a body of SIZE bytes (no Content-Length when SIZE is None: until closed),
    written until the client hangs up; `sent` says how much it managed to write."""

    status: int
    size: int | None = 50 * 1024 * 1024
    sent: int = 0

    def __call__(self, sock: socket.socket) -> None:
        head = [f"HTTP/1.1 {self.status} Whatever", "Connection: close"]
        if self.size is not None:
            head.append(f"Content-Length: {self.size}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        chunk = b"x" * 65536
        try:
            while self.size is None or self.sent < self.size:
                sock.sendall(chunk)
                self.sent += len(chunk)
        except OSError:
            return  # the client closed the connection: what this answer is for


class _Capture:
    def __init__(self) -> None:
        self.data = b""

    def sendall(self, data: bytes) -> None:
        self.data += data


@dataclass
class Misbehaving:
    """The gateway: SCRIPT gives each recipient's answers in turn, DEFAULT the rest."""

    script: dict[str, list[Way]] = field(default_factory=dict)
    default: Way = field(default_factory=ok)
    received: list[dict] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/api/Messages"
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self, then: Way | None = None) -> Way:
        """Hold the answer back until `release` (then answer THEN, a success by default)."""

        def answer(sock: socket.socket) -> None:
            self.released.wait(60)
            (then or ok())(sock)

        return answer

    def release(self) -> None:
        """Let every held answer go."""
        self.released.set()

    def to(self) -> list[str]:
        """Who each request was for, in the order they came."""
        with self._lock:
            return [body.get("to") for body in self.received]

    def close(self) -> None:
        """Stop listening and let held answers go."""
        self.release()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            body = _read_request(sock)
            if body is None:
                return
            with self._lock:
                self.received.append(body)
                queue = self.script.get(body.get("to", ""))
                way = queue.pop(0) if queue else self.default
            with contextlib.suppress(OSError):
                way(sock)


def _read_request(sock: socket.socket) -> dict | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return json.loads(body)
