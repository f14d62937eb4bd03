"""Journals of earlier versions (one SQLite file per campaign, `STATE/NAME.sqlite`) brought
into the state folder's ledger on first use: every delivery and run, nothing lost.

Each journal is imported in one transaction and noted in `imported_journals`, then renamed
`NAME.sqlite.imported` (kept, never deleted): a second process, or a rename that failed,
never imports it twice.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing, suppress
from pathlib import Path

from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.ledger.base import now
from campaign_runner.ledger.sqlite import LEDGER_FILE, create_ledger, ledger_path

IMPORTED_SUFFIX = ".imported"


def import_journals(folder: Path) -> list[str]:
    """Import every per-campaign journal in FOLDER into its ledger; what was done, in words."""
    if not folder.is_dir():
        return []
    journals = sorted(p for p in folder.glob("*.sqlite") if p.name != LEDGER_FILE)
    if not journals:
        return []
    ledger = ledger_path(folder)
    notes = []
    try:
        if not ledger.exists():
            create_ledger(ledger)
        with closing(sqlite3.connect(ledger, isolation_level=None, uri=True)) as db:
            db.execute("PRAGMA busy_timeout=10000")
            for journal in journals:
                note = _import(db, journal)
                if note:
                    notes.append(note)
    except sqlite3.Error as error:
        raise CampaignInvalid(
            Problem(
                str(ledger),
                None,
                None,
                f"cannot import the journals of an earlier version into the ledger ({error}): "
                "check that the state folder is writable; nothing was sent",
            )
        ) from None
    return notes


def _import(db: sqlite3.Connection, journal: Path) -> str | None:
    """Import one journal; a note in words, or None when it was imported before."""
    campaign = journal.name.removesuffix(".sqlite")
    with closing(sqlite3.connect(journal, isolation_level=None)) as old:
        tables = {n for (n,) in old.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"deliveries", "runs"} <= tables:
            return f"{journal} is not a campaign journal: left as it is"
        old.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # what a killed run left in its WAL
    db.execute("ATTACH DATABASE ? AS old", (f"{journal.resolve().as_uri()}?mode=ro",))
    try:
        db.execute("BEGIN IMMEDIATE")
        done = db.execute(
            "SELECT 1 FROM imported_journals WHERE path=?", (str(journal.resolve()),)
        ).fetchone()
        if done:
            db.execute("COMMIT")
            return None
        deliveries = db.execute(
            "INSERT INTO deliveries (campaign, key, row, phone, status, permanent, message_id,"
            " http_status, error, attempts, run_id, updated_at)"
            " SELECT ?, key, row, phone, status, permanent, message_id,"
            " http_status, error, attempts, run_id, updated_at FROM old.deliveries WHERE true"
            " ON CONFLICT(campaign, key) DO NOTHING",
            (campaign,),
        ).rowcount
        runs = db.execute(
            "INSERT OR IGNORE INTO runs (run_id, campaign, started_at, ended_at, exit_code,"
            " reason, counts) SELECT run_id, ?, started_at, ended_at, exit_code, reason,"
            " counts FROM old.runs",
            (campaign,),
        ).rowcount
        db.execute(
            "INSERT INTO imported_journals VALUES (?, ?, ?, ?, ?)",
            (str(journal.resolve()), campaign, deliveries, runs, now()),
        )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.execute("DETACH DATABASE old")
    for part in (journal, *(journal.with_name(journal.name + s) for s in ("-wal", "-shm"))):
        with suppress(FileNotFoundError):
            os.replace(part, part.with_name(part.name + IMPORTED_SUFFIX))
    return (
        f"imported the journal {journal} into the ledger ({deliveries} deliveries, {runs} "
        f"runs); the old file is kept as {journal.name}{IMPORTED_SUFFIX}"
    )
