"""The plan: one pass over every recipient before anything is sent, as `terraform plan` does.

    prepared rows ──► the journal: sent before? in doubt? failed for good? ──► Plan (counts,
         │                                                                    examples, sample)
         └──────► Spool: each row's outcome or ready request body, on disk, in row order
                    │
                    ▼  shown, logged, approved: then the send reads the spool

After the journal, a follow-up's choice (`follow_up`: by the row's outcome in another
campaign) and the rules across campaigns (`rules`) decide the rows still ready. The pass
renders and validates every row once; the send reads the spool instead of doing it
again, so a plan costs a temporary file, not a second rendering. Memory stays flat: the spool
is a temporary SQLite file, like the duplicate keys.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from campaign_runner.follow_up import FollowUp, select
from campaign_runner.gateway.sender import encode_body
from campaign_runner.ledger import Journal, Previous
from campaign_runner.prepare import PreparedRow
from campaign_runner.report import RowResult
from campaign_runner.rules import FrequencyCap, apply_rules
from campaign_runner.schedule import Closed
from campaign_runner.status import Status

EXAMPLES = 5  # rows not to be sent shown with their reasons (every one with --verbose)


@dataclass
class DeliveryPolicy:
    """The run's choices the plan and the loop obey (from the command line)."""

    retry_failed: bool = False
    resend_unknown: bool = False
    ignore_schedule: bool = False
    handle_signals: bool = True
    # Workers sharing a campaign (PostgreSQL): a key left `sending` may be in flight in a
    # live worker; it is decided when claimed (`workers`), not by the plan.
    shared: bool = False
    frequency_cap: FrequencyCap | None = None  # the campaign's `send.frequency_cap`
    follow_up: FollowUp | None = None  # the campaign's `follow_up:` (follow_up.py)


def earlier_outcome(previous: Previous | None, policy: DeliveryPolicy) -> RowResult | None:
    """How an earlier run's record decides this key now (seq and row filled in by the caller);
    None: send it."""
    if previous is None:
        return None
    if previous.sent:
        return RowResult(0, 0, "", Status.ALREADY_SENT, previous.message_id, previous.http_status)
    if previous.in_doubt and policy.shared:
        return None
    if previous.in_doubt and not policy.resend_unknown:
        why = previous.error or "an earlier run stopped during this request"
        reason = (
            f"{why}; its outcome is unknown "
            "(check the gateway, then --resend-unknown to send it again)"
        )
        return RowResult(0, 0, "", Status.UNKNOWN, error=reason)
    if previous.failed_for_good and not policy.retry_failed:
        reason = (
            f"failed for good in an earlier run: {previous.error} (--retry-failed sends it again)"
        )
        return RowResult(
            0, 0, "", Status.ALREADY_FAILED, http_status=previous.http_status, error=reason
        )
    return None


@dataclass
class Plan:
    """What a run will do, decided before its first request: shown, logged and approved."""

    campaign: str
    recipients: str = ""  # the file read, as an absolute path
    rows: int = 0  # rows the run reads (all of them, or --limit)
    counts: Counter[Status] = field(default_factory=Counter)  # READY: to be sent now
    examples: list[PreparedRow] = field(default_factory=list)  # rows not sent, with why
    warnings: list[str] = field(default_factory=list)
    gateway: str | None = None  # the URL the requests go to; None for a dry run
    sample: dict[str, Any] | None = None  # the first message to be sent, as rendered
    closed: Closed | None = None  # the window is closed or the campaign expired: none sent
    examples_limit: int | None = EXAMPLES  # None keeps every row not sent
    deferred_until: str | None = None  # the earliest a `deferred` row may be sent
    held: str | None = None  # the campaign is held (holds.py): why, and how to lift it

    @property
    def to_send(self) -> int:
        """Rows whose message goes out in this run (unless the window is closed)."""
        return self.counts[Status.READY]

    @property
    def trouble(self) -> int:
        """Rows a person must look at (invalid, unknown from a crash): the examples' kind."""
        return sum(n for status, n in self.counts.items() if status.trouble)

    def add(self, item: PreparedRow) -> None:
        """Count ITEM; keep it as an example of a row not sent, or as the sample message."""
        self.counts[item.status] += 1
        if item.status is Status.READY:
            if self.sample is None:
                self.sample = item.body
        elif item.status.trouble and (
            self.examples_limit is None or len(self.examples) < self.examples_limit
        ):
            self.examples.append(item)

    def wait_until(self, until: str) -> None:
        """Note UNTIL, a moment a `deferred` row may be sent: the plan keeps the earliest
        (the follow-up's pass and the rules' each tell theirs; stamps compare as text)."""
        if self.deferred_until is None or until < self.deferred_until:
            self.deferred_until = until

    def as_dict(self) -> dict[str, Any]:
        """The plan for the JSON summary and `--json`."""
        return {
            "rows": self.rows,
            "to_send": self.to_send,
            "counts": {str(s): n for s, n in self.counts.items() if s is not Status.READY},
            "gateway": shown_url(self.gateway) if self.gateway else None,
            "window": None if self.closed is None else self.closed.reason,
            "deferred_until": self.deferred_until,
            "held": self.held,
        }


def shown_url(url: str) -> str:
    """URL as plans and summaries show it: scheme, host, port and path; never a query, since
    gateway parameters may carry keys, nor a user or password."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}{parts.path}"


class Spool:
    """The plan's rows on disk, in row order: what the send reads instead of rendering again.

    Rows are written in batches (one `executemany` per `_BATCH`): a row costs a few
    microseconds, not a statement of its own."""

    _BATCH = 1000

    def __init__(self) -> None:
        handle, self._path = tempfile.mkstemp(prefix="campaign-plan-", suffix=".sqlite")
        os.close(handle)
        self.db = sqlite3.connect(self._path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(
            "CREATE TABLE rows (seq INTEGER PRIMARY KEY, row INTEGER, phone TEXT, status TEXT,"
            " key TEXT, untrimmed_key TEXT, error TEXT, message_id TEXT, http_status INTEGER,"
            " content BLOB, vals TEXT)"
        )
        self.db.execute("BEGIN")
        self._pending: list[tuple[Any, ...]] = []

    def add(self, item: PreparedRow) -> None:
        """Keep ITEM: its outcome, or the exact bytes its request will carry."""
        self._pending.append(
            (
                item.seq,
                item.row,
                item.phone,
                item.status.value,
                item.key,
                item.untrimmed_key,
                item.error,
                item.message_id,
                item.http_status,
                item.content,
                json.dumps(item.values, ensure_ascii=False),
            )
        )
        if len(self._pending) >= self._BATCH:
            self._write()

    def _write(self) -> None:
        self.db.executemany("INSERT INTO rows VALUES (?,?,?,?,?,?,?,?,?,?,?)", self._pending)
        self._pending = []

    def rows(self) -> Iterator[PreparedRow]:
        """The kept rows in order, each as the send needs it (the body as bytes only)."""
        self._write()
        if self.db.in_transaction:  # the rows may be read more than once (workers do)
            self.db.execute("COMMIT")
        for found in self.db.execute("SELECT * FROM rows ORDER BY seq"):
            seq, row, phone, status, key, untrimmed, error, message_id, http, content, vals = found
            yield PreparedRow(
                seq,
                row,
                phone,
                Status(status),
                key,
                untrimmed,
                None,
                error,
                json.loads(vals),
                content=content,
                message_id=message_id,
                http_status=http,
            )

    def close(self) -> None:
        """Drop the temporary file."""
        self.db.close()
        Path(self._path).unlink(missing_ok=True)


def make_plan(
    plan: Plan,
    rows: Iterator[PreparedRow],
    journal: Journal | None,
    policy: DeliveryPolicy,
    spool: Spool | None,
    encode: bool = True,
) -> Plan:
    """Decide every prepared row against the journal; count it into PLAN and keep it in SPOOL
    (None: only count, for `campaign status`). ENCODE: keep each ready body as the bytes its
    request will carry (a dry run sends none, so it skips that)."""
    sends = encode and spool is not None  # a run's plan, not `status` counting what is left
    noted = decided(
        rows, journal, plan.campaign, policy, sends, plan.wait_until, plan.warnings.append
    )
    for item in noted:
        plan.rows += 1
        plan.add(item)
        if encode and item.status is Status.READY:
            assert item.body is not None  # a ready row always has one
            item.content = encode_body(item.body)
        item.body = None  # the spool keeps the bytes; the plan keeps only its sample
        if spool is not None:
            spool.add(item)
    return plan


def decided(
    rows: Iterator[PreparedRow],
    journal: Journal | None,
    name: str,
    policy: DeliveryPolicy,
    sends: bool = False,
    deferred: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Iterator[PreparedRow]:
    """ROWS, each ready one decided against the JOURNAL of campaign NAME: already sent, in
    doubt, failed for good, then a follow-up's choice (follow_up.py: not-selected,
    deferred), then the rules across campaigns (rules.py: suppressed, deferred), or still
    ready (to be sent). SENDS: the plan of a run that sends (it claims the people it
    keeps); DEFERRED is told the earliest "until" of a deferred row, WARN what the plan
    must say before it is approved."""
    rows = _against_journal(rows, journal, name, policy)
    if policy.follow_up is not None:  # before the rules: a row not followed up takes no place
        rows = select(rows, journal, policy.follow_up, deferred, warn)
    yield from apply_rules(rows, journal, name, policy.frequency_cap, sends, deferred)


def _against_journal(
    rows: Iterator[PreparedRow], journal: Journal | None, name: str, policy: DeliveryPolicy
) -> Iterator[PreparedRow]:
    # A journal empty at the start knows no key: a first run skips one lookup per row.
    if journal is None or journal.is_empty():
        yield from rows
        return
    for item in rows:
        if item.status is Status.READY:
            _decide(item, journal, name, policy)
        yield item


def _decide(item: PreparedRow, journal: Journal, name: str, policy: DeliveryPolicy) -> None:
    previous = journal.lookup(f"{name}:{item.key}")
    if previous is None and item.untrimmed_key is not None:
        previous = journal.lookup(f"{name}:{item.untrimmed_key}")  # journals before trimming
    earlier = earlier_outcome(previous, policy)
    if earlier is not None:
        item.status, item.error = earlier.status, earlier.error
        item.message_id, item.http_status = earlier.message_id, earlier.http_status
