"""What the sandbox accepted: kept in memory for `GET /messages`, appended to a record file.

Records are read from other threads (the tests, `Sandbox.messages()`), so a lock guards them.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def digits(text: str) -> str:
    """Only the digits of TEXT: "+55 (11) 9..." -> "55119..."."""
    return "".join(ch for ch in text if "0" <= ch <= "9")


def recipient_key(to: str) -> str:
    """Who a `to` names, however it is written: its digits (or itself when it has none)."""
    return digits(to) or to


class Records:
    """The accepted messages in arrival order, and the JSON Lines file they are appended to."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._records: list[dict] = []
        self._file: IO[str] | None = None

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Append every record to the file (if one was given) while inside."""
        if self.path is None:
            yield
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as self._file:
            try:
                yield
            finally:
                self._file = None

    def add(self, record: dict) -> None:
        """Keep RECORD, and append it to the file."""
        with self._lock:
            self._records.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()  # another process may be tailing the file

    def all(self) -> list[dict]:
        """Every record so far (a new list; the records themselves are shared)."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        """Forget every record (the file keeps them)."""
        with self._lock:
            self._records.clear()

    def select(self, to: str | None, limit: int | None) -> list[dict]:
        """The records for recipient TO (all if None), the LIMIT most recent, in arrival order."""
        records = self.all()
        if to:
            wanted = recipient_key(to)
            records = [r for r in records if (digits(str(r.get("to"))) or r.get("to")) == wanted]
        if limit is not None:
            records = records[-limit:] if limit else []
        return records
