"""Report stage: one CSV line per recipient row, in row order, and a JSON summary beside it.

Cells that a spreadsheet would run as a formula are neutralised, so a hostile CSV value or
gateway answer cannot execute when the report is opened.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

COLUMNS = ("row", "phone", "status", "message_id", "http_status", "error")
STATUSES = (
    "sent",
    "dry-run",
    "already-sent",
    "already-failed",
    "duplicate",
    "excluded",
    "failed",
    "invalid",
    "unknown",
    "not-attempted",
)
# Statuses a run chose on purpose: they do not make the exit code non-zero.
INTENTIONAL = {"sent", "dry-run", "already-sent", "already-failed", "duplicate", "excluded"}
SUMMARY_VERSION = 1
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def neutralise(cell: object) -> str:
    """Prefix a quote to a cell a spreadsheet would treat as a formula (= + - @ tab CR)."""
    text = "" if cell is None else str(cell)
    if text and text[0] in "=+-@\t\r" and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


@dataclass
class Result:
    """What happened to one CSV row."""

    seq: int
    row: int
    phone: str
    status: str
    message_id: str | None = None
    http_status: int | None = None
    error: str | None = None


def default_report_path(name: str, started: datetime, folder: Path = Path("reports")) -> Path:
    """`reports/NAME-YYYYmmdd-HHMMSS.csv`."""
    return folder / f"{name}-{started:%Y%m%d-%H%M%S}.csv"


@dataclass
class ReportWriter:
    """Writes results in CSV row order, whatever order they finish in, and counts them."""

    path: Path | None
    counts: Counter = field(default_factory=Counter)
    _waiting: dict[int, Result] = field(default_factory=dict)
    _next: int = 0

    def __post_init__(self):
        self._handle = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
            self._csv = csv.writer(self._handle)
            self._csv.writerow(COLUMNS)

    def add(self, result: Result) -> None:
        """Take one result; write every result that is now next in row order."""
        self.counts[result.status] += 1
        self._waiting[result.seq] = result
        while self._next in self._waiting:
            ready = self._waiting.pop(self._next)
            self._next += 1
            if self._handle is not None:
                self._csv.writerow(
                    [
                        neutralise(v)
                        for v in (
                            ready.row,
                            ready.phone,
                            ready.status,
                            ready.message_id,
                            ready.http_status,
                            ready.error,
                        )
                    ]
                )

    def close(self) -> None:
        """Flush and close the CSV file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def summary_path(report: Path) -> Path:
    """The JSON summary's path: the report's, ending in `.json`."""
    return report.with_suffix(".json")


def write_summary(path: Path, summary: dict) -> None:
    """Write the machine-readable summary (for monitoring) next to the CSV report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": SUMMARY_VERSION, **summary}, indent=2) + "\n")


def format_counts(counts: Counter | dict) -> str:
    """`sent 98, invalid 2` in the order of STATUSES, then any others."""
    ordered = [s for s in STATUSES if counts.get(s)] + sorted(
        s for s in counts if s not in STATUSES and counts[s]
    )
    return ", ".join(f"{s} {counts[s]}" for s in ordered) or "no recipients"
