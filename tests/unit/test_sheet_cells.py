"""What a workbook cell becomes: the text a person typed, never a float's notation."""

from __future__ import annotations

import datetime as dt

import pytest

from campaign_runner.spreadsheet import cell_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (5511948489500, "5511948489500"),
        (5511948489500.0, "5511948489500"),  # a phone stored as a float
        (5.5119484895e12, "5511948489500"),  # the same, as Excel writes it in scientific form
        (1e20, "100000000000000000000"),
        (1002.0, "1002"),
        (0.1, "0.1"),
        (19.9, "19.9"),
        (1e-7, "0.0000001"),
        (-3.5, "-3.5"),
        (True, "TRUE"),
        (dt.datetime(2026, 11, 28), "2026-11-28"),
        (dt.datetime(2026, 11, 28, 18, 19, 25), "2026-11-28T18:19:25"),
        (dt.date(2026, 12, 1), "2026-12-01"),
        (dt.time(9, 30), "09:30:00"),
        ("José", "José"),
    ],
)
def test_a_cell_reads_as_the_text_typed(value, text):
    assert cell_text(value) == text
