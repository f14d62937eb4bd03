"""Kong's answers in front of the Messages API: key-auth and rate limiting, in Kong's words.

Kong's own words and headers (/work/shared/reference/whatsapp-limits.md §11), so that a
sender's handling of the sandbox carries over to the real gateway.
"""

from __future__ import annotations

from campaign_runner.sandbox.server import Reply

NO_KEY = "No API key found in request"
BAD_KEY = "Invalid authentication credentials"
DUPLICATE_KEY = "Duplicate API key found"
RATE_LIMITED = "API rate limit exceeded"
UNEXPECTED = "An unexpected error occurred"
NO_ROUTE = "no Route matched with those values"
TOO_LARGE = "Request size limit exceeded"

Headers = list[tuple[bytes, bytes]]


def key_auth(keys: list[bytes], apikey: bytes | None) -> Reply | None:
    """Kong's refusal of the KEYS a request carried (None: let it through).

    APIKEY None accepts any non-empty key.
    """
    if len(keys) > 1:
        return Reply(401, {"message": DUPLICATE_KEY}, note="401 duplicate-key -")
    key = keys[0].strip() if keys else b""
    if not key:
        challenge = [(b"www-authenticate", b'Key realm="kong"')]
        return Reply(401, {"message": NO_KEY}, challenge, note="401 no-key -")
    if apikey is not None and key != apikey:
        return Reply(401, {"message": BAD_KEY}, note="401 wrong-key -")
    return None


def limit_headers(per_s: float, remaining: int) -> Headers:
    """The rate-limit headers Kong puts on every answer it lets through."""
    limit = f"{per_s:g}".encode()
    left = str(remaining).encode()
    return [
        (b"x-ratelimit-limit-second", limit),
        (b"x-ratelimit-remaining-second", left),
        (b"ratelimit-limit", limit),
        (b"ratelimit-remaining", left),
        (b"ratelimit-reset", b"1"),
    ]


def rate_limited(per_s: float, retry_after_s: int, note: str) -> Reply:
    """Kong's 429 for a limit of PER_S requests a second, asking to wait RETRY_AFTER_S."""
    wait = str(retry_after_s).encode()
    limit = f"{per_s:g}".encode()
    headers = [
        (b"retry-after", wait),
        (b"ratelimit-limit", limit),
        (b"ratelimit-remaining", b"0"),
        (b"ratelimit-reset", wait),
        (b"x-ratelimit-limit-second", limit),
        (b"x-ratelimit-remaining-second", b"0"),
    ]
    return Reply(429, {"message": RATE_LIMITED}, headers, note=note)
