"""What happened to a recipient row: the one vocabulary that rows, reports and previews share.

Every prepared row and every report line carries a `Status`; the text value is what the
report, the JSON summary and the README show. The order of the members is the order in
which counts are listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Status(StrEnum):
    """A recipient row's status; `READY`: prepared, sent unless the journal says otherwise."""

    READY = "ready"
    SENT = "sent"
    DRY_RUN = "dry-run"
    ALREADY_SENT = "already-sent"
    ALREADY_FAILED = "already-failed"
    DUPLICATE = "duplicate"
    EXCLUDED = "excluded"
    SUPPRESSED = "suppressed"  # on the ledger's suppression list (every campaign)
    DEFERRED = "deferred"  # over the frequency cap or the daily budget, or a follow-up's
    # outcome too recent (`follow_up.after`): a later run sends it
    NOT_SELECTED = "not-selected"  # a follow-up's row whose outcome in `of` is not the one wanted
    FAILED = "failed"
    INVALID = "invalid"
    UNKNOWN = "unknown"
    NOT_ATTEMPTED = "not-attempted"

    @property
    def intentional(self) -> bool:
        """Chosen on purpose by the run: such rows do not make the exit code non-zero."""
        return self in _INTENTIONAL

    @property
    def attempted(self) -> bool:
        """A request went out (or would have, in a dry run): counts toward messages/s."""
        return self in _ATTEMPTED

    @property
    def trouble(self) -> bool:
        """A row a person must look at: it makes the exit code 1."""
        return not self.intentional and self is not Status.NOT_ATTEMPTED


_INTENTIONAL = frozenset(
    {
        Status.READY,
        Status.SENT,
        Status.DRY_RUN,
        Status.ALREADY_SENT,
        Status.ALREADY_FAILED,
        Status.DUPLICATE,
        Status.EXCLUDED,
        Status.SUPPRESSED,
        Status.DEFERRED,
        Status.NOT_SELECTED,
    }
)
_ATTEMPTED = frozenset({Status.SENT, Status.FAILED, Status.UNKNOWN, Status.DRY_RUN})


def format_counts(counts: Mapping[Status, int]) -> str:
    """`sent 98, invalid 2`, in the order statuses are declared; `no recipients` when empty."""
    return ", ".join(f"{s} {counts[s]}" for s in Status if counts.get(s)) or "no recipients"
