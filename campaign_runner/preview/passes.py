"""Build a preview in passes over the CSV: the summary over every row, then the rows shown.

Two passes keep memory flat for any CSV: the summary is counted on first use (one pass over
every row, keeping no body), and the shown rows stream from a second pass. A reporter that
needs no summary (jsonl) makes a single pass.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from campaign_runner.approved_text import ApprovedText
from campaign_runner.campaign import Campaign
from campaign_runner.errors import ExitCode
from campaign_runner.follow_up import nobody_selected
from campaign_runner.holds import hold_warning
from campaign_runner.ledger import open_journal, state_from
from campaign_runner.outputs import check_outputs
from campaign_runner.plan import DeliveryPolicy, decided
from campaign_runner.prepare import (
    PreparedRow,
    RecipientSource,
    input_files,
    open_source,
    prepare,
)
from campaign_runner.preview import html
from campaign_runner.preview.model import ShownRow, Summary, summarise
from campaign_runner.preview.selection import describe_selection, pick, sample_evenly
from campaign_runner.run import RunOptions, report_folder
from campaign_runner.status import Status


def build(
    campaign: Campaign,
    recipients: str | os.PathLike | None = None,
    limit: int | None = None,
    sample: int | None = None,
) -> Preview:
    """Open CAMPAIGN's recipients (RECIPIENTS instead when given) for a preview; read no row yet.

    LIMIT: only the first N rows; SAMPLE: only N rows, spread evenly (over the first LIMIT).
    """
    return Preview(campaign, recipients, limit, sample, open_source(campaign, recipients))


class Preview:
    """One preview: its warnings at once, its summary counted on first use, its rows streamed."""

    def __init__(
        self,
        campaign: Campaign,
        recipients: str | os.PathLike | None,
        limit: int | None,
        sample: int | None,
        source: RecipientSource,
    ):
        self.campaign = campaign
        self.limit = limit
        self.sample = sample
        held = hold_warning(campaign, None)  # the ledger a run would use (no --state here)
        self.warnings = [*source.warnings, *([held] if held else []), *self._nobody_selected()]
        self.recipients_file = str(source.table.path)
        self._recipients = recipients
        self._unread: RecipientSource | None = source
        self._summary: Summary | None = None
        self._shown_counts: Counter[Status] = Counter()

    @property
    def summary(self) -> Summary:
        """Counts per status over every row, and the rows that would not be sent (one pass)."""
        if self._summary is None:
            self._summary = self._count_every_row()
        return self._summary

    def _count_every_row(self) -> Summary:
        rows = (shown_row(item) for item in self._prepared())
        summary = summarise(rows, self.campaign.name, self.recipients_file)
        summary.warnings = self.warnings
        summary.shown = describe_selection(summary.total, self.limit, self.sample)
        return summary

    def rows(self) -> Iterator[ShownRow]:
        """The rows the preview shows, streamed: all, the first LIMIT, or a SAMPLE of them."""
        for item in self._shown_items():
            row = shown_row(item, self.campaign.preview)
            self._shown_counts[row.status] += 1
            yield row

    @property
    def exit_code(self) -> int:
        """1 when a recipient would be invalid: among every row once counted, else those shown."""
        counts = self._summary.counts if self._summary is not None else self._shown_counts
        return ExitCode.SOME_FAILED if counts[Status.INVALID] else ExitCode.OK

    def _shown_items(self) -> Iterator[PreparedRow]:
        if not self.sample:
            return self._prepared(self.limit)
        # A sample shows messages that would be sent: the summary lists the failing rows.
        positions = sample_evenly(self._ready_count(), self.sample)
        ready = (item for item in self._prepared(self.limit) if item.status is Status.READY)
        return pick(ready, positions)

    def _ready_count(self) -> int:
        """How many of the rows considered (the first LIMIT, or all) would be sent."""
        if self._summary is not None and self.limit is None:
            return self._summary.counts[Status.READY]
        return sum(1 for item in self._prepared(self.limit) if item.status is Status.READY)

    def _prepared(self, limit: int | None = None) -> Iterator[PreparedRow]:
        """The rows as a run would plan them: prepared, then decided against the campaign's
        journal, read-only (already sent, in doubt...; a follow-up's choice even when there
        is no ledger yet: then nobody is selected)."""
        rows = prepare(self._take_source(), limit)
        journal = open_journal(state_from(), self.campaign.name, readonly=True)
        if journal is None and self.campaign.follow_up is None:
            yield from rows
            return
        policy = DeliveryPolicy(
            frequency_cap=self.campaign.send.frequency_cap, follow_up=self.campaign.follow_up
        )
        try:
            yield from decided(rows, journal, self.campaign.name, policy, warn=self._warn)
        finally:
            if journal is not None:
                journal.close()

    def _nobody_selected(self) -> list[str]:
        """A follow-up's warning that no row can be selected, said before any row is read."""
        if self.campaign.follow_up is None:
            return []
        journal = open_journal(state_from(), self.campaign.name, readonly=True)
        try:
            nobody = nobody_selected(journal, self.campaign.follow_up)
        finally:
            if journal is not None:
                journal.close()
        return [nobody.warning] if nobody else []

    def _warn(self, warning: str) -> None:
        if warning not in self.warnings:  # each pass over the rows says it again
            self.warnings.append(warning)

    def page_path(self, output: Path | None = None) -> Path:
        """Where the HTML page goes, as an absolute path: OUTPUT, else NAME-preview.html in
        the folder a run of this campaign writes its reports to (`run.report_folder`), never
        the folder the command was started in; checked to be none of the files it reads."""
        folder = report_folder(self.campaign, RunOptions())
        path = Path(os.path.abspath(output or folder / html.page_name(self.campaign.name)))
        check_outputs({"the preview page": path}, input_files(self.campaign, self._recipients))
        return path

    def _take_source(self) -> RecipientSource:
        """The source opened by `build` the first time, a fresh one after (a pass consumes it)."""
        source, self._unread = self._unread, None
        return source or open_source(self.campaign, self._recipients)


def shown_row(item: PreparedRow, approved: ApprovedText | None = None) -> ShownRow:
    """The preview's view of one prepared row (its template's sentences filled from APPROVED)."""
    error = item.error or ""
    return ShownRow(item.row, item.phone, item.status, error, item.body, item.values, approved)
