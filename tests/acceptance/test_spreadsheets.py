"""Spreadsheets as they are: an .xlsx read directly, a report a Portuguese Excel opens right,
and the rows that need attention written back ready to fix."""

from __future__ import annotations

import csv
import datetime as dt

import openpyxl
import pytest
from helpers import cli, env_for, read_report, write_campaign

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
    """The report as a spreadsheet would read it: its dialect sniffed, a BOM taken as UTF-8."""
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0])
    return (
        raw.startswith(b"\xef\xbb\xbf"),
        dialect.delimiter,
        list(csv.reader(text.splitlines(), dialect)),
    )
