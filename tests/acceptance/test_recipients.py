"""Recipients CSV: whatever a spreadsheet exported, each person is read right or told why not."""

from __future__ import annotations

import pytest
from helpers import cli, env_for, read_report, write_campaign

from campaign_runner.phones import PhoneError, normalise_phone


def sent_bodies(sandbox) -> list[tuple[str, str]]:
    return [(m["to"], m["body"]["text"]["body"]) for m in sandbox.messages()]


def run_with_csv(tmp_path, sandbox, raw: bytes, **recipients):
    path = write_campaign(
        tmp_path,
        rows="phone\n",
        gateway_url=sandbox.messages_url,
        message={"type": "text", "text": {"body": "Oi [name]!"}},
        recipients=recipients,
    )
    (tmp_path / "recipients.csv").write_bytes(raw)
    return cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))


@pytest.mark.parametrize(
    "raw",
    [
        b"phone,name\n+5511948489500,Jos\xc3\xa9\n",  # UTF-8
        b"\xef\xbb\xbfphone,name\r\n+5511948489500,Jos\xc3\xa9\r\n",  # UTF-8 with BOM, CRLF
        b"phone;name\r\n+55 11 94848-9500;Jos\xe9\r\n",  # Excel in Brazil: ; and Windows-1252
        b'"phone","name"\n"+55 (11) 94848-9500","Jos\xc3\xa9"\n',  # every field quoted
    ],
    ids=["utf-8", "bom-crlf", "semicolon-cp1252", "quoted"],
)
def test_each_spreadsheet_export_reads_the_same_recipient(raw, tmp_path, sandbox):
    result = run_with_csv(tmp_path, sandbox, raw)
    assert result.exit_code == 0, result.output
    assert sent_bodies(sandbox) == [("+5511948489500", "Oi José!")]


def test_windows_1252_is_detected_with_a_warning_and_can_be_declared(tmp_path, sandbox):
    raw = b"phone;name\n+5511948489500;Jo\xe3o\n"
    result = run_with_csv(tmp_path, sandbox, raw)
    assert "not UTF-8; read as Windows-1252" in result.output
    declared = run_with_csv(tmp_path / "again", sandbox, raw, encoding="cp1252")
    assert "not UTF-8" not in declared.output
    assert [body for _, body in sent_bodies(sandbox)] == ["Oi João!", "Oi João!"]


def test_quotes_commas_and_newlines_inside_fields_survive(tmp_path, sandbox):
    raw = (
        b'phone,name\n+5511948489500,"Ana ""Aninha"", da Silva\nSegunda linha"\n'
        b"+5511948489501,Bia\n"
    )
    result = run_with_csv(tmp_path, sandbox, raw)
    assert result.exit_code == 0
    assert sent_bodies(sandbox) == [
        ("+5511948489500", 'Oi Ana "Aninha", da Silva\nSegunda linha!'),
        ("+5511948489501", "Oi Bia!"),
    ]
    # Row numbers are a spreadsheet's: the record with a newline inside is still one row.
    assert [r["row"] for r in read_report(tmp_path / "r.csv")] == ["2", "3"]


def test_stray_spaces_in_header_names_are_trimmed_with_a_warning(tmp_path, sandbox):
    result = run_with_csv(tmp_path, sandbox, b" phone , name\n+5511948489500,Ana\n")
    assert result.exit_code == 0
    assert "column name ' phone ' has stray spaces; read as 'phone'" in result.output
    assert sent_bodies(sandbox) == [("+5511948489500", "Oi Ana!")]


def test_a_row_with_too_many_fields_is_invalid_not_guessed(tmp_path, sandbox):
    result = run_with_csv(
        tmp_path, sandbox, b"phone,name\n+5511948489500,Ana,extra\n+5511948489501,Bia\n"
    )
    assert result.exit_code == 1
    report = read_report(tmp_path / "r.csv")
    assert (
        report[0]["status"] == "invalid" and "3 fields but the header has 2" in report[0]["error"]
    )
    assert sent_bodies(sandbox) == [("+5511948489501", "Oi Bia!")]


def test_a_header_naming_a_column_twice_is_refused(tmp_path, sandbox):
    result = run_with_csv(tmp_path, sandbox, b"phone,name,name\n+5511948489500,Ana,Bia\n")
    assert result.exit_code == 2 and "column 'name' appears twice" in result.output
    assert sandbox.messages() == []


@pytest.mark.parametrize(
    "typed, region, expected",
    [
        ("+55 (11) 94848-9500", None, "+5511948489500"),
        ("00 55 11 94848 9500", "BR", "+5511948489500"),
        ("0055 11 94848-9500", None, "+5511948489500"),
        ("(11) 94848-9500", "BR", "+5511948489500"),
        ("11948489500", "BR", "+5511948489500"),
        ("5511948489500", None, "+5511948489500"),
        ("+1 650-555-1234", "BR", "+16505551234"),
    ],
)
def test_phone_numbers_as_people_type_them(typed, region, expected):
    assert normalise_phone(typed, region) == expected


@pytest.mark.parametrize(
    "typed, reason",
    [
        ("5.51195E+12", "scientific notation"),
        ("5,51195E+12", "scientific notation"),
        ("5511948489500.0", "decimal part"),
        ("", "blank"),
        ("abc", "not a phone number"),
        ("+55 11 3333-4444", "not a mobile number"),
        ("+55 11 94848", "not a valid phone number"),
    ],
)
def test_phone_numbers_that_cannot_be_sent_say_why(typed, reason):
    with pytest.raises(PhoneError, match=reason):
        normalise_phone(typed, "BR")


@pytest.mark.parametrize(
    "recipients, expected",
    [
        ({"file": "missing.csv"}, "missing.csv: no such recipients file"),
        ({"exclude": ["no-opt-outs.csv"]}, "no-opt-outs.csv: no such exclusion file"),
        ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
    ],
    ids=["recipients file", "exclusion file", "encoding"],
)
def test_a_recipients_setting_that_cannot_be_read_stops_before_sending(
    recipients, expected, tmp_path, sandbox
):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url, recipients=recipients)
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 2
    assert expected in result.output
    assert sandbox.messages() == []
