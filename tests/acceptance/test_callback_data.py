"""`send.callback_data: true`: each message carries its delivery key in Meta's top-level
`biz_opaque_callback_data`, which status webhooks echo back; off by default, so bodies stay
exactly as the gateway documents them. A key too long for Meta's 512 characters makes its
row invalid (never cut), and a message that sets the field itself is refused."""

from __future__ import annotations

import json

import pytest
from helpers import cli, env_for, read_report, write_campaign

ANA, BIA = "+5511948489500", "+5521987654321"
FIELD = "biz_opaque_callback_data"


def rows_with(*orders: str) -> list[dict]:
    return [
        {"phone": phone, "name": name, "order": order}
        for phone, name, order in zip((ANA, BIA), ("Ana", "Bia"), orders, strict=True)
    ]


def run(path, tmp_path, *extra):
    report = tmp_path / "report.csv"
    result = cli(["run", path, "--report", report, *extra], env=env_for(tmp_path))
    rows = read_report(report) if report.exists() else []
    return result, {row["phone"]: row for row in rows}


def test_each_message_carries_its_delivery_key(tmp_path, sandbox):
    path = write_campaign(
        tmp_path,
        name="spring-sale",
        rows=rows_with("1001", "1002"),
        gateway_url=sandbox.messages_url,
        recipients={"key": "[phone]-[order]"},
        send={"callback_data": True},
    )

    result, rows = run(path, tmp_path)

    assert result.exit_code == 0, result.output
    assert [row["status"] for row in rows.values()] == ["sent", "sent"]
    bodies = [message["body"] for message in sandbox.messages()]
    assert bodies == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "type": "text",
            "text": {"body": "Olá Ana, seu pedido chegou!"},
            "to": ANA,
            FIELD: f"spring-sale:{ANA}-1001",
        },
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "type": "text",
            "text": {"body": "Olá Bia, seu pedido chegou!"},
            "to": BIA,
            FIELD: f"spring-sale:{BIA}-1002",
        },
    ]


def test_without_it_bodies_are_exactly_as_the_gateway_documents_them(tmp_path, sandbox):
    path = write_campaign(tmp_path, rows=rows_with("1", "2"), gateway_url=sandbox.messages_url)

    result, _ = run(path, tmp_path)

    assert result.exit_code == 0, result.output
    assert [sorted(message["body"]) for message in sandbox.messages()] == [
        ["messaging_product", "recipient_type", "text", "to", "type"]
    ] * 2


def test_a_key_longer_than_meta_allows_makes_its_row_invalid_never_cut(tmp_path, sandbox):
    prefix = f"spring-sale:{ANA}-"  # the delivery key: the campaign's name, then the row's key
    fits = "x" * (512 - len(prefix))
    too_long = "y" * (513 - len(f"spring-sale:{BIA}-"))
    path = write_campaign(
        tmp_path,
        name="spring-sale",
        rows=rows_with(fits, too_long),
        gateway_url=sandbox.messages_url,
        recipients={"key": "[phone]-[order]"},
        send={"callback_data": True},
    )

    result, rows = run(path, tmp_path)

    assert result.exit_code == 1, result.output
    assert rows[ANA]["status"] == "sent"
    assert rows[BIA]["status"] == "invalid"
    reason = (
        "send.callback_data: the delivery key is 513 characters long; biz_opaque_callback_data "
        "takes at most 512 (Meta's limit): shorten recipients.key, or turn send.callback_data off"
    )
    assert rows[BIA]["error"] == reason
    [message] = sandbox.messages()
    assert message["body"][FIELD] == prefix + fits and len(message["body"][FIELD]) == 512

    checked = cli(["validate", path], env=env_for(tmp_path))
    assert checked.exit_code == 1, checked.output
    assert f"recipients.csv:3: {reason}" in checked.output


def test_the_preview_shows_the_message_and_only_jsonl_shows_the_field(tmp_path, sandbox):
    path = write_campaign(
        tmp_path,
        name="spring-sale",
        rows=rows_with("1", "2"),
        gateway_url=sandbox.messages_url,
        send={"callback_data": True},
    )
    env = env_for(tmp_path)

    text = cli(["preview", path, "--all"], env=env)
    jsonl = cli(["preview", path, "--format", "jsonl"], env=env)
    page = tmp_path / "page.html"
    html = cli(["preview", path, "--format", "html", "--output", page], env=env)

    assert text.exit_code == 0, text.output
    assert "  text: Olá Ana, seu pedido chegou!" in text.output.splitlines()
    assert FIELD not in text.output and f"spring-sale:{ANA}" not in text.output
    assert jsonl.exit_code == 0, jsonl.output
    shown = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [body[FIELD] for body in shown] == [f"spring-sale:{ANA}", f"spring-sale:{BIA}"]
    assert html.exit_code == 0, html.output
    assert "Olá Ana, seu pedido chegou!" in page.read_text()
    assert FIELD not in page.read_text() and f"spring-sale:{ANA}" not in page.read_text()


def test_a_message_that_sets_the_field_itself_is_refused(tmp_path, sandbox):
    message = {"type": "text", "text": {"body": "Oi [name]"}, FIELD: "campaign-42"}
    path = write_campaign(
        tmp_path, message=message, gateway_url=sandbox.messages_url, send={"callback_data": True}
    )
    line = path.read_text().splitlines().index("  callback_data: true") + 1

    result, rows = run(path, tmp_path)

    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[0] == (
        f"{path}:{line}:3: send.callback_data puts the delivery key in {FIELD}, which "
        f"message.{FIELD} already sets: keep one of the two"
    )
    assert rows == {} and sandbox.messages() == []


@pytest.mark.parametrize("value", ["yes", 1, "true"])
def test_callback_data_is_true_or_false(value, tmp_path, sandbox):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url, send={"callback_data": value})
    written = next(
        (n, line) for n, line in enumerate(path.read_text().splitlines(), 1) if "callback" in line
    )

    result, rows = run(path, tmp_path)

    assert result.exit_code == 2, result.output
    number, text = written
    assert result.output.splitlines()[0] == (
        f"{path}:{number}:{text.index(': ') + 3}: send.callback_data: "
        f"{json.dumps(value)} is not of type boolean"
    )
    assert rows == {} and sandbox.messages() == []
