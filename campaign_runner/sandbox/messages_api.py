"""`POST /api/Messages` as the production gateway answers it.

In the gateway's order: Kong's key-auth and rate limit (kong.py), then any injected fault
(faults.py), then Meta's checks (the same JSON Schemas as the runner) and, for a good
message, a record and a fresh wamid. Meta's error codes and statuses come from the one
table in campaign_runner/gateway/answers.py.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from campaign_runner import schemas
from campaign_runner.gateway.answers import meta_code
from campaign_runner.sandbox import kong
from campaign_runner.sandbox.faults import FaultPlan
from campaign_runner.sandbox.records import Records, digits
from campaign_runner.sandbox.server import Reply

API_PATH = "/api/Messages"
API_VERSION = "4.0"
_NOMINAL_LIMIT = 80  # Meta's default messages/s per number: the limit a fault 429 claims


def meta_error(code: int, details: str | None = None) -> dict:
    """A Meta Graph API error envelope for CODE, as the gateway forwards it."""
    entry = meta_code(code)
    return {
        "error": {
            "message": f"(#{code}) {entry.title}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details or entry.details},
            "fbtrace_id": "A" + secrets.token_urlsafe(16)[:22],
        }
    }


@dataclass
class _Post:
    """What the API reads of a POST: its keys, headers it keeps, and the message."""

    keys: list[bytes] = field(default_factory=list)
    version: bytes | None = None
    content_type: bytes | None = None
    idempotency_key: bytes | None = None
    message: Any = None
    parse_error: str | None = None
    to: str | None = None  # the message's recipient, when it names one

    def parse(self, body: bytes) -> None:
        """Read the message from BODY, or why it cannot be read."""
        try:
            self.message = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            self.parse_error = f"the request body is not valid JSON: {exc}"
            return
        to = self.message.get("to") if isinstance(self.message, dict) else None
        self.to = to if isinstance(to, str) else None


class MessagesApi:
    """The Messages API behind Kong: refuses, fails on purpose, or accepts and records."""

    def __init__(self, apikey: str | None, records: Records, plan: FaultPlan, idempotency: bool):
        self._apikey = apikey.encode() if apikey is not None else None
        self.records = records
        self.plan = plan  # swapped whole by another thread: read it once per request
        # Answer a repeated `Idempotency-Key` with the first answer instead of a second message.
        self.idempotency = idempotency
        self._answers: dict[bytes, dict] = {}  # Idempotency-Key -> the answer first given
        self._wamid_prefix = os.urandom(4).hex().upper()
        self._wamid_counter = itertools.count(1)
        # Told of each message accepted (its record): the webhook poster, when there is one.
        self.on_accept: Callable[[dict], None] | None = None

    def post(self, query: str, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Reply:
        """Answer one POST with QUERY, HEADERS (lower-case names) and BODY."""
        post = _read_headers(query, headers)
        refusal = kong.key_auth(post.keys, self._apikey)
        if refusal is not None:
            return refusal
        if post.version is not None and post.version.strip() != API_VERSION.encode():
            return Reply(400, {"message": "Unsupported version"}, note="400 bad-version -")
        post.parse(body)
        plan = self.plan
        who = post.to or "-"
        limit_headers: kong.Headers = []
        if plan.rate_limit is not None:
            bucket = plan.rate_limit
            if not bucket.take(time.monotonic()):
                retry_after_s = plan.faults.retry_after_s
                return kong.rate_limited(
                    bucket.rate_per_s, retry_after_s, f"429 rate-limited {who}"
                )
            limit_headers = kong.limit_headers(bucket.rate_per_s, int(bucket.tokens))
        kind = plan.kind_for(post.to)
        if kind == "drop":
            return Reply(0, silent=True, note=f"--- fault drop {who}")
        if kind not in ("ok", "lost"):
            reply = self._fault_reply(plan, kind, who)
            if kind != "429":  # that answer carries its own, exhausted, limit headers
                reply.headers.extend(limit_headers)
            return reply
        reply = self._accept(post)
        reply.headers.extend(limit_headers)
        if kind == "lost":
            reply.silent = True
            reply.note = f"--- fault lost {who} (would have answered {reply.note})"
        return reply

    @staticmethod
    def _fault_reply(plan: FaultPlan, kind: str, who: str) -> Reply:
        if kind == "500":
            return Reply(500, {"message": kong.UNEXPECTED}, note=f"500 fault 500 {who}")
        if kind == "429":
            per_s = plan.faults.rate_limit_per_s or _NOMINAL_LIMIT
            return kong.rate_limited(per_s, plan.faults.retry_after_s, f"429 fault 429 {who}")
        code = int(kind)
        status = meta_code(code).http_status
        return Reply(status, meta_error(code), note=f"{status} fault {code} {who}")

    def _accept(self, post: _Post) -> Reply:
        """Validate the message; record it and answer with a fresh wamid when it is good."""
        who = post.to or "-"
        details = _invalid(post)
        if details is not None:
            return Reply(400, meta_error(100, details), note=f"400 invalid {who} {details}")
        if self.idempotency and post.idempotency_key:
            first = self._answers.get(post.idempotency_key)
            if first is not None:
                wamid = first["messages"][0]["id"]
                return Reply(200, first, note=f"200 repeat {who} {wamid} (same Idempotency-Key)")
        record = self._record(post)
        if self.on_accept is not None:
            self.on_accept(record)
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": post.to, "wa_id": digits(post.to or "")}],
            "messages": [{"id": record["id"]}],
        }
        if post.idempotency_key:  # remembered always, so honouring can be switched on later
            self._answers[post.idempotency_key] = answer
        return Reply(200, answer, note=f"200 {record['type']} {who} {record['id']}")

    def _record(self, post: _Post) -> dict:
        kept = {}
        if post.version is not None:
            kept["version"] = post.version.decode("latin-1")
        if post.content_type is not None:
            kept["content-type"] = post.content_type.decode("latin-1")
        record = {
            "id": self._new_wamid(digits(post.to or "")),
            "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "to": post.to,
            "type": post.message.get("type"),
            "body": post.message,
            "headers": kept,  # never the apikey
        }
        self.records.add(record)
        return record

    def _new_wamid(self, phone_digits: str) -> str:
        # Shaped like Meta's: base64 of the recipient and a 18-character unique tail.
        tail = f"{self._wamid_prefix}{next(self._wamid_counter):010X}".encode()
        phone = phone_digits[:20].encode()
        raw = b"\x1c\x18%c%s\x15\x02\x00\x11\x18\x12%s\x00" % (len(phone), phone, tail)
        return "wamid." + base64.b64encode(raw).decode()


def _read_headers(query: str, headers: Iterable[tuple[bytes, bytes]]) -> _Post:
    post = _Post()
    for name, value in headers:
        if name == b"apikey":
            post.keys.append(value)
        elif name == b"idempotency-key":
            post.idempotency_key = value
        elif name == b"version":
            post.version = value
        elif name == b"content-type":
            post.content_type = value
    if not post.keys and "apikey=" in query:  # Kong's key_in_query, on by default
        post.keys = [query_params(query).get("apikey", "").encode()]
    return post


def _invalid(post: _Post) -> str | None:
    """Why Meta refuses the message (error 100's details), or None when it is good."""
    if post.parse_error is not None:
        return post.parse_error
    if not isinstance(post.message, dict):
        return f"the request body must be a JSON object, not {type(post.message).__name__}"
    if schemas.is_valid(post.message):
        return None
    issues = schemas.check(post.message, "message")
    return "; ".join(str(issue) for issue in issues) if issues else None


def query_params(query: str) -> dict[str, str]:
    """The first value of each parameter in QUERY, "+" kept (not parse_qs: it makes a space)."""
    out: dict[str, str] = {}
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            out.setdefault(unquote(name), unquote(value))
    return out
