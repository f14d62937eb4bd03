"""The report's header and the recipients' cells in it."""

from __future__ import annotations

import pytest

from campaign_runner.report import COLUMNS, recipient_cell, report_header


@pytest.mark.parametrize(
    ("columns", "added"),
    [
        ([], []),
        (["name", "cart"], ["name", "cart"]),
        (["phone", "name"], ["phone (recipients)", "name"]),
        (
            ["status", "status (recipients)"],
            ["status (recipients) (recipients)", "status (recipients)"],
        ),
    ],
)
def test_recipient_columns_follow_the_outcome_with_distinct_names(columns, added):
    header = report_header(columns)
    assert header == [*COLUMNS, *added]
    assert len(set(header)) == len(header)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("Ana", "Ana"),
        ("=1+1", "'=1+1"),
        ("Jo\x1b[2Jão", "Jo\\x1b[2Jão"),
        ("Bia\u202e", "Bia\\u202e"),
        ("linha 1\nlinha 2", "linha 1\nlinha 2"),  # a newline in a cell is data a CSV can hold
    ],
)
def test_a_recipient_value_is_neutralised_and_escaped(value, cell):
    assert recipient_cell(value) == cell
