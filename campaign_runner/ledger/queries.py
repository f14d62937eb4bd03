"""One campaign's queries that read the same on both ledgers, written once.

`CampaignQueries` is the base of `SQLiteJournal` and `PostgresJournal`: what the plan asks
of a key, the outcome noted for the next commit, a run's start and the last run. Each
ledger supplies its connection, `_transaction()`, `_P` (through `RulesTables`) and `exists()`;
what differs (marking `sending`, committing outcomes, counting per state) stays in each.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from campaign_runner.ledger.base import Identity, LedgerError, Previous, now
from campaign_runner.ledger.outcomes import OutcomeTables

_LAST_RUN = ("run_id", "started_at", "ended_at", "exit_code", "reason", "counts", "fingerprint")


class CampaignQueries(OutcomeTables):
    """The queries both ledgers share (see the module's docstring)."""

    _pending: list[tuple[Any, ...]]

    def exists(self) -> bool:
        """True when the ledger's tables are there (a PostgreSQL database may have none yet)."""
        return True

    def is_empty(self) -> bool:
        """True when no delivery of this campaign was ever recorded."""
        if not self.exists():
            return True
        found = self.db.execute(
            self._sql("SELECT 1 FROM deliveries WHERE campaign=? LIMIT 1"), (self.campaign,)
        ).fetchone()
        return found is None

    def lookup(self, key: str) -> Previous | None:
        """The ledger's record of KEY, or None for a key never tried."""
        found = self.db.execute(
            self._sql(
                "SELECT status, permanent, message_id, http_status, error FROM deliveries"
                " WHERE campaign=? AND key=?"
            ),
            (self.campaign, key),
        ).fetchone()
        return Previous(found[0], bool(found[1]), *found[2:]) if found else None

    def flush(self) -> None:  # pragma: no cover - supplied by the host
        raise NotImplementedError

    def flush_if_possible(self) -> None:
        """`flush`, when a journal closes: outcomes are left pending only by a commit that
        failed, and the run said so then (it stopped for it); this last try must not
        turn the same failure into a crash."""
        with suppress(LedgerError):
            self.flush()

    def _anything_to_commit(self) -> bool:
        """True when outcomes or suppressions wait for a commit."""
        return bool(self._pending or self.__dict__.get("_learned"))

    @contextmanager
    def _kept_until_committed(self) -> Iterator[None]:
        """The outcomes and suppressions noted so far are forgotten when the block (the
        transaction that writes them) ends well; if it fails they stay, and the next
        commit, or `close`, writes them: a key must not stay `sending` (unknown) while the
        report says it was sent."""
        pending = len(self._pending)
        learned = len(self.__dict__.get("_learned", ()))
        yield
        del self._pending[:pending]
        if learned:
            del self.__dict__["_learned"][:learned]

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
    ) -> None:
        """Note an outcome (CODE: Meta's error code of a failure); it is committed with the
        next `mark_sending` or `flush`. A failure's code is kept as the delivery's
        `failure_code` unless a status webhook already reported one."""
        failure_code = code if status == "failed" else None
        self._pending.append(
            (status, int(permanent), message_id, http_status, error, now(), failure_code)
            + (self.campaign, key)
        )

    def start_run(self, run_id: str, started_at: str, identity: Identity | None = None) -> None:
        """Note that a run began, on which host, from which files (for `campaign status`)."""
        identity = identity or Identity()
        with self._transaction() as cursor:
            (cursor or self.db).execute(
                self._sql(
                    "INSERT INTO runs (run_id, campaign, started_at, host, pid, campaign_file,"
                    " fingerprint, recipients_file) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    run_id,
                    self.campaign,
                    started_at,
                    socket.gethostname(),
                    os.getpid(),
                    identity.campaign_file,
                    identity.fingerprint,
                    identity.recipients_file,
                ),
            )

    def last_run(self) -> dict[str, Any] | None:
        """The most recent run's record, or None."""
        if not self.exists():
            return None
        found = self.db.execute(
            self._sql(
                "SELECT run_id, started_at, ended_at, exit_code, reason, counts, fingerprint"
                " FROM runs WHERE campaign=? ORDER BY started_at DESC LIMIT 1"
            ),
            (self.campaign,),
        ).fetchone()
        if not found:
            return None
        run = dict(zip(_LAST_RUN, found, strict=True))
        run["counts"] = json.loads(run["counts"]) if run["counts"] else None
        return run
