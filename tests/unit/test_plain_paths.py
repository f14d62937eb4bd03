"""Schema paths in plain words: list indexes as 1-based ordinals people say."""

from __future__ import annotations

import pytest

from campaign_runner.schemas import SchemaIssue, ordinal, plain_words

PATHS = {
    "a button's title": (
        ("interactive", "action", "buttons", 2, "reply", "title"),
        "the 3rd button's title",
    ),
    "a row in a section": (
        ("interactive", "action", "sections", 0, "rows", 1, "title"),
        "the 1st section's 2nd row's title",
    ),
    "a whole item": (
        ("template", "components", 0, "parameters", 11),
        "the 1st component's 12th parameter",
    ),
    "-es plural": (("contacts", 0, "addresses", 1, "zip"), "the 1st contact's 2nd address's zip"),
    "-ies plural": (("entries", 0, "id"), "the 1st entry's id"),
    "underscores": (
        ("product_items", 3, "product_retailer_id"),
        "the 4th product item's product retailer id",
    ),
    "no list": (("text", "body"), None),
}


@pytest.mark.parametrize("path, said", PATHS.values(), ids=PATHS.keys())
def test_a_path_through_lists_reads_as_ordinals(path, said):
    assert plain_words(path) == said


@pytest.mark.parametrize(
    "number, said",
    [
        (1, "1st"),
        (2, "2nd"),
        (3, "3rd"),
        (4, "4th"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (21, "21st"),
        (22, "22nd"),
        (23, "23rd"),
        (101, "101st"),
        (111, "111th"),
    ],
)
def test_ordinals(number, said):
    assert ordinal(number) == said


def test_an_issue_says_both_the_path_and_the_plain_words():
    issue = SchemaIssue(("interactive", "action", "buttons", 2, "reply", "title"), "too long")
    assert (
        str(issue) == "interactive.action.buttons[2].reply.title (the 3rd button's title): too long"
    )
    assert str(SchemaIssue(("text", "body"), "too long")) == "text.body: too long"
