"""What the gateway's answers mean: Meta's error codes and Kong's statuses, in one table.

The sender reads `classify` to decide what to do after each attempt; the sandbox reads the
same table to answer a fault with Meta's words and HTTP status. Naming: an `Answer` is one
attempt's classified reply (see gateway/sender.py for `Outcome`, how a recipient ended).

Meta's code decides first, the HTTP status second (the README's retry table):

    2xx with messages[0].id (a non-empty string)  SENT: the id is the gateway's receipt
    Meta `error` object with a code, any status   the code's kind (RETRY at HTTP 429: THROTTLE);
                                                  a code with no kind: by status, as below
    any other 2xx (no id, not JSON, HTML, ...)    UNANSWERED: it may have been acted on
    anything else, by HTTP status (Kong's rules)  401/403 ABORT, 429 THROTTLE,
                                                  5xx/408 RETRY, other PERMANENT
    an answer over MAX_ANSWER_BYTES               left unread: by its status alone, as above

A code may come as a number or as a string of digits ("131000"); anything else is no code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any

# The longest answer read: Meta's answers are well under 2 KiB, so 64 KiB is never a real one.
# A longer answer is left unread (the connection closed) and judged by its status alone.
MAX_ANSWER_BYTES = 64 * 1024
_SNIPPET_CHARS = 200  # how much of an unexpected answer the report quotes


class AnswerKind(Enum):
    """What an attempt's answer means for the recipient, and for the run."""

    SENT = "sent"
    RETRY = "retry"  # try this recipient again after a backoff
    THROTTLE = "throttle"  # retry, and slow the whole run down: the gateway is overloaded
    PAIR_LIMIT = "pair-limit"  # retry this recipient after 4^X s; the others go on (131056)
    PERMANENT = "permanent"  # failed for good: never retried, not even on re-runs
    ABORT = "abort"  # every later recipient would fail the same way: stop the run
    UNANSWERED = "unanswered"  # sent, but no usable answer came back: it may have been delivered


@dataclass(frozen=True, slots=True)
class Answer:
    """One attempt, classified: its kind and what the reply carried (status None: no reply)."""

    kind: AnswerKind
    status: int | None = None
    message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, from Retry-After (else RateLimit-Reset)
    code: int | None = None  # Meta's error code, when the reply carried one


# The sandbox's words for a code it has no title for (and for any code not in the table).
UNTITLED = "Error"
NO_DETAILS = "The request could not be processed."


@dataclass(frozen=True, slots=True)
class MetaCode:
    """One Meta error code: what the runner does with it, and how Meta answers it.

    KIND None: the code alone does not decide, the HTTP status does (as for Kong).
    TITLE goes in the envelope's `message` as "(#CODE) TITLE", DETAILS in `error_data`.
    """

    code: int
    kind: AnswerKind | None
    http_status: int
    title: str = UNTITLED
    details: str = NO_DETAILS


_K = AnswerKind
_BY_STATUS = None  # the code alone does not decide: the HTTP status does
_POLICY = "The WhatsApp Business Account has been restricted for violating a platform policy."

# Sources: /work/shared/reference/whatsapp-limits.md §10 (meanings, actions, HTTP statuses).
# fmt: off
META_CODES: dict[int, MetaCode] = {entry.code: entry for entry in (
    MetaCode(     0, _K.ABORT,      401, "AuthException",
             "We were unable to authenticate the app user."),
    MetaCode(     1, _K.RETRY,      500, "API Unknown",
             "Invalid request or possible server error."),
    MetaCode(     2, _K.RETRY,      500, "API Service",
             "Temporary due to downtime or due to being overloaded."),
    MetaCode(     3, _BY_STATUS,    500, "API Method",
             "The app lacks the capability to call this method."),
    MetaCode(     4, _K.THROTTLE,   429, "API Too Many Calls",
             "The app has reached its API call rate limit."),
    MetaCode(    10, _BY_STATUS,    403, "Permission Denied",
             "Permission is either not granted or has been removed."),
    MetaCode(   100, _K.PERMANENT,  400, "Invalid parameter",
             "The request included invalid or unsupported parameters."),
    MetaCode(   190, _K.ABORT,      401, "Access token has expired",
             "Your access token has expired."),
    MetaCode(   368, _K.ABORT,      403, "Temporarily blocked for policies violations",
             _POLICY),
    MetaCode( 80007, _K.THROTTLE,   429, "Rate limit issues",
             "The WhatsApp Business Account has reached its rate limit."),
    MetaCode(130429, _K.THROTTLE,   429, "Rate limit hit",
             "Cloud API message throughput has been reached."),
    MetaCode(131000, _K.RETRY,      500, "Something went wrong",
             "Message failed to send because of an unknown error."),
    MetaCode(131005, _BY_STATUS,    403, "Access denied",
             "Permission is either not granted or has been removed."),
    MetaCode(131008, _K.PERMANENT,  400, "Required parameter is missing",
             "The request is missing a required parameter."),
    MetaCode(131009, _K.PERMANENT,  400, "Parameter value is not valid",
             "One or more parameter values are invalid."),
    MetaCode(131016, _K.RETRY,      400, "Service unavailable",
             "A service is temporarily unavailable."),
    MetaCode(131021, _BY_STATUS,    400, "Recipient cannot be sender",
             "Sender and recipient phone number is the same."),
    MetaCode(131026, _K.PERMANENT,  400, "Message Undeliverable",
             "Unable to deliver message: the number is not on WhatsApp, has not accepted the "
             "Terms of Service, or runs an old WhatsApp version."),
    MetaCode(131031, _K.ABORT,      403, "Business Account locked",
             _POLICY),
    MetaCode(131047, _K.PERMANENT,  400, "Re-engagement message",
             "More than 24 hours have passed since the recipient last replied to the sender "
             "number."),
    # Meta answers 131048 as throttling (429), but waiting does not unflag the number.
    MetaCode(131048, _K.ABORT,      429, "Spam rate limit hit",
             "Sending from this number is restricted: earlier messages were blocked or flagged."),
    MetaCode(131049, _K.PERMANENT,  400, "Meta chose not to deliver",
             "This message was not delivered to maintain healthy ecosystem engagement."),
    MetaCode(131050, _K.PERMANENT,  400, "Unable to deliver the message",
             "The recipient has chosen to stop receiving marketing messages from your business."),
    MetaCode(131051, _K.PERMANENT,  400, "Unsupported message type",
             "Unsupported message type."),
    MetaCode(131056, _K.PAIR_LIMIT, 429,
             "(Business Account, Consumer Account) pair rate limit hit",
             "Too many messages from the sender number to the same recipient in a short time."),
    MetaCode(131057, _K.RETRY,      400, "Account in maintenance mode",
             "Business Account is in maintenance mode."),
    # Messaging limit hit for template-classification violations; the sandbox has no words.
    MetaCode(131064, _K.ABORT,      400),
    MetaCode(132000, _K.PERMANENT,  400,
             "Number of parameters does not match the expected number of params",
             "The number of parameter values does not match the template's parameters."),
    MetaCode(132001, _K.PERMANENT,  400, "Template name does not exist in the translation",
             "The template does not exist in the given language or has not been approved."),
    MetaCode(132005, _K.PERMANENT,  400, "Translated text too long",
             "Translated text is too long."),
    MetaCode(132007, _K.PERMANENT,  400, "Template format character policy violated",
             "Template content violates a policy."),
    MetaCode(132012, _K.PERMANENT,  400, "Template parameter format mismatch",
             "Parameter values are formatted wrongly."),
    MetaCode(132015, _K.ABORT,      400, "Template is Paused",
             "The template is paused because of low quality."),
    MetaCode(132016, _K.ABORT,      400, "Template is Disabled",
             "The template is disabled for good because of low quality."),
    MetaCode(133004, _K.RETRY,      400, "Server Temporarily Unavailable",
             "Server is temporarily unavailable."),
    MetaCode(133010, _K.ABORT,      400, "Phone number Not Registered",
             "The phone number is not registered on Cloud API."),
)}
# fmt: on


def meta_code(code: int) -> MetaCode:
    """The table's entry for CODE; for a code it lacks, Meta's usual status and no title."""
    entry = META_CODES.get(code)
    if entry is not None:
        return entry
    return MetaCode(code, None, 403 if 200 <= code <= 299 else 400)  # 200-299: permissions


def kind_by_status(status: int) -> AnswerKind:
    """What a non-2xx HTTP status means when no Meta code decides (Kong's answers)."""
    if status in (401, 403):
        return AnswerKind.ABORT  # the key or the route: every request would fail the same way
    if status == 429:
        return AnswerKind.THROTTLE
    if status >= 500 or status == 408:
        return AnswerKind.RETRY
    return AnswerKind.PERMANENT


def classify(
    status: int, content: bytes, headers: dict[str, str], oversized: bool = False
) -> Answer:
    """What the reply STATUS, CONTENT means for the recipient and for the run.

    HEADERS are the reply's, with lower-case names. OVERSIZED: the body was longer than
    MAX_ANSWER_BYTES and left unread (CONTENT is empty), so only the status can decide.
    """
    if oversized:
        text = f"answer {status} was longer than {MAX_ANSWER_BYTES} bytes and was not read"
        return _by_status(status, text, _retry_after(headers))
    payload = _json(content)
    if 200 <= status < 300:
        message_id = _message_id(payload)
        if message_id is not None:
            return Answer(AnswerKind.SENT, status, message_id)
    retry_after = _retry_after(headers)
    error_obj = payload.get("error") if isinstance(payload, dict) else None
    code = _code_of(error_obj)
    if code is not None:
        assert isinstance(error_obj, dict)  # a code is only read from an error object
        return _meta_answer(status, code, error_obj, retry_after)
    return _by_status(status, _text(status, payload, error_obj, content), retry_after)


def _text(status: int, payload: Any, error_obj: Any, content: bytes) -> str:
    """What the report says about an answer without a Meta code."""
    if 200 <= status < 300:
        return f"answer {status} had no message id: {_snippet(content) or '(empty)'}"
    # Meta's error.message, Kong's message, or an `error` that is itself the text.
    for holder in (error_obj, payload, {"message": error_obj}):
        if isinstance(holder, dict) and isinstance(holder.get("message"), str):
            return holder["message"]
    return _snippet(content) or f"HTTP {status}"


def _by_status(status: int, text: str, retry_after: float | None) -> Answer:
    """An answer that carries no usable id and no Meta code: its status decides."""
    if 200 <= status < 300:
        # Success without a receipt: the gateway may have acted on it, so never resend blindly.
        text += " (the gateway may have accepted it)"
        return Answer(AnswerKind.UNANSWERED, status, error=text)
    return Answer(kind_by_status(status), status, error=text, retry_after=retry_after)


def _meta_answer(
    status: int, code: int, error_obj: dict[str, Any], retry_after: float | None
) -> Answer:
    entry = META_CODES.get(code)
    error_data = error_obj.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else None
    message = error_obj.get("message")
    text = f"{code} {message if isinstance(message, str) else ''}".strip()
    if details:
        text += f": {details}"
    if entry is None or entry.kind is None:
        answer = _by_status(status, text, retry_after)
        return Answer(answer.kind, status, error=answer.error, retry_after=retry_after, code=code)
    kind = entry.kind
    if kind is AnswerKind.RETRY and status == 429:
        kind = AnswerKind.THROTTLE  # a retryable error sent as 429 still means "slow down"
    return Answer(kind, status, error=text, retry_after=retry_after, code=code)


def _json(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:  # not JSON, truncated JSON, or not UTF-8
        return None


def _code_of(error_obj: Any) -> int | None:
    """Meta's code in an `error` object: a number, or a string of digits; else None."""
    if not isinstance(error_obj, dict):
        return None
    code = error_obj.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(code, str) and code.strip().isascii() and code.strip().isdigit():
        return int(code)
    return None


def _message_id(payload: Any) -> str | None:
    try:
        message_id = payload["messages"][0]["id"]
    except (KeyError, IndexError, TypeError):
        return None
    return message_id if isinstance(message_id, str) and message_id.strip() else None


def _retry_after(headers: dict[str, str]) -> float | None:
    """Seconds to wait, from Retry-After (seconds or an HTTP date), else RateLimit-Reset."""
    for name in ("retry-after", "ratelimit-reset"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            seconds = _seconds_until(value) if name == "retry-after" else math.nan
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def _seconds_until(http_date: str) -> float:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return math.nan
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


def _snippet(content: bytes) -> str:
    return " ".join(content[:_SNIPPET_CHARS].decode("utf-8", "replace").split())
