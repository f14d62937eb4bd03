"""Meta's webhook payloads read into events: what each part becomes, and every bad part
named by its JSON path while the rest is still read. Tables, no network."""

from __future__ import annotations

import pytest

from campaign_runner.webhooks.payload import MAX_ID_CHARS, parse_payload
from campaign_runner.webhooks.signature import challenge_answer, sign, signature_valid

T0 = 1_764_000_000  # 2025-11-24T16:00:00Z
WHEN = "2025-11-24T16:00:00.000+00:00"


def payload(**value) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    }


def status(**fields) -> dict:
    entry = {
        "id": "wamid.A",
        "status": "delivered",
        "timestamp": str(T0),
        "recipient_id": "5511987654321",
    }
    entry.update(fields)
    return {k: v for k, v in entry.items() if v is not None}


def test_a_failed_status_carries_its_code_title_details_pricing_and_callback():
    events = parse_payload(
        payload(
            statuses=[
                status(
                    status="failed",
                    errors=[
                        {
                            "code": 131049,
                            "title": "This message was not delivered to maintain healthy"
                            " ecosystem engagement.",
                            "error_data": {"details": "In order to maintain a healthy ecosystem"},
                        }
                    ],
                    pricing={"billable": True, "pricing_model": "PMP", "category": "marketing"},
                    conversation={"id": "c1", "origin": {"type": "marketing"}},
                    biz_opaque_callback_data="spring:row-7",
                )
            ]
        )
    )
    assert events.problems == []
    (update,) = events.statuses
    assert (update.message_id, update.status, update.at) == ("wamid.A", "failed", WHEN)
    assert update.recipient == "+5511987654321"
    assert update.code == 131049
    assert update.title.startswith("This message was not delivered")
    assert update.details == "In order to maintain a healthy ecosystem"
    assert (update.pricing_category, update.conversation_id) == ("marketing", "c1")
    assert update.callback_data == "spring:row-7"


def test_replies_and_preferences_are_read_beside_statuses():
    events = parse_payload(
        payload(
            messages=[
                {
                    "from": "5511987654321",
                    "id": "wamid.IN",
                    "timestamp": str(T0),
                    "type": "button",
                    "context": {"from": "15550783881", "id": "wamid.A"},
                }
            ],
            user_preferences=[
                {
                    "wa_id": "5511987654322",
                    "detail": "User requested to stop marketing messages",
                    "category": "marketing_messages",
                    "value": "stop",
                    "timestamp": T0,
                }
            ],
        )
    )
    assert events.problems == []
    (reply,) = events.replies
    assert (reply.phone, reply.kind, reply.context_id, reply.at) == (
        "+5511987654321",
        "button",
        "wamid.A",
        WHEN,
    )
    (preference,) = events.preferences
    assert (preference.phone, preference.value, preference.category) == (
        "+5511987654322",
        "stop",
        "marketing_messages",
    )


def test_a_status_the_runner_does_not_track_is_counted_not_an_error():
    events = parse_payload(payload(statuses=[status(status="deleted"), status(status="read")]))
    assert (events.ignored, [s.status for s in events.statuses], events.problems) == (
        1,
        ["read"],
        [],
    )


A = "entry[0].changes[0].value"


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ([], "$: expected a JSON object, got a list"),
        ({"object": "page"}, "entry: missing, or not a list (is this a WhatsApp webhook?)"),
        ({"entry": [{"id": "1"}]}, "entry[0].changes: missing, or not a list"),
        ({"entry": [{"changes": [{"value": None}]}]}, f"{A}: missing, or not an object"),
        (payload(statuses={"id": "x"}), f"{A}.statuses: expected a list, got an object"),
        (payload(statuses=["x"]), f"{A}.statuses[0]: expected an object, got a string"),
        (payload(statuses=[status(id=None)]), f"{A}.statuses[0].id: missing"),
        (
            payload(statuses=[status(id="")]),
            f"{A}.statuses[0].id: not a message id (1 to {MAX_ID_CHARS} characters)",
        ),
        (
            payload(statuses=[status(id="wamid " + "x")]),
            f"{A}.statuses[0].id: not a message id (1 to {MAX_ID_CHARS} characters)",
        ),
        (
            payload(statuses=[status(id="w" * (MAX_ID_CHARS + 1))]),
            f"{A}.statuses[0].id: not a message id (1 to {MAX_ID_CHARS} characters)",
        ),
        (payload(statuses=[status(id=7)]), f"{A}.statuses[0].id: expected a string, got int"),
        (
            payload(statuses=[status(status="failed", errors=[{"code": 1, "title": "a\x00b"}])]),
            f"{A}.statuses[0].errors[0].title: contains a NUL character",
        ),
        (payload(statuses=[status(status=None)]), f"{A}.statuses[0].status: missing"),
        (
            payload(statuses=[status(timestamp="yesterday")]),
            f"{A}.statuses[0].timestamp: expected Unix seconds, got 'yesterday'",
        ),
        (
            payload(statuses=[status(timestamp=None)]),
            f"{A}.statuses[0].timestamp: expected Unix seconds, got 'None'",
        ),
        (
            payload(statuses=[status(timestamp="99")]),
            f"{A}.statuses[0].timestamp: expected Unix seconds, got '99'",
        ),
        (
            payload(statuses=[status(timestamp=True)]),
            f"{A}.statuses[0].timestamp: expected Unix seconds, got 'True'",
        ),
        (
            payload(statuses=[status(recipient_id="=cmd|' /C calc'!A0")]),
            f"{A}.statuses[0].recipient_id: not a WhatsApp number: \"=cmd|' /C calc'!A0\"",
        ),
        (
            payload(statuses=[status(status="failed", errors=[{"code": "x"}])]),
            f"{A}.statuses[0].errors[0].code: expected Meta's error code (a number), got a string",
        ),
        (
            payload(statuses=[status(status="failed", errors=[{"code": True}])]),
            f"{A}.statuses[0].errors[0].code: expected Meta's error code (a number), got bool",
        ),
        (
            payload(statuses=[status(status="failed", errors="131026")]),
            f"{A}.statuses[0].errors: expected a list of objects",
        ),
        (
            payload(
                user_preferences=[{"wa_id": "5511987654321", "value": "maybe", "timestamp": T0}]
            ),
            f"{A}.user_preferences[0].value: expected stop or resume, got 'maybe'",
        ),
        (
            payload(messages=[{"id": "wamid.IN", "timestamp": str(T0), "type": "text"}]),
            f"{A}.messages[0].from: missing",
        ),
    ],
)
def test_each_bad_part_is_named_by_its_path_and_nothing_of_it_is_read(doc, problem):
    events = parse_payload(doc)
    assert events.problems == [problem]
    assert len(events) == 0


def test_a_bad_status_does_not_lose_the_good_ones_beside_it():
    events = parse_payload(
        payload(
            statuses=[status(id="wamid.1"), status(id=None), status(id="wamid.3", status="read")]
        )
    )
    assert [s.message_id for s in events.statuses] == ["wamid.1", "wamid.3"]
    assert events.problems == [f"{A}.statuses[1].id: missing"]


def test_a_failed_status_with_no_error_says_so():
    (update,) = parse_payload(payload(statuses=[status(status="failed")])).statuses
    assert (update.code, update.title) == (None, "failed with no error code")


def test_a_string_code_of_digits_is_a_code_and_long_titles_are_cut():
    (update,) = parse_payload(
        payload(
            statuses=[status(status="failed", errors=[{"code": "131026", "title": "t" * 5000}])]
        )
    ).statuses
    assert update.code == 131026
    assert len(update.title) == 512


BODY = b'{"entry": []}'


@pytest.mark.parametrize(
    ("header", "secret", "valid"),
    [
        (sign(BODY, "s3cret"), "s3cret", True),
        (sign(BODY, "s3cret").upper().replace("SHA256=", "sha256="), "s3cret", True),
        (sign(BODY, "other"), "s3cret", False),
        (sign(BODY + b" ", "s3cret"), "s3cret", False),
        (sign(BODY, "s3cret").removeprefix("sha256="), "s3cret", False),
        ("sha1=" + sign(BODY, "s3cret").removeprefix("sha256="), "s3cret", False),
        (None, "s3cret", False),
        ("", "s3cret", False),
        (sign(BODY, ""), "", False),
    ],
)
def test_only_the_hmac_of_the_raw_body_with_the_app_secret_is_accepted(header, secret, valid):
    assert signature_valid(BODY, header, secret) is valid


@pytest.mark.parametrize(
    ("params", "token", "answer"),
    [
        (
            {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "123"},
            "tok",
            "123",
        ),
        ({"hub.mode": "subscribe", "hub.verify_token": "bad", "hub.challenge": "123"}, "tok", None),
        ({"hub.mode": "subscribe", "hub.challenge": "123"}, "tok", None),
        ({"hub.mode": "unsubscribe", "hub.verify_token": "tok", "hub.challenge": "1"}, "tok", None),
        ({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, None, None),
        ({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, "", None),
    ],
)
def test_the_handshake_echoes_the_challenge_only_for_the_verify_token(params, token, answer):
    assert challenge_answer(params, token) == answer
