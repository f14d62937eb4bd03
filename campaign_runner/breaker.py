"""The quality circuit breaker: a rising share of quality failures stops the run.

    send:
      quality_stop: {share: 5%, codes: [131049, 131050], min_messages: 200}

Meta reports most of these failures after "sent", by webhook: 131049 (Meta chose not to
deliver, to keep engagement healthy) and 131050 (the person stopped marketing messages)
say that people are tiring of the campaign, and a number whose messages keep failing so
loses quality, then throughput. While a run sends, every few seconds (`delivery`'s watch,
never per message) the breaker weighs this run's messages: those the ledger shows failed
with CODES (written by `campaign webhook` or `ingest`, another process) plus those the
gateway refused at once with CODES, against every message Meta took or refused so. Once
at least MIN_MESSAGES are weighed and the share of failures reaches SHARE, the run stops
(the rest `not-attempted`, exit 3) and the campaign is held (`holds`): cron does not
resume into the same problem until the operator has looked and run `campaign resume`.

Off unless the campaign sets it: it only sees failures when a webhook receiver or an
ingest feeds the ledger, and what share is normal depends on the market and the audience,
so a default threshold would either stop healthy campaigns (and hold them until a person
comes) or never stop any.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from campaign_runner.gateway.answers import META_CODES, AnswerKind

if TYPE_CHECKING:
    from campaign_runner.ledger import Journal

DEFAULT_CODES = (131049, 131050)  # Meta chose not to deliver; stopped marketing messages
DEFAULT_MIN_MESSAGES = 200  # at 5%, ten failures before it can stop a run: not chance
MAX_MIN_MESSAGES = 10_000_000
MIN_SHARE_PERCENT = 0.1  # below it, any failure at all would stop the run
# The codes it may weigh: those that fail one recipient for good (the others already stop
# the run, or are retried).
ELIGIBLE_CODES = frozenset(
    code for code, entry in META_CODES.items() if entry.kind is AnswerKind.PERMANENT
)
# The breaker's query counts the campaign's deliveries of this run: on a campaign of a
# million it takes a few hundred ms, so it is asked again only once the run has gone on
# for 1/TIME_SHARE of what the last one cost (at most 5% of the run's time).
TIME_SHARE = 0.05
_SHARE = re.compile(r"^([0-9]{1,3}(?:\.[0-9]{1,2})?)\s*%$")


@dataclass(frozen=True)
class QualityStop:
    """`send.quality_stop`: stop once SHARE of at least MIN_MESSAGES failed with CODES."""

    share: float  # a fraction: 0.05 for `5%`
    codes: tuple[int, ...] = DEFAULT_CODES
    min_messages: int = DEFAULT_MIN_MESSAGES
    text: str = ""  # the share as written: `5%`

    @property
    def codes_text(self) -> str:
        """The codes as a reason names them: `131049/131050`."""
        return "/".join(str(code) for code in self.codes)


class QualityStopError(ValueError):
    """A `quality_stop` value that cannot be used; PATH is where, under `quality_stop`."""

    def __init__(self, path: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.path = path


def parse_quality_stop(value: dict[str, Any]) -> QualityStop:
    """`send.quality_stop` as the schema let it through (share, codes, min_messages);
    `QualityStopError` saying which part is wrong and how to write it."""
    share, text = _share(value.get("share"))
    codes = tuple(value.get("codes") or DEFAULT_CODES)
    for i, code in enumerate(codes):
        if code not in ELIGIBLE_CODES:
            known = ", ".join(str(c) for c in sorted(ELIGIBLE_CODES))
            raise QualityStopError(
                ("codes", i),
                f"{code} is not a Meta code that fails one recipient; the breaker weighs "
                f"codes such as 131049 and 131050 (any of {known})",
            )
    minimum = value.get("min_messages", DEFAULT_MIN_MESSAGES)
    if not 1 <= minimum <= MAX_MIN_MESSAGES:
        raise QualityStopError(
            ("min_messages",), f"min_messages is {minimum}; it must be 1 to {MAX_MIN_MESSAGES:,}"
        )
    return QualityStop(share, codes, int(minimum), text)


def _share(value: Any) -> tuple[float, str]:
    text = str(value).strip()
    found = _SHARE.match(text) if isinstance(value, str) else None
    if found is None:
        raise QualityStopError(
            ("share",),
            f"{text[:20]!r} is not a share: write a percentage of this run's messages, such as 5%",
        )
    percent = float(found[1])
    if not MIN_SHARE_PERCENT <= percent <= 100:
        raise QualityStopError(
            ("share",), f"{text} is not a share from {MIN_SHARE_PERCENT:g}% to 100%"
        )
    return percent / 100, text.replace(" ", "")


def percent(fraction: float) -> str:
    """FRACTION as a reason shows it: `7%`, `6.7%`."""
    return f"{fraction * 100:.1f}".removesuffix(".0") + "%"


def verdict(setting: QualityStop, failed: int, weighed: int) -> str | None:
    """Why the run must stop when FAILED of WEIGHED messages failed with the setting's
    codes; None while it may go on."""
    if weighed < setting.min_messages or weighed == 0 or failed / weighed < setting.share:
        return None
    limit = setting.text or percent(setting.share)
    return (
        f"quality breaker: {percent(failed / weighed)} of this run's {weighed} messages failed "
        f"with {setting.codes_text} ({failed}; the limit is {limit})"
    )


class QualityBreaker:
    """One run's breaker: counts the gateway's own refusals as they come (the hot path
    pays a set lookup), and reads the ledger only when asked to weigh."""

    def __init__(self, setting: QualityStop, journal: Journal, name: str, run_id: str):
        self.setting = setting
        self.journal, self.name, self.run_id = journal, name, run_id
        self.codes = frozenset(setting.codes)
        self.refused = 0  # this run's messages the gateway refused at once with CODES
        self.next_at = 0.0  # time.monotonic() from which the next weighing is due

    def note(self, code: int | None) -> None:
        """Count one message the gateway refused with CODE (None: not refused so)."""
        if code in self.codes:
            self.refused += 1

    def due(self) -> bool:
        """True when the last weighing is old enough for another (see TIME_SHARE)."""
        return time.monotonic() >= self.next_at

    def weigh(self) -> str | None:
        """Why the run must stop now (see `verdict`), or None; reads the ledger once."""
        started = time.monotonic()
        codes = self.setting.codes
        failed, accepted = self.journal.failures_by_code(self.name, self.run_id, codes)
        ended = time.monotonic()
        self.next_at = ended + (ended - started) / TIME_SHARE
        return verdict(self.setting, failed + self.refused, accepted + self.refused)
