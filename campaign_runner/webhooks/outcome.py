"""What became of a message after the gateway accepted it, by Meta's status webhooks.

Statuses arrive late, twice, and out of order (a `read` before its `delivered`, a
`delivered` after a `failed`). The ledger keeps, per delivery, the furthest state reached
and any failure with its code, whatever the order, so applying the same statuses in any
order gives the same record (`merge` is commutative and idempotent):

    sent < delivered < read          the furthest wins: never moved backwards
    failed                           kept beside it, with Meta's code, title and time

The final outcome (`Outcome.final`) is `read` or `delivered` when Meta confirmed the
person has the message, even if a failure was also reported (then they must never be
sent it again); else `failed` when a failure came; else `sent`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from campaign_runner.webhooks.payload import StatusUpdate

OUTCOME_ACCEPTED = "accepted"  # the gateway returned a wamid; no status webhook came yet
OUTCOME_SENT = "sent"
OUTCOME_DELIVERED = "delivered"
OUTCOME_READ = "read"
OUTCOME_FAILED = "failed"
_RANK = {OUTCOME_SENT: 1, OUTCOME_DELIVERED: 2, OUTCOME_READ: 3}
STATUS_WORDS = frozenset({*_RANK, OUTCOME_FAILED})  # the statuses a delivery can report


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything the status webhooks told of one delivery (None: not told)."""

    reached: str | None = None  # the furthest of sent, delivered, read
    sent_at: str | None = None
    delivered_at: str | None = None
    read_at: str | None = None
    failed_at: str | None = None
    code: int | None = None
    title: str | None = None
    details: str | None = None
    pricing_category: str | None = None

    @property
    def final(self) -> str:
        """read | delivered | failed | sent | accepted (see the module's docstring)."""
        if self.reached in (OUTCOME_READ, OUTCOME_DELIVERED):
            return self.reached
        if self.failed_at is not None:
            return OUTCOME_FAILED
        return self.reached or OUTCOME_ACCEPTED


def merge(old: Outcome, update: StatusUpdate) -> Outcome:
    """OLD with UPDATE applied: the furthest state, the first time each was reached, the
    first failure's code; an UPDATE that adds nothing gives OLD back unchanged."""
    new = old
    if update.pricing_category and not old.pricing_category:
        new = replace(new, pricing_category=update.pricing_category)
    if update.status == OUTCOME_FAILED:
        if old.failed_at is None or update.at < old.failed_at:
            new = replace(
                new,
                failed_at=update.at,
                code=update.code,
                title=update.title,
                details=update.details,
            )
        return new
    field = f"{update.status}_at"
    first: str | None = getattr(old, field)
    if first is None or update.at < first:
        new = replace(new, **{field: update.at})  # type: ignore[arg-type]
    if _RANK[update.status] > _RANK.get(old.reached or "", 0):
        new = replace(new, reached=update.status)
    return new
