"""Which characters a cell may hold, and how a value from data is shown in a message."""

from __future__ import annotations

import pytest

from campaign_runner.cells import quoted, unsafe_reason


@pytest.mark.parametrize(
    "value, allow_bidi, reason",
    [
        ("Ana Maria", False, None),
        ("linha 1\nlinha 2\ttab", False, None),
        ("linha 1\r\nlinha 2", False, None),
        ("👨\u200d👩\u200d👧 família", False, None),  # zero-width joiners build emoji
        ("Ana\rBia", False, "holds a control character U+000D (CARRIAGE RETURN)"),
        ("Ana\r", False, "holds a control character U+000D (CARRIAGE RETURN)"),
        ("a\x00b", False, "holds a control character U+0000 (NUL)"),
        ("a\x1b[2J", False, "holds a control character U+001B (ESCAPE)"),
        ("a\x7f", False, "holds a control character U+007F (DELETE)"),
        ("a\x85", False, "holds a control character U+0085 (control character)"),
        ("a\u202eb", False, "holds a bidi control character U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("a\u202eb", True, "holds a bidi control character U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("a\u202db", True, "holds a bidi control character U+202D (LEFT-TO-RIGHT OVERRIDE)"),
        ("a\u2066b\u2069", False, "holds a bidi control character U+2066 (LEFT-TO-RIGHT ISOLATE)"),
        ("a\u2066b\u2069", True, None),
        ("\u200fשלום", False, "holds a bidi control character U+200F (RIGHT-TO-LEFT MARK)"),
        ("\u200fשלום", True, None),
        ("a\u202bb\u202c", True, None),
        ("a\x1b", True, "holds a control character U+001B (ESCAPE)"),
    ],
)
def test_unsafe_reason(value, allow_bidi, reason):
    assert unsafe_reason(value, allow_bidi) == reason


@pytest.mark.parametrize(
    "value, shown",
    [
        ("+5511948489500", "'+5511948489500'"),
        ("a\x1b[31mb", "'a\\x1b[31mb'"),
        ("a\u202eb", "'a\\u202eb'"),
        ("a\nb\tc\r", "'a\\nb\\tc\\r'"),
        ("x" * 70, "'" + "x" * 60 + "…'"),
        ("José", "'José'"),
    ],
)
def test_quoted_escapes_and_cuts(value, shown):
    assert quoted(value) == shown
