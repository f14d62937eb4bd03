"""Schema issues are data: each says which keyword failed, where, and what to tell a person."""

from __future__ import annotations

import pytest

from campaign_runner.campaign import check_document
from campaign_runner.schemas import UNKNOWN_KEY, check
from campaign_runner.yaml_source import parse_yaml


def text(**changes) -> dict:
    """A good text message body, with CHANGES applied (a None value removes the key)."""
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+5511948489500",
        "type": "text",
        "text": {"body": "hi"},
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


BAD_BODIES = {
    "a misspelt key (and no second issue for the key it meant)": (
        text(txt={"body": "x"}, text=None),
        [
            (UNKNOWN_KEY, ("txt",), "unknown key 'txt' (did you mean 'text'?)"),
            ("missingTypeObject", ("text",), "type is 'text' but there is no 'text' object"),
        ],
    ),
    "a missing key": (
        text(text={}),
        [("required", ("text",), "required key 'body' is missing")],
    ),
    "a misspelt value": (
        text(messaging_product="whatsap"),
        [
            (
                "const",
                ("messaging_product",),
                "\"whatsap\" is not allowed; expected 'whatsapp' (did you mean 'whatsapp'?)",
            )
        ],
    ),
    "too long": (
        text(text={"body": "x" * 4097}),
        [("maxLength", ("text", "body"), "is 4097 characters long; at most 4096 allowed")],
    ),
    "empty": (
        text(text={"body": ""}),
        [("minLength", ("text", "body"), "must not be empty")],
    ),
    "of the wrong type": (
        text(text={"body": 5}),
        [("type", ("text", "body"), "5 is not of type string")],
    ),
    "not matching its pattern": (
        text(to="11948"),
        [
            (
                "pattern",
                ("to",),
                '"11948" is not valid: a phone number in E.164 form: + then country code '
                "and number, e.g. +5511948489500",
            )
        ],
    ),
    "neither of two keys": (
        text(type="image", text=None, image={}),
        [("oneOf", ("image",), "needs exactly one of 'id' or 'link'")],
    ),
    "another type's object": (
        text(image={"id": "1"}),
        [("otherTypeObject", ("image",), "'image' given but type is 'text'")],
    ),
    "a coordinate out of range": (
        text(type="location", text=None, location={"latitude": 100, "longitude": 0}),
        [("coordinateRange", ("location", "latitude"), "100 is out of range -90..90")],
    ),
}


@pytest.mark.parametrize("document, expected", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_each_issue_carries_its_keyword_path_and_message(document, expected):
    assert [(i.keyword, i.path, i.message) for i in check(document, "message")] == expected


def test_an_unknown_key_names_the_key_and_the_word_it_is_close_to():
    (issue,) = check(text(zzz=1), "message")
    assert (issue.key, issue.suggestion) == ("zzz", None)
    (issue, _) = check(text(txt={"body": "x"}, text=None), "message")
    assert (issue.key, issue.suggestion) == ("txt", "text")


HEAD = "name: promo\nrecipients:\n  file: people.csv\n"  # lines 1 to 3
CAMPAIGNS = {
    "an unknown key is shown where the key is written": (
        "message:\n  type: text\n  text:\n    body: hi\n    bdy: '[name]'\n",
        [(8, 5, "message.text: unknown key 'bdy' (did you mean 'body'?)")],
    ),
    "a templated value's length is checked per recipient": (
        "message:\n  type: text\n  text:\n    body: '" + "[name]" * 700 + "'\n",
        [],
    ),
    "a plain value's length is checked now": (
        "message:\n  type: text\n  text:\n    body: '" + "x" * 4097 + "'\n",
        [(7, 11, "message.text.body: is 4097 characters long; at most 4096 allowed")],
    ),
}


@pytest.mark.parametrize("yaml_text, expected", CAMPAIGNS.values(), ids=CAMPAIGNS.keys())
def test_a_campaign_issue_is_located_by_its_keyword_not_its_text(yaml_text, expected):
    document, source = parse_yaml(HEAD + yaml_text, "promo.yaml")
    problems = check_document(document, source)
    assert [(p.line, p.col, p.message) for p in problems] == expected
