"""Follow-up runs: a campaign sent to the people of another, by what became of their message
there (`follow_up:` in the campaign file).

    follow_up:
      of: spring-sale      the campaign whose outcomes pick the recipients
      outcome: failed      or a list: failed | delivered | read | sent | accepted | unknown
      codes: [131049]      only with failed: Meta's error codes (any code when absent)
      after: 24h           not before this long after that outcome (`24h`, `2d`)

A follow-up is a campaign of its own, with its own delivery keys. It reads its recipients
(the same file as `of`, or any file with the same delivery keys) and the plan looks each
ready row's key up among `of`'s deliveries (`OF:KEY`; a rehearsal looks among `of`'s
rehearsal deliveries, `OF.sandbox`), one query per chunk of rows:

    the outcome wanted, old enough   ready: sent once, under the follow-up's own key, so a
                                     re-run from cron never sends twice and the old wamid
                                     never blocks it
    the outcome wanted, too recent   deferred until it is AFTER old (not recorded: a later
                                     run plans it again)
    anything else                    not-selected, with why: "its outcome is read, not
                                     failed 131049", "never sent in spring-sale"

The outcome is the delivery's final one (`DeliveryOutcome.final`): read or delivered once
Meta confirmed it, failed, sent (Meta's `sent` and nothing further), accepted (a wamid and
no status yet) or unknown (the send's outcome is in doubt). A send that failed for now
(a transient failure) is never selected: `of`'s own next run tries it again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from campaign_runner.ledger.rules_tables import REHEARSAL_SUFFIX
from campaign_runner.rules import in_chunks, stamp
from campaign_runner.status import Status
from campaign_runner.suggest import did_you_mean
from campaign_runner.webhooks.outcome import (
    OUTCOME_ACCEPTED,
    OUTCOME_DELIVERED,
    OUTCOME_FAILED,
    OUTCOME_READ,
    OUTCOME_SENT,
)

if TYPE_CHECKING:
    from campaign_runner.errors import Problem
    from campaign_runner.ledger import DeliveryOutcome, Journal
    from campaign_runner.prepare import PreparedRow
    from campaign_runner.yaml_source import SourceMap

OUTCOME_UNKNOWN = "unknown"  # DeliveryOutcome.final of a send left in doubt
OUTCOMES = (
    OUTCOME_FAILED,
    OUTCOME_DELIVERED,
    OUTCOME_READ,
    OUTCOME_SENT,
    OUTCOME_ACCEPTED,
    OUTCOME_UNKNOWN,
)
MAX_AFTER = timedelta(days=366)  # as send.frequency_cap's window: a typo beyond a year
_AFTER = re.compile(r"^([1-9][0-9]{0,5})(h|d)$")
SECTION = "follow_up"  # its key in the campaign file


@dataclass(frozen=True)
class FollowUp:
    """Send to the rows whose delivery in campaign OF ended in one of OUTCOMES (with one of
    CODES, for failed ones), once AFTER has passed since that outcome."""

    of: str
    outcomes: tuple[str, ...]
    codes: frozenset[int] = frozenset()
    after: timedelta = timedelta(0)
    after_text: str = ""  # as written: `24h`

    @property
    def wanted(self) -> str:
        """The outcomes wanted, in words: `failed 131049`, `delivered or read`."""
        words = []
        for outcome in self.outcomes:
            if outcome == OUTCOME_FAILED and self.codes:
                codes = " or ".join(str(code) for code in sorted(self.codes))
                words.append(f"failed {codes}" if len(self.codes) == 1 else f"failed ({codes})")
            else:
                words.append(outcome)
        return " or ".join(words)

    def looked_up_in(self, journal: Journal) -> str:
        """The journal whose deliveries pick the rows: OF, or OF.sandbox for a rehearsal (a
        rehearsal's own journal is NAME.sandbox: run.RunOptions.journal_name)."""
        rehearsal = journal.campaign.endswith(REHEARSAL_SUFFIX)
        return f"{self.of}{REHEARSAL_SUFFIX}" if rehearsal else self.of


# ---- the campaign file's section -----------------------------------------------------------


def parse_after(text: str) -> timedelta:
    """`Nh` or `Nd` (`24h`, `2d`), as in send.frequency_cap; `ValueError` saying what is wrong."""
    found = _AFTER.match(text.strip())
    if not found:
        raise ValueError(f"'{text}' is not a duration like 24h or 2d")
    amount = int(found[1])
    after = timedelta(hours=amount) if found[2] == "h" else timedelta(days=amount)
    if after > MAX_AFTER:
        raise ValueError(f"'{text}': at most {MAX_AFTER.days} days")
    return after


def outcomes_of_section(section: dict[str, Any]) -> list[str]:
    """The section's `outcome`, as a list (one word or several)."""
    outcome = section.get("outcome")
    return [outcome] if isinstance(outcome, str) else list(outcome or [])


def check_follow_up(section: Any, name: Any, source: SourceMap) -> list[Problem]:
    """What the schema cannot say about a (schema-valid) `follow_up:` section of campaign
    NAME, each at its line: codes without failed, a duration past the limit, a campaign
    following itself. (A word that is no outcome is the schema's: with a did-you-mean.)"""
    if not isinstance(section, dict):
        return []
    problems = []
    if section.get("of") == name:
        problems.append(
            source.problem(
                (SECTION, "of"),
                f"follow_up.of: a campaign cannot follow up itself: '{name}' is this campaign; "
                "give the campaign whose outcomes pick the recipients, and this one a name of "
                "its own",
            )
        )
    if "codes" in section and OUTCOME_FAILED not in outcomes_of_section(section):
        problems.append(
            source.problem(
                (SECTION, "codes"),
                "follow_up.codes: Meta's error codes are those of a failed message: add failed "
                "to follow_up.outcome, or remove codes",
                at_key=True,
            )
        )
    after = section.get("after")
    if isinstance(after, str):
        try:
            parse_after(after)
        except ValueError as error:
            problems.append(source.problem((SECTION, "after"), f"follow_up.after: {error}"))
    return problems


def parse_follow_up(section: dict[str, Any] | None) -> FollowUp | None:
    """The checked `follow_up:` section as a `FollowUp`; None when the campaign has none."""
    if not section:
        return None
    after = str(section.get("after") or "")
    return FollowUp(
        of=section["of"],
        outcomes=tuple(dict.fromkeys(outcomes_of_section(section))),
        codes=frozenset(int(code) for code in section.get("codes") or ()),
        after=parse_after(after) if after else timedelta(0),
        after_text=after,
    )


# ---- the plan's pass -----------------------------------------------------------------------


@dataclass(frozen=True)
class Nobody:
    """Why no row at all can be selected: the plan's WARNING and each row's REASON."""

    warning: str
    reason: str


def nobody_selected(journal: Journal | None, follow_up: FollowUp) -> Nobody | None:
    """Why no row can be selected (no ledger, or `of` has no deliveries in it); None when
    `of`'s deliveries are there to look rows up in."""
    of = follow_up.of
    everyone = "every row is not-selected"
    if journal is None:
        where = f"(is --state, or CAMPAIGN_STATE, the ledger {of} ran with?)"
        return Nobody(
            f"follow-up of {of}: there is no ledger yet {where}: {everyone}",
            "there is no ledger yet",
        )
    if not journal.outcomes_ready():
        why = f"the ledger {journal.where} keeps no outcomes yet"
        upgrade = "(the next sending run or `campaign ingest` upgrades it)"
        return Nobody(f"follow-up of {of}: {why} {upgrade}: {everyone}", why)
    looked_in = follow_up.looked_up_in(journal)
    if journal.has_deliveries(looked_in):
        return None
    rehearsal = looked_in != of
    what = "no rehearsal deliveries" if rehearsal else "no deliveries"
    warning = f"follow-up of {of}: campaign '{of}'{_meant(journal, of, rehearsal)} has {what}"
    if rehearsal:
        warning += f" in {journal.where} (rehearse it with --sandbox first)"
    elif journal.has_deliveries(f"{of}{REHEARSAL_SUFFIX}"):
        warning += f" in {journal.where}, only rehearsals (a real run follows up real ones)"
    else:
        warning += f" in {journal.where}"
    return Nobody(f"{warning}: {everyone} (check follow_up.of)", f"{of} has {what} in the ledger")


def _meant(journal: Journal, of: str, rehearsal: bool) -> str:
    """` (did you mean 'X'?)` among the campaigns of the same kind (rehearsed or real) that
    ran on the ledger, other than this follow-up itself."""
    names = {
        name.removesuffix(REHEARSAL_SUFFIX)
        for name in journal.campaign_names()
        if name.endswith(REHEARSAL_SUFFIX) == rehearsal
    }
    names -= {of, journal.campaign.removesuffix(REHEARSAL_SUFFIX)}
    return did_you_mean(of, sorted(names))


class FollowUpPass:
    """The follow-up's decisions for one plan: ready, deferred or not-selected, by `of`."""

    def __init__(self, journal: Journal | None, follow_up: FollowUp, now: datetime):
        self.journal = journal
        self.follow_up = follow_up
        self.now = now
        self.nobody = nobody_selected(journal, follow_up)
        self.looked_in = follow_up.looked_up_in(journal) if journal is not None else ""
        self.earliest: datetime | None = None  # the earliest "until" of a deferred row
        self.looked_up = 0  # ready rows looked up in `of`
        self.found = 0  # ... whose key `of` has

    def decide(self, items: list[PreparedRow]) -> None:
        """Decide the ready ITEMS (one chunk): one query for all their keys."""
        ready = [item for item in items if item.status is Status.READY]
        if not ready:
            return
        if self.nobody is not None or self.journal is None:
            reason = (
                f"follow-up of {self.follow_up.of}: {self.nobody.reason if self.nobody else ''}"
            )
            for item in ready:
                item.status, item.error, item.body = Status.NOT_SELECTED, reason, None
            return
        keys = self._keys(ready)
        found = self.journal.outcomes_of(self.looked_in, sorted(set(keys)))
        self.looked_up += len(ready)
        for item in ready:
            delivery = found.get(self._key(item.key))
            if delivery is None and item.untrimmed_key is not None:
                delivery = found.get(self._key(item.untrimmed_key))  # keys before trimming
            self.found += delivery is not None
            self._decide(item, delivery)

    def _key(self, key: str | None) -> str:
        return f"{self.follow_up.of}:{key}"  # delivery.Delivery.delivery_key in `of`

    def _keys(self, items: Sequence[PreparedRow]) -> list[str]:
        keys = [self._key(item.key) for item in items]
        return keys + [self._key(i.untrimmed_key) for i in items if i.untrimmed_key is not None]

    def _decide(self, item: PreparedRow, delivery: DeliveryOutcome | None) -> None:
        choice = verdict(self.follow_up, delivery, self.now)
        if choice.status is Status.READY:
            return
        # No body: a preview shows no message for a row this run does not send.
        item.status, item.error, item.body = choice.status, choice.reason, None
        if choice.until is not None:
            self.earliest = min(choice.until, self.earliest or choice.until)

    def no_key_found(self) -> str | None:
        """The warning when `of` has deliveries but none of this plan's rows' keys."""
        if self.nobody is not None or not self.looked_up or self.found:
            return None
        of = self.follow_up.of
        return (
            f"follow-up of {of}: none of the {self.looked_up} row(s) has a delivery key that "
            f"{of} sent to: does this campaign read the same recipients with the same "
            "recipients.key?"
        )


@dataclass(frozen=True)
class Verdict:
    """What a follow-up does with one row: READY, DEFERRED (UNTIL) or NOT_SELECTED, and why."""

    status: Status
    reason: str | None = None
    until: datetime | None = None


def verdict(follow_up: FollowUp, delivery: DeliveryOutcome | None, now: datetime) -> Verdict:
    """The choice for a row whose delivery in `follow_up.of` is DELIVERY (None: never sent
    there), at NOW: the module's docstring's table."""
    of = follow_up.of
    why = _not_wanted(follow_up, delivery)
    if why is not None:
        return Verdict(Status.NOT_SELECTED, f"follow-up of {of}: {why}")
    assert delivery is not None
    at = outcome_time(delivery)
    until = at + follow_up.after
    if until <= now:
        return Verdict(Status.READY)
    reason = (
        f"deferred until {stamp(until)}: follow-up of {of}: {found_words(delivery)} at "
        f"{stamp(at)}, sent {follow_up.after_text} after it"
    )
    return Verdict(Status.DEFERRED, reason, until)


def _not_wanted(follow_up: FollowUp, delivery: DeliveryOutcome | None) -> str | None:
    """Why DELIVERY (None: the key was never sent in `of`) is not one to follow up."""
    if delivery is None:
        return f"never sent in {follow_up.of}"
    final = delivery.final
    if final == OUTCOME_FAILED and delivery.status == "failed" and not delivery.permanent:
        return (
            f"its send failed for now and {follow_up.of}'s next run tries it again, "
            f"so it is not {follow_up.wanted}"
        )
    code = delivery.outcome.code
    wanted = final in follow_up.outcomes and (
        final != OUTCOME_FAILED or not follow_up.codes or code in follow_up.codes
    )
    if wanted:
        return None
    return f"its outcome is {found_words(delivery)}, not {follow_up.wanted}"


def found_words(delivery: DeliveryOutcome) -> str:
    """DELIVERY's final outcome in words: `read`, `failed 131049`."""
    final = delivery.final
    if final != OUTCOME_FAILED:
        return final
    code = delivery.outcome.code
    return f"failed {code}" if code is not None else "failed (no Meta error code recorded)"


def outcome_time(delivery: DeliveryOutcome) -> datetime:
    """When DELIVERY reached its final outcome: Meta's time for it, else when the send's
    own outcome was recorded (accepted, unknown, a failure the gateway answered at once)."""
    outcome = delivery.outcome
    times = {
        OUTCOME_FAILED: outcome.failed_at,
        OUTCOME_DELIVERED: outcome.delivered_at,
        OUTCOME_READ: outcome.read_at,
        OUTCOME_SENT: outcome.sent_at,
    }
    moment = datetime.fromisoformat(times.get(delivery.final) or delivery.updated_at)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def select(
    items: Iterator[PreparedRow],
    journal: Journal | None,
    follow_up: FollowUp,
    deferred: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Iterator[PreparedRow]:
    """ITEMS in order, each ready one decided by its outcome in `follow_up.of` (see the
    module's docstring). DEFERRED is told the earliest "until", WARN what the plan must say."""
    chooser = FollowUpPass(journal, follow_up, datetime.now(UTC))
    if warn is not None and chooser.nobody is not None:
        warn(chooser.nobody.warning)
    yield from in_chunks(items, chooser.decide)
    if deferred is not None and chooser.earliest is not None:
        deferred(stamp(chooser.earliest))
    unmatched = chooser.no_key_found()
    if warn is not None and unmatched is not None:
        warn(unmatched)
