"""The fake gateway: routes each request to the Messages API, the records or the health check.

POST   /api/Messages   MessagesApi (Kong, faults, Meta), with the configured latency
GET    /messages       what was accepted (?to=..., ?limit=N); DELETE clears it; both want
                       the `apikey` header when the sandbox has one (Kong's 401s otherwise)
GET    /webhooks       with webhooks on: the status webhooks posted ({"counts", "posts"},
                       ?limit=N), wanting the key as /messages does
GET    /health         {"status": "ok"}

With webhooks configured, a WebhookPoster is told of each accepted message and posts its
statuses in the background (webhook_poster.py); without, nothing of it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable

import h11

from campaign_runner.sandbox import kong
from campaign_runner.sandbox.config import SandboxConfig, base_url
from campaign_runner.sandbox.faults import FaultPlan, Faults
from campaign_runner.sandbox.messages_api import API_PATH, MessagesApi, query_params
from campaign_runner.sandbox.records import Records
from campaign_runner.sandbox.server import HttpServer, Reply
from campaign_runner.sandbox.webhook_poster import WebhookPoster

_METHOD_NOT_ALLOWED = {"message": "Method not allowed"}


class FakeGateway:
    """What Sandbox (background thread) and serve() (foreground) run: routes and server."""

    def __init__(self, config: SandboxConfig, echo: Callable[[str], None] | None):
        self.config = config
        self.echo = echo
        self.records = Records(config.record)
        plan = FaultPlan(config.faults)
        self.api = MessagesApi(config.apikey, self.records, plan, config.idempotency)
        self.server = HttpServer(self.handle, config.max_body_bytes, self.say)
        self.poster: WebhookPoster | None = None
        if config.webhooks is not None:
            self.poster = WebhookPoster(config.webhooks, self.say)
            self.api.on_accept = self.poster.accepted

    @property
    def port(self) -> int | None:
        """The port it listens on, once listening."""
        return self.server.port

    def set_faults(self, faults: Faults) -> None:
        """Use FAULTS from the next request on, with a fresh seed, script and rate limit."""
        self.api.plan = FaultPlan(faults)

    async def run(self, stop: asyncio.Event, on_listening: Callable[[int], None]) -> None:
        """Serve until STOP is set; call ON_LISTENING with the bound port once listening."""
        async with contextlib.AsyncExitStack() as stack:
            stack.enter_context(self.records.recording())
            if self.poster is not None:  # left after the server: it flushes what waits
                await stack.enter_async_context(self.poster.running())
            await self.server.run(self.config.host, self.config.port, stop, on_listening)

    def banner(self) -> list[str]:
        """What serve() and Sandbox.start() tell a person: where to send, and what to expect."""
        key = "any non-empty key" if self.config.apikey is None else "the configured key only"
        url = base_url(self.config.host, self.port or self.config.port) + API_PATH
        lines = [f"sandbox gateway listening on {url} (apikey: {key})"]
        if self.config.record is not None:
            lines.append(f"recording accepted messages to {self.config.record}")
        faults = self.api.plan.faults
        if faults.latency_ms or faults.jitter_ms:
            lines.append(f"latency {faults.latency_ms:g} ms + up to {faults.jitter_ms:g} ms jitter")
        if faults.rates:
            shares = ", ".join(f"{kind} {share:.1%}" for kind, share in faults.rates.items())
            lines.append(f"random faults: {shares} (seed {faults.seed})")
        if faults.rate_limit_per_s:
            lines.append(f"rate limit {faults.rate_limit_per_s:g} requests/s")
        if self.config.webhooks is not None:
            lines.append(self.config.webhooks.describe())
        return lines

    def say(self, note: str) -> None:
        """Echo NOTE after the clock, if echoing."""
        if self.echo is None:
            return
        with contextlib.suppress(Exception):  # a closed terminal must not change the answer
            self.echo(f"{time.strftime('%H:%M:%S')} {note}")

    def handle(self, request: h11.Request, body: bytes | None) -> Reply:
        """The reply to REQUEST with BODY (None: over the size limit); never raises."""
        path, _, query = request.target.decode("latin-1").partition("?")
        try:
            reply = self._route(request.method, path, query, request.headers, body)
        except Exception as exc:  # a sandbox bug must not stop the server
            reply = Reply(500, {"message": kong.UNEXPECTED})
            reply.note = f"500 sandbox-error {path} {exc!r}"
        if path == API_PATH and body is not None:  # the gateway's answers take their time
            reply.delay_s = self.api.plan.latency_s()
        if self.echo is not None and reply.note:
            self.say(reply.note)
        return reply

    def _route(
        self,
        method: bytes,
        path: str,
        query: str,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes | None,
    ) -> Reply:
        if body is None:
            return Reply(413, {"message": kong.TOO_LARGE}, close=True, note=f"413 too-large {path}")
        if path == API_PATH and method == b"POST":
            return self.api.post(query, headers, body)
        if path == "/messages" and method in (b"GET", b"DELETE"):
            return self._records_endpoint(method, query, headers)
        if path == "/webhooks" and method == b"GET" and self.poster is not None:
            return self._webhooks_endpoint(query, headers)
        if path == "/health" and method == b"GET":
            return Reply(200, {"status": "ok"})
        routes = {API_PATH: b"POST", "/messages": b"GET, DELETE", "/health": b"GET"}
        if self.poster is not None:
            routes["/webhooks"] = b"GET"
        allow = routes.get(path)
        if allow is not None:
            note = f"405 {method.decode('latin-1')} {path}"
            return Reply(405, _METHOD_NOT_ALLOWED, [(b"allow", allow)], note=note)
        return Reply(404, {"message": kong.NO_ROUTE}, note=f"404 {method.decode('latin-1')} {path}")

    def _records_endpoint(
        self, method: bytes, query: str, headers: Iterable[tuple[bytes, bytes]]
    ) -> Reply:
        """The records, to whoever holds the sandbox's key (anyone on loopback when it has
        none)."""
        refusal = self._key_refusal(method, "/messages", headers)
        if refusal is not None:
            return refusal
        if method == b"DELETE":
            self.records.clear()
            return Reply(200, {"deleted": True})
        params = query_params(query)
        limit = params.get("limit")
        if limit is not None and not (limit.isascii() and limit.isdigit()):
            return Reply(400, {"message": "limit must be a whole number"})
        return Reply(200, self.records.select(params.get("to"), int(limit) if limit else None))

    def _webhooks_endpoint(self, query: str, headers: Iterable[tuple[bytes, bytes]]) -> Reply:
        """The webhooks posted: counts and the most recent posts, to the key's holder."""
        assert self.poster is not None  # routed here only with webhooks on
        refusal = self._key_refusal(b"GET", "/webhooks", headers)
        if refusal is not None:
            return refusal
        limit = query_params(query).get("limit")
        if limit is not None and not (limit.isascii() and limit.isdigit()):
            return Reply(400, {"message": "limit must be a whole number"})
        log = self.poster.log
        return Reply(
            200, {"counts": log.snapshot(), "posts": log.posts(int(limit) if limit else None)}
        )

    def _key_refusal(
        self, method: bytes, path: str, headers: Iterable[tuple[bytes, bytes]]
    ) -> Reply | None:
        """Kong's refusal when the sandbox has a key and HEADERS lack it (None: go on).
        The key is read from the header only, never the query: a URL gets logged."""
        if self.config.apikey is None:
            return None
        keys = [value for name, value in headers if name == b"apikey"]
        refusal = kong.key_auth(keys, self.config.apikey.encode())
        if refusal is not None:
            refusal.note = f"{refusal.status} {method.decode('latin-1')} {path} refused"
        return refusal
