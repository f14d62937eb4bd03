"""What every ledger shares, whatever stores it: what it knows of a key, its errors, a run's
identity, and the words `campaign status` uses for stored states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


def now() -> str:
    """The current time as stored: ISO 8601, UTC, milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def shown_time(stored: str) -> str:
    """A time the ledger stored, as people and logs see it: UTC to the second
    (`2026-11-28T10:00:12Z`); a text that is not a time is shown as it is."""
    if len(stored) == 29 and stored.endswith("+00:00"):  # as `now` writes every time
        return stored[:19] + "Z"
    try:
        moment = datetime.fromisoformat(stored)
    except ValueError:
        return stored
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Previous:
    """What the ledger knows of a key from earlier runs."""

    status: str  # sending | sent | failed, as stored
    permanent: bool
    message_id: str | None
    http_status: int | None
    error: str | None

    @property
    def sent(self) -> bool:
        """The gateway accepted it: never send it again."""
        return self.status == "sent"

    @property
    def in_doubt(self) -> bool:
        """Marked `sending` and never settled: a run died during the request."""
        return self.status == "sending"

    @property
    def failed_for_good(self) -> bool:
        """Refused for a reason that a re-run would not change (not on WhatsApp, opted out)."""
        return self.status == "failed" and self.permanent


@dataclass(frozen=True)
class Identity:
    """Which files a run used: recorded with the run, so the ledger says what was sent."""

    campaign_file: str | None = None
    fingerprint: str | None = None  # of the message as written (see `campaign.fingerprint`)
    recipients_file: str | None = None


class LedgerError(Exception):
    """The ledger could not be written during a run (disk full, I/O error, the database
    went away): the run stops, since it can no longer promise exactly once."""


def status_name(status: str, permanent: bool, in_flight: bool) -> str:
    """A stored state in `campaign status` words: sent, failed-permanent, failed-transient,
    in-flight (`sending` in a run going on now) or unknown (`sending` left by a run that died)."""
    if status == "sending":
        return "in-flight" if in_flight else "unknown"
    if status == "failed":
        return "failed-permanent" if permanent else "failed-transient"
    return status
