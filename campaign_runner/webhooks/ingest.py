"""`campaign ingest FILE|-`: webhook payloads from a file, for setups where the webhook
endpoint belongs to another system (a gateway or proxy that logs what Meta posted).

The file is JSON Lines: one payload a line, as `campaign webhook` would have received it;
blank lines are skipped. A line may also be a logged request that carries the payload
under "body" (an object, or the raw body as a JSON string, as AWS API Gateway events and
many request loggers store it) when the line has no "entry" of its own. Signatures are not
checked: the file is the operator's, not the internet's.

It is streamed (a line at a time, never the whole file) and written INGEST_BATCH_LINES
lines per ledger transaction. A line that cannot be read, or a payload part
`parse_payload` reports, is a `FILE:LINE: what` problem and the rest is still ingested.
Ingesting the same file again changes nothing (statuses merge, replies and preferences
are keyed). Reconcile runs at the end, so statuses kept aside are matched if their
delivery is now recorded.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

from campaign_runner.errors import CampaignError, CampaignInvalid, ExitCode, Problem
from campaign_runner.ledger import Applied, Journal, LedgerError, open_ledger, state_from
from campaign_runner.webhooks.payload import Events, parse_payload
from campaign_runner.webhooks.tally import Counts

INGEST_BATCH_LINES = 1_000  # payload lines per ledger transaction
MAX_LINE_BYTES = 1 << 20  # 1 MiB, as the receiver's body cap: a longer line is skipped
STDIN = "-"
_STDIN_NAME = "<stdin>"
_READ_CHUNK = 1 << 16


class IngestStopped(CampaignError):
    """The ledger failed mid-file: what came before is in it, the rest is not (exit 3)."""

    exit_code = ExitCode.ABORTED


@dataclass
class Ingested:
    """What `ingest` read and did; `exit_code` 0 when every line was read, else 1."""

    source: str
    lines: int = 0  # non-blank lines read
    skipped: int = 0  # lines not read at all (not JSON, too long)
    counts: Counts = field(default_factory=Counts)

    @property
    def exit_code(self) -> ExitCode:
        """0 when nothing was skipped, 1 when some lines or parts were."""
        return ExitCode.SOME_FAILED if self.skipped or self.counts.problems else ExitCode.OK

    def summary(self) -> str:
        """What was ingested, in the receiver's words (`key=value`)."""
        fields = " ".join(f"{key}={value}" for key, value in self.counts.fields().items())
        return f"ingested {self.lines} line(s) from {self.source}: {fields}"

    def skipped_note(self) -> str | None:
        """What was skipped (each listed as FILE:LINE above), or None."""
        if not self.exit_code:
            return None
        return (
            f"skipped {self.skipped} line(s) and {self.counts.problems} payload part(s) that "
            "could not be read (listed above); everything else was ingested"
        )


def ingest(
    source: str, state: str | os.PathLike[str] | None, problem: Callable[[str], None]
) -> Ingested:
    """Ingest the payloads of SOURCE (a file, or `-` for stdin) into the ledger at STATE,
    telling PROBLEM each `FILE:LINE: what` as it is found. `CampaignInvalid` (exit 2) when
    the file or the ledger cannot be opened, `IngestStopped` (exit 3) when the ledger fails
    on the way."""
    name = _STDIN_NAME if source == STDIN else source
    with ExitStack() as stack:
        handle = sys.stdin.buffer if source == STDIN else stack.enter_context(_opened(source))
        journal = open_ledger(state_from(state), readonly=False)
        assert journal is not None  # not read-only: created when missing
        stack.callback(journal.close)
        result = Ingested(name)
        _ingest_lines(handle, journal, result, problem)
        _write(result, None, journal.reconcile, later=True)
    return result


def _opened(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")  # closed by the caller's ExitStack
    except OSError as error:
        raise CampaignInvalid(
            Problem(path, None, None, f"cannot be read ({error.strerror}); nothing was ingested")
        ) from None


def _ingest_lines(
    handle: IO[bytes], journal: Journal, result: Ingested, problem: Callable[[str], None]
) -> None:
    batch = _Batch()
    for number, line in _numbered_lines(handle, result.source):
        if line is not None and not line.strip():
            continue
        result.lines += 1
        doc, why = _document(line)
        if why is not None:
            result.skipped += 1
            problem(_at(result, number, why))
            continue
        events = parse_payload(doc)
        result.counts.read(events)
        for found in events.problems:
            problem(_at(result, number, found))
        batch.add(number, events)
        if batch.lines >= INGEST_BATCH_LINES:
            _write(result, batch.first, partial(journal.apply_events, batch.events))
            batch = _Batch()
    if batch.lines:
        _write(result, batch.first, partial(journal.apply_events, batch.events))


@dataclass
class _Batch:
    """The payloads of the lines written in the next transaction."""

    events: Events = field(default_factory=Events)
    lines: int = 0
    first: int = 0  # its first line's number

    def add(self, number: int, events: Events) -> None:
        self.first = self.first or number
        self.lines += 1
        self.events.extend(events)


def _numbered_lines(handle: IO[bytes], name: str) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) for each line of HANDLE; None for a line over MAX_LINE_BYTES
    (skipped to its end without keeping it)."""
    number = 0
    try:
        while True:
            line = handle.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := handle.readline(_READ_CHUNK)) and not rest.endswith(b"\n"):
                    pass
                yield number, None
                continue
            yield number, line
    except OSError as error:
        raise IngestStopped(
            Problem(
                name,
                number + 1,
                None,
                f"cannot be read ({error.strerror}); the lines before were ingested",
            )
        ) from None


def _document(line: bytes | None) -> tuple[Any, str | None]:
    """The payload on LINE (None: a line too long to keep), or why there is none."""
    if line is None:
        return None, f"longer than {MAX_LINE_BYTES} bytes: skipped"
    try:
        doc = json.loads(line)
    except UnicodeDecodeError:
        return None, "not UTF-8 text: skipped"
    except (ValueError, RecursionError):
        return None, (
            "not a JSON document: skipped (ingest reads one payload a line, JSON Lines; "
            "compact a pretty-printed file first, e.g. `jq -c . FILE`)"
        )
    if isinstance(doc, dict) and "entry" not in doc and "body" in doc:
        return _unwrapped(doc["body"])
    return doc, None


def _unwrapped(body: Any) -> tuple[Any, str | None]:
    """The payload a logged request carries under "body": an object, or its raw text."""
    if isinstance(body, dict):
        return body, None
    if isinstance(body, str):
        try:
            return json.loads(body), None
        except (ValueError, RecursionError):
            return None, "body: not a JSON document (is it base64? decode it first): skipped"
    return None, "body: expected the payload (an object or its JSON text): skipped"


def _write(
    result: Ingested, first: int | None, apply: Callable[[], Applied], later: bool = False
) -> None:
    """Run APPLY (one transaction: the batch from line FIRST, or LATER, the reconcile)
    and count what it did; a failure stops the ingest."""
    try:
        applied = apply()
    except LedgerError as error:
        kept = f"the lines before line {first}" if first else "every line"
        raise IngestStopped(
            Problem(
                result.source,
                first,
                None,
                f"{error}: stopped; {kept} are in the ledger. Ingest the file again once "
                "the ledger is fixed (what is in it already changes nothing)",
            )
        ) from None
    (result.counts.later if later else result.counts.applied).add(applied)
    result.counts.commits += not later


def _at(result: Ingested, number: int, what: str) -> str:
    return str(Problem(result.source, number, None, what))
