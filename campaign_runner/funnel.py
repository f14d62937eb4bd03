"""A campaign's funnel in numbers and words: how far its accepted messages went, what failed
and why, and how Meta priced them. `campaign status` (its text and `--json`) and the HTML
summary (`campaign report --format html`) show the same figures, made here from the
ledger's `Funnel` (ledger/outcomes.py):

    accepted ─► sent ─► delivered ─► read      each stage counts those that went at least
         │                                     that far; a share is of the accepted ones
         ├─► failed (by Meta's code and title)
         └─► no status yet (no webhook told anything of them)

Shares are rounded down, so 100% only ever means every one. Titles come from Meta's
webhooks (data, never trusted): the text form quotes them with every control character
escaped and cut to a readable length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from campaign_runner.cells import quoted
from campaign_runner.ledger import Funnel

STAGES = ("accepted", "sent", "delivered", "read")  # the order Meta's statuses come in
CODES_IN_A_LINE = 5  # failure codes `campaign status` names in its line; --json has them all
TITLE_CHARS = 60  # a failure's title in that line is cut here (the reports keep it whole)
NO_STATUS_HINT = "run `campaign webhook` or `campaign ingest`"


@dataclass(frozen=True)
class Stage:
    """One step of the funnel: how many messages went at least that far, and their share."""

    name: str  # one of STAGES
    count: int
    percent: int  # of the accepted messages, rounded down


def share(part: int, whole: int) -> int:
    """PART of WHOLE in percent, rounded down (0 when WHOLE is 0)."""
    return part * 100 // whole if whole else 0


def stages(funnel: Funnel) -> list[Stage]:
    """The funnel's stages in order, each with its count and share of the accepted."""
    counts = (funnel.accepted, funnel.sent, funnel.delivered, funnel.read)
    return [
        Stage(name, n, share(n, funnel.accepted)) for name, n in zip(STAGES, counts, strict=True)
    ]


def no_status(funnel: Funnel) -> int:
    """Accepted messages no status webhook told anything of yet."""
    return funnel.accepted - funnel.sent - funnel.failed


def reported(funnel: Funnel) -> bool:
    """True when any status webhook told something of the campaign's messages."""
    return funnel.sent + funnel.failed > 0


def code_name(code: int | None) -> str:
    """A failure's code as a person reads it (`131049`, or `no code`)."""
    return "no code" if code is None else str(code)


def sentence(funnel: Funnel) -> str:
    """The funnel in one line (`outcomes: accepted 100 → sent 98 (98%) → ...`)."""
    if funnel.accepted == 0:
        return "outcomes: none: the gateway accepted no message of this campaign yet"
    if not reported(funnel):
        return (
            f"outcomes: none reported yet for the {funnel.accepted} accepted message(s) "
            f"({NO_STATUS_HINT})"
        )
    steps = [
        f"{s.name} {s.count}" + (f" ({s.percent}%)" if i else "")
        for i, s in enumerate(stages(funnel))
    ]
    text = f"outcomes: {' → '.join(steps)}; failed {funnel.failed}"
    if funnel.failed_by_code:
        text += ": " + _codes(funnel)
    waiting = no_status(funnel)
    return text + (f"; no status yet {waiting}" if waiting else "")


def _codes(funnel: Funnel) -> str:
    named = [
        f"{code_name(code)} ×{n}" + (f" {quoted(title, TITLE_CHARS)}" if title else "")
        for code, title, n in funnel.failed_by_code[:CODES_IN_A_LINE]
    ]
    more = len(funnel.failed_by_code) - CODES_IN_A_LINE
    if more > 0:
        named.append(f"and {more} more code(s)")
    return ", ".join(named)


def pricing_words(funnel: Funnel) -> str | None:
    """`marketing 92, utility 3`: the pricing categories, most first; None when Meta gave none."""
    if not funnel.pricing:
        return None
    ordered = sorted(funnel.pricing.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{quoted(name, TITLE_CHARS)[1:-1]} {n}" for name, n in ordered)


def as_dict(funnel: Funnel) -> dict[str, Any]:
    """The funnel for machines (`campaign status --json`): every key always there."""
    return {
        "accepted": funnel.accepted,
        "sent": funnel.sent,
        "delivered": funnel.delivered,
        "read": funnel.read,
        "failed": funnel.failed,
        "no_status": no_status(funnel),
        "failed_by_code": [
            {"code": code, "title": title, "count": n} for code, title, n in funnel.failed_by_code
        ],
        "pricing": dict(sorted(funnel.pricing.items())),
    }
