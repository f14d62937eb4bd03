"""The delivery ledger: one for every campaign, where exactly-once is kept.

`--state` (or `$CAMPAIGN_STATE`) names it: a folder holds the embedded SQLite ledger
(`ledger.sqlite`, the default: nothing to install), a `postgresql://` URL an existing
PostgreSQL database, for cron on several hosts. Both have the same schema, created and
upgraded by the runner's own numbered migrations (`migrations`), and the same behaviour:
each campaign sees its own deliveries and runs through a `Journal`.

    open_journal(state, campaign) ─► SQLiteJournal (sqlite.py) | PostgresJournal (postgres.py)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.ledger.base import Identity, LedgerError, Previous
from campaign_runner.ledger.imports import import_journals
from campaign_runner.ledger.outcomes import Applied, DeliveryOutcome, Funnel, Hold
from campaign_runner.ledger.rules_tables import Suppression
from campaign_runner.ledger.sqlite import LEDGER_FILE, SQLiteJournal, ledger_path

if TYPE_CHECKING:
    from campaign_runner.webhooks.payload import Events

__all__ = [
    "Applied",
    "DeliveryOutcome",
    "Funnel",
    "Hold",
    "Identity",
    "Journal",
    "LedgerError",
    "Previous",
    "State",
    "Suppression",
    "open_journal",
    "state_from",
]

STATE_ENV = "CAMPAIGN_STATE"
OLD_STATE_ENV = "CAMPAIGN_STATE_DIR"  # still read: the name before the ledger could be a URL
_POSTGRES_SCHEMES = ("postgresql", "postgres")


class Journal(Protocol):
    """One campaign's view of the ledger: what the plan, the loop and `status` use."""

    where: str  # the ledger, as a person may be shown it (no password)
    campaign: str  # the journal's name: the campaign's, or NAME.sandbox for a rehearsal

    def is_empty(self) -> bool: ...
    def lookup(self, key: str) -> Previous | None: ...
    def mark_sending(self, entries: Iterable[tuple[str, int, str]], run_id: str) -> set[str]: ...
    def record(
        self,
        key: str,
        status: str,
        *,
        permanent: bool = False,
        message_id: str | None = None,
        http_status: int | None = None,
        error: str | None = None,
        code: int | None = None,
    ) -> None: ...
    def flush(self) -> None: ...
    def start_run(self, run_id: str, started_at: str, identity: Identity | None = None) -> None: ...
    def end_run(self, run_id: str, exit_code: int, reason: str, counts: dict[str, int]) -> None: ...
    def status_counts(self, running: str | None = None) -> dict[str, int]: ...
    def last_run(self) -> dict[str, Any] | None: ...
    def close(self) -> None: ...
    # The rules across campaigns (rules_tables.RulesTables; what they mean: rules.py).
    def rules_ready(self) -> bool: ...
    def suppressions_of(self, phones: Sequence[str]) -> dict[str, Suppression]: ...
    def suppression_list(self) -> list[Suppression]: ...
    def suppress(self, entries: Iterable[tuple[str, str, str, str | None]]) -> None: ...
    def unsuppress(self, phones: Sequence[str]) -> None: ...
    def suppress_later(self, phone: str, kind: str, reason: str) -> None: ...
    def setting(self, name: str) -> str | None: ...
    def set_setting(self, name: str, value: str | None) -> None: ...
    def recent(self, phones: Sequence[str], since: str) -> list[tuple[str, str, int]]: ...
    def reached_since(self, since: str) -> tuple[int, str | None]: ...
    def claim(self, phones: Sequence[str]) -> None: ...
    def planning_lock(self) -> AbstractContextManager[None]: ...
    # What Meta reported after "sent" (outcomes.OutcomeTables; webhooks/ reads them in).
    def outcomes_ready(self) -> bool: ...
    def apply_events(self, events: Events) -> Applied: ...
    def reconcile(self, run_id: str | None = None, recent: timedelta | None = None) -> Applied: ...
    def hold_of(self, campaign: str) -> Hold | None: ...
    def place_hold(self, campaign: str, reason: str, code: int | None) -> None: ...
    def release_hold(self, campaign: str) -> Hold | None: ...
    def outcomes_of(self, campaign: str, keys: Sequence[str]) -> dict[str, DeliveryOutcome]: ...
    def has_deliveries(self, campaign: str) -> bool: ...
    def campaign_names(self) -> list[str]: ...
    def outcome_rows(self, campaign: str) -> Iterator[DeliveryOutcome]: ...
    def funnel(self, campaign: str) -> Funnel: ...
    def failures_by_code(
        self, campaign: str, run_id: str, codes: Sequence[int]
    ) -> tuple[int, int]: ...
    def unmatched_count(self) -> int: ...


@dataclass(frozen=True)
class State:
    """Where the ledger is: a FOLDER (SQLite) or a PostgreSQL URL."""

    folder: Path | None = None
    url: str | None = None

    @property
    def shown(self) -> str:
        """The ledger for a person: the SQLite file, or the URL without its password."""
        if self.url is not None:
            return shown_url(self.url)
        assert self.folder is not None
        return str(ledger_path(self.folder))

    def lock_path(self, name: str) -> Path | None:
        """The lock file of campaign NAME beside a SQLite ledger; None on PostgreSQL."""
        return None if self.folder is None else self.folder / f"{name}.lock"

    def files_of(self, name: str) -> dict[str, Path]:
        """The ledger's files and campaign NAME's lock, by what a person calls them: no
        report may be written over them. Empty on PostgreSQL (no file of it is here)."""
        lock = self.lock_path(name)
        if self.folder is None or lock is None:
            return {}
        ledger = ledger_path(self.folder)
        return {
            "the ledger": ledger,
            "the ledger's write-ahead log": ledger.with_name(ledger.name + "-wal"),
            "the ledger's shared memory": ledger.with_name(ledger.name + "-shm"),
            "the campaign's lock": lock,
        }


def shown_url(url: str) -> str:
    """URL with its password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def state_from(option: str | os.PathLike[str] | None = None) -> State:
    """The ledger `--state` names, else `$CAMPAIGN_STATE` (or the older
    `$CAMPAIGN_STATE_DIR`), else the user's state folder (`$XDG_STATE_HOME/campaign-runner`,
    ~/.local/state/campaign-runner)."""
    value = (
        os.fspath(option)
        if option
        else os.environ.get(STATE_ENV) or os.environ.get(OLD_STATE_ENV) or str(user_state_dir())
    )
    if urlsplit(value).scheme in _POSTGRES_SCHEMES:
        return State(url=value)
    return State(folder=Path(value))


def user_state_dir() -> Path:
    """`$XDG_STATE_HOME/campaign-runner`, else ~/.local/state/campaign-runner."""
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "campaign-runner"


def postgres_module(state: State) -> Any:
    """The PostgreSQL ledger's module; a clear error when psycopg is not installed."""
    try:
        from campaign_runner.ledger import postgres
    except ImportError:
        raise CampaignInvalid(
            Problem(
                state.shown,
                None,
                None,
                "a PostgreSQL ledger needs psycopg: pip install 'campaign-runner[postgres]'; "
                "nothing was sent",
            )
        ) from None
    return postgres


def open_journal(
    state: State, campaign: str, readonly: bool = False, notes: list[str] | None = None
) -> Journal | None:
    """Campaign CAMPAIGN's view of the ledger at STATE; None when READONLY and there is no
    ledger yet. Journals of earlier versions in a state folder are imported first (what
    that did is added to NOTES)."""
    if state.url is not None:
        return postgres_module(state).PostgresJournal(state.url, campaign, readonly)
    assert state.folder is not None
    imported = import_journals(state.folder)
    if notes is not None:
        notes.extend(imported)
    path = ledger_path(state.folder)
    if readonly and not path.exists():
        return None
    return SQLiteJournal(path, campaign, readonly)


def open_ledger(state: State, readonly: bool) -> Journal | None:
    """The ledger at STATE for the commands that read or write the rules (`suppress`,
    `budget`), outside any campaign and its lock; None when READONLY and there is none."""
    if state.url is not None:
        journal = postgres_module(state).PostgresJournal(state.url, "", readonly=True)
        if not readonly:
            try:
                journal.migrate()
            except BaseException:
                journal.close()
                raise
        return journal
    assert state.folder is not None
    path = ledger_path(state.folder)
    if readonly and not path.exists():
        return None
    return SQLiteJournal(path, "", readonly)


def other_ledgers(name: str, state: State, remember: bool = False) -> list[str]:
    """Other ledgers campaign NAME was run with by this user on this machine.

    Runs on different ledgers cannot see each other's deliveries, so each would send
    everyone the campaign: a person must be told. REMEMBER notes STATE in the register
    (`known-journals.tsv` in the user's state folder, whatever --state says). A register
    that cannot be read or written only means no warning.
    """
    register = user_state_dir() / "known-journals.tsv"
    mine = state.shown if state.url else os.path.abspath(ledger_path(state.folder or Path()))
    try:
        lines = register.read_text(encoding="utf-8").splitlines() if register.exists() else []
        known = {_as_ledger(*line.split("\t", 1)) for line in lines if "\t" in line}
        if remember and (name, mine) not in known:
            register.parent.mkdir(parents=True, exist_ok=True)
            with open(register, "a", encoding="utf-8") as handle:
                handle.write(f"{name}\t{mine}\n")
    except OSError:
        return []
    return sorted(p for n, p in known if n == name and p != mine and _still_there(p))


def _as_ledger(name: str, where: str) -> tuple[str, str]:
    """A register line, with a per-campaign journal of an earlier version (NAME.sqlite)
    read as the ledger that replaced it in the same folder."""
    if urlsplit(where).scheme not in _POSTGRES_SCHEMES and where.endswith(".sqlite"):
        where = str(Path(where).parent / LEDGER_FILE)
    return name, where


def _still_there(where: str) -> bool:
    return urlsplit(where).scheme in _POSTGRES_SCHEMES or Path(where).exists()


def other_ledgers_warning(name: str, others: list[str]) -> str | None:
    """The warning for OTHERS, or None when there are none."""
    if not others:
        return None
    return (
        f"campaign '{name}' also has a ledger at {', '.join(others)}: runs with another "
        "--state do not see each other's deliveries and may send the campaign twice; use "
        "one --state (or CAMPAIGN_STATE) for every run of a campaign"
    )
