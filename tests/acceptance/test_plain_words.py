"""Plain words for people: honest exit codes, phone reasons, errors at the line to fix."""

from __future__ import annotations

import json
import re

from helpers import (
    campaign_process,
    cli,
    env_for,
    read_report,
    without_final_line,
    write_campaign,
)
from test_preview import browser  # noqa: F401  (the headless Chromium fixture)


def test_validate_exits_1_for_an_invalid_recipient_and_2_for_a_broken_campaign(tmp_path):
    fine = write_campaign(tmp_path / "fine", rows="phone,name\n+5511948489500,Ana\n12,Bia\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nmesage: {}\n", encoding="utf-8")

    one_bad_row = cli(["validate", fine], env=env_for(tmp_path))
    assert one_bad_row.exit_code == 1, one_bad_row.output
    assert "1 invalid recipient(s); 1 ready" in one_bad_row.output
    run = cli(["run", fine, "--dry-run", "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert run.exit_code == one_bad_row.exit_code  # the same verdict as the run's

    both = cli(["validate", fine, broken], env=env_for(tmp_path))
    assert both.exit_code == 2, both.output  # the worst of the files given
    assert cli(["validate", broken]).exit_code == 2


PHONE_REASONS = {
    "12": "'12' is not a valid phone number: too short: 2 digit(s) where a mobile number in "
    "BR (+55) has 10 or 11 digits after the country code",
    "94848-9500": "'94848-9500' is not a valid phone number: the area code is missing; "
    "write the number in full, as in +55 11 96123-4567",
    "+55 11 94848 9500 123": "'+55 11 94848 9500 123' is not a valid phone number: too long",
    "+54 11 94848 9500": "'+54 11 94848 9500' is not a valid phone number: no number in AR "
    "(+54) has this form; check the country code",
    "+55 11 3333-4444": "'+55 11 3333-4444' is a landline, not a mobile number",
}


def test_a_rejected_phone_number_says_why_in_validate_and_in_the_report(tmp_path, sandbox):
    rows = "phone,name\n+5511948489500,Ana\n" + "".join(f"{p},X\n" for p in PHONE_REASONS)
    path = write_campaign(tmp_path, rows=rows, gateway_url=sandbox.messages_url)
    checked = cli(["validate", path], env=env_for(tmp_path))
    assert checked.exit_code == 1, checked.output
    csv_path = tmp_path / "recipients.csv"
    for row, reason in enumerate(PHONE_REASONS.values(), start=3):
        assert f"{csv_path}:{row}: {reason}" in checked.output, checked.output

    report = tmp_path / "r.csv"
    ran = cli(["run", path, "--report", report], env=env_for(tmp_path))
    assert ran.exit_code == 1, ran.output
    invalid = [r for r in read_report(report) if r["status"] == "invalid"]
    assert len(invalid) == len(PHONE_REASONS)
    for got, reason in zip(invalid, PHONE_REASONS.values(), strict=True):
        assert got["error"].startswith(reason), got
    assert [m["to"] for m in sandbox.messages()] == ["+5511948489500"]


def _long_body_campaign(tmp_path, count: int):
    message = {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Oi [name] " + "x" * 1020},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "Sim"}}]},
        },
    }
    rows = "phone,name\n" + "".join(
        f"+5511948{480000 + i},{'N' * (1 + i % 7)}\n" for i in range(count)
    )
    return write_campaign(tmp_path, message=message, rows=rows)


def test_a_template_too_long_for_every_recipient_is_one_message_at_its_yaml_line(tmp_path):
    path = _long_body_campaign(tmp_path, 3000)
    lines = path.read_text(encoding="utf-8").splitlines()
    text_line = next(n for n, line in enumerate(lines, start=1) if "text: Oi" in line)
    result = cli(["validate", path], env=env_for(tmp_path))
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        f"{path}:{text_line}:13: message.interactive.body.text: too long for 3,000 "
        "recipients: 1,025 to 1,031 characters; at most 1,024 allowed (rows 2, 3, 4, 5, 6, "
        f"... of {tmp_path / 'recipients.csv'}; the run's report lists each row); "
        "fix it here, or in those rows",
        f"{path}: 3000 invalid recipient(s); 0 ready (invalid 3000)",
    ]

    report = tmp_path / "r.csv"
    ran = cli(["run", path, "--dry-run", "--report", report], env=env_for(tmp_path))
    rows = read_report(report)
    assert len(rows) == 3000 and {r["status"] for r in rows} == {"invalid"}
    assert rows[0]["error"] == (
        "interactive.body.text: is 1025 characters long; at most 1024 allowed"
    ), ran.output
    assert rows[6]["error"].startswith("interactive.body.text: is 1031 characters long")


def test_a_few_rows_breaking_a_rule_are_still_listed_row_by_row(tmp_path):
    path = _long_body_campaign(tmp_path, 5)  # GROUP_ROWS_OVER rows: not yet a group
    result = cli(["validate", path], env=env_for(tmp_path))
    assert result.exit_code == 1
    csv_path = tmp_path / "recipients.csv"
    for row, length in zip(range(2, 7), range(1025, 1030), strict=True):
        assert (
            f"{csv_path}:{row}: interactive.body.text: is {length} characters long; "
            "at most 1024 allowed"
        ) in result.output
    assert "too long for" not in result.output


HEAD = "name: promo\nrecipients:\n  file: recipients.csv\n  default_region: BR\n"
YAML_MISTAKES = {
    "a quote never closed": (
        HEAD + 'message:\n  type: text\n  text:\n    body: "Olá [name], seu pedido\n'
        "gateway:\n  apikey_env: K\n",
        [
            ":8:11: not valid YAML: the quote opened here is never closed (the file ends first)",
            '        body: "Olá [name], seu pedido',
            "              ^",
        ],
    ),
    "a tab": (
        HEAD + "message:\n\ttype: text\n",
        [
            ":6:1: not valid YAML: YAML indents with spaces, never tabs: "
            "replace the tab with spaces",
            "    \\ttype: text",
            "    ^",
        ],
    ),
    "': ' in a plain value": (
        HEAD + "message:\n  type: text\n  text:\n    body: Oi: tudo bem?\n",
        [
            ":8:13: not valid YAML: a ':' where YAML did not expect one: put text holding ': ' "
            "in quotes, or line this key up with the keys above it",
            "        body: Oi: tudo bem?",
            "                ^",
        ],
    ),
    "a list never closed": (
        HEAD + "  exclude: [optout.csv\nmessage: {type: text, text: {body: hi}}\n",
        [
            ":6:8: not valid YAML: a list in [ ] needs ',' between items and a ']'; "
            "the list '[' opened at line 5, column 12",
            "    message: {type: text, text: {body: hi}}",
            "           ^",
        ],
    ),
}


def test_a_yaml_mistake_shows_its_line_a_caret_and_a_plain_hint(tmp_path, sandbox):
    for name, (text, expected) in YAML_MISTAKES.items():
        folder = tmp_path / name.replace(" ", "-").replace("'", "")
        folder.mkdir()
        (folder / "recipients.csv").write_text("phone\n+5511948489500\n", encoding="utf-8")
        path = folder / "promo.yaml"
        path.write_text(text, encoding="utf-8")
        checked = cli(["validate", path])
        assert checked.exit_code == 2, (name, checked.output)
        assert checked.output.splitlines() == [f"{path}{expected[0]}", *expected[1:]], name
        ran = cli(["run", path, "--gateway-url", sandbox.messages_url], env=env_for(folder))
        assert ran.exit_code == 2 and ran.output.splitlines()[0] == f"{path}{expected[0]}"
    assert sandbox.messages() == []


def test_a_very_long_line_is_cut_around_the_caret(tmp_path):
    path = tmp_path / "promo.yaml"
    path.write_text(HEAD + "message: {text: " + "x" * 300 + " : y, z\n", encoding="utf-8")
    result = cli(["validate", path])
    assert result.exit_code == 2
    _, shown, caret = result.output.splitlines()
    assert len(shown) <= 4 + 3 + 100 + 3 and shown.startswith("    ...")
    assert shown[len(caret) - 1] == ":"  # the caret sits under the spot in the cut line


NOT_YAML_TEXT = {
    "Windows-1252": (
        "promo.yaml",
        "name: promoção\n".encode("cp1252"),
        ":1: is not saved as UTF-8 (byte 0xE7, 'ç' in Windows-1252): open it in your editor "
        "and save it with the encoding UTF-8",
    ),
    "UTF-16": (
        "promo.yaml",
        "name: promo\n".encode("utf-16"),
        ": is saved as UTF-16: save it as UTF-8 text; a campaign is a YAML text file "
        "(`campaign init TYPE` writes a starter one)",
    ),
    "a binary file": (
        "promo.yaml",
        b"\x7fELF\x02\x01\x01\x00\x00\x00",
        ": is a binary file, not a campaign; a campaign is a YAML text file "
        "(`campaign init TYPE` writes a starter one)",
    ),
}


def _xlsx(path):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["phone", "name"])
    book.active.append([5511948489500, "Ana"])
    book.save(path)
    return path.read_bytes()


def test_a_file_that_is_not_yaml_text_says_how_to_save_it(tmp_path, sandbox):
    cases = dict(NOT_YAML_TEXT)
    cases["a spreadsheet"] = (
        "clientes.xlsx",
        _xlsx(tmp_path / "book.xlsx"),
        ": is a spreadsheet or zip file (.xlsx, .zip), not a campaign; a campaign is a YAML "
        "text file (`campaign init TYPE` writes a starter one)",
    )
    for name, (file_name, data, expected) in cases.items():
        path = tmp_path / file_name
        path.write_bytes(data)
        for command in (["validate", path], ["preview", path], ["run", path, "--yes"]):
            result = without_final_line(cli(command, env=env_for(tmp_path)))
            assert result.exit_code == 2, (name, result.output)
            assert result.output == f"{path}{expected}\n", (name, command)
    assert sandbox.messages() == []


def test_a_section_whose_settings_are_all_commented_out_says_so(tmp_path):
    path = write_campaign(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "send:\n  # rate: 10/s\n  # concurrency: 2\n", encoding="utf-8")
    line = len(text.splitlines()) + 1
    result = cli(["validate", path], env=env_for(tmp_path))
    assert result.exit_code == 2
    assert result.output == (
        f"{path}:{line}:6: send: is empty (are all the settings under it commented out?): "
        "uncomment one, or delete this line\n"
    )


def test_a_schema_path_through_lists_is_also_said_in_plain_words(tmp_path):
    rows_a = [{"id": "a", "title": "Um"}]
    rows_b = [{"id": "b", "title": "Dois"}, {"id": "c", "title": "x" * 25}]
    message = {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Escolha"},
            "action": {
                "button": "Ver",
                "sections": [{"title": "A", "rows": rows_a}, {"title": "B", "rows": rows_b}],
            },
        },
    }
    path = write_campaign(tmp_path, message=message)
    result = cli(["validate", path], env=env_for(tmp_path))
    assert result.exit_code == 2
    assert (
        "message.interactive.action.sections[1].rows[1].title "
        "(the 2nd section's 2nd row's title): is 25 characters long; at most 24 allowed"
    ) in result.output, result.output


def _forty_and_a_bad_row(tmp_path):
    rows = "phone,name\n" + "".join(f"+5511948{480000 + i},C{i}\n" for i in range(40))
    return write_campaign(tmp_path, rows=rows + "12,Bad\n")


def _rows_shown(output: str) -> list[int]:
    return [int(line.split()[1]) for line in output.splitlines() if line.startswith("row ")]


def test_preview_on_a_terminal_shows_five_messages_and_the_counts(tmp_path):
    from helpers import on_a_terminal

    path = _forty_and_a_bad_row(tmp_path)
    code, shown, _ = on_a_terminal(["preview", path], env={"NO_COLOR": "1"})
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown).replace("\r\n", "\n")
    assert code == 1  # one recipient would be invalid
    assert "ready: 40" in plain and "invalid: 1" in plain and "row 42 12: invalid" in plain
    assert "showing a sample of 5, spread over the file" in plain
    assert _rows_shown(plain) == [2, 11, 21, 31, 41]
    assert "--all shows every message, --sample N or --limit N another number" in plain

    code, shown, _ = on_a_terminal(["preview", path, "--all"])
    assert len(_rows_shown(re.sub(r"\x1b\[[0-9;]*m", "", shown))) == 41  # every row
    piped = cli(["preview", path])  # not a terminal: every message, as before
    assert len(_rows_shown(piped.output)) == 41 and "--all shows" not in piped.output


def test_a_sample_draws_only_from_messages_that_would_be_sent(tmp_path):
    rows = "phone,name\n+5511948480000,Ana\n12,Bad\n5.5E+12,Mangled\n+5511948480003,Bia\n"
    rows += "+5511948480004,\n+5511948480005,Caio\n"
    path = write_campaign(tmp_path, rows=rows)
    result = cli(["preview", path, "--sample", "3"])
    assert result.exit_code == 1
    assert _rows_shown(result.output) == [2, 5, 7]  # rows 3, 4 and 6 would not be sent
    assert "would not be sent (3)" in result.output
    jsonl = cli(["preview", path, "--format", "jsonl", "--sample", "2"])
    sent_to = [json.loads(line)["to"] for line in jsonl.stdout.splitlines()]
    assert sent_to == ["+5511948480000", "+5511948480005"]


# Lines each cell's text takes: more than one means the word was broken or wrapped.
_LINES_OF_TEXT = """cells => cells.map(cell => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    const tops = new Set([...range.getClientRects()].map(rect => Math.round(rect.top)));
    return [cell.innerText, tops.size];
})"""


def test_the_failing_rows_table_stays_readable_at_phone_width(browser, tmp_path):  # noqa: F811
    rows = "phone,name\n+5511948480000,Ana\n" + "".join(f"{n},X\n" for n in (12, 123, 1234))
    path = write_campaign(tmp_path, rows=rows)
    page_file = tmp_path / "p.html"
    assert cli(["preview", path, "--format", "html", "--output", page_file]).exit_code == 1
    page = browser.new_page(viewport={"width": 360, "height": 780})
    page.goto(page_file.as_uri())
    heads = page.locator(".unsendable th").evaluate_all(_LINES_OF_TEXT)
    assert heads == [["row", 1], ["phone", 1], ["status", 1], ["reason", 1]]
    for cells in (".unsendable td:first-child", ".unsendable td:nth-child(3)"):
        assert {lines for _, lines in page.locator(cells).evaluate_all(_LINES_OF_TEXT)} == {1}
    page.close()


def test_an_interrupted_run_says_how_to_continue(sandbox_factory, tmp_path):
    import signal
    import time

    from helpers import start_process

    from campaign_runner.sandbox import Faults

    gateway = sandbox_factory(Faults(latency_ms=50))
    rows = [{"phone": f"+5511948{480000 + i}", "name": f"C{i}"} for i in range(60)]
    path = write_campaign(tmp_path, rows=rows, gateway_url=gateway.messages_url)
    process = start_process(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    deadline = time.monotonic() + 30
    while len(gateway.messages()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    left = [r for r in read_report(tmp_path / "r.csv") if r["status"] == "not-attempted"]
    assert left
    assert (
        "interrupted: run the same command again to continue; "
        f"{len(left)} recipient(s) were not attempted, and none already sent is sent twice"
    ) in out + err
    # A process of its own: the module's Chromium keeps an event loop in this one.
    again = campaign_process(
        ["run", path, "--report", tmp_path / "rest.csv"], env=env_for(tmp_path)
    )
    assert again.returncode == 0 and "interrupted: run" not in again.stdout + again.stderr
    assert len(gateway.messages()) == 60
