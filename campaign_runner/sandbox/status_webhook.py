"""The body of one status webhook, in Meta's shape, and its signed bytes.

    {"object": "whatsapp_business_account",
     "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": ..., "phone_number_id": ...},
        "statuses": [{"id": WAMID, "status": "sent|delivered|read|failed",
                      "timestamp": "UNIX SECONDS", "recipient_id": "DIGITS",
                      "conversation": {...}, "pricing": {...},     (not on failed: not billed)
                      "errors": [{"code", "title", "message", "error_data": {"details"}}],
                                                                    (failed only)
                      "biz_opaque_callback_data": ...}]}}]}]}      (when the message had it)

Titles and details come from the one table of Meta's codes (gateway/answers.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from campaign_runner.gateway.answers import meta_code
from campaign_runner.sandbox.records import digits
from campaign_runner.sandbox.statuses import Scheduled
from campaign_runner.webhooks.outcome import OUTCOME_FAILED
from campaign_runner.webhooks.signature import SIGNATURE_HEADER, sign

# The sandbox's made-up business account and number (Meta's test numbers are 1555...).
WABA_ID = "100000000000001"
PHONE_NUMBER_ID = "100000000000002"
DISPLAY_PHONE_NUMBER = "15550000000"
ERROR_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the statuses of one accepted message need: its wamid, who, when, and its
    callback data (echoed back as Meta does)."""

    wamid: str
    recipient_id: str  # digits, no '+'
    accepted_at: float  # Unix seconds
    category: str = "marketing"
    callback_data: str | None = None

    @classmethod
    def from_record(cls, record: dict, accepted_at: float) -> Accepted:
        """The message the sandbox just recorded (records.py's RECORD)."""
        body = record.get("body")
        callback = body.get("biz_opaque_callback_data") if isinstance(body, dict) else None
        return cls(
            wamid=record["id"],
            recipient_id=digits(str(record.get("to") or "")),
            accepted_at=accepted_at,
            callback_data=callback if isinstance(callback, str) else None,
        )


def status_payload(message: Accepted, scheduled: Scheduled, now: float) -> dict:
    """Meta's webhook for one status of MESSAGE; its timestamp never later than NOW."""
    at = min(message.accepted_at + scheduled.event_after_s, now)
    status: dict = {
        "id": message.wamid,
        "status": scheduled.status,
        "timestamp": str(int(at)),
        "recipient_id": message.recipient_id,
    }
    if scheduled.status == OUTCOME_FAILED:
        status["errors"] = [_error(scheduled.code or 131000)]
    else:
        status["conversation"] = {
            "id": _conversation_id(message.recipient_id),
            "origin": {"type": message.category},
        }
        status["pricing"] = {
            "billable": True,
            "pricing_model": "PMP",
            "category": message.category,
        }
    if message.callback_data is not None:
        status["biz_opaque_callback_data"] = message.callback_data
    value = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": DISPLAY_PHONE_NUMBER,
            "phone_number_id": PHONE_NUMBER_ID,
        },
        "statuses": [status],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
    }


def signed(payload: dict, secret: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """PAYLOAD's bytes and the headers Meta sends with them, the signature among them."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = [
        (b"Content-Type", b"application/json"),
        (SIGNATURE_HEADER.encode(), sign(body, secret).encode()),
        (b"User-Agent", b"campaign-runner-sandbox (facebookexternalua)"),
    ]
    return body, headers


def _error(code: int) -> dict:
    entry = meta_code(code)
    return {
        "code": code,
        "title": entry.title,
        "message": entry.title,
        "error_data": {"details": entry.details},
        "href": ERROR_HREF,
    }


def _conversation_id(recipient_id: str) -> str:
    # One conversation per person, as Meta's 24-hour conversations are, and stable for a run.
    return hashlib.sha256(f"conversation:{recipient_id}".encode()).hexdigest()[:32]
