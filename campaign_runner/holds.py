"""Holds: a campaign Meta stopped sends nothing until the operator resumes it.

    placed by   the ledger, when a status webhook reports 132015/132016 for one of the
                campaign's messages (ledger/outcomes.py, `rules.HOLDING_CODES`)
                a run whose own request is answered 132015/132016 (`RunHolds.place`)
                the quality breaker (breaker.py)
    obeyed by   `campaign run`: the plan is made and shown, nothing is sent, exit 3;
                a run in progress stops at its next look at the ledger (delivery's watch);
                `--dry-run`, `preview` and `status` warn
    lifted by   `campaign resume CAMPAIGN.yaml` (`resume_campaign`)

A rehearsal keeps its own holds, as it keeps its own deliveries (journal `NAME.sandbox`):
a hold learned from a rehearsal holds only rehearsals, and `campaign resume --sandbox`
lifts it.
"""

from __future__ import annotations

import os
import shlex
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from campaign_runner.ledger import Hold, Journal, open_ledger, state_from
from campaign_runner.ledger.base import shown_time
from campaign_runner.ledger.rules_tables import REHEARSAL_SUFFIX

if TYPE_CHECKING:
    from campaign_runner.campaign import Campaign

# What the operator does before resuming, by the code that placed the hold.
ADVICE: dict[int, str] = {
    132015: "fix the template or wait until Meta lifts the pause",
    132016: "the template is disabled for good: approve another one and put it in the campaign",
}
DEFAULT_ADVICE = "find out why first (campaign status shows the failures by code)"


def journal_name(campaign: Campaign, rehearsal: bool) -> str:
    """The name the ledger knows the campaign's runs by: a rehearsal's are NAME.sandbox."""
    return f"{campaign.name}{REHEARSAL_SUFFIX}" if rehearsal else campaign.name


def resume_command(
    campaign: Campaign, state: str | os.PathLike[str] | None, rehearsal: bool
) -> str:
    """The command that lifts the hold, as the operator types it (a ledger URL without its
    password: they put it back)."""
    words = ["campaign", "resume", str(campaign.path)]
    if rehearsal:
        words.append("--sandbox")
    if state:
        words += ["--state", state_from(state).shown if state_from(state).url else str(state)]
    return shlex.join(words)


since = shown_time  # when a hold was placed, as the reason shows it


def held_sentence(hold: Hold, resume: str, waiting: int | None = None) -> str:
    """Why the campaign's runs send nothing, and what lifts it: `held since T: why;
    nothing sent, N recipient(s) wait; what to do, then: campaign resume FILE`."""
    advice = ADVICE.get(hold.code or 0, DEFAULT_ADVICE)
    wait = "" if waiting is None else f"; nothing sent, {waiting} recipient(s) wait"
    return f"held since {since(hold.held_at)}: {hold.reason}{wait}; {advice}, then: {resume}"


@dataclass
class RunHolds:
    """One run's holds: the campaign's view of the ledger, its name there, and the command
    that lifts a hold (what a held run and a placed hold tell the operator)."""

    journal: Journal
    name: str  # NAME, or NAME.sandbox for a rehearsal
    resume: str

    def current(self) -> Hold | None:
        """The hold on the campaign now, or None."""
        return self.journal.hold_of(self.name)

    def sentence(self, hold: Hold, waiting: int | None = None) -> str:
        """HOLD as a reason a person can act on (see `held_sentence`)."""
        return held_sentence(hold, self.resume, waiting)

    def place(self, reason: str, code: int | None) -> str:
        """Hold the campaign for REASON (a hold already there stands); `LedgerError` when the
        ledger cannot take it. Returns what the run's reason adds: how to lift it."""
        self.journal.place_hold(self.name, reason, code)
        advice = ADVICE.get(code or 0, DEFAULT_ADVICE)
        return f"the campaign is held: {advice}, then: {self.resume}"


def hold_warning(
    campaign: Campaign, state: str | os.PathLike[str] | None, rehearsal: bool = False
) -> str | None:
    """The warning a dry run, a preview or `status` shows while the campaign's real runs
    (a rehearsal's, with REHEARSAL) are held; None when they may send. Read-only."""
    with ExitStack() as stack:
        journal = open_ledger(state_from(state), readonly=True)
        if journal is None:
            return None
        stack.callback(journal.close)
        hold = journal.hold_of(journal_name(campaign, rehearsal))
    if hold is None:
        return None
    what = "rehearsals of campaign" if rehearsal else "campaign"
    sentence = held_sentence(hold, resume_command(campaign, state, rehearsal))
    return f"{what} '{campaign.name}' is {sentence}; a run now sends nothing"


# ---- campaign resume ----------------------------------------------------------------------


@dataclass(frozen=True)
class Resumed:
    """What `campaign resume` did: the hold it lifted, or None when there was none."""

    name: str
    lifted: Hold | None

    def lines(self) -> list[str]:
        """What the command prints."""
        if self.lifted is None:
            return [f"campaign '{self.name}' is not held: its runs may send"]
        hold = self.lifted
        return [
            f"resumed campaign '{self.name}': lifted the hold placed {since(hold.held_at)}: "
            f"{hold.reason}",
            "the next run sends what is left",
        ]


def resume_campaign(
    campaign: Campaign, state: str | os.PathLike[str] | None, rehearsal: bool = False
) -> Resumed:
    """Lift the hold on CAMPAIGN's runs (a rehearsal's, with REHEARSAL); a ledger is never
    created for it, and a campaign that is not held is left as it is."""
    name = journal_name(campaign, rehearsal)
    where = state_from(state)
    with ExitStack() as stack:
        journal = open_ledger(where, readonly=True)
        if journal is None:
            return Resumed(name, None)
        stack.callback(journal.close)
        if journal.hold_of(name) is None:
            return Resumed(name, None)
    with ExitStack() as stack:
        writable = open_ledger(where, readonly=False)
        assert writable is not None  # it existed a moment ago
        stack.callback(writable.close)
        return Resumed(name, writable.release_hold(name))
