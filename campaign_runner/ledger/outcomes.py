"""What Meta reported after "sent", kept in the ledger (migration 5), with the same SQL on
both ledgers: `OutcomeTables` is mixed into `SQLiteJournal` and `PostgresJournal`.

`apply_events` writes one payload's (or one batch's) events in one transaction:

    statuses      matched to deliveries by wamid (any campaign) and merged
                  (`webhooks.outcome.merge`: furthest state, failure kept, never backwards);
                  a wamid not recorded yet whose callback data names one delivery in doubt
                  (`sending`, no wamid: its run died during the POST) settles it as sent;
                  a wamid no delivery has yet is kept aside in `unmatched_statuses` and
                  matched by `reconcile` once its delivery is recorded
    consequences  the first failure of a delivery with 131050 or 131026 puts its number on
                  the suppression list (`rules.LEARNED_FROM_META`); 132015/132016 hold its
                  campaign (`rules.HOLDING_CODES`) until `release_hold`; a rehearsal's
                  deliveries teach nothing about real people
    replies       kept (who answered which message)
    preferences   the latest per person wins: `stop` suppresses (opted-out), `resume` lifts
                  an opted-out entry (never one ops added by hand)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from campaign_runner.ledger.base import now
from campaign_runner.ledger.rules_tables import REHEARSAL_SUFFIX, RulesTables
from campaign_runner.webhooks.outcome import Outcome, merge
from campaign_runner.webhooks.payload import StatusUpdate

if TYPE_CHECKING:
    from campaign_runner.webhooks.payload import Events, Preference, Reply

OUTCOMES_VERSION = 5  # the migration that created these tables and columns
CHUNK = 500  # wamids looked up together: one query per chunk
UNMATCHED_KEPT = timedelta(days=30)  # Meta keeps a message for 30 days: no status comes later
_OUTCOME_COLUMNS = [f.name for f in fields(Outcome)]
_outcome_columns = attrgetter(*_OUTCOME_COLUMNS)
_UPDATE_OUTCOME = (
    "UPDATE deliveries SET outcome=?, reached=?, sent_at=?, delivered_at=?, read_at=?,"
    " failed_at=?, failure_code=?, failure_title=?, failure_details=?, pricing_category=?"
    " WHERE campaign=? AND key=?"
)
_STORED = (
    "reached, sent_at, delivered_at, read_at, failed_at, failure_code, failure_title,"
    " failure_details, pricing_category"
)
_OPTED_OUT = "opted-out"  # rules.SuppressionKind.OPTED_OUT (rules imports the ledger)


@dataclass
class Applied:
    """What `apply_events` did, for the receiver's and ingest's log lines."""

    matched: int = 0  # statuses of a known delivery
    changed: int = 0  # deliveries whose record moved on
    unmatched: int = 0  # statuses kept aside for a wamid no delivery has yet
    replies: int = 0
    preferences: int = 0
    suppressed: list[str] = field(default_factory=list)  # numbers put on the list
    held: list[str] = field(default_factory=list)  # campaigns held back

    def add(self, other: Applied) -> None:
        """Count OTHER's work in this one."""
        for name in ("matched", "changed", "unmatched", "replies", "preferences"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.suppressed.extend(other.suppressed)
        self.held.extend(other.held)


@dataclass(frozen=True)
class Hold:
    """A campaign held back: its runs send nothing until the operator resumes it."""

    campaign: str
    reason: str
    code: int | None
    held_at: str


@dataclass(frozen=True)
class DeliveryOutcome:
    """One delivery as the report and follow-ups see it."""

    key: str
    row: int | None
    phone: str | None
    status: str  # sending | sent | failed (the send's own record)
    message_id: str | None
    error: str | None
    updated_at: str
    outcome: Outcome
    permanent: bool = False  # a `failed` send that no re-run retries (a transient one is)

    @property
    def final(self) -> str:
        """The outcome's word, or the send's own (failed, unknown) when nothing was accepted."""
        if self.status == "sent":
            return self.outcome.final
        return "unknown" if self.status == "sending" else self.status


@dataclass
class Funnel:
    """How far a campaign's messages went: accepted -> delivered -> read; failed by code."""

    accepted: int = 0  # the gateway returned a wamid
    sent: int = 0  # Meta said `sent` (or went further)
    delivered: int = 0  # delivered or read
    read: int = 0
    failed: int = 0  # failed after acceptance (and never delivered)
    failed_by_code: list[tuple[int | None, str | None, int]] = field(default_factory=list)
    pricing: dict[str, int] = field(default_factory=dict)


class OutcomeTables(RulesTables):
    """The outcome queries both ledgers share (see the module's docstring)."""

    def outcomes_ready(self) -> bool:
        """True when the ledger has migration 5's tables."""
        ready = self.__dict__.get("_outcomes_ready")
        if ready is None:
            ready = self.__dict__["_outcomes_ready"] = self._schema_version() >= OUTCOMES_VERSION
        return bool(ready)

    # ---- writing what Meta reported ---------------------------------------------------------

    def apply_events(self, events: Events) -> Applied:
        """Write EVENTS (statuses, replies, preferences) and their consequences, in one
        transaction; `LedgerError` when that fails (nothing of them is then written)."""
        applied = Applied()
        with self._transaction() as cursor:
            db = cursor or self.db
            self._apply_statuses(db, events.statuses, applied, keep_unmatched=True)
            self._keep_replies(db, events.replies, applied)
            self._apply_preferences(db, events.preferences, applied)
        return applied

    def reconcile(self, run_id: str | None = None, recent: timedelta | None = None) -> Applied:
        """Match the statuses kept aside whose delivery is now recorded, and forget those
        older than `UNMATCHED_KEPT`; in one transaction. Which ones are looked at: those of
        RUN_ID's deliveries (a run that ends), else those received in the last RECENT (the
        receiver, every few seconds), else all of them (ingest, once). The first two cost
        what the run or the recent statuses are, never what the table holds: statuses of
        messages sent by other systems on the same number wait there for 30 days."""
        applied = Applied()
        if not self.outcomes_ready():
            return applied
        columns = "u.message_id, u.status, u.at, u.recipient, u.code, u.title, u.details"
        known = "EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = u.message_id)"
        if run_id is not None:
            query = (
                f"SELECT {columns}, u.pricing_category FROM deliveries d JOIN"
                " unmatched_statuses u ON u.message_id = d.message_id"
                " WHERE d.campaign = ? AND d.run_id = ?"
            )
            params: tuple[Any, ...] = (self.campaign, run_id)
        elif recent is not None:
            since = (datetime.now(UTC) - recent).isoformat(timespec="milliseconds")
            query = (
                f"SELECT {columns}, u.pricing_category FROM unmatched_statuses u"
                f" WHERE u.received_at >= ? AND {known}"
            )
            params = (since,)
        else:
            query = f"SELECT {columns}, u.pricing_category FROM unmatched_statuses u WHERE {known}"
            params = ()
        with self._transaction() as cursor:
            db = cursor or self.db
            found = db.execute(self._sql(query), params).fetchall()
            updates = [_update_from(row) for row in found]
            self._apply_statuses(db, updates, applied, keep_unmatched=False)
            db.executemany(
                self._sql("DELETE FROM unmatched_statuses WHERE message_id = ?"),
                sorted({(u.message_id,) for u in updates}),
            )
            stale = (datetime.now(UTC) - UNMATCHED_KEPT).isoformat(timespec="milliseconds")
            db.execute(self._sql("DELETE FROM unmatched_statuses WHERE received_at < ?"), (stale,))
        return applied

    def _apply_statuses(
        self, db: Any, updates: Sequence[StatusUpdate], applied: Applied, keep_unmatched: bool
    ) -> None:
        by_wamid: dict[str, list[StatusUpdate]] = {}
        for update in updates:
            by_wamid.setdefault(update.message_id, []).append(update)
        wamids = list(by_wamid)
        for start in range(0, len(wamids), CHUNK):
            chunk = wamids[start : start + CHUNK]
            changed = self._apply_chunk(db, chunk, by_wamid, applied, keep_unmatched)
            if changed:  # one statement for the chunk: one round trip on PostgreSQL, not one each
                db.executemany(self._sql(_UPDATE_OUTCOME), changed)

    def _apply_chunk(
        self,
        db: Any,
        chunk: Sequence[str],
        by_wamid: dict[str, list[StatusUpdate]],
        applied: Applied,
        keep_unmatched: bool,
    ) -> list[tuple]:
        """The outcome rows the statuses of the wamids CHUNK change (`_UPDATE_OUTCOME`'s
        parameters); their consequences and the statuses kept aside are written meanwhile."""
        known = self._deliveries_by_wamid(db, chunk)
        changed: list[tuple | None] = []
        for wamid in chunk:
            updates = by_wamid[wamid]
            if wamid in known:
                deliveries = known[wamid]
            elif (found := self._by_callback(db, wamid, updates)) is not None:
                deliveries = [found]
            else:
                if keep_unmatched:
                    self._keep_unmatched(db, updates, applied)
                continue
            applied.matched += len(updates)
            changed.extend(self._merge_into(db, one, updates, applied) for one in deliveries)
        return [row for row in changed if row is not None]

    def _deliveries_by_wamid(self, db: Any, wamids: Sequence[str]) -> dict[str, list[tuple]]:
        where, params = self._among("message_id", wamids)
        found: dict[str, list[tuple]] = {}
        for row in db.execute(
            self._sql(
                f"SELECT message_id, campaign, key, phone, updated_at, {_STORED} FROM deliveries"
                f" WHERE {where}"
            ),
            params,
        ).fetchall():
            found.setdefault(row[0], []).append(tuple(row))
        return found

    def _by_callback(self, db: Any, wamid: str, updates: list[StatusUpdate]) -> tuple | None:
        """The delivery a status names in its callback data (`send.callback_data`: the
        delivery key) when its wamid is not recorded yet: a run that died during the POST
        left it `sending` (unknown), and the webhook proves Meta accepted it. Only one
        delivery in doubt with that key, else None (never a guess)."""
        keys = {u.callback_data for u in updates if u.callback_data}
        if len(keys) != 1:
            return None
        found = db.execute(
            self._sql(
                f"SELECT message_id, campaign, key, phone, updated_at, {_STORED} FROM deliveries"
                " WHERE key = ? AND status = 'sending' AND message_id IS NULL"
            ),
            (keys.pop(),),
        ).fetchall()
        if len(found) != 1:
            return None
        delivery = tuple(found[0])
        db.execute(
            self._sql(
                "UPDATE deliveries SET status = 'sent', message_id = ?, error = NULL"
                " WHERE campaign = ? AND key = ?"
            ),
            (wamid, delivery[1], delivery[2]),
        )
        return (wamid, *delivery[1:])

    def _merge_into(
        self, db: Any, delivery: tuple, updates: list[StatusUpdate], applied: Applied
    ) -> tuple | None:
        """The parameters of DELIVERY's `_UPDATE_OUTCOME` once UPDATES are merged in (its
        consequences written), or None when nothing changed."""
        _wamid, campaign, key, phone, sent_at, *stored = delivery
        old = Outcome(*stored)
        new = old
        for update in updates:
            new = merge(new, update)
        if new == old:
            return None  # a duplicate, or older news: nothing moves backwards
        applied.changed += 1
        if old.failed_at is None and new.failed_at is not None:
            self._consequences(db, (campaign, phone, str(sent_at)), new, applied)
        return (new.final, *_outcome_columns(new), campaign, key)

    def _consequences(
        self, db: Any, delivery: tuple[str, str | None, str], outcome: Outcome, applied: Applied
    ) -> None:
        """What a delivery's first failure teaches (see the module's docstring); DELIVERY is
        its (campaign, phone, when it was sent)."""
        from campaign_runner.rules import HOLDING_CODES, LEARNED_FROM_META  # rules imports us

        campaign, phone, sent_at = delivery
        code = outcome.code
        if code in HOLDING_CODES and self._hold(db, campaign, code, HOLDING_CODES[code], sent_at):
            applied.held.append(campaign)
        learned = LEARNED_FROM_META.get(code) if code is not None else None
        if learned is None or phone is None or campaign.endswith(REHEARSAL_SUFFIX):
            return
        kind, reason = learned
        if kind == _OPTED_OUT and self._resumed_after(db, phone, outcome.failed_at or ""):
            return  # the person opted back in after this failure
        db.execute(
            self._sql(
                "INSERT INTO suppressions (phone, kind, reason, campaign, added_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (phone) DO NOTHING"
            ),
            (phone, str(kind), reason, campaign, now()),
        )
        applied.suppressed.append(phone)

    def _hold(
        self, db: Any, campaign: str, code: int | None, reason: str, sent_at: str | None = None
    ) -> bool:
        """Hold CAMPAIGN unless it is held already, or the failing message (sent at SENT_AT)
        went out before the operator last resumed it: Meta's news of a message the operator
        already knew about must not undo their resume. True when it placed the hold."""
        found = db.execute(
            self._sql("SELECT released_at FROM holds WHERE campaign = ?"), (campaign,)
        ).fetchone()
        if found and (found[0] is None or (sent_at is not None and sent_at <= found[0])):
            return False
        db.execute(
            self._sql(
                "INSERT INTO holds (campaign, reason, code, held_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (campaign) DO UPDATE SET reason=excluded.reason,"
                " code=excluded.code, held_at=excluded.held_at, released_at=NULL"
            ),
            (campaign, reason, code, now()),
        )
        return True

    def _keep_unmatched(self, db: Any, updates: list[StatusUpdate], applied: Applied) -> None:
        received = now()
        db.executemany(
            self._sql(
                "INSERT INTO unmatched_statuses (message_id, status, at, recipient, code, title,"
                " details, pricing_category, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (message_id, status, at) DO NOTHING"
            ),
            [
                (
                    u.message_id,
                    u.status,
                    u.at,
                    u.recipient,
                    u.code,
                    u.title,
                    u.details,
                    u.pricing_category,
                    received,
                )
                for u in updates
            ],
        )
        applied.unmatched += len(updates)

    def _keep_replies(self, db: Any, replies: Sequence[Reply], applied: Applied) -> None:
        if not replies:
            return
        received = now()
        db.executemany(
            self._sql(
                "INSERT INTO replies (message_id, phone, at, kind, context_id, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING"
            ),
            [(r.message_id, r.phone, r.at, r.kind, r.context_id, received) for r in replies],
        )
        applied.replies += len(replies)

    def _apply_preferences(
        self, db: Any, preferences: Sequence[Preference], applied: Applied
    ) -> None:
        for preference in sorted(preferences, key=lambda p: p.at):
            found = db.execute(
                self._sql("SELECT at FROM preferences WHERE phone = ?"), (preference.phone,)
            ).fetchone()
            if found and found[0] >= preference.at:
                continue  # older news than what the ledger holds
            db.execute(
                self._sql(
                    "INSERT INTO preferences (phone, value, at, received_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (phone) DO UPDATE SET value=excluded.value, at=excluded.at,"
                    " received_at=excluded.received_at"
                ),
                (preference.phone, preference.value, preference.at, now()),
            )
            applied.preferences += 1
            self._follow_preference(db, preference, applied)

    def _follow_preference(self, db: Any, preference: Preference, applied: Applied) -> None:
        if preference.value == "resume":
            db.execute(
                self._sql("DELETE FROM suppressions WHERE phone = ? AND kind = ?"),
                (preference.phone, _OPTED_OUT),
            )
            return
        db.execute(
            self._sql(
                "INSERT INTO suppressions (phone, kind, reason, campaign, added_at)"
                " VALUES (?, ?, ?, NULL, ?) ON CONFLICT (phone) DO NOTHING"
            ),
            (preference.phone, _OPTED_OUT, "stopped marketing messages (user_preferences)", now()),
        )
        applied.suppressed.append(preference.phone)

    def _resumed_after(self, db: Any, phone: str, moment: str) -> bool:
        found = db.execute(
            self._sql("SELECT value, at FROM preferences WHERE phone = ?"), (phone,)
        ).fetchone()
        return bool(found and found[0] == "resume" and found[1] > moment)

    # ---- holds ------------------------------------------------------------------------------

    def hold_of(self, campaign: str) -> Hold | None:
        """The hold on CAMPAIGN, or None when its runs may send."""
        if not self.outcomes_ready():
            return None
        found = self.db.execute(
            self._sql(
                "SELECT campaign, reason, code, held_at FROM holds"
                " WHERE campaign = ? AND released_at IS NULL"
            ),
            (campaign,),
        ).fetchone()
        return Hold(*found) if found else None

    def place_hold(self, campaign: str, reason: str, code: int | None) -> None:
        """Hold CAMPAIGN back for REASON (a run that met a paused template itself)."""
        with self._transaction() as cursor:
            self._hold(cursor or self.db, campaign, code, reason)

    def release_hold(self, campaign: str) -> Hold | None:
        """Let CAMPAIGN's runs send again; the hold that was lifted, or None."""
        hold = self.hold_of(campaign)
        if hold is not None:
            self._write(
                "UPDATE holds SET released_at = ? WHERE campaign = ? AND released_at IS NULL",
                [(now(), campaign)],
            )
        return hold

    # ---- reading outcomes -------------------------------------------------------------------

    def outcomes_of(self, campaign: str, keys: Sequence[str]) -> dict[str, DeliveryOutcome]:
        """The deliveries of CAMPAIGN with KEYS (delivery keys), by key."""
        if not keys or not self.outcomes_ready():
            return {}
        where, params = self._among("key", keys)
        rows = self.db.execute(
            self._sql(f"{_SELECT_DELIVERY} WHERE campaign = ? AND {where}"), [campaign, *params]
        ).fetchall()
        return {row[0]: _delivery_from(row) for row in rows}

    def has_deliveries(self, campaign: str) -> bool:
        """True when CAMPAIGN (a journal name: NAME, or NAME.sandbox) recorded a delivery."""
        if not self._schema_version():
            return False
        found = self.db.execute(
            self._sql("SELECT 1 FROM deliveries WHERE campaign = ? LIMIT 1"), (campaign,)
        ).fetchone()
        return found is not None

    def campaign_names(self) -> list[str]:
        """Every campaign (journal name) that ran on this ledger, for a "did you mean"."""
        if not self._schema_version():
            return []
        return [name for (name,) in self.db.execute("SELECT DISTINCT campaign FROM runs")]

    def outcome_rows(self, campaign: str) -> Iterator[DeliveryOutcome]:
        """Every delivery of CAMPAIGN, in row order (for `campaign report`)."""
        if not self.outcomes_ready():
            return
        query = self._sql(f"{_SELECT_DELIVERY} WHERE campaign = ? ORDER BY row, key")
        for row in self._streamed(query, (campaign,)):
            yield _delivery_from(row)

    def _streamed(self, query: str, params: Sequence[Any]) -> Iterator[Sequence[Any]]:
        """QUERY's rows as they are read, never all at once (sqlite3's cursor streams;
        PostgreSQL overrides this with a server-side cursor)."""
        yield from self.db.execute(query, params)

    def funnel(self, campaign: str) -> Funnel:
        """How far CAMPAIGN's accepted messages went (see `Funnel`)."""
        funnel = Funnel()
        if not self.outcomes_ready():
            return funnel
        for outcome, code, title, category, n in self.db.execute(
            self._sql(
                "SELECT outcome, failure_code, failure_title, pricing_category, count(*)"
                " FROM deliveries WHERE campaign = ? AND status = 'sent'"
                " GROUP BY outcome, failure_code, failure_title, pricing_category"
            ),
            (campaign,),
        ).fetchall():
            _count_into(funnel, outcome, code, title, category, n)
        funnel.failed_by_code.sort(key=lambda entry: (-entry[2], entry[0] or 0))
        return funnel

    def failures_by_code(self, campaign: str, run_id: str, codes: Sequence[int]) -> tuple[int, int]:
        """(failed with one of CODES, accepted) among the deliveries RUN_ID made of CAMPAIGN:
        what the quality circuit breaker weighs."""
        if not codes or not self.outcomes_ready():
            return 0, 0
        where, params = self._among("failure_code", list(codes))
        found = self.db.execute(
            self._sql(
                f"SELECT SUM(CASE WHEN {where} THEN 1 ELSE 0 END), count(*) FROM deliveries"
                " WHERE campaign = ? AND run_id = ? AND message_id IS NOT NULL"
            ),
            [*params, campaign, run_id],
        ).fetchone()
        return int(found[0] or 0), int(found[1] or 0)

    def unmatched_count(self) -> int:
        """How many statuses wait for their delivery (`campaign status` shows it)."""
        if not self.outcomes_ready():
            return 0
        (n,) = self.db.execute("SELECT count(*) FROM unmatched_statuses").fetchone()
        return int(n)


_SELECT_DELIVERY = (
    "SELECT key, row, phone, status, message_id, error, updated_at, permanent, "
    + _STORED
    + " FROM deliveries"
)


def _delivery_from(row: Sequence[Any]) -> DeliveryOutcome:
    key, number, phone, status, message_id, error, updated_at, permanent, *stored = row
    return DeliveryOutcome(
        key,
        number,
        phone,
        status,
        message_id,
        error,
        str(updated_at),
        Outcome(*stored),
        bool(permanent),
    )


def _update_from(row: Sequence[Any]) -> StatusUpdate:
    wamid, status, at, recipient, code, title, details, category = row
    return StatusUpdate(wamid, status, at, recipient, code, title, details, category)


def _count_into(
    funnel: Funnel,
    outcome: str | None,
    code: int | None,
    title: str | None,
    category: str | None,
    n: int,
) -> None:
    funnel.accepted += n
    if category:
        funnel.pricing[category] = funnel.pricing.get(category, 0) + n
    if outcome in ("sent", "delivered", "read"):
        funnel.sent += n
    if outcome in ("delivered", "read"):
        funnel.delivered += n
    if outcome == "read":
        funnel.read += n
    if outcome == "failed":
        funnel.failed += n
        for i, (known, known_title, count) in enumerate(funnel.failed_by_code):
            if known == code:
                funnel.failed_by_code[i] = (known, known_title or title, count + n)
                break
        else:
            funnel.failed_by_code.append((code, title, n))
