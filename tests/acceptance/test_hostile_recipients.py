"""Hostile or careless recipients files: each is refused whole, or each row is read right.

A CSV from anyone may be malformed, mis-encoded, not a CSV at all, or hold characters that
change how a message reads. Whatever it holds, no customer gets a message built from another
customer's data, no text is decoded wrongly, a file error means nothing was sent, and no
output writes a control character or a secret that came from a file.
"""

from __future__ import annotations

import os
import time

import pytest
from helpers import (
    campaign_process,
    cli,
    env_for,
    read_report,
    write_campaign,
    write_old_journal,
)

MESSAGE = {"type": "text", "text": {"body": "Oi [name]!"}}
COMMANDS = ["run", "validate", "preview"]


def campaign_with_csv(tmp_path, sandbox, raw: bytes, **recipients):
    path = write_campaign(
        tmp_path,
        rows="phone\n",
        gateway_url=sandbox.messages_url,
        message=MESSAGE,
        recipients=recipients,
    )
    (tmp_path / "recipients.csv").write_bytes(raw)
    return path


def command(name: str, path, tmp_path):
    """The CLI call for NAME (run sends for real, to the test's sandbox)."""
    extra = ["--report", tmp_path / "r.csv"] if name == "run" else []
    return cli([name, path, *extra], env=env_for(tmp_path))


def bodies(sandbox) -> list[tuple[str, str]]:
    return [(m["to"], m["body"]["text"]["body"]) for m in sandbox.messages()]


def rows(tmp_path) -> list[tuple[str, str, str]]:
    return [(r["row"], r["status"], r["error"]) for r in read_report(tmp_path / "r.csv")]


def refused_everywhere(tmp_path, sandbox, raw: bytes, where: str, message: str, **recipients):
    """Every command refuses the file with MESSAGE at WHERE (`:LINE`); exit 2, nothing sent."""
    path = campaign_with_csv(tmp_path, sandbox, raw, **recipients)
    expected = f"{tmp_path / 'recipients.csv'}{where}: {message}"
    for name in COMMANDS:
        result = command(name, path, tmp_path)
        assert result.exit_code == 2, (name, result.output)
        assert expected in result.output, (name, result.output)
    assert sandbox.messages() == []
    assert not (tmp_path / "r.csv").exists()


GOOD = b"+5511948489500,Ana\n+5511948489501,Bia\n"


# ---- structure: a malformed CSV is a file error at the line that broke it -----------------------


def test_a_quote_never_closed_is_refused_at_its_line_not_swallowing_the_others(tmp_path, sandbox):
    raw = b'phone,name\n+5511948489500,"Ana\n+5511948489501,Bia\n+5511948489502,Caio\n'
    refused_everywhere(
        tmp_path,
        sandbox,
        raw,
        ":2",
        "a quote opens a cell on this line and is never closed, so the rest of the file "
        'would be one cell; close it (a quote inside a quoted cell is written "")',
    )


def test_a_quote_never_closed_past_the_cell_limit_names_the_line_it_opened(tmp_path, sandbox):
    rest = b"".join(b"+55119%08d,Pessoa %d\n" % (70000000 + i, i) for i in range(8000))
    raw = b"phone,name\n" + GOOD + b'+5511948489502,"Caio\n' + rest
    refused_everywhere(
        tmp_path,
        sandbox,
        raw,
        ":4",
        "a cell that starts on this line runs to line",
    )


def test_a_structural_error_late_in_the_file_stops_the_run_before_the_first_request(
    tmp_path, sandbox
):
    many = b"".join(b"+55119%08d,Pessoa %d\n" % (70000000 + i, i) for i in range(500))
    raw = b"phone,name\n" + many + b"+5511948489501,Bia " + b"x" * 140_000 + b"\n"
    refused_everywhere(
        tmp_path,
        sandbox,
        raw,
        ":502",
        "a cell is longer than 131,072 characters, the most a cell may hold",
    )


STRAY = "a quote in the middle of a cell; quote the whole cell and double the quotes inside it"


@pytest.mark.parametrize(
    "line, expected",
    [
        (b'+5511948489501, "Silva, Jr"\n', STRAY),
        (b'+5511948489501,Jo"ao\n', STRAY),
        (b'+5511948489501,"Jo"ao\n', STRAY),
        (b'+5511948489501,"Jo" \n', STRAY),
    ],
    ids=["space-then-quote", "quote-inside", "text-after-closing-quote", "space-after-quote"],
)
def test_a_stray_quote_is_refused_at_its_line(line, expected, tmp_path, sandbox):
    raw = b"phone,name\n+5511948489500,Ana\n" + line + b"+5511948489502,Caio\n"
    refused_everywhere(tmp_path, sandbox, raw, ":3", expected)


def test_well_formed_quotes_still_read(tmp_path, sandbox):
    raw = b'phone,name\n+5511948489500,"O""Brien, Ana"\n"+5511948489501","Bia"\n'
    path = campaign_with_csv(tmp_path, sandbox, raw)
    assert command("run", path, tmp_path).exit_code == 0
    assert bodies(sandbox) == [
        ("+5511948489500", 'Oi O"Brien, Ana!'),
        ("+5511948489501", "Oi Bia!"),
    ]


def test_a_nul_byte_is_a_file_error(tmp_path, sandbox):
    raw = b"phone,name\n+5511948489500,Ana\n+5511948489501,B\x00ia\n"
    refused_everywhere(
        tmp_path,
        sandbox,
        raw,
        ":3",
        "holds a NUL byte: this is not a text CSV (a UTF-16 or binary file?)",
    )


def test_a_utf16_export_is_named(tmp_path, sandbox):
    raw = "phone,name\n+5511948489500,Ana\n".encode("utf-16")
    refused_everywhere(tmp_path, sandbox, raw, ":1", 'is UTF-16 text; save it as "CSV UTF-8"')


# ---- encoding: one encoding fits the whole file, or nothing is read ----------------------------


def test_one_foreign_byte_in_a_utf8_file_is_refused_not_read_as_mojibake(tmp_path, sandbox):
    raw = "phone,name\n+5511948489500,José\n".encode() + b"+5511948489501,Jo\xe3o\n"
    refused_everywhere(
        tmp_path,
        sandbox,
        raw,
        ":3",
        "byte 0xE3 is not UTF-8, but line 2 is UTF-8 text: the file mixes encodings",
    )


def test_utf8_text_after_the_foreign_byte_is_a_mixture_too(tmp_path, sandbox):
    raw = b"phone,name\n+5511948489501,Jo\xe3o\n" + "+5511948489500,José\n".encode()
    refused_everywhere(
        tmp_path, sandbox, raw, ":2", "byte 0xE3 is not UTF-8, but line 3 is UTF-8 text"
    )


def test_a_byte_no_encoding_fits_is_refused_at_its_line(tmp_path, sandbox):
    raw = b"phone,name\n+5511948489500,Ana\n+5511948489501,Bi\x81a\n"
    refused_everywhere(
        tmp_path, sandbox, raw, ":3", "byte 0x81 fits neither UTF-8 nor Windows-1252"
    )


def test_a_declared_encoding_must_fit_the_file(tmp_path, sandbox):
    raw = "phone,name\n+5511948489500,José\n".encode()
    refused_everywhere(
        tmp_path,
        sandbox,
        raw,
        ":2",
        "recipients.encoding says cp1252 but the file is UTF-8",
        encoding="cp1252",
    )
    raw = b"phone,name\n+5511948489500,Jos\xe9\n"
    refused_everywhere(
        tmp_path / "utf8",
        sandbox,
        raw,
        ":2",
        "byte 0xE9 is not UTF-8, as recipients.encoding says",
        encoding="utf-8",
    )


def test_a_long_windows_1252_file_is_read_whole_in_it(tmp_path, sandbox):
    filler = b"".join(b"+55119%08d,Pessoa\n" % (70000000 + i) for i in range(80_000))
    raw = b"phone,name\n" + filler + b"+5511948489500,Jo\xe3o\n"  # past the first chunk
    path = campaign_with_csv(tmp_path, sandbox, raw)
    result = cli(["validate", path], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert "not UTF-8; read as Windows-1252" in result.output
    assert "80001 message(s) ready" in result.output


# ---- rows: numbered as a spreadsheet shows them -------------------------------------------------


def test_rows_are_numbered_as_a_spreadsheet_shows_them_and_empty_rows_skipped(tmp_path, sandbox):
    raw = (
        b"phone;name\n"
        b"+5511948489500;Ana\n"
        b"\n"  # row 3: blank
        b";\n"  # row 4: entirely empty
        b'+5511948489501;"Bia\nda Silva"\n'  # row 5, on two lines
        b" ; \n"  # row 6: only spaces
        b"abc;Caio\n"  # row 7
    )
    path = campaign_with_csv(tmp_path, sandbox, raw)
    result = command("run", path, tmp_path)
    assert result.exit_code == 1
    assert rows(tmp_path) == [
        ("2", "sent", ""),
        ("5", "sent", ""),
        ("7", "invalid", "'abc' is not a phone number (not a number)"),
    ]
    checked = command("validate", path, tmp_path)
    assert f"{tmp_path / 'recipients.csv'}:7: 'abc' is not a phone number" in checked.output


# ---- data that changes how a message reads ------------------------------------------------------


@pytest.mark.parametrize(
    "value, reason",
    [
        ("Ana\u202egnp.exe", "holds a bidi control character U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("Ana\u2067x\u2069", "holds a bidi control character U+2067 (RIGHT-TO-LEFT ISOLATE)"),
        ("Ana\x1b[31m", "holds a control character U+001B (ESCAPE)"),
        ("Ana\x9b31m", "holds a control character U+009B (CONTROL SEQUENCE INTRODUCER)"),
        ("Ana\x07", "holds a control character U+0007 (control character)"),
        ("Ana\rBia", "holds a control character U+000D (CARRIAGE RETURN)"),
    ],
    ids=["override", "isolate", "escape", "csi", "bell", "lone-cr"],
)
def test_a_value_that_changes_how_a_message_reads_makes_its_recipient_invalid(
    value, reason, tmp_path, sandbox
):
    raw = f'phone,name\n+5511948489500,"{value}"\n+5511948489501,Bia\n'.encode()
    path = campaign_with_csv(tmp_path, sandbox, raw)
    result = command("run", path, tmp_path)
    assert result.exit_code == 1
    assert rows(tmp_path) == [("2", "invalid", f"column 'name' {reason}"), ("3", "sent", "")]
    assert bodies(sandbox) == [("+5511948489501", "Oi Bia!")]
    checked = command("validate", path, tmp_path)
    assert f"recipients.csv:2: column 'name' {reason}" in checked.output
    assert value not in checked.output  # the reason names the character, never prints it


def test_no_control_character_from_the_file_reaches_any_output(tmp_path, sandbox):
    raw = 'phone,name\n"+55119484\x1b[2J89500",Ana\n+5511948489501,"Bia\u202e"\n'.encode()
    path = campaign_with_csv(tmp_path, sandbox, raw)
    outputs = [command(name, path, tmp_path).output for name in COMMANDS]
    report = (tmp_path / "r.csv").read_text(encoding="utf-8")
    for text in [*outputs, report]:
        assert "\x1b" not in text and "\u202e" not in text
    assert rows(tmp_path)[0] == (
        "2",
        "invalid",
        "column 'phone' holds a control character U+001B (ESCAPE)",
    )
    assert (
        read_report(tmp_path / "r.csv")[0]["phone"] == "'+55119484\\x1b[2J89500"
    )  # ' as for any cell
    assert sandbox.messages() == []


def test_a_control_character_in_a_column_the_message_does_not_use_is_refused_too(tmp_path, sandbox):
    raw = b"phone,name,notes\n+5511948489500,Ana,ok\n+5511948489501,Bia,\x1b]0;x\x07\n"
    path = campaign_with_csv(tmp_path, sandbox, raw)
    assert command("run", path, tmp_path).exit_code == 1
    assert rows(tmp_path) == [
        ("2", "sent", ""),
        ("3", "invalid", "column 'notes' holds a control character U+001B (ESCAPE)"),
    ]


def test_allow_bidi_lets_right_to_left_names_through_but_never_overrides(tmp_path, sandbox):
    name = "\u2067\u05d3\u05e0\u05d4\u2069"  # an isolated Hebrew name
    raw = f"phone,name\n+5511948489500,{name}\n+5511948489501,X\u202eY\n".encode()
    path = campaign_with_csv(tmp_path, sandbox, raw, allow_bidi=True)
    assert command("run", path, tmp_path).exit_code == 1
    assert bodies(sandbox) == [("+5511948489500", f"Oi {name}!")]
    assert rows(tmp_path)[1] == (
        "3",
        "invalid",
        "column 'name' holds a bidi control character U+202E (RIGHT-TO-LEFT OVERRIDE)",
    )


def test_a_header_name_with_a_control_character_is_a_file_error(tmp_path, sandbox):
    raw = b"phone,na\x1bme\n+5511948489500,Ana\n"
    refused_everywhere(
        tmp_path,
        sandbox,
        raw,
        ":1",
        "column 2's name holds a control character U+001B (ESCAPE): 'na\\x1bme'",
    )


# ---- files that are not CSV files ---------------------------------------------------------------


def test_proc_environ_as_recipients_never_prints_the_environment(tmp_path):
    path = write_campaign(tmp_path, recipients={"file": "/proc/self/environ"})
    secret = "s3cr3t-value-that-must-not-leak"
    for name in COMMANDS:
        done = campaign_process([name, path], env=env_for(tmp_path, apikey=secret))
        assert done.returncode == 2, done.stderr
        assert "/proc/self/environ:1: holds a NUL byte" in done.stderr
        assert secret not in done.stdout + done.stderr


def test_a_file_that_is_one_line_of_something_else_is_not_echoed(tmp_path, sandbox):
    raw = b"CERBERUS_APIKEY=abc123secret\n"
    path = campaign_with_csv(tmp_path, sandbox, raw)
    for name in COMMANDS:
        result = command(name, path, tmp_path)
        assert result.exit_code == 2
        assert "abc123secret" not in result.output
        assert (
            "recipients.csv:1: no column 'phone'; the first line has no ',': is it a CSV with "
            "a header row? (set recipients.phone_column to the one to use)"
        ) in result.output


def test_the_columns_listed_in_an_error_are_capped(tmp_path, sandbox):
    header = ",".join(f"column_{i}_{'x' * 60}" for i in range(50))
    path = campaign_with_csv(tmp_path, sandbox, f"{header}\n1,2\n".encode())
    result = command("validate", path, tmp_path)
    assert result.exit_code == 2
    assert "the columns are: column_0_" in result.output
    assert "column_19_" in result.output and "column_20_" not in result.output
    assert "… and 30 more" in result.output


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/dev/zero", "is a device; the recipients file must be a CSV file on disk"),
        ("folder", "is a folder; the recipients file must be a CSV file on disk"),
        ("fifo", "is a pipe (FIFO); the recipients file must be a CSV file on disk"),
        ("dangling", "no such recipients file"),
    ],
)
def test_a_recipients_file_that_is_not_a_regular_file_says_what_it_is(target, expected, tmp_path):
    if target == "folder":
        (tmp_path / "folder").mkdir()
    elif target == "fifo":
        os.mkfifo(tmp_path / "fifo")
    elif target == "dangling":
        (tmp_path / "dangling").symlink_to(tmp_path / "gone.csv")
    path = write_campaign(tmp_path, recipients={"file": target})
    started = time.monotonic()
    done = campaign_process(["validate", path], env=env_for(tmp_path))
    assert time.monotonic() - started < 30
    shown = target if target.startswith("/") else str(tmp_path / target)
    assert done.returncode == 2
    assert f"{shown}: {expected}" in done.stderr


def test_dev_stdin_as_recipients_does_not_wait_for_input(tmp_path):
    path = write_campaign(tmp_path, recipients={"file": "/dev/stdin"})
    done = campaign_process(["run", path, "--dry-run"], env=env_for(tmp_path), input="")
    assert done.returncode == 2
    assert "/dev/stdin: is a pipe (FIFO); the recipients file must be a CSV file" in done.stderr


def test_a_header_of_200000_columns_ends_fast(tmp_path, sandbox):
    header = ",".join(f"c{i}" for i in range(200_000))
    path = campaign_with_csv(tmp_path, sandbox, f"phone,{header}\n+5511948489500\n".encode())
    started = time.monotonic()
    result = command("run", path, tmp_path)
    assert time.monotonic() - started < 5
    assert result.exit_code == 2
    assert "recipients.csv:1: the header has 200,001 columns; at most 1,000" in result.output
    assert sandbox.messages() == []


# ---- delivery keys ------------------------------------------------------------------------------


def test_an_invalid_row_does_not_take_the_key_of_a_later_valid_row(tmp_path, sandbox):
    raw = b"phone,name\n+5511948489500,\n+5511948489500,Ana\n+5511948489500,Ana again\n"
    path = campaign_with_csv(tmp_path, sandbox, raw)
    assert command("run", path, tmp_path).exit_code == 1
    assert [(row, status) for row, status, _ in rows(tmp_path)] == [
        ("2", "invalid"),
        ("3", "sent"),
        ("4", "duplicate"),
    ]
    assert bodies(sandbox) == [("+5511948489500", "Oi Ana!")]
    # On the next run too: the valid row is already sent, never a duplicate of the invalid one.
    assert command("run", path, tmp_path).exit_code == 1
    assert [status for _, status, _ in rows(tmp_path)] == ["invalid", "already-sent", "duplicate"]
    assert len(sandbox.messages()) == 1


def test_key_parts_are_trimmed_so_a_stray_space_is_not_a_new_delivery(tmp_path, sandbox):
    path = campaign_with_csv(
        tmp_path,
        sandbox,
        b'phone,name,cart_id\n+5511948489500,Ana," 7"\n',
        key="[phone]-[cart_id]",
    )
    assert command("run", path, tmp_path).exit_code == 0
    (tmp_path / "recipients.csv").write_bytes(b"phone,name,cart_id\n+5511948489500,Ana,7 \n")
    assert command("run", path, tmp_path).exit_code == 0
    assert rows(tmp_path) == [("2", "already-sent", "")]
    assert len(sandbox.messages()) == 1


def test_a_journal_from_before_keys_were_trimmed_still_knows_the_row(tmp_path, sandbox):
    """Upgrading must not resend: a journal that recorded the untrimmed key "...- 7"."""
    path = campaign_with_csv(
        tmp_path,
        sandbox,
        b'phone,name,cart_id\n+5511948489500,Ana," 7"\n+5521987654321,Bia," 8"\n',
        key="[phone]-[cart_id]",
    )
    write_old_journal(
        tmp_path / "state" / "test-campaign.sqlite",
        [("test-campaign:+5511948489500- 7", 2, "+5511948489500")],
    )

    assert command("run", path, tmp_path).exit_code == 0

    assert [status for _, status, _ in rows(tmp_path)] == ["already-sent", "sent"]
    assert [message["to"] for message in sandbox.messages()] == ["+5521987654321"]


def test_a_placeholder_with_no_column_lists_the_columns_capped(tmp_path):
    columns = ["phone", "name", *(f"extra{i}" for i in range(40))]
    header = ",".join(columns)
    row = ",".join(["+5511948489500", "Ana", *("x" for _ in range(40))])
    path = write_campaign(
        tmp_path,
        rows=f"{header}\n{row}\n",
        message={"type": "text", "text": {"body": "Oi [nome]"}},
    )
    result = cli(["validate", path], env=env_for(tmp_path))
    assert result.exit_code == 2
    assert "placeholder 'nome' names no column" in result.output
    assert "the columns are: phone, name, extra0" in result.output
    assert "and 22 more" in result.output and "extra39" not in result.output
