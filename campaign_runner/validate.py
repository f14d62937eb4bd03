"""Validating a campaign without sending: the file, its recipients and every rendered message.

`validate_campaign` loads the campaign and opens its recipients as a run would;
`Validation.unsendable()` then prepares every row, counting them and yielding each row that
would not be sent as it streams past (memory stays flat), `findings()` says each of them
where the fix is, and `verdict()` sums it up.

Where the fix is: a row refused for its data is `recipients.csv:ROW: reason`. When more than
`GROUP_ROWS_OVER` rows break the same schema rule at the same place of the message (a body
too long for all 3,000 recipients), the fix is in the template: one line at the campaign
file's line says how many rows, the range of lengths and the first rows, instead of 3,000
lines. Rows are grouped by the rule's keyword and path, never by the text of the message;
`run`'s report still gives each row its own reason.
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
from campaign_runner.schemas import SchemaIssue
from campaign_runner.status import Status, format_counts

# More rows than this breaking one rule at one place read as one message at the campaign line.
GROUP_ROWS_OVER = 5
# Rows a grouped message names; the run's report lists every one.
ROWS_NAMED = 5

_Rule = tuple[tuple[str, tuple[str | int, ...]], ...]  # (keyword, path) of each broken rule


@dataclass
class _RuleGroup:
    """Rows whose rendered bodies broke the same rules at the same places."""

    issues: tuple[SchemaIssue, ...]  # as the first such row broke them
    held: list[PreparedRow] = field(default_factory=list)  # shown one by one if few
    count: int = 0
    sizes: list[tuple[int, int] | None] = field(default_factory=list)  # per rule: lowest, highest

    def add(self, item: PreparedRow) -> None:
        """Count ITEM; keep it while the group is still small enough to list row by row."""
        self.count += 1
        if len(self.held) <= GROUP_ROWS_OVER:
            self.held.append(item)
        if not self.sizes:
            self.sizes = [None] * len(item.issues)
        for index, issue in enumerate(item.issues):
            if issue.size is not None:
                low, high = self.sizes[index] or (issue.size, issue.size)
                self.sizes[index] = (min(low, issue.size), max(high, issue.size))

    @property
    def grouped(self) -> bool:
        """True when there are too many rows to list one by one."""
        return self.count > GROUP_ROWS_OVER


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

    def findings(self) -> Iterator[str]:
        """A line for each row that would not be sent, or one per template rule many broke."""
        groups: dict[_Rule, _RuleGroup] = {}
        for item in self.unsendable():
            rule = _rule_of(item)
            if rule is None:
                yield self._row_line(item)
            else:
                groups.setdefault(rule, _RuleGroup(item.issues)).add(item)
        few = sorted(
            (item for group in groups.values() if not group.grouped for item in group.held),
            key=lambda item: item.seq,
        )
        yield from (self._row_line(item) for item in few)
        for group in groups.values():
            if group.grouped:
                yield from self._group_lines(group)

    def _row_line(self, item: PreparedRow) -> str:
        where = f"{self.recipients_file}:{item.row}"
        if item.status is Status.INVALID:
            return f"{where}: {item.error}"
        return f"{where}: note: {item.status}: {item.error}"

    def _group_lines(self, group: _RuleGroup) -> Iterator[str]:
        assert self.source is not None
        rows = ", ".join(str(item.row) for item in group.held[:ROWS_NAMED])
        more = ", ..." if group.count > ROWS_NAMED else ""
        where = (
            f" (rows {rows}{more} of {self.recipients_file}; the run's report lists each row); "
            "fix it here, or in those rows"
        )
        for index, issue in enumerate(group.issues):
            said = _measured(issue, group.sizes[index], group.count)
            if said is None:
                first = group.held[0].row
                said = f"for {group.count:,} recipients: {issue.message} (first at row {first})"
            place = ("message", *issue.path)
            text = f"message.{issue.place}: {said}{where}"
            yield str(self.source.campaign.source.problem(place, text))

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


def _rule_of(item: PreparedRow) -> _Rule | None:
    """The rules an invalid row's body broke, by keyword and place; None for a data refusal."""
    if item.status is not Status.INVALID or not item.issues:
        return None
    return tuple((issue.keyword, issue.path) for issue in item.issues)


_MEASURES = {"maxLength": ("too long", "characters"), "maxItems": ("too many items", "items")}


def _measured(issue: SchemaIssue, sizes: tuple[int, int] | None, count: int) -> str | None:
    """`too long for 3,000 recipients: 1,025 to 1,350 characters; at most 1,024 allowed`."""
    measure = _MEASURES.get(issue.keyword)
    if measure is None or sizes is None or issue.limit is None:
        return None
    (what, unit), (low, high) = measure, sizes
    span = f"{low:,}" if low == high else f"{low:,} to {high:,}"
    return f"{what} for {count:,} recipients: {span} {unit}; at most {issue.limit:,} allowed"
