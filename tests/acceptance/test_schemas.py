"""The JSON Schemas: every gateway example validates, and each mistake reads as a fix."""

from __future__ import annotations

import copy
import re

import pytest
from jsonschema import Draft202012Validator
from seed_bodies import PHONE, SEED_BODIES

from campaign_runner import schemas
from campaign_runner.schemas import MESSAGE_TYPES, SchemaIssue, check

SCHEMA_NAMES = schemas.schema_names()


def seed(kind: str) -> dict:
    """A fresh copy of the gateway's example body for KIND, safe to modify."""
    return copy.deepcopy(SEED_BODIES[kind])


def body(kind: str, content) -> dict:
    """A complete body of type KIND whose content object is CONTENT."""
    return {"messaging_product": "whatsapp", "to": PHONE, "type": kind, kind: content}


def reply(id_: str, title: str) -> dict:
    return {"type": "reply", "reply": {"id": id_, "title": title}}


def buttons(*items, **extra) -> dict:
    action = {"buttons": list(items)}
    return body(
        "interactive", {"type": "button", "body": {"text": "Pick one"}, "action": action, **extra}
    )


def list_message(sections: list, **extra) -> dict:
    action = {"button": "Menu", "sections": sections}
    return body(
        "interactive", {"type": "list", "body": {"text": "Choose"}, "action": action, **extra}
    )


def rows(n: int, start: int = 0) -> list:
    return [{"id": f"r{i}", "title": f"Row {i}"} for i in range(start, start + n)]


def with_index(index) -> dict:
    b = seed("template")
    b["template"]["components"][1]["index"] = index
    return b


def test_there_is_one_seed_body_per_message_type():
    assert sorted(SEED_BODIES) == sorted(MESSAGE_TYPES)


@pytest.mark.parametrize("kind", MESSAGE_TYPES)
def test_the_gateway_example_validates_as_written(kind):
    assert check(seed(kind), "message") == []


@pytest.mark.parametrize("kind", MESSAGE_TYPES)
def test_the_example_content_validates_against_its_own_type_schema(kind):
    assert check(seed(kind)[kind], kind) == []


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_each_schema_is_valid_draft_2020_12(name):
    schema = schemas.load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"{name}.schema.json"
    assert schema["title"] and schema["description"]


def _walk(node, path=()):
    """Every sub-schema (dict) in NODE, with where it is."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, i))


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_pattern_has_a_hint_and_is_portable(name):
    # The description is what the user reads when a pattern fails; the patterns must also
    # work with Rust's regex crate, which has no lookaround or backreferences.
    for path, node in _walk(schemas.load_schema(name)):
        if isinstance(node.get("pattern"), str) and path[-1:] != ("properties",):
            assert node.get("description"), (
                f"{name} {'/'.join(map(str, path))}: pattern without hint"
            )
            assert not re.search(r"\(\?|\\[1-9]", node["pattern"]), node["pattern"]
            re.compile(node["pattern"])


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_closed_object_lists_its_keys(name):
    # A misspelt key gets a did-you-mean only from `properties` next to additionalProperties.
    for path, node in _walk(schemas.load_schema(name)):
        if node.get("additionalProperties") is False:
            assert node.get("properties"), f"{name} {'/'.join(map(str, path))}"


BAD_BODIES = {
    "text body 4097 characters": (
        body("text", {"body": "x" * 4097}),
        "text.body: is 4097 characters long; at most 4096 allowed",
    ),
    "empty text body": (body("text", {"body": ""}), "text.body: must not be empty"),
    "misspelt body in text": (
        body("text", {"bdy": "hi"}),
        "text.bdy: unknown key 'bdy' (did you mean 'body'?)",
    ),
    "caption on audio": (
        body("audio", {"id": "1", "caption": "hear this"}),
        "audio.caption: unknown key 'caption'; allowed here: id, link, voice",
    ),
    "caption on sticker": (
        body("sticker", {"id": "1", "caption": "hi"}),
        "sticker.caption: unknown key 'caption'; allowed here: id, link",
    ),
    "filename on image": (
        body("image", {"id": "1", "filename": "a.png"}),
        "image.filename: unknown key 'filename'; allowed here: caption, id, link",
    ),
    "misspelt caption on image": (
        body("image", {"id": "1", "captoin": "hi"}),
        "image.captoin: unknown key 'captoin' (did you mean 'caption'?)",
    ),
    "media with both id and link": (
        body("video", {"id": "1", "link": "https://example.com/a.mp4"}),
        "video: needs exactly one of 'id' or 'link'",
    ),
    "media with neither id nor link": (
        body("document", {"filename": "a.pdf"}),
        "document: needs exactly one of 'id' or 'link'",
    ),
    "media link not http": (
        body("image", {"link": "ftp://example.com/a.png"}),
        'image.link: "ftp://example.com/a.png" is not valid: '
        "an http:// or https:// URL of the media file",
    ),
    "4 reply buttons": (
        buttons(*(reply(f"b{i}", f"B{i}") for i in range(4))),
        "interactive.action.buttons: has 4 items; at most 3 allowed",
    ),
    "reply title 21 characters": (
        buttons(reply("a", "x" * 21)),
        "interactive.action.buttons[0].reply.title (the 1st button's title): "
        "is 21 characters long; at most 20 allowed",
    ),
    "duplicate reply ids": (
        buttons(reply("same", "One"), reply("same", "Two")),
        "interactive.action.buttons[1].reply.id (the 2nd button's id): "
        'reply button id "same" is used twice; it must be unique',
    ),
    "button body over 1024": (
        body(
            "interactive",
            {
                "type": "button",
                "body": {"text": "x" * 1025},
                "action": {"buttons": [reply("a", "A")]},
            },
        ),
        "interactive.body.text: is 1025 characters long; at most 1024 allowed",
    ),
    "11 list rows across 2 sections": (
        list_message([{"title": "A", "rows": rows(6)}, {"title": "B", "rows": rows(5, 6)}]),
        "interactive.action.sections: has 11 rows across all sections; at most 10 allowed",
    ),
    "list row title 25 characters": (
        list_message([{"title": "A", "rows": [{"id": "r", "title": "x" * 25}]}]),
        "interactive.action.sections[0].rows[0].title (the 1st section's 1st row's title): "
        "is 25 characters long; at most 24 allowed",
    ),
    "list with an image header": (
        list_message(
            [{"title": "A", "rows": rows(1)}], header={"type": "image", "image": {"id": "1"}}
        ),
        "interactive.header.type: \"image\" is not allowed; expected 'text'",
    ),
    "reply buttons in a single-product message": (
        body(
            "interactive",
            {
                "type": "product",
                "action": {
                    "catalog_id": "c",
                    "product_retailer_id": "p",
                    "buttons": [reply("a", "A")],
                },
            },
        ),
        "interactive.action.buttons: is not used by this kind of message (leave it out)",
    ),
    "a header on a single-product message": (
        body(
            "interactive",
            {
                "type": "product",
                "header": {"type": "text", "text": "New"},
                "action": {"catalog_id": "c", "product_retailer_id": "p"},
            },
        ),
        "interactive: must not have 'header' here",
    ),
    "a product list without its header": (
        body(
            "interactive",
            {
                "type": "product_list",
                "body": {"text": "Deals"},
                "action": {
                    "catalog_id": "c",
                    "sections": [{"product_items": [{"product_retailer_id": "p"}]}],
                },
            },
        ),
        "interactive: required key 'header' is missing",
    ),
    "a caption on an interactive image header": (
        buttons(reply("a", "A"), header={"type": "image", "image": {"id": "1", "caption": "x"}}),
        "interactive.header.image.caption: unknown key 'caption'; allowed here: id, link",
    ),
    "flow without flow_id or flow_name": (
        body(
            "interactive",
            {
                "type": "flow",
                "body": {"text": "Open"},
                "action": {
                    "name": "flow",
                    "parameters": {"flow_message_version": "3", "flow_cta": "Go"},
                },
            },
        ),
        "interactive.action.parameters: needs exactly one of 'flow_id' or 'flow_name'",
    ),
    "template button index 10": (
        with_index("10"),
        "template.components[1].index (the 2nd component's index): "
        '"10" is not valid: a button position from 0 to 9 '
        '(a number or a one-digit string such as "0")',
    ),
    "template language policy random": (
        dict(
            seed("template"),
            template=dict(
                seed("template")["template"], language={"code": "pt_BR", "policy": "random"}
            ),
        ),
        "template.language.policy: \"random\" is not allowed; expected 'deterministic'",
    ),
    "template language code in the wrong case": (
        dict(
            seed("template"),
            template=dict(seed("template")["template"], language={"code": "pt-br"}),
        ),
        'template.language.code: "pt-br" is not valid: a language code such as pt_BR, en or en_US',
    ),
    "template currency parameter without currency": (
        dict(
            seed("template"),
            template=dict(
                seed("template")["template"],
                components=[
                    {"type": "BODY", "parameters": [{"type": "currency", "text": "R$ 10"}]}
                ],
            ),
        ),
        "template.components[0].parameters[0] (the 1st component's 1st parameter): "
        "required key 'currency' is missing",
    ),
    "location latitude abc": (
        body("location", {"latitude": "abc", "longitude": "0.1"}),
        'location.latitude: "abc" is not valid: a decimal number such as -23.5505',
    ),
    "location latitude 91.5": (
        body("location", {"latitude": "91.5", "longitude": "0.1"}),
        "location.latitude: 91.5 is out of range -90..90",
    ),
    "contacts with only formatted_name": (
        body("contacts", [{"name": {"formatted_name": "Ana"}}]),
        "contacts[0].name (the 1st contact's name): "
        "needs at least one of 'first_name', 'last_name', 'middle_name', "
        "'prefix' or 'suffix'",
    ),
    "258 contacts": (
        body("contacts", [{"name": {"formatted_name": "A", "first_name": "A"}}] * 258),
        "contacts: has 258 items; at most 257 allowed",
    ),
    "unknown type reaction": (
        dict(body("text", {"body": "hi"}), type="reaction"),
        "type: \"reaction\" is not allowed; expected 'text', 'template', 'interactive', "
        "'contacts', 'location', 'image', 'audio', 'video', 'document' or 'sticker'",
    ),
    "to not E.164": (
        dict(body("text", {"body": "hi"}), to="11948489500"),
        'to: "11948489500" is not valid: a phone number in E.164 form: + then country code '
        "and number, e.g. +5511948489500",
    ),
    "type text but an image object": (
        dict(body("text", {"body": "hi"}), image={"id": "1"}),
        "image: 'image' given but type is 'text'",
    ),
    "no to": (
        {k: v for k, v in body("text", {"body": "hi"}).items() if k != "to"},
        "(top level): required key 'to' is missing",
    ),
}


@pytest.mark.parametrize("document, expected", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_body_says_what_to_fix(document, expected):
    assert expected in [str(issue) for issue in check(document, "message")]


def test_issue_paths_are_structured():
    # The CLI maps paths to YAML lines, so they must be keys and indexes, not a dotted string.
    (issue,) = check(list_message([{"title": "A", "rows": [{"id": "r", "title": "x" * 25}]}]))
    assert issue == SchemaIssue(
        ("interactive", "action", "sections", 0, "rows", 0, "title"),
        "is 25 characters long; at most 24 allowed",
    )


@pytest.mark.parametrize("index", [0, 9, "0", "9"])
def test_a_button_index_may_be_a_number_or_a_digit_string(index):
    assert check(with_index(index)) == []


@pytest.mark.parametrize("latitude", [-23.5505, 0, "-23.5505", "90"])
def test_a_coordinate_may_be_a_number_or_a_numeric_string(latitude):
    assert check(body("location", {"latitude": latitude, "longitude": -46.63})) == []


@pytest.mark.parametrize("component_type", ["body", "BODY"])
def test_template_component_type_ignores_case(component_type):
    b = seed("template")
    b["template"]["components"][0]["type"] = component_type
    assert check(b) == []


VALID_INTERACTIVE = {
    "list": {
        "type": "list",
        "header": {"type": "text", "text": "Menu"},
        "body": {"text": "x" * 4096},
        "footer": {"text": "Thanks"},
        "action": {
            "button": "See options",
            "sections": [{"title": "A", "rows": rows(5)}, {"title": "B", "rows": rows(5, 5)}],
        },
    },
    "cta_url": {
        "type": "cta_url",
        "header": {"type": "image", "image": {"link": "https://example.com/a.png"}},
        "body": {"text": "Your cart is waiting"},
        "action": {
            "name": "cta_url",
            "parameters": {"display_text": "Open cart", "url": "https://example.com/c"},
        },
    },
    "product": {
        "type": "product",
        "body": {"text": "Look"},
        "action": {"catalog_id": "1", "product_retailer_id": "sku"},
    },
    "product_list": {
        "type": "product_list",
        "header": {"type": "text", "text": "Deals"},
        "body": {"text": "Today only"},
        "action": {
            "catalog_id": "1",
            "sections": [
                {"title": "A", "product_items": [{"product_retailer_id": "a"}]},
                {"title": "B", "product_items": [{"product_retailer_id": "b"}]},
            ],
        },
    },
    "catalog_message": {
        "type": "catalog_message",
        "body": {"text": "Our catalog"},
        "action": {"name": "catalog_message", "parameters": {"thumbnail_product_retailer_id": "a"}},
    },
    "location_request_message": {
        "type": "location_request_message",
        "body": {"text": "Where are you?"},
        "action": {"name": "send_location"},
    },
    "flow": {
        "type": "flow",
        "header": {"type": "text", "text": "Survey"},
        "body": {"text": "Two minutes"},
        "action": {
            "name": "flow",
            "parameters": {
                "flow_message_version": "3",
                "flow_name": "survey",
                "flow_cta": "Start",
                "flow_action": "navigate",
                "flow_action_payload": {"screen": "WELCOME"},
            },
        },
    },
}


@pytest.mark.parametrize("kind", VALID_INTERACTIVE)
def test_each_interactive_kind_validates(kind):
    assert check(body("interactive", VALID_INTERACTIVE[kind])) == []


def minimal_campaign(**changes) -> dict:
    campaign = {
        "name": "cart-reminder_1",
        "recipients": {"file": "recipients.csv"},
        "message": {"type": "text", "text": {"body": "Hi [name]"}},
    }
    campaign.update(changes)
    return campaign


@pytest.mark.parametrize("kind", MESSAGE_TYPES)
def test_a_campaign_message_needs_no_to(kind):
    message = {k: v for k, v in seed(kind).items() if k != "to"}
    assert check(minimal_campaign(message=message), "campaign") == []


def test_a_minimal_campaign_is_valid():
    assert list(schemas.validator("campaign").iter_errors(minimal_campaign())) == []


def test_a_full_campaign_is_valid():
    campaign = minimal_campaign(
        description="Remind carts left behind",
        recipients={
            "file": "carts.csv",
            "phone_column": "telefone",
            "default_region": "BR",
            "encoding": "cp1252",
            "delimiter": ";",
            "key": "[phone]-[cart_id]",
            "exclude": ["optout.csv", "staff.csv"],
        },
        gateway={
            "url": "https://api-cerberus-kong.socialminer.tech/api/Messages",
            "apikey_env": "CERBERUS_APIKEY",
            "version": "4.0",
            "headers": {"user": "${GATEWAY_USER}"},
            "params": {"phone_id": "123"},
            "timeout_s": 12.5,
        },
        send={
            "rate": "1000/min",
            "concurrency": 4,
            "retries": 2,
            "retry_timeouts": True,
            "max_consecutive_failures": 5,
            "window": "09:00-20:00 America/Sao_Paulo",
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "not_after": "2026-12-01T20:00:00-03:00",
        },
    )
    assert check(campaign, "campaign") == []


BAD_CAMPAIGNS = {
    "misspelt recipients": (
        {"recipents": {"file": "r.csv"}},
        "recipents: unknown key 'recipents' (did you mean 'recipients'?)",
    ),
    "name not a slug": (
        {"name": "Cart Reminder"},
        'name: "Cart Reminder" is not valid: a slug: lower-case letters, digits, - and _',
    ),
    "a literal apikey": (
        {"gateway": {"apikey": "secret"}},
        "gateway.apikey: unknown key 'apikey' (did you mean 'apikey_env'?)",
    ),
    "rate without unit": (
        {"send": {"rate": "20"}},
        'send.rate: "20" is not valid: a rate such as 20/s, 1000/min or 5000/h',
    ),
    "window with seconds": (
        {"send": {"window": "09:00:00-20:00"}},
        'send.window: "09:00:00-20:00" is not valid: a daily window such as 09:00-20:00, '
        "optionally followed by a time zone: 09:00-20:00 America/Sao_Paulo",
    ),
    "a day twice": (
        {"send": {"days": ["mon", "mon"]}},
        "send.days: ['mon', 'mon'] has non-unique elements (The weekdays on which to send.)",
    ),
    "an empty text body in the campaign's message": (
        {"message": {"type": "text", "text": {"body": ""}}},
        "message.text.body: must not be empty",
    ),
}


@pytest.mark.parametrize("changes, expected", BAD_CAMPAIGNS.values(), ids=BAD_CAMPAIGNS.keys())
def test_a_bad_campaign_says_what_to_fix(changes, expected):
    assert expected in [str(issue) for issue in check(minimal_campaign(**changes), "campaign")]


def test_campaign_defaults_are_shown_for_editors():
    props = schemas.load_schema("campaign")["properties"]
    assert props["recipients"]["properties"]["phone_column"]["default"] == "phone"
    assert props["gateway"]["properties"]["apikey_env"]["default"] == "CERBERUS_APIKEY"
    assert props["send"]["properties"]["retries"]["default"] == 3
    for path, node in _walk(schemas.load_schema("campaign")):
        if path[-1:] == ("properties",):
            for key, sub in node.items():
                assert sub.get("description"), (
                    f"{'/'.join(map(str, path))}/{key} has no description"
                )


@pytest.mark.parametrize("document, expected", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_the_fast_and_the_explaining_validators_agree(document, expected):
    """The Rust validator says yes quickly; it must never say yes where Python says no."""
    python_says = schemas.validator("message").is_valid(document)
    assert schemas.fast_validator("message").is_valid(document) == python_says
    assert not schemas.is_valid(document)


@pytest.mark.parametrize("kind", MESSAGE_TYPES)
def test_the_fast_validator_accepts_every_seed_body(kind):
    assert schemas.fast_validator("message").is_valid(SEED_BODIES[kind])
    assert schemas.is_valid(SEED_BODIES[kind])
