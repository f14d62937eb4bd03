"""Filling the approved text's slots: each slot once, in one pass, values never re-read."""

from __future__ import annotations

import pytest

from campaign_runner.approved_text import parse


@pytest.mark.parametrize(
    "text, values, filled",
    [
        ("Olá {{1}}!", {"{{1}}": "Ana"}, "Olá Ana!"),
        ("{{2}} e {{1}}, {{1}}", {"{{1}}": "a", "{{2}}": "b"}, "b e a, a"),
        ("Oi {{first_name}}", {"{{first_name}}": "Ana"}, "Oi Ana"),
        ("{{1}} {{2}}", {"{{1}}": "{{2}}", "{{2}}": "x"}, "{{2}} x"),  # a value is data
        ("Sem slots", {"{{1}}": "Ana"}, "Sem slots"),
        ("{{1}} e {{2}}", {"{{1}}": "Ana"}, "Ana e {{2}}"),  # unchecked: left as written
    ],
)
def test_each_slot_takes_its_value(text, values, filled):
    approved = parse({"template_text": text})
    assert approved is not None
    assert approved.parts["body"].fill(values) == filled


def test_no_preview_section_is_no_approved_text():
    assert parse(None) is None and parse({}) is None


def test_the_header_is_its_own_part():
    approved = parse({"template_text": "Olá {{1}}", "header_text": "Pedido {{1}}"})
    assert approved is not None
    assert [slot.key for slot in approved.parts["header"].slots] == ["1"]
    assert approved.parts["header"].fill({"{{1}}": "8812"}) == "Pedido 8812"
