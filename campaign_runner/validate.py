"""Validating a campaign without sending: the file, its recipients and every rendered message.

`validate_campaign` loads the campaign and opens its recipients as a run would;
`Validation.unsendable()` then prepares every row, counting them and yielding each row that
would not be sent as it streams past (memory stays flat), and `verdict()` sums it up.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from campaign_runner import campaign as campaign_mod
from campaign_runner.errors import CampaignError, ExitCode, Problem
from campaign_runner.prepare import PreparedRow, RecipientSource, open_source, prepare
from campaign_runner.status import Status, format_counts


@dataclass
class Validation:
    """What validating one campaign file found."""

    path: Path
    problems: list[Problem] = field(default_factory=list)  # the campaign itself is invalid
    source: RecipientSource | None = None
    counts: Counter[Status] = field(default_factory=Counter)

    @property
    def warnings(self) -> list[str]:
        """What reading the recipients noticed."""
        return self.source.warnings if self.source else []

    @property
    def recipients_file(self) -> str:
        """The recipients file's name as given."""
        return str(self.source.table.path) if self.source else ""

    def unsendable(self) -> Iterator[PreparedRow]:
        """Prepare every row, counting each status; yield the rows that would not be sent."""
        if self.source is None:
            return
        for item in prepare(self.source):
            self.counts[item.status] += 1
            if item.status is not Status.READY:
                yield item

    @property
    def exit_code(self) -> ExitCode:
        """As `run` would: 2 for a broken campaign, 1 when some recipient is invalid, else 0."""
        if self.problems:
            return ExitCode.INVALID
        return ExitCode.SOME_FAILED if self.counts[Status.INVALID] else ExitCode.OK

    def verdict(self) -> str:
        """The closing line: `FILE: OK, 3 message(s) ready` or how many are invalid."""
        ready = self.counts[Status.READY]
        others: dict[Status, int] = {s: n for s, n in self.counts.items() if s is not Status.READY}
        detail = f" ({format_counts(others)})" if others else ""
        if self.counts[Status.INVALID]:
            invalid = self.counts[Status.INVALID]
            return f"{self.path}: {invalid} invalid recipient(s); {ready} ready{detail}"
        return f"{self.path}: OK, {ready} message(s) ready{detail}"


def validate_campaign(path: Path, recipients: str | os.PathLike[str] | None = None) -> Validation:
    """Load the campaign at PATH and open its recipients; problems are kept, not raised."""
    result = Validation(path)
    try:
        campaign = campaign_mod.load(path)
        result.source = open_source(campaign, recipients)
    except CampaignError as error:
        result.problems = error.problems
    return result
