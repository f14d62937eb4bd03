"""How a sandbox is set up: where it listens, which key it wants, where it records, its
faults, and where it posts status webhooks (none unless asked).

A sandbox without a key listens only on loopback: its records (GET /messages) hold every
recipient's phone and message. With a key, the records want it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from campaign_runner.gateway.trust import is_loopback, value_problem
from campaign_runner.sandbox.faults import Faults
from campaign_runner.sandbox.statuses import Webhooks


@dataclass
class SandboxConfig:
    """Where the sandbox listens, which key it wants, where it records, its faults, and
    where it posts status webhooks."""

    host: str = "127.0.0.1"
    port: int = 8787
    apikey: str | None = None  # None: any non-empty key is accepted
    record: Path | None = None
    faults: Faults = field(default_factory=Faults)
    max_body_bytes: int = 1_048_576
    # Answer a repeated `Idempotency-Key` with the first answer instead of a second message.
    # Off by default: the production gateway documents no such behaviour.
    idempotency: bool = False
    # Post Meta's status webhooks for each accepted message; None (the default): none.
    webhooks: Webhooks | None = None

    def __post_init__(self) -> None:
        problem = exposure_problem(self.host, self.apikey)
        if problem:
            raise ValueError(problem)


def exposure_problem(host: str, apikey: str | None) -> str | None:
    """Why a sandbox on HOST wanting APIKEY would expose its records (None: it would not).

    GET /messages shows every recipient's phone and message, and DELETE clears them: without
    a key, only this machine may reach them. Never repeats the key.
    """
    if apikey is not None:
        reason = value_problem(apikey) if apikey.strip() else "is empty"
        return f"the sandbox's apikey {reason}" if reason else None
    if not is_loopback(host):
        return (
            f"host '{host}' is not this machine: without an apikey the sandbox listens only "
            "on loopback (127.0.0.1, ::1, localhost), because GET /messages shows every "
            "recipient's phone and message; give --apikey KEY to listen on another address"
        )
    return None


def base_url(host: str, port: int) -> str:
    """http://HOST:PORT, with an IPv6 HOST in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
