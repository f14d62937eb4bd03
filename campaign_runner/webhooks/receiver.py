"""`campaign webhook`: Meta's webhook protocol served at /webhook (Starlette on uvicorn).

    GET  /webhook?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C
         C (text/plain) when T is $WHATSAPP_VERIFY_TOKEN, else 403
    POST /webhook    body at most MAX_BODY_BYTES (else 413); X-Hub-Signature-256 checked
         over the raw body with $WHATSAPP_APP_SECRET before anything is read (missing: 401,
         wrong: 403); then JSON (else 400), `parse_payload`, and the events handed to the
         one ledger writer (`batcher.GroupCommit`): 200 once they are committed, 503 when
         the ledger cannot take them (Meta retries)
    GET  /healthz    200 when the ledger takes writes, else 503 (for a load balancer)

A payload part that cannot be read is logged with its JSON path and skipped; the rest is
recorded, and the answer is 200 (Meta would only post the same payload again). Nothing
here ever logs a body, a signature, the app secret or the verify token: uvicorn's access
log (which shows query strings, the verify token among them) is off. SIGTERM or Ctrl-C:
stop accepting, answer the requests in flight, commit, close the ledger, exit 0.

Speed (3,000 statuses/s on one core is the target, issue 14): POST /webhook is plain ASGI
in front of the Starlette application (which serves the rest), uvicorn runs on uvloop
with httptools, and the cycle collector runs rarely (`_collect_less`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import socket
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from campaign_runner.errors import CampaignInvalid, Problem, printable
from campaign_runner.ledger import Journal, State, open_ledger, state_from
from campaign_runner.webhooks.batcher import GroupCommit, LedgerUnavailable
from campaign_runner.webhooks.payload import Events, parse_payload
from campaign_runner.webhooks.signature import (
    APP_SECRET_ENV,
    SIGNATURE_HEADER,
    VERIFY_TOKEN_ENV,
    challenge_answer,
    secrets_from_environment,
    signature_valid,
)
from campaign_runner.webhooks.tally import Tally

WEBHOOK_PATH = "/webhook"
HEALTH_PATH = "/healthz"
MAX_BODY_BYTES = 1 << 20  # 1 MiB: Meta's payloads are a few KB; more is not Meta (413)
LOG_EVERY_S = 10.0  # one line of counts per this many seconds, when something happened
MAX_PROBLEMS_LOGGED = 5  # per request; the rest are counted
MAX_CONNECTIONS = 1_000  # connections and requests at once; more are answered 503
GRACE_S = 10  # at shutdown, how long requests in flight may take to be answered
BACKLOG = 2_048
GC_GEN0_THRESHOLD = 20_000  # allocations between two young collections (Python: 700)

Log = Callable[[str, dict[str, object]], None]  # an event word and its fields


@dataclass(frozen=True)
class ReceiverConfig:
    """What `campaign webhook` was asked for."""

    host: str = "127.0.0.1"
    port: int = 8788
    state: str | None = None  # --state: a folder or a postgresql:// URL (None: the default)
    quiet: bool = False  # only problems: no start, counts or stop lines


class Notes:
    """The receiver's log: routine lines (not with --quiet), and notices (always), some of
    them at most once per LOG_EVERY_S for each kind (a flood of bad requests is one line)."""

    def __init__(self, log: Log, quiet: bool):
        self._log, self._quiet = log, quiet
        self._last: dict[str, float] = {}

    def line(self, event: str, fields: dict[str, object]) -> None:
        """A routine line."""
        if not self._quiet:
            self._log(event, fields)

    def notice(self, event: str, fields: dict[str, object]) -> None:
        """A line a person should see, even with --quiet."""
        self._log(event, fields)

    def now_and_then(self, event: str, why: str, fields: dict[str, object]) -> None:
        """A notice, unless one with the same WHY was logged less than LOG_EVERY_S ago."""
        moment = time.monotonic()
        if moment - self._last.get(why, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._last[why] = moment
            self._log(event, {"why": why, **fields})


class Receiver:
    """The ASGI application: the three routes, the ledger writer and the log."""

    def __init__(
        self,
        secret: str,
        verify_token: str | None,
        commit: GroupCommit,
        tally: Tally,
        notes: Notes,
        start: dict[str, object],
    ):
        self._secret, self._verify_token = secret, verify_token
        self.commit, self.tally, self.notes = commit, tally, notes
        self._start = start

    def app(self) -> ASGIApp:
        """The application: Starlette serving the routes, with POST /webhook in front."""
        starlette = Starlette(
            routes=[
                Route(WEBHOOK_PATH, self.handshake, methods=["GET"]),
                Route(HEALTH_PATH, self.health, methods=["GET"]),
            ],
            lifespan=self.lifespan,
        )
        return _PostInFront(starlette, self.receive)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Start the writer and the counts; at shutdown, the last commit and lines."""
        writer = asyncio.create_task(self.commit.run())
        self.notes.line("start", self._start)
        if self._verify_token is None:
            self.notes.notice("warning", {"why": _NO_TOKEN})
        ticker = asyncio.create_task(self._counts_every(LOG_EVERY_S))
        try:
            yield
        finally:
            ticker.cancel()
            self.commit.stop()
            await writer
            self._counts()

    async def handshake(self, request: Request) -> Response:
        """Meta's subscription check: echo the challenge to the holder of the verify token."""
        if self._verify_token is None:
            self.notes.now_and_then("handshake-refused", _NO_TOKEN, _peer(request.scope))
            return PlainTextResponse("refused\n", status_code=403)
        answer = challenge_answer(request.query_params, self._verify_token)
        if answer is None:
            why = "not hub.mode=subscribe with the verify token and a hub.challenge"
            self.notes.now_and_then("handshake-refused", why, _peer(request.scope))
            return PlainTextResponse("refused\n", status_code=403)
        self.notes.line("handshake", {"answered": "challenge", **_peer(request.scope)})
        return PlainTextResponse(answer)

    async def receive(self, scope: Scope, receive: Receive) -> int:
        """A signed payload (POST): its events in the ledger, then 200; else the status
        that refuses it (see the module's docstring)."""
        length, header = _headers_of(scope)
        body = await _body_within(receive, length, MAX_BODY_BYTES)
        if body is None:
            return self._refused(scope, 413, f"body larger than {MAX_BODY_BYTES} bytes")
        if not header:
            return self._refused(scope, 401, f"no {SIGNATURE_HEADER} header")
        if not signature_valid(body, header, self._secret):
            return self._refused(scope, 403, _BAD_SIGNATURE)
        try:  # Meta posts UTF-8; decoding first spares json its encoding detection
            doc = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):
            return self._refused(scope, 400, "signed, but the body is not JSON")
        events = parse_payload(doc)
        self.tally.read(events)
        self._problems(events.problems)
        if len(events):
            try:
                await self.commit.commit(events)
            except LedgerUnavailable:
                return 503  # logged by the writer; Meta retries
        return 200

    async def health(self, request: Request) -> Response:
        """200 when the ledger takes a (empty) write now, else 503."""
        try:
            await self.commit.commit(Events())
        except LedgerUnavailable:
            return PlainTextResponse("the ledger is unavailable\n", status_code=503)
        return PlainTextResponse("ok\n")

    def _refused(self, scope: Scope, status: int, why: str) -> int:
        self.tally.refuse()
        self.notes.now_and_then("refused", why, {"answer": status, **_peer(scope)})
        return status

    def _problems(self, problems: list[str]) -> None:
        for problem in problems[:MAX_PROBLEMS_LOGGED]:
            part, _, what = problem.partition(": ")
            self.notes.notice("problem", {"part": printable(part), "what": printable(what)})
        if len(problems) > MAX_PROBLEMS_LOGGED:
            self.notes.notice("problem", {"more": len(problems) - MAX_PROBLEMS_LOGGED})

    async def _counts_every(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)
            self._counts()

    def _counts(self) -> None:
        counts = self.tally.take()
        if counts:
            self.notes.line("counts", counts.fields())


_NO_TOKEN = (
    f"{VERIFY_TOKEN_ENV} is not set: Meta's subscription check (GET {WEBHOOK_PATH}) is "
    "refused; set it to the verify token entered in the app's webhook settings and restart"
)
_BAD_SIGNATURE = (
    f"{SIGNATURE_HEADER} does not match the body (is {APP_SECRET_ENV} this app's secret?)"
)


def _peer(scope: Scope) -> dict[str, object]:
    client = scope.get("client")
    return {"from": client[0]} if client else {}


class _PostInFront:
    """POST /webhook answered as plain ASGI before Starlette's layers (its error and
    exception middleware, router, Request and Response: measured ~60 us a request, a fifth
    of the budget at 3,000 POSTs/s on one core); everything else is Starlette's."""

    def __init__(self, app: ASGIApp, take: Callable[[Scope, Receive], Awaitable[int]]):
        self._app, self._take = app, take

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != WEBHOOK_PATH or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        status = await self._take(scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": _NO_BODY})
        await send({"type": "http.response.body", "body": b""})


_NO_BODY = [(b"content-length", b"0")]
_SIGNATURE_NAME = SIGNATURE_HEADER.lower().encode("latin-1")


def _headers_of(scope: Scope) -> tuple[bytes | None, str | None]:
    """The request's Content-Length and signature headers (raw, as ASGI gives them)."""
    length = signature = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = value
        elif name == _SIGNATURE_NAME:
            signature = value.decode("latin-1")
    return length, signature


async def _body_within(receive: Receive, declared: bytes | None, limit: int) -> bytes | None:
    """The raw body, or None when it is (or says it is) larger than LIMIT bytes."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b""  # nobody reads the answer; an empty body is refused as unsigned
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _Server(uvicorn.Server):
    """uvicorn's server, stopping gracefully on SIGTERM or SIGINT and then returning (exit
    0), where uvicorn itself would raise the signal again once stopped."""

    stopped_by: str | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.stopped_by = self.stopped_by or signal.Signals(sig).name
        super().handle_exit(sig, frame)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve(config: ReceiverConfig, log: Log) -> None:
    """Serve until SIGTERM or Ctrl-C. `CampaignInvalid` (exit 2), before anything starts,
    when $WHATSAPP_APP_SECRET is unset, the ledger cannot be opened or the address is taken."""
    verify_token, secret = secrets_from_environment()
    if secret is None:
        raise CampaignInvalid(Problem(APP_SECRET_ENV, None, None, _NO_SECRET))
    state = state_from(config.state)
    notes, tally = Notes(log, config.quiet), Tally()
    journal = _opened(state)
    reopen = lambda: _opened(state)  # noqa: E731
    commit = GroupCommit(journal, reopen, tally, notes.notice, in_thread=state.url is not None)
    with contextlib.ExitStack() as stack:
        stack.callback(commit.close)  # when the app never started; else its shutdown did
        sock = stack.enter_context(contextlib.closing(_listen(config.host, config.port)))
        host, port = sock.getsockname()[:2]
        start: dict[str, object] = {
            "listen": f"http://{_host(host)}:{port}{WEBHOOK_PATH}",
            "ledger": state.shown,
        }
        receiver = Receiver(secret, verify_token, commit, tally, notes, start)
        server = _Server(_uvicorn_config(receiver.app()))
        _ServerSays.attach(notes)
        _collect_less()
        server.run(sockets=[sock])
    notes.line("stop", {"by": server.stopped_by or "server"})


_NO_SECRET = (
    "not set: the receiver checks each POST's X-Hub-Signature-256 with the app secret (Meta "
    "app dashboard, App settings > Basic); set it in the environment. Nothing was started"
)


class _ServerSays(logging.Handler):
    """uvicorn's warnings and errors as receiver lines (`server said=...`), a kind at most
    once per LOG_EVERY_S (scanners send junk); for an exception, its type and where it
    was raised, never its message or the request."""

    def __init__(self, notes: Notes):
        super().__init__(logging.WARNING)
        self._notes = notes

    @classmethod
    def attach(cls, notes: Notes) -> None:
        """Route uvicorn's log here, and nowhere else."""
        server_log = logging.getLogger("uvicorn")
        server_log.handlers = [cls(notes)]
        server_log.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        said = record.getMessage()
        fields: dict[str, object] = {}
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            where = traceback.extract_tb(error.__traceback__)[-1:]
            at = f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else ""
            fields["error"] = f"{type(error).__name__}{at}"
        self._notes.now_and_then("server", said, fields)


def _collect_less() -> None:
    """Spare the cycle collector the objects of start-up (frozen), and run it less often:
    each request makes many short-lived objects, freed by reference counting anyway
    (measured: ~15% less CPU a request, and no pauses in the answer times)."""
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def _uvicorn_config(app: ASGIApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http="httptools",
        loop="auto",  # uvloop (a dependency, not on Windows): ~25% less CPU a request
        lifespan="on",
        log_config=None,
        log_level="warning",
        access_log=False,  # it would show query strings: the verify token is one
        server_header=False,
        limit_concurrency=MAX_CONNECTIONS,
        backlog=BACKLOG,
        timeout_graceful_shutdown=GRACE_S,
    )


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound and listening on HOST:PORT (port 0: a free one); `CampaignInvalid`
    when it cannot be (the address is taken, or not this machine's)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        raise CampaignInvalid(
            Problem(
                f"{host}:{port}",
                None,
                None,
                f"cannot listen there ({error.strerror or error}): choose another --host or "
                "--port; nothing was started",
            )
        ) from None
    return sock


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _opened(state: State) -> Journal:
    """The ledger at STATE, for writing (created when missing)."""
    journal = open_ledger(state, readonly=False)
    assert journal is not None  # not read-only
    return journal
