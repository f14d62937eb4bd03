"""Many workers, one campaign: runs on any hosts sharing a PostgreSQL ledger cooperate.

    each worker: plan (every row) ──► publish its ready deliveries to `work` (same plan,
                                       same rows: ON CONFLICT keeps one copy)
                 rows not to send (invalid, already sent...) ──► its own report
                 loop: claim a batch (FOR UPDATE SKIP LOCKED, lease LEASE_S) ──► send
                       renew the lease every few seconds while it works
                 none left: wait while another worker still holds a live lease (it may
                 die: then its lapsed claims are taken over), then end

A claimed key that the ledger already shows `sending` was in flight when its worker died:
it is reported `unknown` and never sent again; one already `sent` is `already-sent`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.ledger.postgres import PostgresJournal
from campaign_runner.plan import Spool
from campaign_runner.prepare import PreparedRow
from campaign_runner.status import Status

LEASE_S = 60.0  # a claim lapses this long after its worker last renewed it
LEASE_ENV = "CAMPAIGN_WORKER_LEASE_S"  # ops may shorten it (how soon a dead worker's share moves)
LEASE_RANGE_S = (2.0, 3600.0)
CLAIM_BATCH = 64  # at most this many deliveries claimed at a time (few to strand)
_WAIT_FOR_OTHERS_S = 0.5  # between looks at the leases other workers hold
IN_DOUBT = (
    "the worker that was sending it stopped during the request; its outcome is unknown "
    "(check the gateway, then --resend-unknown to send it again)"
)


class SharedWork:
    """One worker's share of a campaign's plan, on a PostgreSQL ledger."""

    def __init__(
        self,
        journal: PostgresJournal,
        name: str,
        worker: str,
        resend_unknown: bool = False,
        pace: tuple[int, float | None] = (1, None),
    ):
        self.journal = journal
        # Claim what this worker sends in about a second: two rounds of its concurrency,
        # no more than a second at `send.rate`, so every worker that joins gets a share.
        concurrency, rate = pace
        self.batch = min(CLAIM_BATCH, 2 * concurrency, math.ceil(rate) if rate else CLAIM_BATCH)
        self.resend_unknown = resend_unknown
        self.name = name  # the campaign's name: delivery keys are NAME:KEY
        self.worker = worker
        self.plan_id = ""
        self.lease_s = lease_seconds()
        self.renew_every_s = self.lease_s / 4  # three renewals may fail before it lapses
        journal.join(worker, resend_unknown)

    def publish(self, spool: Spool) -> None:
        """Put the plan's ready deliveries in the shared work. The plan's id is a digest of
        every row's key in order (whatever the ledger says of it), so workers of the same
        campaign and recipients share the same rows, however far the others have got."""
        digest = hashlib.sha256()
        for item in spool.rows():
            digest.update(f"{item.seq}:{item.key}\n".encode())
        self.plan_id = digest.hexdigest()[:32]
        self.journal.publish(
            self.plan_id,
            (
                (
                    f"{self.name}:{item.key}",
                    item.seq,
                    item.row,
                    item.phone,
                    item.content,
                    json.dumps(item.values, ensure_ascii=False),
                )
                for item in spool.rows()
                if item.status is Status.READY
            ),
        )

    def renew(self) -> None:
        """Keep this worker's claims alive (called every few seconds while it sends)."""
        self.journal.renew(self.worker, self.lease_s)

    async def rows(
        self, spool: Spool, note: Callable[[int, dict[str, str]], None]
    ) -> AsyncIterator[PreparedRow]:
        """The rows this worker reports first: the plan's rows not to send, then each
        delivery it claims, until none is left to claim."""
        for item in _not_ready(spool):
            note(item.seq, item.values)
            yield item
        for found in self.journal.settled_unknown(self.plan_id, self.resend_unknown):
            item = _in_doubt(self.name, found)
            note(item.seq, item.values)
            yield item
        async for item in self.claimed(note):
            yield item

    async def others_finish(self) -> bool:
        """Wait while another worker holds a live claim; True when some of it lapsed
        meanwhile (that worker died: claim again), False when nothing is left anywhere."""
        while True:
            wait = self.journal.held_elsewhere(self.plan_id, self.worker)
            if wait is None:
                return self.journal.claimable(self.plan_id)
            await asyncio.sleep(min(_WAIT_FOR_OTHERS_S, wait + 0.05))

    async def claimed(
        self, note: Callable[[int, dict[str, str]], None]
    ) -> AsyncIterator[PreparedRow]:
        """Each delivery this worker claims, batch after batch, until none is left."""
        while True:
            claimed = self.journal.claim_work(self.plan_id, self.worker, self.batch, self.lease_s)
            if not claimed:
                return
            settled: list[str] = []
            for found in claimed:
                item = _claimed_row(self.name, found, settled, self.resend_unknown)
                note(item.seq, item.values)
                yield item
            if settled:
                self.journal.settle_claims(settled)


def lease_seconds() -> float:
    """How long a claim lives without renewal: `$CAMPAIGN_WORKER_LEASE_S`, else LEASE_S."""
    text = os.environ.get(LEASE_ENV, "").strip()
    if not text:
        return LEASE_S
    low, high = LEASE_RANGE_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not low <= seconds <= high:
        raise CampaignInvalid(
            Problem(
                LEASE_ENV,
                None,
                None,
                f"{LEASE_ENV} must be a number of seconds from {low:g} to {high:g}; "
                "nothing was sent",
            )
        )
    return seconds


def _in_doubt(name: str, found: tuple[Any, ...]) -> PreparedRow:
    key, seq, row, phone, vals = found
    item = PreparedRow(seq, row, phone, Status.UNKNOWN, key.removeprefix(f"{name}:"))
    item.values, item.error = json.loads(vals), IN_DOUBT
    return item


def _not_ready(spool: Spool) -> Iterator[PreparedRow]:
    return (item for item in spool.rows() if item.status is not Status.READY)


def _claimed_row(
    name: str, found: tuple[Any, ...], settled: list[str], resend_unknown: bool
) -> PreparedRow:
    """A claimed delivery as the loop takes it: READY to send, or what the ledger already
    knows of its key (a worker died during it: unknown; it was sent: already-sent)."""
    key, seq, row, phone, content, vals, status = found
    item = PreparedRow(seq, row, phone, key=key.removeprefix(f"{name}:"), values=json.loads(vals))
    item.content = bytes(content)
    if status == "sending" and not resend_unknown:
        item.status, item.error = Status.UNKNOWN, IN_DOUBT
        settled.append(key)
    elif status == "sent":
        item.status = Status.ALREADY_SENT
        settled.append(key)
    return item
