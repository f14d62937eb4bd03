"""Opt-out lists always hold: each is read as strictly as the recipients, or nothing is sent.

Given a campaign with `recipients.exclude`, whatever shape the opt-out list has (another
column name, no header, a spreadsheet's mangled numbers), the person on it is never sent a
message: the list is read, or the campaign stops, naming the file and the line.
"""

from __future__ import annotations

import pytest
from helpers import cli, env_for, read_report, write_campaign

PEOPLE = [
    {"phone": "+5511970000000", "name": "Ana"},
    {"phone": "+5511970000001", "name": "Bia"},
    {"phone": "+5511970000002", "name": "Caio"},
]


def campaign(tmp_path, sandbox, optouts: bytes, exclude, **recipients):
    (tmp_path / "optouts.csv").write_bytes(optouts)
    return write_campaign(
        tmp_path,
        rows=PEOPLE,
        gateway_url=sandbox.messages_url,
        recipients={"exclude": exclude, **recipients},
    )


def run(path, tmp_path):
    return cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))


def statuses(tmp_path) -> list[str]:
    return [row["status"] for row in read_report(tmp_path / "r.csv")]


def received(sandbox) -> list[str]:
    return sorted(m["to"] for m in sandbox.messages())


def assert_excluded(tmp_path, sandbox, path):
    result = run(path, tmp_path)
    assert result.exit_code == 0, result.output
    assert statuses(tmp_path) == ["sent", "excluded", "sent"]
    assert received(sandbox) == ["+5511970000000", "+5511970000002"]


def assert_refused(tmp_path, sandbox, path, expected: str):
    """run, validate and preview all stop with EXPECTED; nothing is sent, no report."""
    for name in ("validate", "preview", "run"):
        extra = ["--report", tmp_path / "r.csv"] if name == "run" else []
        result = cli([name, path, *extra], env=env_for(tmp_path))
        assert result.exit_code == 2, (name, result.output)
        assert expected in result.output, (name, result.output)
    assert sandbox.messages() == []
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize(
    "optouts",
    [
        b"phone\n(11) 97000-0001\n",
        b"celular\n+55 11 97000-0001\n",  # one column, any name
        b"+5511970000001\n",  # no header at all: the first line is an opt-out too
        b"5511970000001\n5511970000009\n",
        b"id;phone;email\n7;11970000001;bia@example.com\n",
    ],
    ids=["phone", "one-column", "headerless", "headerless-digits", "semicolons"],
)
def test_an_opt_out_list_in_any_plain_shape_is_applied(optouts, tmp_path, sandbox):
    assert_excluded(tmp_path, sandbox, campaign(tmp_path, sandbox, optouts, ["optouts.csv"]))


def test_the_column_can_be_named_in_the_campaign(tmp_path, sandbox):
    optouts = b"id,celular\n1,+5511970000001\n"
    path = campaign(tmp_path, sandbox, optouts, [{"file": "optouts.csv", "column": "celular"}])
    assert_excluded(tmp_path, sandbox, path)


def test_a_single_named_list_is_accepted_without_brackets(tmp_path, sandbox):
    optouts = b"email,whatsapp_number\nbia@example.com,+5511970000001\n"
    path = campaign(
        tmp_path, sandbox, optouts, {"file": "optouts.csv", "column": "whatsapp_number"}
    )
    assert_excluded(tmp_path, sandbox, path)


def test_the_campaigns_phone_column_names_the_lists_column_too(tmp_path, sandbox):
    (tmp_path / "optouts.csv").write_bytes(b"nome,celular\nBia,+5511970000001\n")
    rows = [{"celular": p["phone"], "name": p["name"]} for p in PEOPLE]
    path = write_campaign(
        tmp_path,
        rows=rows,
        gateway_url=sandbox.messages_url,
        recipients={"exclude": "optouts.csv", "phone_column": "celular"},
    )
    assert_excluded(tmp_path, sandbox, path)


@pytest.mark.parametrize(
    "optouts",
    [b"id,celular\n1,+5511970000001\n", b"email,whatsapp_number\nbia@x.com,+5511970000001\n"],
    ids=["id-celular", "email-whatsapp"],
)
def test_a_list_whose_column_cannot_be_told_stops_the_campaign(optouts, tmp_path, sandbox):
    path = campaign(tmp_path, sandbox, optouts, ["optouts.csv"])
    columns = optouts.split(b"\n")[0].decode().replace(",", ", ")
    assert_refused(
        tmp_path,
        sandbox,
        path,
        f"{tmp_path / 'optouts.csv'}:1: which column holds the numbers? the columns are: "
        f"{columns}; name it in the campaign: exclude: [{{file: optouts.csv, column: ...}}]",
    )


def test_a_named_column_that_is_not_there_stops_the_campaign(tmp_path, sandbox):
    optouts = b"id,celular\n1,+5511970000001\n"
    path = campaign(tmp_path, sandbox, optouts, [{"file": "optouts.csv", "column": "cellular"}])
    assert_refused(
        tmp_path,
        sandbox,
        path,
        f"{tmp_path / 'optouts.csv'}:1: no column 'cellular' (did you mean 'celular'?); "
        "the columns are: id, celular",
    )


@pytest.mark.parametrize(
    "optouts, row, reason",
    [
        (b"phone\n5.51197E+12\n", 2, "'5.51197E+12' is a number a spreadsheet turned into"),
        (b"5.51197E+12\n", 1, "'5.51197E+12' is a number a spreadsheet turned into"),
        (b"phone\n+5511970000001\n5511970000002.0\n", 3, "'5511970000002.0' ends in a decimal"),
        (b"phone\nnot a number\n", 2, "'not a number' is not a phone number"),
        (b"phone\n+55 11 7000\n", 2, "'+55 11 7000' is not a valid phone number"),
        (b"email,phone\nbia@x.com,\n", 2, "no number in this row"),
        (b"phone\n+5511970000001,extra\n", 2, "the row has more fields than the header"),
    ],
    ids=["scientific", "scientific-headerless", "decimal", "words", "short", "blank", "fields"],
)
def test_an_opt_out_that_cannot_be_read_stops_the_campaign(optouts, row, reason, tmp_path, sandbox):
    path = campaign(tmp_path, sandbox, optouts, ["optouts.csv"])
    assert_refused(
        tmp_path,
        sandbox,
        path,
        f"{tmp_path / 'optouts.csv'}:{row}: opt-out cannot be read: {reason}",
    )


def test_a_headerless_list_with_several_columns_is_refused(tmp_path, sandbox):
    path = campaign(tmp_path, sandbox, b"+5511970000001,2024-01-01\n", ["optouts.csv"])
    assert_refused(
        tmp_path,
        sandbox,
        path,
        f"{tmp_path / 'optouts.csv'}:1: the first row holds numbers, not column names",
    )


def test_a_malformed_opt_out_file_is_refused_like_a_recipients_file(tmp_path, sandbox):
    path = campaign(tmp_path, sandbox, b'phone\n"+5511970000001\n+5511970000002\n', ["optouts.csv"])
    assert_refused(
        tmp_path,
        sandbox,
        path,
        f"{tmp_path / 'optouts.csv'}:2: a quote opens a cell on this line and is never closed",
    )


def test_an_opt_out_list_that_is_a_folder_says_so(tmp_path, sandbox):
    (tmp_path / "optouts").mkdir()
    path = write_campaign(
        tmp_path, rows=PEOPLE, gateway_url=sandbox.messages_url, recipients={"exclude": "optouts"}
    )
    assert_refused(
        tmp_path,
        sandbox,
        path,
        f"{tmp_path / 'optouts'}: is a folder; the exclusion file must be a CSV file on disk",
    )


def test_many_unreadable_opt_outs_are_listed_then_counted(tmp_path, sandbox):
    optouts = b"phone\n" + b"5.51197E+12\n" * 25
    path = campaign(tmp_path, sandbox, optouts, ["optouts.csv"])
    result = cli(["validate", path], env=env_for(tmp_path))
    assert result.exit_code == 2
    assert result.output.count("opt-out cannot be read") == 20
    assert f"{tmp_path / 'optouts.csv'}: and 5 more that cannot be read" in result.output
