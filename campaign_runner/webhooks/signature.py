"""Meta's webhook security: the subscription handshake and the body's signature.

    GET  ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C   answer C when T is the
         verify token ($WHATSAPP_VERIFY_TOKEN), else refuse
    POST X-Hub-Signature-256: sha256=HEX                          HEX is the HMAC-SHA256 of
         the raw body with the app secret ($WHATSAPP_APP_SECRET); anything else is refused

Comparisons are constant-time (`hmac.compare_digest`), so a wrong token or signature
teaches an attacker nothing about the right one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

VERIFY_TOKEN_ENV = "WHATSAPP_VERIFY_TOKEN"
APP_SECRET_ENV = "WHATSAPP_APP_SECRET"
SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature-256` value Meta sends with BODY: `sha256=` and the hex HMAC."""
    return _PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, header: str | None, secret: str) -> bool:
    """True when HEADER is the signature of BODY with SECRET (a missing header is not)."""
    if not header or not secret:
        return False
    return hmac.compare_digest(header.strip().lower().encode(), sign(body, secret).encode())


def challenge_answer(params: Mapping[str, str], verify_token: str | None) -> str | None:
    """The challenge to echo for a subscription request with PARAMS, or None to refuse it
    (not a subscription, no token configured, or the wrong token)."""
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    given = params.get("hub.verify_token", "")
    if not hmac.compare_digest(given.encode("utf-8"), verify_token.encode("utf-8")):
        return None
    return params.get("hub.challenge")


def secrets_from_environment() -> tuple[str | None, str | None]:
    """(verify token, app secret) from the environment; an empty value counts as unset."""
    return os.environ.get(VERIFY_TOKEN_ENV) or None, os.environ.get(APP_SECRET_ENV) or None
