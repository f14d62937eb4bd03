"""The jsonl reporter: the exact request body of each shown row, one JSON object per line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from campaign_runner.preview.model import ShownRow

Line = tuple[str, bool]  # the text, and whether it goes to stderr (a row that would not be sent)


def lines(rows: Iterable[ShownRow], recipients_file: str) -> Iterator[Line]:
    """Each sendable row's body as compact JSON; each other row as `FILE:ROW: status: error`."""
    for row in rows:
        if row.body is None:
            yield f"{recipients_file}:{row.row}: {row.status}: {row.error}", True
        else:
            yield json.dumps(row.body, ensure_ascii=False, separators=(",", ":")), False
