"""The report writer: row order whatever the finishing order, counts, neutralised cells."""

from __future__ import annotations

import csv

import pytest

from campaign_runner.report import COLUMNS, ReportWriter, RowResult, neutralise
from campaign_runner.status import Status


def result(seq: int, status: Status = Status.SENT, **fields) -> RowResult:
    return RowResult(seq, seq + 2, f"+55119484895{seq:02d}", status, **fields)


@pytest.mark.parametrize(
    ("finishing_order", "written_after_each"),
    [
        ([0, 1, 2], [[0], [0, 1], [0, 1, 2]]),
        ([2, 1, 0], [[], [], [0, 1, 2]]),
        ([1, 0, 2], [[], [0, 1], [0, 1, 2]]),
        ([0, 2, 1], [[0], [0], [0, 1, 2]]),
    ],
)
def test_lines_are_written_in_row_order_as_soon_as_they_can_be(
    tmp_path, finishing_order, written_after_each
):
    path = tmp_path / "report.csv"
    with ReportWriter(path) as writer:
        for seq, expected in zip(finishing_order, written_after_each, strict=True):
            writer.add(result(seq))
            writer._handle.flush()
            rows = list(csv.reader(path.open(encoding="utf-8")))
            assert rows[0] == list(COLUMNS)
            assert [int(row[0]) - 2 for row in rows[1:]] == expected


def test_counts_per_status_without_a_file():
    writer = ReportWriter(None)
    for seq, status in enumerate([Status.SENT, Status.INVALID, Status.SENT, Status.DUPLICATE]):
        writer.add(result(seq, status))
    assert writer.counts == {Status.SENT: 2, Status.INVALID: 1, Status.DUPLICATE: 1}


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+5511948489500", "+5511948489500"),  # a plain number stays a number
        ("-12.5", "-12.5"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("Ana", "Ana"),
        (None, ""),
        (200, "200"),
    ],
)
def test_cells_a_spreadsheet_would_run_get_a_quote(cell, written):
    assert neutralise(cell) == written


def test_every_cell_of_a_line_is_neutralised(tmp_path):
    path = tmp_path / "report.csv"
    with ReportWriter(path) as writer:
        writer.add(result(0, Status.FAILED, http_status=400, error="=cmd|' /C calc'!A0"))
    row = list(csv.DictReader(path.open(encoding="utf-8")))[0]
    assert row["error"] == "'=cmd|' /C calc'!A0" and row["status"] == "failed"
    assert row["http_status"] == "400" and row["message_id"] == ""
