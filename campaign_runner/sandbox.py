"""Sandbox stage: a local stand-in for the Kong-fronted WhatsApp gateway, on loopback.

It answers `POST /api/Messages` as the real gateway does (Kong key-auth and rate limiting,
Meta error envelopes), records what it accepts and injects faults on request, so a campaign
can be rehearsed with no credentials and the tests talk to a real HTTP server. One asyncio
event loop parses HTTP/1.1 with h11 and serves every keep-alive connection.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import http
import itertools
import json
import os
import random
import secrets
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import h11

from campaign_runner import schemas

API_PATH = "/api/Messages"
API_VERSION = "4.0"

# Kong's own words, so a sender's handling of the sandbox carries over to the real gateway.
NO_KEY = "No API key found in request"
BAD_KEY = "Invalid authentication credentials"
DUPLICATE_KEY = "Duplicate API key found"
RATE_LIMITED = "API rate limit exceeded"
UNEXPECTED = "An unexpected error occurred"
NO_ROUTE = "no Route matched with those values"
TOO_LARGE = "Request size limit exceeded"

KONG_FAULTS = ("500", "429", "drop", "lost")
THROTTLING_CODES = frozenset({4, 80007, 130429, 131048, 131056})

# (title, details) per Meta error code; the title goes in `message` as "(#CODE) title".
META_ERRORS: dict[int, tuple[str, str]] = {
    0: ("AuthException", "We were unable to authenticate the app user."),
    1: ("API Unknown", "Invalid request or possible server error."),
    2: ("API Service", "Temporary due to downtime or due to being overloaded."),
    3: ("API Method", "The app lacks the capability to call this method."),
    4: ("API Too Many Calls", "The app has reached its API call rate limit."),
    10: ("Permission Denied", "Permission is either not granted or has been removed."),
    100: ("Invalid parameter", "The request included invalid or unsupported parameters."),
    190: ("Access token has expired", "Your access token has expired."),
    368: (
        "Temporarily blocked for policies violations",
        "The WhatsApp Business Account has been restricted for violating a platform policy.",
    ),
    80007: ("Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131000: ("Something went wrong", "Message failed to send because of an unknown error."),
    131005: ("Access denied", "Permission is either not granted or has been removed."),
    131008: ("Required parameter is missing", "The request is missing a required parameter."),
    131009: ("Parameter value is not valid", "One or more parameter values are invalid."),
    131016: ("Service unavailable", "A service is temporarily unavailable."),
    131021: ("Recipient cannot be sender", "Sender and recipient phone number is the same."),
    131026: (
        "Message Undeliverable",
        "Unable to deliver message: the number is not on WhatsApp, has not accepted the "
        "Terms of Service, or runs an old WhatsApp version.",
    ),
    131031: (
        "Business Account locked",
        "The WhatsApp Business Account has been restricted for violating a platform policy.",
    ),
    131047: (
        "Re-engagement message",
        "More than 24 hours have passed since the recipient last replied to the sender number.",
    ),
    131048: (
        "Spam rate limit hit",
        "Sending from this number is restricted: earlier messages were blocked or flagged.",
    ),
    131049: (
        "Meta chose not to deliver",
        "This message was not delivered to maintain healthy ecosystem engagement.",
    ),
    131050: (
        "Unable to deliver the message",
        "The recipient has chosen to stop receiving marketing messages from your business.",
    ),
    131051: ("Unsupported message type", "Unsupported message type."),
    131056: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages from the sender number to the same recipient in a short time.",
    ),
    131057: ("Account in maintenance mode", "Business Account is in maintenance mode."),
    132000: (
        "Number of parameters does not match the expected number of params",
        "The number of parameter values does not match the template's parameters.",
    ),
    132001: (
        "Template name does not exist in the translation",
        "The template does not exist in the given language or has not been approved.",
    ),
    132005: ("Translated text too long", "Translated text is too long."),
    132007: ("Template format character policy violated", "Template content violates a policy."),
    132012: ("Template parameter format mismatch", "Parameter values are formatted wrongly."),
    132015: ("Template is Paused", "The template is paused because of low quality."),
    132016: ("Template is Disabled", "The template is disabled for good because of low quality."),
    133004: ("Server Temporarily Unavailable", "Server is temporarily unavailable."),
    133010: ("Phone number Not Registered", "The phone number is not registered on Cloud API."),
}

_NOMINAL_LIMIT = 80  # Meta's default messages/s per number: the limit a fault 429 claims
_MAX_HEADER_BYTES = 16 * 1024
_READ_SIZE = 64 * 1024
_LINGER_S = 1.0  # keep reading after a closing answer so the client sees it, not a reset
_JSON = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")


@dataclass
class Faults:
    """What goes wrong, and how often: latency, random faults by share, scripted faults by `to`."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)
    seed: int | None = None
    retry_after_s: int = 1
    script: dict[str, list[str]] = field(default_factory=dict)
    rate_limit_per_s: float | None = None

    def __post_init__(self) -> None:
        problems = fault_problems(self)
        if problems:
            raise ValueError("; ".join(problems))


@dataclass
class SandboxConfig:
    """Where the sandbox listens, which key it wants, where it records, and its faults."""

    host: str = "127.0.0.1"
    port: int = 8787
    apikey: str | None = None
    record: Path | None = None
    faults: Faults = field(default_factory=Faults)
    max_body_bytes: int = 1_048_576
    # Answer a repeated `Idempotency-Key` with the first answer instead of a second message.
    # Off by default: the production gateway documents no such behaviour.
    idempotency: bool = False


def fault_problems(faults: Faults) -> list[str]:
    """Everything wrong with FAULTS, as sentences; empty when they can be used."""
    problems = []
    for name in ("latency_ms", "jitter_ms", "retry_after_s"):
        if getattr(faults, name) < 0:
            problems.append(f"{name} must not be negative")
    for kind, share in faults.rates.items():
        problems += _kind_problems(str(kind), allow_ok=False)
        if not 0 <= share <= 1:
            problems.append(f"rate for {kind!r} is {share}; it must be between 0 and 1")
    if sum(faults.rates.values()) > 1 + 1e-9:
        problems.append(f"fault rates add up to {sum(faults.rates.values()):g}; at most 1 allowed")
    for to, kinds in faults.script.items():
        for kind in kinds:
            problems += [f"script for {to}: {p}" for p in _kind_problems(str(kind), True)]
    if faults.rate_limit_per_s is not None and not faults.rate_limit_per_s > 0:
        problems.append("rate_limit_per_s must be above 0 (or None for no limit)")
    return problems


def _kind_problems(kind: str, allow_ok: bool) -> list[str]:
    if kind in KONG_FAULTS or (allow_ok and kind == "ok") or (kind.isascii() and kind.isdigit()):
        return []
    expected = "ok, " if allow_ok else ""
    return [
        f"unknown fault kind {kind!r}; expected {expected}500, 429, drop, lost "
        "or a Meta error code such as 131026"
    ]


def meta_http_status(code: int) -> int:
    """The HTTP status Meta answers error CODE with (throttling 429, auth 401, policy 403...)."""
    if code in THROTTLING_CODES:
        return 429
    if code in (0, 190):
        return 401
    if code in (10, 368, 131005, 131031) or 200 <= code <= 299:
        return 403
    if code in (1, 2, 3, 131000):
        return 500
    return 400


def meta_error(code: int, details: str | None = None) -> dict:
    """A Meta Graph API error envelope for CODE, as the gateway forwards it."""
    title, default_details = META_ERRORS.get(code, ("Error", "The request could not be processed."))
    return {
        "error": {
            "message": f"(#{code}) {title}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details or default_details},
            "fbtrace_id": "A" + secrets.token_urlsafe(16)[:22],
        }
    }


def _digits(text: str) -> str:
    return "".join(ch for ch in text if "0" <= ch <= "9")


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _query(query: str) -> dict[str, str]:
    # Not parse_qs: it turns the "+" of "?to=+5511..." into a space.
    pairs = (part.partition("=") for part in query.split("&") if part)
    out: dict[str, str] = {}
    for name, _, value in pairs:
        out.setdefault(unquote(name), unquote(value))
    return out


@dataclass(slots=True)
class _Reply:
    """What to do with one request: answer STATUS with PAYLOAD, or close silently."""

    status: int
    payload: object = None
    headers: list = field(default_factory=list)
    close: bool = False
    silent: bool = False  # close the connection without any answer (drop, lost)
    delayed: bool = False  # gateway answers carry the configured latency
    note: str = ""  # the echo line, after the clock


class _TokenBucket:
    """Kong-like per-second limit, refilled continuously so bursts are judged the same way
    wherever they fall in the second."""

    def __init__(self, per_s: float):
        self.per_s = per_s
        self.capacity = max(1.0, per_s)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> tuple[bool, int]:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.per_s)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True, int(self.tokens)
        return False, 0


class _Gateway:
    """The request handling that Sandbox (background thread) and serve() (foreground) share."""

    def __init__(self, config: SandboxConfig, echo: Callable[[str], None] | None):
        self.config = config
        self.echo = echo
        self.port: int | None = None
        self._apikey = config.apikey.encode() if config.apikey is not None else None
        self._lock = threading.Lock()  # records and faults are read from other threads
        self._records: list[dict] = []
        self._record_file = None
        self._connections: set[asyncio.Task] = set()
        self._wamid_prefix = os.urandom(4).hex().upper()
        self._wamid_counter = itertools.count(1)
        self.idempotency = config.idempotency
        self._answers: dict[bytes, dict] = {}  # Idempotency-Key -> the answer first given
        self.set_faults(config.faults)

    # ---- state shared with other threads ----------------------------------------------

    def set_faults(self, faults: Faults) -> None:
        """Use FAULTS from the next request on, with a fresh seed, script and rate limit."""
        problems = fault_problems(faults)
        if problems:
            raise ValueError("; ".join(problems))
        cumulative, total = [], 0.0
        for kind, share in faults.rates.items():
            total += share
            cumulative.append((total, str(kind)))
        jitter_seed = None if faults.seed is None else f"jitter-{faults.seed}"
        script = {}
        for to, kinds in faults.script.items():
            script.setdefault(_digits(to) or to, deque()).extend(str(kind) for kind in kinds)
        with self._lock:
            self._faults = faults
            self._cumulative = cumulative
            self._fault_rng = random.Random(faults.seed)
            self._jitter_rng = random.Random(jitter_seed)
            self._script = script
            per_s = faults.rate_limit_per_s
            self._bucket = _TokenBucket(per_s) if per_s else None

    def records(self) -> list[dict]:
        with self._lock:
            return list(self._records)

    def clear_records(self) -> None:
        with self._lock:
            self._records.clear()

    # ---- the server -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, on_listening: Callable[[int], None]) -> None:
        """Serve until STOP is set; call ON_LISTENING with the bound port once listening."""
        if self.config.record is not None:
            Path(self.config.record).parent.mkdir(parents=True, exist_ok=True)
            self._record_file = open(self.config.record, "a", encoding="utf-8")  # noqa: SIM115
        try:
            server = await asyncio.start_server(
                self._serve_connection, self.config.host, self.config.port, backlog=1024
            )
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
        finally:
            if self._record_file is not None:
                self._record_file.close()
                self._record_file = None

    def banner(self) -> list[str]:
        """What serve() and Sandbox.start() tell a person: where to send, and what to expect."""
        key = "any non-empty key" if self.config.apikey is None else "the configured key only"
        url = _base_url(self.config.host, self.port) + API_PATH
        lines = [f"sandbox gateway listening on {url} (apikey: {key})"]
        if self.config.record is not None:
            lines.append(f"recording accepted messages to {self.config.record}")
        faults = self._faults
        if faults.latency_ms or faults.jitter_ms:
            lines.append(f"latency {faults.latency_ms:g} ms + up to {faults.jitter_ms:g} ms jitter")
        if faults.rates:
            shares = ", ".join(f"{kind} {share:.1%}" for kind, share in faults.rates.items())
            lines.append(f"random faults: {shares} (seed {faults.seed})")
        if faults.rate_limit_per_s:
            lines.append(f"rate limit {faults.rate_limit_per_s:g} requests/s")
        return lines

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        task = asyncio.current_task()
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADER_BYTES)
        try:
            while True:
                try:
                    received = await self._read_request(conn, reader)
                except h11.RemoteProtocolError as exc:
                    if not reader.at_eof():  # a client that hung up mid-request gets nothing
                        await self._refuse_garbage(exc, reader, writer)
                    return
                if received is None:
                    return
                request, body = received
                reply = self._handle(request, body)
                if reply.delayed:
                    await self._add_latency()
                if reply.silent:
                    return
                writer.write(self._encode(conn, reply))
                keep_alive = conn.our_state is h11.DONE and conn.their_state is h11.DONE
                if reply.close or not keep_alive:
                    await self._linger(reader, writer)
                    return
                await writer.drain()
                conn.start_next_cycle()
        except (ConnectionError, OSError, h11.LocalProtocolError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            pass  # stopping; swallowed because 3.11's stream callback logs a cancelled handler
        finally:
            self._connections.discard(task)
            writer.close()

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader):
        """The next request and its body (None when too large), or None once the client left."""
        request, chunks, size = None, [], 0
        limit = self.config.max_body_bytes
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(_READ_SIZE))
            elif type(event) is h11.Data:
                size += len(event.data)
                if size <= limit:
                    chunks.append(event.data)
                elif size > max(16 * limit, 16 * 1024 * 1024):
                    return request, None  # stop reading a runaway upload; answer and close now
            elif type(event) is h11.Request:
                request = event
            elif type(event) is h11.EndOfMessage:
                return request, (b"".join(chunks) if size <= limit else None)
            else:  # ConnectionClosed
                return None

    async def _refuse_garbage(self, exc, reader, writer) -> None:
        status = getattr(exc, "error_status_hint", 400) or 400
        body = json.dumps({"message": f"Bad request: {exc}"}).encode()
        head = (
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        self._say(f"{status} bad-request - {exc}")
        await self._linger(reader, writer)

    async def _linger(self, reader, writer) -> None:
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

    async def _add_latency(self) -> None:
        faults = self._faults
        delay = faults.latency_ms
        if faults.jitter_ms:
            with self._lock:
                delay += self._jitter_rng.uniform(0, faults.jitter_ms)
        if delay > 0:
            await asyncio.sleep(delay / 1000)

    @staticmethod
    def _encode(conn: h11.Connection, reply: _Reply) -> bytes:
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

    def _say(self, note: str) -> None:
        if self.echo is None:
            return
        try:
            self.echo(f"{time.strftime('%H:%M:%S')} {note}")
        except Exception:
            pass  # a closed terminal must not change what the client is told

    # ---- routing ----------------------------------------------------------------------

    def _handle(self, request: h11.Request, body: bytes | None) -> _Reply:
        path, _, query = request.target.decode("latin-1").partition("?")
        try:
            reply = self._route(request.method, path, query, request.headers, body)
        except Exception as exc:  # a sandbox bug must not stop the server
            reply = _Reply(500, {"message": UNEXPECTED}, delayed=path == API_PATH)
            reply.note = f"500 sandbox-error {path} {exc!r}"
        if self.echo is not None and reply.note:
            self._say(reply.note)
        return reply

    def _route(self, method: bytes, path: str, query: str, headers, body: bytes | None) -> _Reply:
        if body is None:
            return _Reply(413, {"message": TOO_LARGE}, close=True, note=f"413 too-large {path}")
        if path == API_PATH:
            reply = self._api(method, query, headers, body)
            reply.delayed = True
            return reply
        if path == "/messages" and method in (b"GET", b"DELETE"):
            return self._records_endpoint(method, query)
        if path == "/health" and method == b"GET":
            return _Reply(200, {"status": "ok"})
        if path in ("/messages", "/health"):
            allow = b"GET, DELETE" if path == "/messages" else b"GET"
            note = f"405 {method.decode('latin-1')} {path}"
            return _Reply(405, {"message": "Method not allowed"}, [(b"allow", allow)], note=note)
        note = f"404 {method.decode('latin-1')} {path}"
        return _Reply(404, {"message": NO_ROUTE}, note=note)

    def _records_endpoint(self, method: bytes, query: str) -> _Reply:
        if method == b"DELETE":
            self.clear_records()
            return _Reply(200, {"deleted": True})
        params = _query(query)
        records = self.records()
        if params.get("to"):
            wanted = _digits(params["to"]) or params["to"]
            records = [r for r in records if (_digits(str(r.get("to"))) or r.get("to")) == wanted]
        if "limit" in params:
            if not (params["limit"].isascii() and params["limit"].isdigit()):
                return _Reply(400, {"message": "limit must be a whole number"})
            limit = int(params["limit"])
            records = records[-limit:] if limit else []  # the most recent, still in arrival order
        return _Reply(200, records)

    def _api(self, method: bytes, query: str, headers, body: bytes) -> _Reply:
        if method != b"POST":
            return _Reply(
                405,
                {"message": "Method not allowed"},
                [(b"allow", b"POST")],
                note=f"405 {method.decode('latin-1')} {API_PATH}",
            )
        keys, version, content_type, idempotency_key = [], None, None, None
        for name, value in headers:
            if name == b"apikey":
                keys.append(value)
            elif name == b"idempotency-key":
                idempotency_key = value
            elif name == b"version":
                version = value
            elif name == b"content-type":
                content_type = value
        if not keys and "apikey=" in query:  # Kong's key_in_query, on by default
            keys = [_query(query).get("apikey", "").encode()]
        refusal = self._key_auth(keys)
        if refusal is not None:
            return refusal
        if version is not None and version.strip() != API_VERSION.encode():
            return _Reply(400, {"message": "Unsupported version"}, note="400 bad-version -")

        message, parse_error = self._parse(body)
        to = message.get("to") if isinstance(message, dict) else None
        to = to if isinstance(to, str) else None
        who = to or "-"

        limit_headers = []
        with self._lock:
            bucket = self._bucket
            if bucket is not None:
                allowed, remaining = bucket.take()
                limit_headers = self._limit_headers(bucket.per_s, remaining)
                if not allowed:
                    return self._rate_limited(bucket.per_s, f"429 rate-limited {who}")

        kind = self._fault_for(to)
        if kind == "drop":
            return _Reply(0, silent=True, note=f"--- fault drop {who}")
        if kind not in ("ok", "lost"):
            reply = self._fault_reply(kind, who)
            if kind != "429":  # that answer carries its own, exhausted, limit headers
                reply.headers.extend(limit_headers)
            return reply

        reply = self._accept(message, parse_error, to, version, content_type, idempotency_key)
        reply.headers.extend(limit_headers)
        if kind == "lost":
            reply.silent = True
            reply.note = f"--- fault lost {who} (would have answered {reply.note})"
        return reply

    def _key_auth(self, keys: list[bytes]) -> _Reply | None:
        if len(keys) > 1:
            return _Reply(401, {"message": DUPLICATE_KEY}, note="401 duplicate-key -")
        key = keys[0].strip() if keys else b""
        if not key:
            challenge = [(b"www-authenticate", b'Key realm="kong"')]
            return _Reply(401, {"message": NO_KEY}, challenge, note="401 no-key -")
        if self._apikey is not None and key != self._apikey:
            return _Reply(401, {"message": BAD_KEY}, note="401 wrong-key -")
        return None

    @staticmethod
    def _parse(body: bytes):
        try:
            return json.loads(body), None
        except (ValueError, UnicodeDecodeError) as exc:
            return None, f"the request body is not valid JSON: {exc}"

    def _fault_for(self, to: str | None) -> str:
        """The fault kind for this request: the recipient's script first, then one random draw."""
        with self._lock:
            draw = self._fault_rng.random()  # drawn for every request, so the pattern follows order
            queue = self._script.get(_digits(to) or to) if to else None
            if queue:
                return queue.popleft()
            for bound, kind in self._cumulative:
                if draw < bound:
                    return kind
        return "ok"

    def _fault_reply(self, kind: str, who: str) -> _Reply:
        if kind == "500":
            return _Reply(500, {"message": UNEXPECTED}, note=f"500 fault 500 {who}")
        if kind == "429":
            per_s = self._faults.rate_limit_per_s or _NOMINAL_LIMIT
            return self._rate_limited(per_s, f"429 fault 429 {who}")
        code = int(kind)
        status = meta_http_status(code)
        return _Reply(status, meta_error(code), note=f"{status} fault {code} {who}")

    def _limit_headers(self, per_s: float, remaining: int) -> list[tuple[bytes, bytes]]:
        limit = f"{per_s:g}".encode()
        left = str(remaining).encode()
        return [
            (b"x-ratelimit-limit-second", limit),
            (b"x-ratelimit-remaining-second", left),
            (b"ratelimit-limit", limit),
            (b"ratelimit-remaining", left),
            (b"ratelimit-reset", b"1"),
        ]

    def _rate_limited(self, per_s: float, note: str) -> _Reply:
        wait = str(self._faults.retry_after_s).encode()
        limit = f"{per_s:g}".encode()
        headers = [
            (b"retry-after", wait),
            (b"ratelimit-limit", limit),
            (b"ratelimit-remaining", b"0"),
            (b"ratelimit-reset", wait),
            (b"x-ratelimit-limit-second", limit),
            (b"x-ratelimit-remaining-second", b"0"),
        ]
        return _Reply(429, {"message": RATE_LIMITED}, headers, note=note)

    def _accept(self, message, parse_error, to, version, content_type, idempotency_key=None):
        """Validate the body; record it and answer with a fresh wamid when it is good."""
        who = to or "-"
        if parse_error is not None or not isinstance(message, dict):
            details = parse_error or (
                f"the request body must be a JSON object, not {type(message).__name__}"
            )
            return _Reply(400, meta_error(100, details), note=f"400 invalid {who} {details}")
        issues = [] if schemas.is_valid(message) else schemas.check(message, "message")
        if issues:
            details = "; ".join(str(issue) for issue in issues)
            return _Reply(400, meta_error(100, details), note=f"400 invalid {who} {details}")
        if self.idempotency and idempotency_key:
            with self._lock:
                first = self._answers.get(idempotency_key)
            if first is not None:
                wamid = first["messages"][0]["id"]
                return _Reply(200, first, note=f"200 repeat {who} {wamid} (same Idempotency-Key)")

        digits = _digits(to)
        wamid = self._new_wamid(digits)
        kept = {}
        if version is not None:
            kept["version"] = version.decode("latin-1")
        if content_type is not None:
            kept["content-type"] = content_type.decode("latin-1")
        record = {
            "id": wamid,
            "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "to": to,
            "type": message.get("type"),
            "body": message,
            "headers": kept,  # never the apikey
        }
        with self._lock:
            self._records.append(record)
        if self._record_file is not None:
            self._record_file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._record_file.flush()  # another process may be tailing the file
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": digits}],
            "messages": [{"id": wamid}],
        }
        if idempotency_key:  # remembered always, so honouring can be switched on later
            with self._lock:
                self._answers[idempotency_key] = answer
        return _Reply(200, answer, note=f"200 {record['type']} {who} {wamid}")

    def _new_wamid(self, digits: str) -> str:
        # Shaped like Meta's: base64 of the recipient and a 18-character unique tail.
        tail = f"{self._wamid_prefix}{next(self._wamid_counter):010X}".encode()
        phone = digits[:20].encode()
        raw = b"\x1c\x18%c%s\x15\x02\x00\x11\x18\x12%s\x00" % (len(phone), phone, tail)
        return "wamid." + base64.b64encode(raw).decode()


class Sandbox:
    """A sandbox gateway running in a background thread (its own event loop)."""

    def __init__(self, config: SandboxConfig, echo: Callable[[str], None] | None = None):
        self.config = config
        self._echo = echo
        self._gateway = _Gateway(config, echo)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> Sandbox:
        """Start serving and return once listening (port 0 binds a free port)."""
        if self._thread is not None:
            return self
        listening = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self._gateway.run(self._stop, lambda port: listening.set())

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # handed to start(), which raises it in the caller
                failure.append(exc)
            finally:
                listening.set()

        self._thread = threading.Thread(target=run, name="sandbox-gateway", daemon=True)
        self._thread.start()
        listening.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        if self._echo is not None:
            for line in self._gateway.banner():
                self._echo(line)
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and the record file; safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass  # the loop already ended
        thread.join()

    @property
    def url(self) -> str:
        """The base address, e.g. http://127.0.0.1:8787."""
        if self._gateway.port is None:
            raise RuntimeError("the sandbox is not started")
        return _base_url(self.config.host, self._gateway.port)

    @property
    def messages_url(self) -> str:
        """Where a sender posts messages: url + /api/Messages."""
        return self.url + API_PATH

    def messages(self) -> list[dict]:
        """Copies of the accepted messages so far, in arrival order."""
        return copy.deepcopy(self._gateway.records())

    def set_faults(self, faults: Faults) -> None:
        """Change the faults while running; the next request sees them (thread-safe)."""
        self._gateway.set_faults(faults)

    def set_idempotency(self, honour: bool) -> None:
        """Start or stop answering a repeated Idempotency-Key with its first answer."""
        self._gateway.idempotency = honour

    def message_count(self) -> int:
        """How many messages were accepted so far (cheaper than `messages()`)."""
        return len(self._gateway.records())

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def serve(config: SandboxConfig, echo: Callable[[str], None]) -> None:
    """Run in the foreground until Ctrl-C or SIGTERM, echoing where it listens and each request."""
    gateway = _Gateway(config, echo)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop.set)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or Windows: Ctrl-C arrives as KeyboardInterrupt

        def announce(port: int) -> None:
            for line in gateway.banner():
                echo(line)

        await gateway.run(stop, announce)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    echo("sandbox stopped")
