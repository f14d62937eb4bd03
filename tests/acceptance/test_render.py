"""Templating: the seed's [column] placeholders, full Jinja, and CSV values that stay data."""

from __future__ import annotations

import pytest
from helpers import cli, env_for, read_report, write_campaign


def sent_text(tmp_path, sandbox, body: str, rows: str):
    path = write_campaign(
        tmp_path,
        rows=rows,
        gateway_url=sandbox.messages_url,
        message={"type": "text", "text": {"body": body}},
    )
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    return result, [m["body"]["text"]["body"] for m in sandbox.messages()]


@pytest.mark.parametrize(
    "template, expected",
    [
        ("Oi [name]!", "Oi Ana!"),
        ("Oi {{ name | upper }}!", "Oi ANA!"),
        ("{% if vip is defined %}VIP {% endif %}[name]", "Ana"),  # an optional column
        ("Cupom: {{ coupon | default('BEMVINDO') }}", "Cupom: BEMVINDO"),
        (
            'Veja {{ "[promo]" }}, [1], [ ok ] e [50% off!]',
            "Veja [promo], [1], [ ok ] e [50% off!]",
        ),
        ("Link: [target-url]", "Link: https://x.test/a?b=1"),
        ("Linha 1\nLinha 2\n", "Linha 1\nLinha 2\n"),
    ],
)
def test_placeholders_and_jinja_render_as_documented(template, expected, tmp_path, sandbox):
    rows = "phone,name,coupon,target-url\n+5511948489500,Ana,,https://x.test/a?b=1\n"
    result, bodies = sent_text(tmp_path, sandbox, template, rows)
    assert result.exit_code == 0, result.output
    assert bodies == [expected]


def test_a_blank_value_without_a_default_makes_that_recipient_invalid(tmp_path, sandbox):
    rows = "phone,name\n+5511948489500,Ana\n+5511948489501,   \n"
    result, bodies = sent_text(tmp_path, sandbox, "Oi [name]!", rows)
    assert result.exit_code == 1
    assert bodies == ["Oi Ana!"]
    report = read_report(tmp_path / "r.csv")
    assert report[1]["status"] == "invalid"
    assert report[1]["error"] == "text.body: column 'name' is blank for this recipient"


def test_the_jinja_sandbox_refuses_to_reach_python_internals(tmp_path, sandbox):
    rows = "phone,name\n+5511948489500,Ana\n"
    result, bodies = sent_text(tmp_path, sandbox, "{{ name.__class__.__mro__ }}", rows)
    assert result.exit_code == 2
    assert bodies == []
    assert "attributes, as in name.something" in result.output
    assert not (tmp_path / "r.csv").exists()


def test_the_delivery_key_template_needs_its_columns(tmp_path):
    path = write_campaign(tmp_path, recipients={"key": "[phone]-[cart]"})
    result = cli(["validate", path])
    assert result.exit_code == 2
    assert "placeholder 'cart' names no column" in result.output


@pytest.mark.parametrize(
    ("template", "sent", "invalid_reason"),
    [
        ("{{ qty | int }} itens", ["3 itens"], "'abc' is not a number (int filter)"),
        ("{{ qty | float }}", ["3.0"], "'abc' is not a number (float filter)"),
        ("{{ qty | int(0) }} itens", ["3 itens", "0 itens"], None),  # a default is a choice
    ],
)
def test_a_value_that_is_not_a_number_is_never_guessed_as_zero(
    template, sent, invalid_reason, tmp_path, sandbox
):
    rows = "phone,qty\n+5511948489500,3\n+5521987654321,abc\n"
    result, bodies = sent_text(tmp_path, sandbox, template, rows)
    assert bodies == sent
    second = read_report(tmp_path / "r.csv")[1]
    if invalid_reason:
        assert result.exit_code == 1
        assert second["status"] == "invalid" and invalid_reason in second["error"]
    else:
        assert result.exit_code == 0 and second["status"] == "sent"
