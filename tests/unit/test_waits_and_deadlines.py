"""How long the runner waits and for how long an exchange may last: capped waits, waits a
stop cuts short, and the deadline of a whole exchange (a fake clock where the code takes
one; a real loopback socket for the wire)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time

import httpcore
import pytest

from campaign_runner.gateway.answers import MAX_ANSWER_BYTES, Answer, AnswerKind
from campaign_runner.gateway.sender import (
    MAX_RETRY_AFTER_S,
    Progress,
    backoff_s,
    cut_short,
    outcome_of,
)
from campaign_runner.gateway.settings import SendSettings
from campaign_runner.gateway.transport import (
    AsyncConnection,
    BlockingConnection,
    Deadline,
    failure_answer,
    host_header,
    post_request,
)
from campaign_runner.ratelimit import RateLimiter, Stopping
from campaign_runner.status import Status

RETRY, THROTTLE, PAIR = AnswerKind.RETRY, AnswerKind.THROTTLE, AnswerKind.PAIR_LIMIT
UNANSWERED = AnswerKind.UNANSWERED
SETTINGS = SendSettings("http://gw", {}, {}, 1.0, retries=3, backoff_s=1.0)

# ---- capped waits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "stops"),
    [
        (Answer(THROTTLE, 429, retry_after=MAX_RETRY_AFTER_S), False),  # the cap is waited out
        (Answer(THROTTLE, 429, retry_after=MAX_RETRY_AFTER_S + 1), True),
        (Answer(RETRY, 503, retry_after=86400.0), True),  # a 5xx's Retry-After counts too
        (Answer(PAIR, 429, retry_after=86400.0), False),  # the pair limit waits 4^X, not this
        (Answer(RETRY, 500), False),
    ],
)
def test_a_wait_over_the_cap_stops_instead_of_waiting(answer, stops):
    outcome = outcome_of(answer, 1, SETTINGS)
    if not stops:
        assert outcome is None
        assert backoff_s(answer, 1, SETTINGS) <= MAX_RETRY_AFTER_S
        return
    assert outcome is not None
    assert outcome.status is Status.NOT_ATTEMPTED and not outcome.permanent
    assert outcome.abort is not None
    assert f"asking to wait {answer.retry_after:g} s" in outcome.abort
    assert "run the campaign again after 20" in outcome.abort


def test_a_wait_too_long_to_date_still_says_to_come_back_later():
    outcome = outcome_of(Answer(THROTTLE, 429, retry_after=1e300), 1, SETTINGS)
    assert outcome is not None and outcome.abort is not None
    assert outcome.abort.endswith("run the campaign again much later")


def test_an_exhausted_retry_fails_even_when_asked_to_wait_a_day():
    outcome = outcome_of(Answer(THROTTLE, 429, retry_after=86400.0), 4, SETTINGS)
    assert outcome is not None and outcome.status is Status.FAILED and outcome.abort is None


# ---- how a recipient ends when the run stops in the middle ---------------------------------


@pytest.mark.parametrize(
    ("progress", "status", "http_status", "error"),
    [
        (Progress(), Status.NOT_ATTEMPTED, None, None),  # cancelled before its first request
        (
            Progress(last=Answer(RETRY, 500, error="boom")),
            Status.NOT_ATTEMPTED,
            500,
            "boom",
        ),
        (
            Progress(last=Answer(RETRY, error="connection failed: ConnectError")),
            Status.NOT_ATTEMPTED,
            None,
            "connection failed: ConnectError",
        ),
        (
            Progress(on_the_wire=True, last=Answer(RETRY, 500, error="boom")),
            Status.UNKNOWN,
            None,
            "the run was interrupted during this request",
        ),
        # An earlier attempt went unanswered (send.retry_timeouts): it may have arrived.
        (
            Progress(doubt="no answer", last=Answer(RETRY, 500, error="boom")),
            Status.UNKNOWN,
            None,
            "no answer; the run stopped before a retry",
        ),
    ],
)
def test_a_stop_leaves_unknown_only_what_may_have_reached_the_gateway(
    progress, status, http_status, error
):
    outcome = cut_short(progress, abort="why")
    assert (outcome.status, outcome.http_status, outcome.error) == (status, http_status, error)
    assert outcome.abort == "why" and not outcome.permanent


# ---- waits a stop cuts short ---------------------------------------------------------------


def test_a_stop_ends_a_long_sleep_at_once_and_every_later_one():
    async def scenario() -> tuple[bool, bool, bool, float]:
        stopping = Stopping()
        short = await stopping.sleep(0.01)
        asyncio.get_running_loop().call_later(0.05, stopping.set)
        started = time.monotonic()
        long = await stopping.sleep(3600)
        waited = time.monotonic() - started
        later = await stopping.sleep(3600)
        return short, long, later, waited

    short, long, later, waited = asyncio.run(scenario())
    assert (short, long, later) == (True, False, False)
    assert waited < 1


class FakeClock:
    """A clock the test moves; `sleep` moves it, or reports a stop from STOP_AT on."""

    def __init__(self, stop_at: float = float("inf")) -> None:
        self.now = 100.0
        self.stop_at = stop_at
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> bool:
        if self.now + seconds >= self.stop_at:
            self.now = self.stop_at
            return False
        self.slept.append(seconds)
        self.now += seconds
        return True


@pytest.mark.parametrize(
    ("rate", "pause", "stop_at", "acquired", "slept"),
    [
        (0.5, 0.0, float("inf"), [True, True], [2.0]),  # 0.5/s: one token, then 2 s
        (0.5, 0.0, 101.0, [True, False], []),  # stopped a second into a two-second wait
        (None, 200.0, float("inf"), [True, True], [200.0]),  # a pause after a 429
        (None, 200.0, 150.0, [True, False], []),  # ... cut short by a stop
        (2 / 60, 0.0, 110.0, [True, False], []),  # send.rate 2/min: 30 s, stopped at 10
    ],
)
def test_the_pace_and_pauses_wait_unless_a_stop_cuts_them_short(
    rate, pause, stop_at, acquired, slept
):
    clock = FakeClock(stop_at)
    limiter = RateLimiter(rate, clock, clock.sleep)

    async def two_sends() -> list[bool]:
        first = await limiter.acquire()
        if pause:
            limiter.pause(pause)
        return [first, await limiter.acquire()]

    assert asyncio.run(two_sends()) == acquired
    assert clock.slept == [pytest.approx(s) for s in slept]


def test_a_cut_short_wait_takes_no_token():
    clock = FakeClock(stop_at=100.5)
    limiter = RateLimiter(1.0, clock, clock.sleep)

    async def scenario() -> list[bool]:
        return [await limiter.acquire(), await limiter.acquire()]

    assert asyncio.run(scenario()) == [True, False]
    assert limiter.bucket is not None and limiter.bucket.tokens == pytest.approx(0.0)


# ---- the deadline of one exchange ----------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout_s", "elapsed", "left"),
    [(5.0, 0.0, 5.0), (5.0, 4.5, 0.5), (5.0, 5.0, None), (5.0, 28.0, None), (0.3, 0.1, 0.2)],
)
def test_each_step_gets_what_is_left_of_the_deadline(timeout_s, elapsed, left):
    clock = FakeClock()
    deadline = Deadline(timeout_s, clock)
    assert deadline.left(httpcore.ReadTimeout) == float("inf")  # no exchange yet
    deadline.start()
    clock.now += elapsed
    for error in (httpcore.ConnectTimeout, httpcore.WriteTimeout, httpcore.ReadTimeout):
        if left is None:
            with pytest.raises(error, match=rf"gateway.timeout_s \({timeout_s:g} s\)"):
                deadline.left(error)
        else:
            assert deadline.left(error) == pytest.approx(left)


def test_a_deadline_passing_while_sending_is_retried_while_reading_is_unknown():
    deadline = Deadline(1.0, FakeClock())
    assert failure_answer(deadline.passed(httpcore.ConnectTimeout)).kind is RETRY
    assert failure_answer(deadline.passed(httpcore.WriteTimeout)).kind is RETRY
    assert failure_answer(deadline.passed(httpcore.ReadTimeout)).kind is UNANSWERED


class Server:
    """A loopback server that answers each connection with HOW(socket), on a thread."""

    def __init__(self, how):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/api/Messages"
        self.sent = 0
        threading.Thread(target=self._serve, args=(how,), daemon=True).start()

    def _serve(self, how) -> None:
        sock, _ = self.listener.accept()
        with sock, contextlib.suppress(OSError):
            how(self, sock)

    def close(self) -> None:
        self.listener.close()


def _read_head(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)


def trickling(server: Server, sock: socket.socket) -> None:
    _read_head(sock)
    for byte in b'HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n{"messages":[{"id":"wamid.T"}]}':
        sock.sendall(bytes([byte]))
        time.sleep(0.1)


def flooding(server: Server, sock: socket.socket) -> None:
    _read_head(sock)
    sock.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 52428800\r\n\r\n")
    while True:
        sock.sendall(b"x" * 65536)
        server.sent += 65536


def never_reading(server: Server, sock: socket.socket) -> None:
    time.sleep(5)


def exchange(connection_class, url: str, content: bytes = b"{}", timeout_s: float = 1.0):
    connection = connection_class(url, ssl.create_default_context(), timeout_s)
    headers = [host_header(url), (b"Content-Length", str(len(content)).encode())]
    request = post_request(httpcore.URL(url), headers, content)

    async def go():
        try:
            return await connection.exchange(request)
        finally:
            await connection.aclose()

    return asyncio.run(go())


CONNECTIONS = [BlockingConnection, AsyncConnection]


@pytest.mark.parametrize("connection_class", CONNECTIONS)
def test_a_trickled_answer_ends_at_the_deadline_as_a_read_timeout(connection_class):
    server = Server(trickling)  # 70 bytes at 0.1 s each: 7 s, against a 1 s deadline
    started = time.monotonic()
    with pytest.raises(httpcore.ReadTimeout, match="gateway.timeout_s"):
        exchange(connection_class, server.url)
    assert time.monotonic() - started < 2.5
    server.close()


@pytest.mark.parametrize("connection_class", CONNECTIONS)
def test_a_request_the_gateway_never_reads_ends_at_the_deadline_unsent(connection_class):
    server = Server(never_reading)
    started = time.monotonic()
    with pytest.raises(httpcore.WriteTimeout, match="gateway.timeout_s"):
        exchange(connection_class, server.url, content=b"x" * (64 * 1024 * 1024))
    assert time.monotonic() - started < 4
    server.close()


@pytest.mark.parametrize("connection_class", CONNECTIONS)
def test_an_answer_over_the_bound_is_left_unread(connection_class):
    server = Server(flooding)
    received = exchange(connection_class, server.url, timeout_s=10)
    assert (received.status, received.content, received.oversized) == (500, b"", True)
    time.sleep(0.2)
    assert server.sent < 50 * 1024 * 1024 // 2
    assert MAX_ANSWER_BYTES == 64 * 1024
    server.close()
