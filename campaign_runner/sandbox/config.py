"""How a sandbox is set up: where it listens, which key it wants, where it records, its faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from campaign_runner.sandbox.faults import Faults


@dataclass
class SandboxConfig:
    """Where the sandbox listens, which key it wants, where it records, and its faults."""

    host: str = "127.0.0.1"
    port: int = 8787
    apikey: str | None = None  # None: any non-empty key is accepted
    record: Path | None = None
    faults: Faults = field(default_factory=Faults)
    max_body_bytes: int = 1_048_576
    # Answer a repeated `Idempotency-Key` with the first answer instead of a second message.
    # Off by default: the production gateway documents no such behaviour.
    idempotency: bool = False


def base_url(host: str, port: int) -> str:
    """http://HOST:PORT, with an IPv6 HOST in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
