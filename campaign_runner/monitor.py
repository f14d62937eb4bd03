"""Where a campaign stands, for `campaign status`: whether a run is in progress now (the
lock knows its pid), how the last run ended or that it died, what the journal holds, and
how far its accepted messages went by Meta's status webhooks (the funnel, `funnel.py`).

Read without disturbing a run: the journal is opened read-only and the lock only probed;
neither the state folder nor the lock file is ever created here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from campaign_runner import funnel as funnel_words
from campaign_runner.campaign import Campaign
from campaign_runner.errors import CampaignError, printable
from campaign_runner.ledger import (
    Funnel,
    Hold,
    State,
    open_journal,
    other_ledgers,
    other_ledgers_warning,
    postgres_module,
    state_from,
)
from campaign_runner.ledger.base import shown_time
from campaign_runner.lock import Holder, Lock

SENT = "sent"  # the ledger's word (base.status_name) for a delivery the gateway accepted


class RunState(StrEnum):
    """The campaign's runs, as `campaign status --json` names them in `state`."""

    NEVER_RUN = "never-run"  # no run was ever recorded, and none is going
    RUNNING = "running"  # a process holds the lock now
    FINISHED = "finished"  # the last run recorded its end (whatever its exit code)
    DIED = "died"  # the last run never recorded an end, and no process holds the lock


@dataclass(frozen=True)
class CampaignStatus:
    """What `campaign status` shows; `lines()` for a person, `as_dict()` for a machine."""

    name: str
    journal: str  # the ledger: a SQLite file, or a PostgreSQL URL without its password
    counts: dict[str, int]  # keys per journal state: sent, failed-permanent, unknown...
    last_run: dict[str, Any] | None  # the journal's record of the latest run
    holder: Holder | None  # the process running the campaign now
    warnings: list[str]
    left: Left | None = None  # what a run would send now (`with_left`)
    funnel: Funnel = field(default_factory=Funnel)  # what Meta's statuses told of the sent
    unmatched: int = 0  # statuses the ledger keeps aside for wamids it does not know (yet)
    hold: Hold | None = None  # runs send nothing until `campaign resume` (holds.py)

    @property
    def state(self) -> RunState:
        """Running, finished, died or never run."""
        if self.holder is not None:
            return RunState.RUNNING
        if self.last_run is None:
            return RunState.NEVER_RUN
        return RunState.FINISHED if self.last_run["ended_at"] else RunState.DIED

    def run_sentence(self) -> str:
        """The runs' state in words: in progress, ended, died, or never run."""
        return _SENTENCES[self.state](self)

    def lines(self) -> list[str]:
        """The text a person reads, one section after another (see `SECTIONS`)."""
        return [printable(line) for section in SECTIONS for line in section(self)]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`campaign status --json`); absent values are null."""
        return {
            "version": 1,
            "campaign": self.name,
            "journal": self.journal,
            "state": str(self.state),
            "pid": self.holder.pid if self.holder else None,
            "running_since": self.holder.started if self.holder else None,
            "message": self.run_sentence(),
            "counts": self.counts,
            "last_run": self.last_run,
            "rows": self.left.rows if self.left else None,
            "left": self.left.to_send if self.left else None,
            "outcomes": funnel_words.as_dict(self.funnel),
            "unmatched_statuses": self.unmatched,
            "held": None
            if self.hold is None
            else {"reason": self.hold.reason, "code": self.hold.code, "since": self.hold.held_at},
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class Left:
    """How many recipients a run would send now, of how many rows; or why that is unknown."""

    rows: int | None = None
    to_send: int | None = None
    problem: str | None = None


def campaign_status(
    campaign: Campaign, state: str | os.PathLike[str] | None = None, rehearsal: bool = False
) -> CampaignStatus:
    """Everything `campaign status` shows of CAMPAIGN (its rehearsals, with REHEARSAL): the
    runs, the ledger's counts and outcomes, a hold, and what a run would send now."""
    from campaign_runner.holds import hold_warning, journal_name

    found = read_status(journal_name(campaign, rehearsal), state)
    held = hold_warning(campaign, state, rehearsal)  # its runs send nothing until resumed
    warnings = [*found.warnings, *([held] if held else [])]
    if not rehearsal and found.state is RunState.NEVER_RUN:
        rehearsed = read_status(journal_name(campaign, True), state)
        if rehearsed.state is not RunState.NEVER_RUN:
            warnings.append(
                f"campaign '{campaign.name}' was only rehearsed (run --sandbox) with this "
                f"ledger: campaign status {campaign.path} --sandbox shows the rehearsals"
            )
    left = left_to_send(campaign, state, rehearsal)
    return dataclasses.replace(found, left=left, warnings=warnings)


def left_to_send(
    campaign: Campaign, state: str | os.PathLike[str] | None = None, rehearsal: bool = False
) -> Left:
    """Plan the campaign without sending (no lock taken, nothing written): what is left."""
    from campaign_runner.run import RunOptions, plan_only

    try:
        plan = plan_only(campaign, RunOptions(state=state, rehearsal=rehearsal))
    except CampaignError as error:
        first = error.problems[0] if error.problems else None
        return Left(problem=f"{first.file}: {first.message}" if first else "unreadable")
    return Left(plan.rows, plan.to_send)


def _running(status: CampaignStatus) -> str:
    holder = status.holder
    assert holder is not None
    if holder.pid is None:
        return "in progress (another process holds the lock)"
    return f"in progress (pid {holder.pid}, started {holder.started})"


def _ended(status: CampaignStatus) -> str:
    run = status.last_run or {}
    text = f"ended {_moment(run.get('ended_at'))}"
    if run.get("exit_code") is not None:
        text += f", exit {run['exit_code']}"
    return f"{text}: {run['reason']}" if run.get("reason") else text


def _died(status: CampaignStatus) -> str:
    started = _moment((status.last_run or {}).get("started_at"))
    return (
        f"died: started {started} and never finished (killed or the machine stopped); "
        "run it again to continue: no one already sent is sent twice"
    )


_SENTENCES: dict[RunState, Callable[[CampaignStatus], str]] = {
    RunState.RUNNING: _running,
    RunState.FINISHED: _ended,
    RunState.DIED: _died,
    RunState.NEVER_RUN: lambda status: "never run",
}


def _moment(stored: str | None) -> str:
    """A time the journal stored, as ISO 8601 in UTC to the second (what the logs show)."""
    return shown_time(stored) if stored else "at an unknown time"


def _heading(status: CampaignStatus) -> list[str]:
    return [f"campaign {status.name}: ledger {status.journal}"]


def _run(status: CampaignStatus) -> list[str]:
    return [f"  last run: {status.run_sentence()}"]


def _left(status: CampaignStatus) -> list[str]:
    left = status.left
    if left is None:
        return []
    if left.problem is not None:
        return [f"  left: cannot tell: {left.problem}"]
    return [f"  left: {left.to_send} to send of {left.rows} row(s)"]


def _counts(status: CampaignStatus) -> list[str]:
    if not status.counts:
        return ["  no deliveries yet"]
    return [f"  {name}: {count}" for name, count in sorted(status.counts.items())]


def _outcomes(status: CampaignStatus) -> list[str]:
    if not status.counts:
        return []  # nothing was ever sent: "no deliveries yet" says it
    lines = [f"  {funnel_words.sentence(status.funnel)}"]
    pricing = funnel_words.pricing_words(status.funnel)
    if pricing:
        lines.append(f"  pricing: {pricing}")
    if status.unmatched:
        lines.append(
            f"  waiting for their message: {status.unmatched} status(es) the ledger received "
            "for messages it does not know (yet), of any campaign; matched when they appear"
        )
    return lines


# The sections of the text, in order; a new line (how many are left...) is one more function.
SECTIONS: tuple[Callable[[CampaignStatus], list[str]], ...] = (
    _heading,
    _run,
    _left,
    _counts,
    _outcomes,
)


def read_status(name: str, state_option: str | os.PathLike[str] | None = None) -> CampaignStatus:
    """Where campaign NAME stands, read without disturbing a run in progress.

    `CampaignInvalid` when the ledger or the lock file exists but cannot be read.
    """
    state = state_from(state_option)
    notes: list[str] = []
    warning = other_ledgers_warning(name, other_ledgers(name, state))
    # The lock is probed before and after the ledger is read: a run holding it at the end
    # is in progress; one that let go meanwhile wrote its end first, and one that took it
    # meanwhile may have begun: read the ledger again in either case.
    before = _holder(state, name)
    read = _read_journal(state, name, before is not None, notes)
    holder = _holder(state, name)
    if (before is None) != (holder is None):
        read = _read_journal(state, name, holder is not None, notes)
    warnings = [*notes, *([warning] if warning else [])]
    return CampaignStatus(
        name,
        state.shown,
        read.counts,
        read.last_run,
        holder,
        warnings,
        funnel=read.funnel,
        unmatched=read.unmatched,
        hold=read.hold,
    )


def _holder(state: State, name: str) -> Holder | None:
    """The process running campaign NAME now: the lock beside a SQLite ledger knows it; on
    PostgreSQL, the run's advisory lock does (`PostgresJournal.holder`)."""
    lock = state.lock_path(name)
    if lock is not None:
        return Lock.holder(lock)
    assert state.url is not None
    return postgres_module(state).holder(state.url, name)


@dataclass(frozen=True)
class _Read:
    """What one look at the ledger found for a campaign."""

    counts: dict[str, int] = field(default_factory=dict)
    last_run: dict[str, Any] | None = None
    funnel: Funnel = field(default_factory=Funnel)
    unmatched: int = 0
    hold: Hold | None = None


def _read_journal(state: State, name: str, running: bool, notes: list[str]) -> _Read:
    """The ledger's counts per state, the last run and the funnel (none when there is no
    ledger yet).

    While a run is RUNNING, the keys its own run left `sending` are in flight, not unknown.
    """
    journal = open_journal(state, name, readonly=True, notes=notes)
    if journal is None:
        return _Read()
    try:
        last_run = journal.last_run()
        going = last_run["run_id"] if running and last_run and not last_run["ended_at"] else None
        counts = journal.status_counts(going)
        if not counts:
            return _Read(counts, last_run)
        if not journal.outcomes_ready():  # a ledger older than outcomes: none came yet
            return _Read(counts, last_run, Funnel(accepted=counts.get(SENT, 0)))
        return _Read(
            counts,
            last_run,
            journal.funnel(name),
            journal.unmatched_count(),
            journal.hold_of(name),
        )
    finally:
        journal.close()
