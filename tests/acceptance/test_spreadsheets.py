"""Spreadsheets as they are: an .xlsx read directly, a report a Portuguese Excel opens right,
and the rows that need attention written back ready to fix."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile

import openpyxl
import pytest
from helpers import cli, env_for, read_report, write_campaign

from campaign_runner.sandbox import Faults

MESSAGE = {"type": "text", "text": {"body": "Oi [name], seu pedido [order] de [date] chegou!"}}


def workbook(path, rows, title="Clientes", extra_sheets=()):
    """An .xlsx written by a spreadsheet library: phone numbers stored as numbers."""
    book = openpyxl.Workbook()
    for name in extra_sheets:
        book.create_sheet(name, 0)
    sheet = book.worksheets[-1] if extra_sheets else book.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def xlsx_campaign(tmp_path, sandbox, rows, extra_sheets=(), **recipients):
    path = write_campaign(
        tmp_path,
        gateway_url=sandbox.messages_url,
        message=MESSAGE,
        recipients={"file": "clientes.xlsx", **recipients},
    )
    workbook(tmp_path / "clientes.xlsx", rows, extra_sheets=extra_sheets)
    return path


ROWS = [
    ["phone", "name", "order", "date"],
    [5511948489500, "José", 1001, dt.datetime(2026, 11, 28)],
    [5521987654321.0, "Ana", 1002.0, dt.date(2026, 12, 1)],
]


def test_an_xlsx_with_numbers_stored_as_numbers_sends_the_digits(tmp_path, sandbox):
    path = xlsx_campaign(tmp_path, sandbox, ROWS)
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    sent = [(m["to"], m["body"]["text"]["body"]) for m in sandbox.messages()]
    assert sent == [
        ("+5511948489500", "Oi José, seu pedido 1001 de 2026-11-28 chegou!"),
        ("+5521987654321", "Oi Ana, seu pedido 1002 de 2026-12-01 chegou!"),
    ]
    assert [row["row"] for row in read_report(tmp_path / "r.csv")] == ["2", "3"]


def test_a_named_sheet_is_read_and_row_numbers_are_the_sheets_own(tmp_path, sandbox):
    rows = [ROWS[0], [], [5511948489500, "José", 1, "amanhã"], [None, "Sem", 2, "x"]]
    path = xlsx_campaign(tmp_path, sandbox, rows, sheet="Clientes", extra_sheets=("Resumo",))
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 1, result.output
    report = read_report(tmp_path / "r.csv")
    assert [(r["row"], r["status"]) for r in report] == [("3", "sent"), ("4", "invalid")]
    assert len(sandbox.messages()) == 1


def test_a_sheet_that_is_not_there_is_named_with_the_ones_that_are(tmp_path, sandbox):
    path = xlsx_campaign(tmp_path, sandbox, ROWS, sheet="clientes", extra_sheets=("Resumo",))
    result = cli(["run", path], env=env_for(tmp_path))
    assert result.exit_code == 2
    assert (
        f"{tmp_path / 'clientes.xlsx'}: no sheet 'clientes' (did you mean 'Clientes'?); "
        "the sheets are: 'Resumo', 'Clientes' (set recipients.sheet to the one to use)"
    ) in result.output
    assert sandbox.messages() == []


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["phone", "name", "phone"], ":1: column 'phone' appears twice in the header"),
        (["phone", None, "name"], ":1: column 2 has no name"),
        (["phone", "na\u202eme"], ":1: column 2's name holds a bidi control character U+202E"),
        ([], ":1: the file is empty: it needs a header row"),
        (["telefone", "name"], ":1: no column 'phone'; the columns are: telefone, name"),
    ],
    ids=["duplicate", "blank", "control", "empty", "no-phone"],
)
def test_a_bad_header_in_a_workbook_is_refused_like_a_csvs(tmp_path, sandbox, header, message):
    rows = [header, [5511948489500, "José", "x"]] if header else []
    path = xlsx_campaign(tmp_path, sandbox, rows)
    result = cli(["run", path], env=env_for(tmp_path))
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'clientes.xlsx'}{message}" in result.output
    assert sandbox.messages() == []


def test_a_cell_with_a_control_character_or_a_spreadsheet_error_is_invalid(tmp_path, sandbox):
    rows = [ROWS[0], [5511948489500, "Jo\u202ese", 1, "x"], [5521987654321, "#N/A", 2, "y"]]
    path = xlsx_campaign(tmp_path, sandbox, rows)
    book = openpyxl.load_workbook(tmp_path / "clientes.xlsx")
    book.active["B3"].data_type = "e"  # what Excel stores for a failed formula
    book.save(tmp_path / "clientes.xlsx")
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 1, result.output
    report = read_report(tmp_path / "r.csv")
    assert [r["status"] for r in report] == ["invalid", "invalid"]
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in report[0]["error"]
    assert "spreadsheet error #N/A" in report[1]["error"]
    assert sandbox.messages() == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
            "is an old binary Excel workbook (.xls)",
        ),
        (b"PK\x03\x04" + bytes(100), "cannot be read as an Excel workbook (BadZipFile)"),
    ],
    ids=["xls", "damaged"],
)
def test_a_file_that_is_no_workbook_we_read_is_a_plain_message(tmp_path, sandbox, content, message):
    path = xlsx_campaign(tmp_path, sandbox, ROWS)
    (tmp_path / "clientes.xlsx").write_bytes(content)
    result = cli(["run", path], env=env_for(tmp_path))
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'clientes.xlsx'}: {message}" in result.output
    assert "Traceback" not in result.output
    assert sandbox.messages() == []


def test_a_csv_named_xlsx_is_read_as_the_csv_it_is_with_a_warning(tmp_path, sandbox):
    path = xlsx_campaign(tmp_path, sandbox, ROWS)
    text = "phone,name,order,date\n+5511948489500,José,7,hoje\n"
    (tmp_path / "clientes.xlsx").write_text(text, encoding="utf-8")
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert "named .xlsx but holds CSV text; read as CSV" in result.output
    assert len(sandbox.messages()) == 1


def test_an_opt_out_list_may_be_a_workbook(tmp_path, sandbox):
    workbook(tmp_path / "optout.xlsx", [["celular"], [5521987654321]])
    path = xlsx_campaign(tmp_path, sandbox, ROWS, exclude="optout.xlsx")
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in read_report(tmp_path / "r.csv")] == ["sent", "excluded"]
    assert [m["to"] for m in sandbox.messages()] == ["+5511948489500"]


def read_back(path):
    """The report as a spreadsheet would read it: a BOM taken as UTF-8, the delimiter sniffed
    from the header, cells read with standard quoting."""
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig")
    delimiter = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t").delimiter
    lines = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return raw.startswith(b"\xef\xbb\xbf"), delimiter, lines


def test_the_report_keeps_the_recipients_columns_and_opens_in_a_portuguese_excel(tmp_path, sandbox):
    rows = [*ROWS, ["+55 11 9999", '=HYPERLINK("http://x")', 3, "ontem"]]
    path = xlsx_campaign(tmp_path, sandbox, rows)
    book = openpyxl.load_workbook(tmp_path / "clientes.xlsx")
    book.active["B4"].data_type = "s"  # text that looks like a formula, as a CRM exports it
    book.save(tmp_path / "clientes.xlsx")
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 1, result.output
    bom, delimiter, lines = read_back(tmp_path / "r.csv")
    assert (bom, delimiter) == (True, ";")
    assert lines[0] == [
        *("row", "phone", "status", "message_id", "http_status", "error"),
        *("phone (recipients)", "name", "order", "date"),
    ]
    assert [line[:3] + line[6:] for line in lines[1:]] == [
        ["2", "+5511948489500", "sent", "5511948489500", "José", "1001", "2026-11-28"],
        ["3", "+5521987654321", "sent", "5521987654321", "Ana", "1002", "2026-12-01"],
        ["4", "'+55 11 9999", "invalid", "'+55 11 9999", '\'=HYPERLINK("http://x")', "3", "ontem"],
    ]


@pytest.mark.parametrize(
    ("csv_text", "bom", "delimiter"),
    [
        ("phone;name\n+5511948489500;José\n", True, ";"),  # Excel in Brazil exports `;`
        ("phone,name\n+5511948489500,José\n", False, ","),  # as before
    ],
    ids=["semicolon", "comma"],
)
def test_a_csv_campaigns_report_follows_the_recipients_delimiter(
    tmp_path, sandbox, csv_text, bom, delimiter
):
    path = write_campaign(tmp_path, rows=csv_text, gateway_url=sandbox.messages_url)
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    found_bom, found_delimiter, lines = read_back(tmp_path / "r.csv")
    assert (found_bom, found_delimiter) == (bom, delimiter)
    assert [line[:3] + line[4:] for line in lines] == [
        [*("row", "phone", "status"), "http_status", "error", "phone (recipients)", "name"],
        ["2", "+5511948489500", "sent", "200", "", "+5511948489500", "José"],
    ]


def test_the_rows_to_fix_come_back_as_a_workbook_ready_to_run_again(tmp_path, sandbox_factory):
    sandbox = sandbox_factory(Faults(script={"+5531912345678": ["131026"]}))
    rows = [*ROWS, ["+55 11 9999", "Caio", 3, "=ontem"], [5531912345678, "Dani", 4, "x"]]
    path = xlsx_campaign(tmp_path, sandbox, rows)
    book = openpyxl.load_workbook(tmp_path / "clientes.xlsx")
    book.active["D4"].data_type = "s"
    book.save(tmp_path / "clientes.xlsx")
    fix = tmp_path / "corrigir.xlsx"
    args = ["run", path, "--report", tmp_path / "r.csv", "--failed-rows", fix]
    result = cli(args, env=env_for(tmp_path))
    assert result.exit_code == 1, result.output
    assert f"rows to fix: 2 in {fix}" in result.output
    sheet = openpyxl.load_workbook(fix).active
    assert sheet.title == "Clientes"
    assert [[cell.value for cell in row] for row in sheet.iter_rows()] == [
        ["phone", "name", "order", "date"],
        ["+55 11 9999", "Caio", "3", "=ontem"],
        ["5531912345678", "Dani", "4", "x"],
    ]
    assert {row[0].data_type for row in sheet.iter_rows()} == {"s"}  # text, never a formula
    summary = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert summary["rows_to_fix"] == str(fix)


def test_the_rows_to_fix_of_a_csv_keep_its_delimiter_and_encoding(tmp_path, sandbox):
    raw = "phone;name\r\n+5511948489500;José\r\nabc;João\r\n".encode("cp1252")
    path = write_campaign(tmp_path, rows="phone\n", gateway_url=sandbox.messages_url)
    (tmp_path / "recipients.csv").write_bytes(raw)
    fix = tmp_path / "fix.csv"
    result = cli(["run", path, "--failed-rows", fix], env=env_for(tmp_path))
    assert result.exit_code == 1, result.output
    assert fix.read_bytes() == "phone;name\r\nabc;João\r\n".encode("cp1252")
    again = cli(
        ["run", path, "--recipients", fix, "--report", tmp_path / "again.csv"],
        env=env_for(tmp_path),
    )
    assert again.exit_code == 1
    assert [r["status"] for r in read_report(tmp_path / "again.csv")] == ["invalid"]
    assert len(sandbox.messages()) == 1


@pytest.mark.parametrize("name", ["recipients.csv", "campaign.yaml", "r.csv", "r.json"])
def test_the_rows_to_fix_never_overwrite_an_input_or_the_report(tmp_path, sandbox, name):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    before = (tmp_path / "recipients.csv").read_bytes()
    args = ["run", path, "--report", tmp_path / "r.csv", "--failed-rows", tmp_path / name]
    result = cli(args, env=env_for(tmp_path))
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / name}: the rows to fix is " in result.output
    assert (tmp_path / "recipients.csv").read_bytes() == before
    assert sandbox.messages() == []


def test_a_formula_whose_value_was_never_saved_is_an_error_not_a_blank(tmp_path, sandbox):
    rows = [ROWS[0], [5511948489500, "José", 1, "x"], [5521987654321, "=B2", 2, "y"]]
    path = xlsx_campaign(tmp_path, sandbox, rows)  # openpyxl saves formulas without values
    result = cli(["run", path], env=env_for(tmp_path))
    assert result.exit_code == 2, result.output
    assert (
        f"{tmp_path / 'clientes.xlsx'}:3: cell B3 holds a formula whose value was never saved"
    ) in result.output
    assert sandbox.messages() == []


def test_a_formula_reads_as_the_value_the_spreadsheet_saved(tmp_path, sandbox):
    rows = [[*ROWS[0], "nota"], [5511948489500, '=UPPER("ana")', 1, "x", '=""']]
    path = xlsx_campaign(tmp_path, sandbox, rows)
    book = tmp_path / "clientes.xlsx"
    with zipfile.ZipFile(book) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"]
    as_excel_saves_them = {  # each formula with its computed value: a text, an empty text
        b'<c r="B2"><f>UPPER("ana")</f><v /></c>': (
            b'<c r="B2" t="str"><f>UPPER("ana")</f><v>ANA</v></c>'
        ),
        b'<c r="E2"><f>""</f><v /></c>': b'<c r="E2" t="str"><f>""</f><v></v></c>',
    }
    for written, saved in as_excel_saves_them.items():
        assert written in sheet
        sheet = sheet.replace(written, saved)
    parts["xl/worksheets/sheet1.xml"] = sheet
    with zipfile.ZipFile(book, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert [m["body"]["text"]["body"] for m in sandbox.messages()] == [
        "Oi ANA, seu pedido 1 de x chegou!"
    ]
    assert read_report(tmp_path / "r.csv")[0]["nota"] == ""


@pytest.mark.parametrize(
    ("command", "code", "shown"),
    [
        (["validate"], 0, ""),
        (
            ["preview", "--format", "jsonl"],
            0,
            'pedido 1002 de 2026-12-01 chegou!"},"to":"+5521987654321"',
        ),
        (["run", "--dry-run"], 0, "dry-run 2"),
    ],
    ids=["validate", "preview", "dry-run"],
)
def test_every_command_reads_the_workbook_the_same_way(tmp_path, sandbox, command, code, shown):
    path = xlsx_campaign(tmp_path, sandbox, ROWS)
    result = cli([command[0], path, *command[1:]], env=env_for(tmp_path))
    assert result.exit_code == code, result.output
    assert shown in result.output
    assert "5521987654321.0" not in result.output and "E+12" not in result.output
    assert sandbox.messages() == []


def test_a_sheet_named_for_a_csv_is_ignored_with_a_warning(tmp_path, sandbox):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url, recipients={"sheet": "X"})
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert "a CSV has no sheets; recipients.sheet is ignored" in result.output
    assert len(sandbox.messages()) == 2


def test_a_workbook_header_past_the_column_cap_is_refused(tmp_path, sandbox):
    header = ["phone", *(f"c{i}" for i in range(1_000))]
    path = xlsx_campaign(tmp_path, sandbox, [header, [5511948489500]])
    result = cli(["run", path], env=env_for(tmp_path))
    assert result.exit_code == 2, result.output
    assert ":1: the header has 1,001 columns; at most 1,000" in result.output
    assert sandbox.messages() == []


@pytest.mark.parametrize(
    ("raw", "written"),
    [
        (
            b"phone,name\n+5511948489500,Ana\nabc,Jos\xc3\xa9\n",
            b"phone,name\r\nabc,Jos\xc3\xa9\r\n",
        ),
        (
            b"phone;name\n+5511948489500;Ana\nabc;Jos\xc3\xa9\n",
            b"\xef\xbb\xbfphone;name\r\nabc;Jos\xc3\xa9\r\n",
        ),
    ],
    ids=["comma-utf8", "semicolon-utf8"],
)
def test_the_rows_to_fix_of_a_utf8_csv_carry_a_bom_only_beside_semicolons(
    tmp_path, sandbox, raw, written
):
    path = write_campaign(tmp_path, rows="phone\n", gateway_url=sandbox.messages_url)
    (tmp_path / "recipients.csv").write_bytes(raw)
    fix = tmp_path / "fix.csv"
    result = cli(["run", path, "--failed-rows", fix], env=env_for(tmp_path))
    assert result.exit_code == 1, result.output
    assert fix.read_bytes() == written
