"""What goes wrong in the sandbox: `Faults` as configured, and `FaultPlan`, which draws them.

A fault kind is one of KONG_FAULTS (`500`, `429`, `drop`, `lost`), a Meta error code such
as `131026` (answered with Meta's envelope and HTTP status), or `ok` in a script.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field

from campaign_runner.ratelimit import TokenBucket
from campaign_runner.sandbox.records import recipient_key

KONG_FAULTS = ("500", "429", "drop", "lost")


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


class FaultPlan:
    """FAULTS drawn request by request: a fresh seed, script and rate limit each time it is
    built. Used from the server's loop only; another thread swaps in a new plan whole."""

    def __init__(self, faults: Faults):
        problems = fault_problems(faults)
        if problems:
            raise ValueError("; ".join(problems))
        self.faults = faults
        self._cumulative: list[tuple[float, str]] = []
        total = 0.0
        for kind, share in faults.rates.items():
            total += share
            self._cumulative.append((total, str(kind)))
        self._fault_rng = random.Random(faults.seed)
        jitter_seed = None if faults.seed is None else f"jitter-{faults.seed}"
        self._jitter_rng = random.Random(jitter_seed)
        self._script: dict[str, deque[str]] = {}
        for to, kinds in faults.script.items():
            self._script.setdefault(recipient_key(to), deque()).extend(map(str, kinds))
        per_s = faults.rate_limit_per_s
        # Kong's per-second limit starts full: a second's quota may come at once.
        self.rate_limit = TokenBucket(per_s, time.monotonic()) if per_s else None

    def kind_for(self, to: str | None) -> str:
        """The fault kind for a request to TO: its script first, then one random draw."""
        draw = self._fault_rng.random()  # drawn for every request, so the pattern follows order
        queue = self._script.get(recipient_key(to)) if to else None
        if queue:
            return queue.popleft()
        for bound, kind in self._cumulative:
            if draw < bound:
                return kind
        return "ok"

    def latency_s(self) -> float:
        """The gateway's latency for one answer: the fixed part plus a random jitter."""
        delay = self.faults.latency_ms
        if self.faults.jitter_ms:
            delay += self._jitter_rng.uniform(0, self.faults.jitter_ms)
        return delay / 1000
