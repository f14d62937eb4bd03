"""Meta's webhook payloads, read into events: one parser for `campaign webhook` and `ingest`.

    {"object": "whatsapp_business_account",
     "entry": [{"id": WABA, "changes": [{"field": "messages" | "user_preferences",
        "value": {"statuses": [...], "messages": [...], "user_preferences": [...]}}]}]}

    statuses[]          StatusUpdate: id (the wamid), status (sent|delivered|read|failed),
                        timestamp, recipient_id, errors[] (code, title, message,
                        error_data.details), pricing.category, conversation.id,
                        biz_opaque_callback_data
    messages[]          Reply: an inbound message from a customer (from, id, timestamp, type,
                        context.id: the wamid it answers)
    user_preferences[]  Preference: marketing opt-out (`stop`) or opt-in (`resume`)

Data in, events out: the parser never raises on a payload. Each part it cannot read is a
`problems` entry naming its JSON path (`entry[0].changes[1].value.statuses[3].id`), and
the rest of the payload is still read, since Meta would only post the same payload again.
A status Meta may add later (`deleted`, `warning`, ...) is counted in `ignored`, not an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from campaign_runner.webhooks.outcome import STATUS_WORDS

MAX_ID_CHARS = 128  # a wamid is at most 128 characters (whatsapp-limits.md, IDs)
MAX_TEXT_CHARS = 512  # titles, details and callback data kept: more is cut, never stored whole
_DIGITS = re.compile(r"^\+?[1-9][0-9]{5,14}$")  # a wa_id / recipient_id, E.164 without '+'
# Meta's timestamps are Unix seconds; before 2000 or after 2200 is not a real one.
_EARLIEST, _LATEST = 946_684_800, 7_258_118_400


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One `statuses[]` entry: what Meta says became of the message MESSAGE_ID, and when."""

    message_id: str
    status: str  # sent | delivered | read | failed
    at: str  # ISO 8601 UTC, milliseconds (as the ledger stores times)
    recipient: str | None = None  # +E.164
    code: int | None = None  # the first error's code, for `failed`
    title: str | None = None
    details: str | None = None
    pricing_category: str | None = None  # marketing | utility | authentication | service ...
    conversation_id: str | None = None
    callback_data: str | None = None  # biz_opaque_callback_data, echoed back


@dataclass(frozen=True, slots=True)
class Reply:
    """A customer's inbound message (`messages[]`), kept to know who answered what."""

    message_id: str
    phone: str  # +E.164
    at: str
    kind: str  # text | button | interactive | image | ...
    context_id: str | None = None  # the wamid it replies to


@dataclass(frozen=True, slots=True)
class Preference:
    """A customer's marketing preference (`user_preferences[]`): stop or resume."""

    phone: str  # +E.164
    value: str  # stop | resume
    category: str  # marketing_messages
    at: str


@dataclass
class Events:
    """What one payload (or a file of them) carried, and what could not be read."""

    statuses: list[StatusUpdate] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    preferences: list[Preference] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "PATH: what is wrong"
    ignored: int = 0  # statuses of a kind the runner does not track

    def extend(self, other: Events) -> None:
        """Add OTHER's events and problems to these."""
        self.statuses.extend(other.statuses)
        self.replies.extend(other.replies)
        self.preferences.extend(other.preferences)
        self.problems.extend(other.problems)
        self.ignored += other.ignored

    def __len__(self) -> int:
        return len(self.statuses) + len(self.replies) + len(self.preferences)


class _Bad(ValueError):
    """One field that cannot be read: its path (relative to the entry) and why."""

    def __init__(self, where: str, why: str):
        super().__init__(f"{where}: {why}")


def parse_payload(doc: Any) -> Events:
    """The events of one webhook payload DOC (a decoded JSON document)."""
    events = Events()
    if not isinstance(doc, dict):
        events.problems.append(f"$: expected a JSON object, got {_kind(doc)}")
        return events
    entries = doc.get("entry")
    if not isinstance(entries, list):
        events.problems.append("entry: missing, or not a list (is this a WhatsApp webhook?)")
        return events
    for i, entry in enumerate(entries):
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            events.problems.append(f"entry[{i}].changes: missing, or not a list")
            continue
        for j, change in enumerate(changes):
            value = change.get("value") if isinstance(change, dict) else None
            where = f"entry[{i}].changes[{j}].value"
            if not isinstance(value, dict):
                events.problems.append(f"{where}: missing, or not an object")
                continue
            _read_value(value, where, events)
    return events


def _read_value(value: dict[str, Any], where: str, events: Events) -> None:
    readers: tuple[tuple[str, Callable[[dict[str, Any], str], Any], list[Any]], ...] = (
        ("statuses", _status, events.statuses),
        ("messages", _reply, events.replies),
        ("user_preferences", _preference, events.preferences),
    )
    for name, read, into in readers:
        items = value.get(name)
        if items is None:
            continue
        if not isinstance(items, list):
            events.problems.append(f"{where}.{name}: expected a list, got {_kind(items)}")
            continue
        for k, item in enumerate(items):
            path = f"{where}.{name}[{k}]"
            try:
                if not isinstance(item, dict):
                    raise _Bad(path, f"expected an object, got {_kind(item)}")
                read_one = read(item, path)
            except _Bad as bad:
                events.problems.append(str(bad))
                continue
            if read_one is None:
                events.ignored += 1
            else:
                into.append(read_one)


def _status(item: dict[str, Any], path: str) -> StatusUpdate | None:
    status = _text(item, "status", path, required=True)
    if status not in STATUS_WORDS:
        return None  # deleted, warning, ...: not a delivery outcome
    code = title = details = None
    errors = item.get("errors")
    if errors is not None:
        if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
            raise _Bad(f"{path}.errors", "expected a list of objects")
        if errors:
            code, title, details = _error(errors[0], f"{path}.errors[0]")
    if status == "failed" and code is None:
        title = title or "failed with no error code"
    pricing = item.get("pricing")
    conversation = item.get("conversation")
    return StatusUpdate(
        message_id=_wamid(item, "id", path),
        status=status,
        at=_timestamp(item, path),
        recipient=_phone(item, "recipient_id", path, required=False),
        code=code,
        title=title,
        details=details,
        pricing_category=_text(pricing, "category", f"{path}.pricing")
        if isinstance(pricing, dict)
        else None,
        conversation_id=_text(conversation, "id", f"{path}.conversation")
        if isinstance(conversation, dict)
        else None,
        callback_data=_text(item, "biz_opaque_callback_data", path),
    )


def _error(error: dict[str, Any], path: str) -> tuple[int | None, str | None, str | None]:
    code = error.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        raise _Bad(f"{path}.code", f"expected Meta's error code (a number), got {_kind(code)}")
    title = _text(error, "title", path) or _text(error, "message", path)
    data = error.get("error_data")
    details = _text(data, "details", f"{path}.error_data") if isinstance(data, dict) else None
    return code, title, details


def _reply(item: dict[str, Any], path: str) -> Reply:
    context = item.get("context")
    return Reply(
        message_id=_wamid(item, "id", path),
        phone=_phone(item, "from", path, required=True) or "",
        at=_timestamp(item, path),
        kind=_text(item, "type", path) or "unknown",
        context_id=_text(context, "id", f"{path}.context") if isinstance(context, dict) else None,
    )


def _preference(item: dict[str, Any], path: str) -> Preference | None:
    value = _text(item, "value", path, required=True)
    if value not in ("stop", "resume"):
        raise _Bad(f"{path}.value", f"expected stop or resume, got {value!r}")
    return Preference(
        phone=_phone(item, "wa_id", path, required=True) or "",
        value=value,
        category=_text(item, "category", path) or "marketing_messages",
        at=_timestamp(item, path),
    )


def _text(item: Any, name: str, path: str, required: bool = False) -> str | None:
    value = item.get(name) if isinstance(item, dict) else None
    if value is None:
        if required:
            raise _Bad(f"{path}.{name}", "missing")
        return None
    if not isinstance(value, str):
        raise _Bad(f"{path}.{name}", f"expected a string, got {_kind(value)}")
    if "\x00" in value:  # never Meta's; PostgreSQL cannot store it (every retry would fail)
        raise _Bad(f"{path}.{name}", "contains a NUL character")
    return value[:MAX_TEXT_CHARS]


def _wamid(item: dict[str, Any], name: str, path: str) -> str:
    value = _text(item, name, path, required=True) or ""
    raw = item[name]
    if not value.strip() or len(raw) > MAX_ID_CHARS or any(c.isspace() for c in raw):
        raise _Bad(f"{path}.{name}", f"not a message id (1 to {MAX_ID_CHARS} characters)")
    return raw


def _phone(item: dict[str, Any], name: str, path: str, required: bool) -> str | None:
    value = _text(item, name, path, required=required)
    if value is None:
        return None
    if not _DIGITS.match(value):
        raise _Bad(f"{path}.{name}", f"not a WhatsApp number: {value[:32]!r}")
    return value if value.startswith("+") else f"+{value}"


def _timestamp(item: dict[str, Any], path: str) -> str:
    raw = item.get("timestamp")
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not _EARLIEST <= raw <= _LATEST:
        raise _Bad(f"{path}.timestamp", f"expected Unix seconds, got {str(raw)[:32]!r}")
    return datetime.fromtimestamp(raw, UTC).isoformat(timespec="milliseconds")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )
