"""The tables of the rules across campaigns (migration 2), read and written with the same SQL
on both ledgers: the suppression list, ops' settings (the daily budget) and the claims a
planned run makes on the people it is about to message.

`RulesTables` is mixed into `SQLiteJournal` and `PostgresJournal`; each supplies its
connection (`db`), its placeholder (`_P`), `_transaction()`, `_schema_version()` and
`planning_lock()`. What the rules mean is decided in `campaign_runner.rules`.

A rehearsal (a campaign `NAME.sandbox`) reached nobody: its deliveries never count toward a
cap or the budget, and what its sandbox answered is never learned.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from campaign_runner.ledger.base import now

REHEARSAL_SUFFIX = ".sandbox"  # run.RunOptions.journal_name: a rehearsal's own journal
_REHEARSALS = f"%{REHEARSAL_SUFFIX}"  # a LIKE pattern, passed as a parameter
RULES_VERSION = 4  # the migration that created these tables


@dataclass(frozen=True)
class Suppression:
    """A person never to message, in any campaign: why, and who added them when."""

    phone: str
    kind: str  # manual | opted-out | not-on-whatsapp (rules.SuppressionKind)
    reason: str
    campaign: str | None  # the campaign whose run learned it; None: added by ops
    added_at: str


class RulesTables:
    """The rules' queries, shared by both ledgers (see the module's docstring)."""

    db: Any
    campaign: str
    _P = "?"  # the driver's placeholder: `?` (sqlite3) or `%s` (psycopg)

    # ---- what the host ledger supplies ---------------------------------------------------

    def _transaction(self) -> Any:  # pragma: no cover - supplied by the host
        raise NotImplementedError

    def _schema_version(self) -> int:  # pragma: no cover - supplied by the host
        raise NotImplementedError

    # ---- helpers -------------------------------------------------------------------------

    def _sql(self, text: str) -> str:
        return text if self._P == "?" else text.replace("?", self._P)

    def _rows(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if not self.rules_ready():
            return []
        return [tuple(row) for row in self.db.execute(self._sql(text), params).fetchall()]

    def _among(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`COLUMN IN (...)` for VALUES, as each driver takes a list."""
        if self._P == "?":
            return f"{column} IN ({','.join('?' * len(values))})", list(values)
        return f"{column} = ANY(?)", [list(values)]

    def _write(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self._transaction() as cursor:
            (cursor or self.db).executemany(self._sql(text), rows)

    def rules_ready(self) -> bool:
        """True when the ledger has the rules' tables (a ledger read before a sending run
        upgraded it may not: then it holds no rules yet)."""
        ready = self.__dict__.get("_rules_ready")
        if ready is None:
            ready = self.__dict__["_rules_ready"] = self._schema_version() >= RULES_VERSION
        return bool(ready)

    # ---- the suppression list ------------------------------------------------------------

    def suppressions_of(self, phones: Sequence[str]) -> dict[str, Suppression]:
        """The suppressions of those of PHONES on the list."""
        if not phones:
            return {}
        where, params = self._among("phone", phones)
        found = self._rows(
            f"SELECT phone, kind, reason, campaign, added_at FROM suppressions WHERE {where}",
            params,
        )
        return {row[0]: Suppression(*row) for row in found}

    def suppression_list(self) -> list[Suppression]:
        """Every suppression, oldest first."""
        found = self._rows(
            "SELECT phone, kind, reason, campaign, added_at FROM suppressions"
            " ORDER BY added_at, phone"
        )
        return [Suppression(*row) for row in found]

    def suppress(self, entries: Iterable[tuple[str, str, str, str | None]]) -> None:
        """Add each (phone, kind, reason, campaign); a phone already listed keeps its entry."""
        stamp = now()
        self._write(
            "INSERT INTO suppressions (phone, kind, reason, campaign, added_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (phone) DO NOTHING",
            [(*entry, stamp) for entry in entries],
        )

    def unsuppress(self, phones: Sequence[str]) -> None:
        """Take PHONES off the list (whatever the kind of their entry)."""
        self._write("DELETE FROM suppressions WHERE phone = ?", [(phone,) for phone in phones])

    def suppress_later(self, phone: str, kind: str, reason: str) -> None:
        """Add PHONE with the next commit of pending outcomes (no transaction of its own, so
        the send loop pays nothing); a rehearsal's sandbox teaches nothing."""
        if self.campaign.endswith(REHEARSAL_SUFFIX):
            return
        learned = self.__dict__.setdefault("_learned", [])
        learned.append((phone, kind, reason, self.campaign, now()))

    def _write_learned(self, cursor: Any) -> None:
        """Write the suppressions learned since the last commit (inside the caller's
        transaction: the one that writes the pending outcomes)."""
        learned = self.__dict__.get("_learned")
        if learned:  # forgotten once committed (CampaignQueries._kept_until_committed)
            (cursor or self.db).executemany(
                self._sql(
                    "INSERT INTO suppressions (phone, kind, reason, campaign, added_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (phone) DO NOTHING"
                ),
                learned,
            )

    # ---- ops' settings -------------------------------------------------------------------

    def setting(self, name: str) -> str | None:
        """Ops' setting NAME, or None when it is not set."""
        found = self._rows("SELECT value FROM settings WHERE name = ?", (name,))
        return found[0][0] if found else None

    def set_setting(self, name: str, value: str | None) -> None:
        """Set ops' setting NAME to VALUE (None: remove it)."""
        with self._transaction() as cursor:
            target = cursor or self.db
            target.execute(self._sql("DELETE FROM settings WHERE name = ?"), (name,))
            if value is not None:
                target.execute(
                    self._sql("INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)"),
                    (name, value, now()),
                )

    # ---- who was reached, and who is about to be -------------------------------------------

    def recent(self, phones: Sequence[str], since: str) -> list[tuple[str, str, int]]:
        """(phone, when, ours) of every message to PHONES since SINCE in any campaign (sent,
        or `sending`: in flight or unknown), and of every claim on them; OURS is 1 for a
        claim of this same campaign (another worker's plan of the same rows)."""
        if not phones:
            return []
        deliveries, first = self._among("phone", phones)
        claims, second = self._among("phone", phones)
        return self._rows(
            f"SELECT phone, updated_at, 0 FROM deliveries WHERE {deliveries}"
            " AND status IN ('sent', 'sending') AND updated_at >= ? AND campaign NOT LIKE ?"
            " UNION ALL SELECT phone, claimed_at, CASE WHEN campaign = ? THEN 1 ELSE 0 END"
            f" FROM claims WHERE {claims} AND claimed_at >= ?",
            [*first, since, _REHEARSALS, self.campaign, *second, since],
        )

    def reached_since(self, since: str) -> tuple[int, str | None]:
        """How many people were messaged (or claimed) since SINCE, across campaigns, and
        the earliest moment one of them was last messaged (when the first leaves a window)."""
        found = self._rows(
            "SELECT count(*), min(last_at) FROM (SELECT phone, max(at) AS last_at FROM ("
            " SELECT phone, updated_at AS at FROM deliveries WHERE status IN ('sent', 'sending')"
            " AND updated_at >= ? AND campaign NOT LIKE ? AND phone IS NOT NULL"
            " UNION ALL SELECT phone, claimed_at AS at FROM claims WHERE claimed_at >= ?"
            ") AS reached GROUP BY phone) AS people",
            (since, _REHEARSALS, since),
        )
        return (found[0][0], found[0][1]) if found else (0, None)

    def claim(self, phones: Sequence[str]) -> None:
        """Note that this run is about to message each of PHONES (one claim per message):
        other runs' plans count them until this ledger is closed."""
        claimant = self.__dict__.setdefault("_claimant", uuid.uuid4().hex)
        stamp = now()
        self._write(
            "INSERT INTO claims (claimant, phone, campaign, claimed_at) VALUES (?, ?, ?, ?)",
            [(claimant, phone, self.campaign, stamp) for phone in phones],
        )

    def release_claims(self) -> None:
        """Drop this run's claims: its deliveries now say whom it reached."""
        claimant = self.__dict__.pop("_claimant", None)
        if claimant is not None:
            self._write("DELETE FROM claims WHERE claimant = ?", [(claimant,)])
