"""`campaign validate`: a marketer's mistake is one line, FILE:LINE:COL, saying what was meant."""

from __future__ import annotations

import textwrap

import pytest
from helpers import CAMPAIGNS, cli, env_for, write_campaign

GOOD_HEAD = """\
name: promo
recipients:
  file: recipients.csv
  default_region: BR
"""
CSV = "phone,name,target_url\n+5511948489500,Ana,cart/1\n"


def campaign_file(tmp_path, text: str, csv_text: str = CSV):
    (tmp_path / "recipients.csv").write_text(csv_text, encoding="utf-8")
    path = tmp_path / "promo.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


BAD_CAMPAIGNS = {
    "misspelt top-level key": (
        GOOD_HEAD.replace("recipients:", "recipients:")
        + "mesage:\n  type: text\n  text: {body: hi}\n",
        ":5:1: unknown key 'mesage' (did you mean 'message'?)",
    ),
    "misspelt key inside a message object": (
        GOOD_HEAD + "message:\n  type: image\n  image:\n    id: '1'\n    captoin: Oi [name]\n",
        ":9:5: message.image: unknown key 'captoin' (did you mean 'caption'?)",
    ),
    "caption on audio": (
        GOOD_HEAD + "message:\n  type: audio\n  audio:\n    id: '1'\n    caption: hi\n",
        ":9:5: message.audio: unknown key 'caption'; allowed here: id, link, voice",
    ),
    "four reply buttons": (
        GOOD_HEAD + "message:\n  type: interactive\n  interactive:\n    type: button\n"
        "    body: {text: Escolha}\n    action:\n      buttons:\n"
        + "".join(
            f"        - {{type: reply, reply: {{id: b{i}, title: B{i}}}}}\n" for i in range(4)
        ),
        ":12:9: message.interactive.action.buttons: has 4 items; at most 3 allowed",
    ),
    "duplicate reply ids": (
        GOOD_HEAD + "message:\n  type: interactive\n  interactive:\n    type: button\n"
        "    body: {text: Escolha}\n    action:\n      buttons:\n"
        "        - {type: reply, reply: {id: same, title: A}}\n"
        "        - {type: reply, reply: {id: same, title: B}}\n",
        ":13:37: message.interactive.action.buttons[1].reply.id (the 2nd button's id): "
        'reply button id "same" is used twice; it must be unique',
    ),
    "a wrong enum value": (
        GOOD_HEAD + "message:\n  type: txt\n  text: {body: hi}\n",
        ':6:9: message.type: "txt" is not allowed; expected',
    ),
    "a literal apikey": (
        GOOD_HEAD + "gateway:\n  apikey: abc123\nmessage:\n  type: text\n  text: {body: hi}\n",
        ":6:3: a literal apikey is refused: remove it from the file and export it as the "
        "environment variable CERBERUS_APIKEY",
    ),
    "malformed YAML": (
        GOOD_HEAD + "message:\n  type: text\n  text: {body: hi\n",
        ":7:9: not valid YAML: the mapping '{' opened here is never closed (the file ends first)",
    ),
    "a key given twice": (
        GOOD_HEAD + "message:\n  type: text\n  type: image\n  text: {body: hi}\n",
        ":7:3: key 'type' is given twice (first at line 6)",
    ),
    "a placeholder with no column": (
        GOOD_HEAD + "message:\n  type: text\n  text:\n    body: Oi [nome]!\n",
        ":8:11: placeholder 'nome' names no column of",
    ),
    "a Jinja syntax error": (
        GOOD_HEAD + "message:\n  type: text\n  text:\n    body: 'Oi {{ name '\n",
        ":8:11: template error:",
    ),
    "a text body too long even before rendering": (
        GOOD_HEAD + "message:\n  type: text\n  text:\n    body: " + "x" * 4097 + "\n",
        ":8:11: message.text.body: is 4097 characters long; at most 4096 allowed",
    ),
    "a bad send window": (
        GOOD_HEAD
        + "send:\n  window: 09:00-20:00 Mars/Olympus\nmessage:\n  type: text\n  text: {body: hi}\n",
        ":6:11: unknown time zone 'Mars/Olympus'",
    ),
    "a bad rate": (
        GOOD_HEAD + "send:\n  rate: fast\nmessage:\n  type: text\n  text: {body: hi}\n",
        ':6:9: send.rate: "fast" is not valid: a rate such as 20/s',
    ),
    "a missing message": (GOOD_HEAD, ":1:1: required key 'message' is missing"),
}


@pytest.mark.parametrize("text, expected", BAD_CAMPAIGNS.values(), ids=BAD_CAMPAIGNS.keys())
def test_a_bad_campaign_is_one_located_line_and_exit_2(text, expected, tmp_path):
    path = campaign_file(tmp_path, text)
    result = cli(["validate", path])
    assert result.exit_code == 2
    assert f"{path}{expected}" in result.output, result.output


@pytest.mark.parametrize("text, expected", BAD_CAMPAIGNS.values(), ids=BAD_CAMPAIGNS.keys())
def test_a_bad_campaign_sends_nothing(text, expected, tmp_path, sandbox):
    path = campaign_file(tmp_path, text.replace("default_region: BR", "default_region: BR\n"))
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 2
    assert sandbox.messages() == []
    assert not (tmp_path / "r.csv").exists()


def test_the_literal_apikey_is_not_echoed(tmp_path):
    path = campaign_file(
        tmp_path,
        GOOD_HEAD
        + "gateway:\n  apikey: abc123secret\nmessage:\n  type: text\n  text: {body: hi}\n",
    )
    result = cli(["validate", path])
    assert "abc123secret" not in result.output


def test_a_bad_recipient_is_csvfile_row_and_exit_1(tmp_path):
    path = write_campaign(
        tmp_path,
        rows="phone,name\n+5511948489500,Ana\n+5511948489501,\n12,Zé\n",
    )
    result = cli(["validate", path])
    assert result.exit_code == 1
    csv_path = tmp_path / "recipients.csv"
    assert f"{csv_path}:3: text.body: column 'name' is blank for this recipient" in result.output
    assert f"{csv_path}:4: '12' is not a valid phone number" in result.output


def test_a_rendered_message_that_breaks_a_limit_is_caught_per_recipient(tmp_path):
    message = {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Oi"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "[name]"}}]},
        },
    }
    path = write_campaign(
        tmp_path,
        message=message,
        rows="phone,name\n+5511948489500,Ana\n+5511948489501,A name far too long for a button\n",
    )
    result = cli(["validate", path])
    assert result.exit_code == 1
    assert (
        f"{tmp_path / 'recipients.csv'}:3: interactive.action.buttons[0].reply.title "
        "(the 1st button's title): is 32 characters long; at most 20 allowed"
    ) in result.output


def test_a_missing_phone_column_names_the_columns(tmp_path):
    path = write_campaign(tmp_path, rows="telefone,name\n+5511948489500,Ana\n")
    result = cli(["validate", path])
    assert result.exit_code == 2
    assert "no column 'phone'; the columns are: telefone, name" in result.output


def test_every_example_campaign_validates():
    result = cli(["validate", *sorted(CAMPAIGNS.glob("*.yaml"))])
    assert result.exit_code == 0, result.output
    assert result.output.count(": OK,") == len(list(CAMPAIGNS.glob("*.yaml")))
