"""A template campaign may carry its approved text (`preview:`), used only by previews.

The marketer copies the text approved in WhatsApp Manager, with Meta's `{{1}}` slots, into
the campaign; `campaign preview` then shows the sentence each customer reads. The text is
never sent, and a text that disagrees with the message's parameters stops the campaign
where it is written, in validate, preview and run alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import APIKEY_ENV, campaign_process, cli, env_for
from test_preview import browser, open_in_browser  # noqa: F401  (the headless Chromium)

CSV = (
    "phone,name,cart\n"
    "+5511948489500,Ana,8812\n"
    "+5521987654321,{{2}} <b>Bruno</b>,8813\n"  # a value that looks like a slot, and markup
)


def body(*texts: str, names: tuple[str, ...] = ()) -> str:
    """A body component giving TEXTS in order (each with a parameter_name from NAMES)."""
    lines = ["      - type: body", "        parameters:"]
    for at, text in enumerate(texts):
        lines.append("          - type: text")
        if at < len(names):
            lines.append(f"            parameter_name: {names[at]}")
        lines.append(f'            text: "{text}"')
    return "\n".join(lines) + "\n"


BUTTON = """\
      - type: button
        sub_type: url
        index: "0"
        parameters:
          - type: text
            text: "cart/[cart]"
"""


def campaign_text(
    preview: str | None,
    components: str = body("[name]") + BUTTON,
    message_type: str = "template",
    gateway_url: str | None = None,
    name: str = "cart",
) -> str:
    """A template campaign's YAML with PREVIEW (the text under `preview:`, or None)."""
    gateway = f"  url: {gateway_url}\n" if gateway_url else ""
    if message_type == "template":
        message = (
            "message:\n  type: template\n  template:\n    name: beta_abandoncart_link_v1_1\n"
            f"    language:\n      code: pt_BR\n    components:\n{components}"
        )
    else:
        message = 'message:\n  type: text\n  text:\n    body: "Olá [name]"\n'
    text = (
        f"name: {name}\nrecipients:\n  file: recipients.csv\n  default_region: BR\n"
        f"gateway:\n  apikey_env: {APIKEY_ENV}\n{gateway}{message}"
    )
    return text + (f"preview:\n{preview}" if preview is not None else "")


def write(folder: Path, text: str, file_name: str = "campaign.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "recipients.csv").write_text(CSV, encoding="utf-8")
    path = folder / file_name
    path.write_text(text, encoding="utf-8")
    return path


def located(path: Path, needle: str, nth: int = 1) -> str:
    """`FILE:LINE:COL` of the NTH occurrence of NEEDLE in the file, counted by hand."""
    seen = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        at = line.find(needle)
        while at >= 0:
            seen += 1
            if seen == nth:
                return f"{path}:{number}:{at + 1}"
            at = line.find(needle, at + 1)
    raise AssertionError(f"{needle!r} not in {path}")


CART_TEXT = """\
  template_text: |-
    Olá {{1}}, você deixou itens no seu *carrinho*.
    Toque no botão abaixo para finalizar a compra.
"""


# ---- the customer's sentence -------------------------------------------------------------


def test_the_text_preview_shows_the_sentence_each_customer_reads(tmp_path):
    path = write(tmp_path, campaign_text(CART_TEXT))
    result = cli(["preview", path])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    ana = lines.index("row 2 -> +5511948489500")
    assert lines[ana + 1 : ana + 5] == [
        "  template: beta_abandoncart_link_v1_1 (pt_BR)",
        "    body: Olá Ana, você deixou itens no seu *carrinho*.",
        "          Toque no botão abaixo para finalizar a compra.",
        "    button 0 url: cart/8812",
    ]
    # A value that looks like a slot is shown as written, never filled again.
    assert "    body: Olá {{2}} <b>Bruno</b>, você deixou itens no seu *carrinho*." in lines


def test_without_the_approved_text_the_preview_lists_the_values_as_before(tmp_path):
    result = cli(["preview", write(tmp_path, campaign_text(None))])
    assert result.exit_code == 0, result.output
    assert "    body: Ana" in result.output.splitlines()


def test_named_slots_take_the_parameter_of_that_name(tmp_path):
    preview = '  template_text: "{{cart_id}}: {{first_name}}, seu carrinho espera."\n'
    components = body("[name]", "[cart]", names=("first_name", "cart_id")) + BUTTON
    result = cli(["preview", write(tmp_path, campaign_text(preview, components))])
    assert result.exit_code == 0, result.output
    assert "    body: 8812: Ana, seu carrinho espera." in result.output.splitlines()


def test_a_text_header_is_filled_from_the_header_parameter(tmp_path):
    header = """\
      - type: header
        parameters:
          - type: text
            text: "[cart]"
"""
    preview = CART_TEXT + '  header_text: "Carrinho {{1}}"\n'
    result = cli(["preview", write(tmp_path, campaign_text(preview, header + body("[name]")))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    ana = lines.index("row 2 -> +5511948489500")
    assert lines[ana + 2 : ana + 4] == [
        "    header: Carrinho 8812",
        "    body: Olá Ana, você deixou itens no seu *carrinho*.",
    ]


def test_the_html_preview_draws_the_sentence_in_the_bubble(browser, tmp_path):  # noqa: F811
    path = write(tmp_path, campaign_text(CART_TEXT))
    page_file = tmp_path / "page.html"
    result = cli(["preview", path, "--format", "html", "--output", page_file])
    assert result.exit_code == 0, result.output
    opened = open_in_browser(browser, page_file)
    assert opened.errors == [] and opened.dialogs == []
    bubbles = opened.page.locator(".bubble")
    assert bubbles.nth(0).locator(".text").inner_text() == (
        "Olá Ana, você deixou itens no seu carrinho.\n"
        "Toque no botão abaixo para finalizar a compra."
    )
    assert bubbles.nth(0).locator(".text strong").inner_text() == "carrinho"  # *bold*
    assert bubbles.nth(0).locator(".params").count() == 0  # no list of values any more
    # The CSV's markup is text on the page, and its {{2}} is not filled.
    bruno = bubbles.nth(1).locator(".text")
    assert bruno.inner_text().startswith("Olá {{2}} <b>Bruno</b>, você")
    assert bruno.locator("b").count() == 0
    assert "cart/8813" in opened.page.locator(".wa-btn").nth(1).inner_text()
    opened.page.close()


def test_the_approved_text_never_reaches_a_request_body(sandbox, tmp_path):
    bodies = {}
    for name, preview in (("without", None), ("with", CART_TEXT)):
        text = campaign_text(preview, gateway_url=sandbox.messages_url, name=name)
        path = write(tmp_path / name, text)
        jsonl = cli(["preview", path, "--format", "jsonl"])
        assert jsonl.exit_code == 0, jsonl.output
        before = len(sandbox.messages())
        # A process of its own: the module's Chromium keeps an event loop in this one.
        result = campaign_process(["run", path], env=env_for(tmp_path / name))
        assert result.returncode == 0, result.stdout + result.stderr
        received = [message["body"] for message in sandbox.messages()[before:]]
        bodies[name] = (jsonl.output, received)
    assert bodies["with"] == bodies["without"]
    assert len(bodies["with"][1]) == 2
    sent = json.dumps(bodies["with"][1])
    assert "preview" not in sent and "template_text" not in sent and "deixou" not in sent


# ---- a text that disagrees with the message: located errors -------------------------------


def _bad_cases():
    """(id, preview:, components, message, needle the error points at, its occurrence)."""
    two = body("[name]", "[cart]") + BUTTON
    named = body("[name]", names=("firstname",)) + BUTTON
    return [
        (
            "slot-without-value",
            '  template_text: "Olá {{1}}, seu cupom {{2}}"\n',
            body("[name]") + BUTTON,
            "{{2}} has no value: the message's body gives 1 parameter(s); add the 2nd "
            "parameter to the message's body, or copy the approved text again",
            "{{2}}",
            1,
        ),
        (
            "value-without-slot",
            '  template_text: "Olá {{1}}"\n',
            two,
            "the body's 2nd parameter has no slot in preview.template_text, which has {{1}}: "
            "Meta would refuse the message (132000, wrong number of parameters); remove the "
            "parameter, or copy the approved text again",
            "type: text",
            2,
        ),
        (
            "values-but-no-slots",
            '  template_text: "Olá! Seu carrinho espera."\n',
            body("[name]") + BUTTON,
            "the body's 1st parameter has no slot in preview.template_text, which has no "
            "slots: Meta would refuse the message (132000, wrong number of parameters); "
            "remove the parameter, or copy the approved text again",
            "type: text",
            1,
        ),
        (
            "slots-but-no-body",
            '  template_text: "Olá {{1}}"\n',
            BUTTON,
            "{{1}} has no value: the message gives no body parameters; add the 1st parameter "
            "to the message's body, or copy the approved text again",
            "{{1}}",
            1,
        ),
        (
            "a-slot-missing-in-the-order",
            '  template_text: "Olá {{1}}, cupom {{3}}"\n',
            body("[name]", "[cart]", "[cart]") + BUTTON,
            "preview.template_text skips {{2}}: a template numbers its slots 1, 2, 3... with "
            "none missing; copy the approved text again",
            '"Olá',
            1,
        ),
        (
            "spaces-in-a-slot",
            "  template_text: |-\n    Olá!\n    Seu cupom: {{ 1 }}\n",
            body("[name]") + BUTTON,
            "{{ 1 }} is not a template slot: slots are numbered from {{1}} or named in lower "
            "case, {{first_name}}, with no spaces; write {{1}}",
            "{{ 1 }}",
            1,
        ),
        (
            "a-capitalised-name",
            '  template_text: "Olá {{Nome}}"\n',
            body("[name]", names=("nome",)) + BUTTON,
            "{{Nome}} is not a template slot: slots are numbered from {{1}} or named in lower "
            "case, {{first_name}}, with no spaces; write {{nome}}",
            "{{Nome}}",
            1,
        ),
        (
            "a-slot-never-closed",
            "  template_text: 'Olá {{1}, até logo'\n",
            body("[name]") + BUTTON,
            "a slot opened with {{ is never closed: write it as {{1}}",
            "{{1}",
            1,
        ),
        (
            "numbered-and-named-mixed",
            '  template_text: "Olá {{1}}, seu carrinho {{cart_id}}"\n',
            body("[name]", "[cart]") + BUTTON,
            "{{cart_id}} mixes slot kinds: a template's slots are all numbered ({{1}}) or all "
            "named ({{cart_id}}); copy the approved text again",
            "{{cart_id}}",
            1,
        ),
        (
            "named-slots-positional-values",
            '  template_text: "Olá {{first_name}}"\n',
            body("[name]") + BUTTON,
            "the body's 1st parameter has no parameter_name, and preview.template_text names "
            "its slots (which has {{first_name}}): add parameter_name",
            "type: text",
            1,
        ),
        (
            "numbered-slots-named-values",
            '  template_text: "Olá {{1}}"\n',
            body("[name]", names=("first_name",)) + BUTTON,
            "preview.template_text numbers its slots ({{1}}), so the body's parameters go by "
            "position: remove parameter_name, or copy the approved text, with its named "
            "slots, again",
            "parameter_name",
            1,
        ),
        (
            "a-misspelt-name",
            '  template_text: "Olá {{first_name}}"\n',
            named,
            "no slot {{firstname}} in preview.template_text (did you mean 'first_name'?); "
            "its slots are {{first_name}}",
            "firstname",
            1,
        ),
        (
            "longer-than-meta-allows",
            f'  template_text: "Olá {{{{1}}}} {"a" * 1020}"\n',
            body("[name]") + BUTTON,
            "preview.template_text has 1,030 characters; the body of a template with a header "
            "or buttons holds at most 1,024: copy the approved text from WhatsApp Manager again",
            '"Olá',
            1,
        ),
        (
            "a-header-text-for-an-image-header",
            CART_TEXT + '  header_text: "Promoção"\n',
            "      - type: header\n        parameters:\n          - type: image\n"
            "            image:\n              link: https://example.com/a.jpg\n" + body("[name]"),
            "the message's header is an image, and header_text is for a text header: "
            "remove header_text",
            '"Promoção"',
            1,
        ),
        (
            "two-slots-in-a-header",
            CART_TEXT + '  header_text: "{{1}} e {{2}}"\n',
            body("[name]") + BUTTON,
            "a template's text header has at most 1 slot; {{2}} is a second one",
            "{{2}}",
            1,
        ),
        (
            "a-misspelt-key",
            '  template_txt: "Olá {{1}}"\n',
            body("[name]") + BUTTON,
            "preview: unknown key 'template_txt' (did you mean 'template_text'?)",
            "template_txt",
            1,
        ),
    ]


@pytest.mark.parametrize(
    "preview, components, message, needle, nth",
    [case[1:] for case in _bad_cases()],
    ids=[case[0] for case in _bad_cases()],
)
def test_a_text_that_disagrees_stops_validate_preview_and_run(
    preview, components, message, needle, nth, sandbox, tmp_path
):
    path = write(tmp_path, campaign_text(preview, components, gateway_url=sandbox.messages_url))
    expected = f"{located(path, needle, nth)}: {message}"
    for command in (["validate", path], ["preview", path]):
        result = cli(command, env=env_for(tmp_path))
        assert result.exit_code == 2, (command, result.output)
        assert expected in result.output.splitlines(), (command, result.output)
    run = campaign_process(["run", path, "--yes"], env=env_for(tmp_path))
    assert run.returncode == 2 and expected in run.stderr.splitlines(), run.stderr
    assert sandbox.messages() == []  # nothing was sent


def test_the_approved_text_is_only_for_template_messages(tmp_path):
    path = write(tmp_path, campaign_text(CART_TEXT, message_type="text"))
    result = cli(["validate", path])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"{located(path, 'preview:')}: preview: holds the approved text of a template "
        "message; this message's type is 'text', whose preview already shows what the "
        "customer reads: remove preview:"
    ]


def test_a_preview_section_needs_the_template_text(tmp_path):
    path = write(tmp_path, campaign_text('  header_text: "Carrinho"\n'))
    result = cli(["validate", path])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"{located(path, 'header_text')}: preview: required key 'template_text' is missing"
    ]


def test_a_slot_is_located_in_a_file_saved_with_windows_line_ends(tmp_path):
    text = campaign_text("  template_text: |-\n    Olá!\n    Seu cupom: {{ 1 }}\n")
    path = tmp_path / "campaign.yaml"
    write(tmp_path, "")
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    result = cli(["validate", path])
    assert result.exit_code == 2
    assert result.output.startswith(f"{located(path, '{{ 1 }}')}: {{{{ 1 }}}} is not a template")


def test_the_template_starter_carries_an_approved_text_the_preview_fills(tmp_path):
    path = tmp_path / "promo.yaml"
    assert cli(["init", "template", "--output", path]).exit_code == 0
    assert "preview:\n  template_text: |-\n    Olá {{1}}," in path.read_text(encoding="utf-8")
    result = cli(["preview", path, "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "    body: Olá Ana, você deixou itens no seu carrinho." in result.output.splitlines()
