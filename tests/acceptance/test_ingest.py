"""`campaign ingest FILE|-`: webhook payloads logged by another system, read line by line
into the same ledger as `campaign webhook` writes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import cli
from webhook_builders import ANA, BRUNO, CAMPAIGN, CARLA, T0, outcomes, payload, sent, status

from campaign_runner.ledger import open_ledger, state_from
from campaign_runner.ledger.sqlite import ledger_path
from campaign_runner.webhooks import ingest as ingest_module


def lines(*docs: object) -> str:
    return "".join((d if isinstance(d, str) else json.dumps(d)) + "\n" for d in docs)


GOOD = [
    payload(status("wamid.A1", "sent", T0, ANA)),
    payload(status("wamid.A1", "delivered", T0 + 2, ANA)),
    payload(status("wamid.B2", "failed", T0 + 1, BRUNO, code=131050)),
    payload(status("wamid.C3", "read", T0 + 3, CARLA)),
]


@pytest.fixture
def state(tmp_path) -> Path:
    """A SQLite ledger whose campaign sent three messages (Ana's, Bruno's and Carla's)."""
    folder = tmp_path / "state"
    sent(folder, ("k1", ANA, "wamid.A1"), ("k2", BRUNO, "wamid.B2"), ("k3", CARLA, "wamid.C3"))
    return folder


def ingest(source, state, input: str | None = None):
    return cli(["ingest", source, "--state", state], input=input)


def test_a_good_file_is_ingested_and_summed_up(state, tmp_path):
    file = tmp_path / "webhooks.jsonl"
    file.write_text(lines(*GOOD), encoding="utf-8")
    done = ingest(file, state)
    assert done.exit_code == 0, done.output
    assert done.stdout == (
        f"ingested 4 line(s) from {file}: payloads=4 statuses=4 matched=4 changed=3 "
        "kept_aside=0 matched_later=0 replies=0 preferences=0 suppressed=1 held=none "
        "commits=1 problems=0\n"
    )
    assert done.stderr == ""
    assert outcomes(state, "k1", "k2", "k3") == {"k1": "delivered", "k2": "failed", "k3": "read"}


def test_ingesting_the_same_file_again_changes_nothing(state, tmp_path):
    file = tmp_path / "webhooks.jsonl"
    file.write_text(lines(*GOOD), encoding="utf-8")
    assert ingest(file, state).exit_code == 0
    with sqlite3.connect(ledger_path(state)) as db:
        before = db.execute("SELECT * FROM deliveries ORDER BY key").fetchall()
    again = ingest(file, state)
    assert again.exit_code == 0
    assert " matched=4 changed=0 kept_aside=0 " in again.stdout and " suppressed=0 " in again.stdout
    with sqlite3.connect(ledger_path(state)) as db:
        assert db.execute("SELECT * FROM deliveries ORDER BY key").fetchall() == before


def test_bad_lines_are_located_and_the_rest_is_still_ingested(state, tmp_path):
    file = tmp_path / "webhooks.jsonl"
    file.write_text(
        lines(
            GOOD[0],
            "",  # blank: skipped silently
            "{not json",
            payload(status("wamid.B2", "failed", T0, BRUNO, code=131050) | {"timestamp": "x"}),
            "   ",
            "[1, 2]",
            GOOD[3],
        ),
        encoding="utf-8",
    )
    done = ingest(file, state)
    assert done.exit_code == 1
    assert done.stderr.splitlines() == [
        f"{file}:3: not a JSON document: skipped (ingest reads one payload a line, JSON "
        "Lines; compact a pretty-printed file first, e.g. `jq -c . FILE`)",
        f"{file}:4: entry[0].changes[0].value.statuses[0].timestamp: expected Unix "
        "seconds, got 'x'",
        f"{file}:6: $: expected a JSON object, got a list",
        "skipped 1 line(s) and 2 payload part(s) that could not be read (listed above); "
        "everything else was ingested",
    ]
    assert " payloads=4 statuses=2 matched=2 " in done.stdout and "problems=2" in done.stdout
    assert outcomes(state, "k1", "k2", "k3") == {"k1": "sent", "k2": "accepted", "k3": "read"}


def test_lines_not_utf8_or_too_long_are_skipped_without_being_kept(state, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_module, "MAX_LINE_BYTES", 2_000)
    file = tmp_path / "webhooks.jsonl"
    long_line = json.dumps(payload(status("wamid.C3", "read", T0, CARLA), pad="y" * 5_000))
    file.write_bytes(
        b"\xff\xfe"
        + json.dumps(GOOD[2]).encode("utf-16-le")
        + b"\n"
        + long_line.encode()
        + b"\n"
        + json.dumps(GOOD[0]).encode()  # the last line, without a newline
    )
    done = ingest(file, state)
    assert done.exit_code == 1
    assert done.stderr.splitlines()[:2] == [
        f"{file}:1: not UTF-8 text: skipped",
        f"{file}:2: longer than 2000 bytes: skipped",
    ]
    assert outcomes(state, "k1", "k2", "k3") == {"k1": "sent", "k2": "accepted", "k3": "accepted"}


def test_a_logged_request_with_the_payload_under_body_is_read(state, tmp_path):
    file = tmp_path / "requests.jsonl"
    file.write_text(
        lines(
            {"path": "/webhook", "body": GOOD[0]},
            {"httpMethod": "POST", "body": json.dumps(GOOD[2])},  # the raw body, as text
            {"body": "c2VjcmV0", "isBase64Encoded": True},
            {"body": 42},
        ),
        encoding="utf-8",
    )
    done = ingest(file, state)
    assert done.exit_code == 1
    assert done.stderr.splitlines()[:2] == [
        f"{file}:3: body: not a JSON document (is it base64? decode it first): skipped",
        f"{file}:4: body: expected the payload (an object or its JSON text): skipped",
    ]
    assert outcomes(state, "k1", "k2") == {"k1": "sent", "k2": "failed"}


def test_stdin_is_read_with_a_dash(state):
    done = ingest("-", state, input=lines(GOOD[1], "oops"))
    assert done.exit_code == 1
    assert done.stderr.splitlines()[0].startswith("<stdin>:2: not a JSON document: skipped")
    assert done.stdout.startswith("ingested 2 line(s) from <stdin>: payloads=1 statuses=1 ")
    assert outcomes(state, "k1") == {"k1": "delivered"}


def test_a_real_pipe_into_the_command(state):
    done = subprocess.run(
        [sys.executable, "-m", "campaign_runner", "ingest", "-", "--state", str(state)],
        input=lines(*GOOD),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert outcomes(state, "k3") == {"k3": "read"}


def test_a_file_over_several_batches_is_all_ingested(state, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_module, "INGEST_BATCH_LINES", 2)
    file = tmp_path / "webhooks.jsonl"
    file.write_text(lines(*GOOD, "bad", GOOD[0]), encoding="utf-8")
    done = ingest(file, state)
    assert done.exit_code == 1
    assert " payloads=5 statuses=5 matched=5 changed=3 " in done.stdout
    assert " commits=3 " in done.stdout  # 2 + 2 + 1 lines
    assert outcomes(state, "k1", "k2", "k3") == {"k1": "delivered", "k2": "failed", "k3": "read"}


def test_statuses_kept_aside_are_matched_once_the_delivery_is_there(tmp_path):
    state = tmp_path / "state"
    file = tmp_path / "webhooks.jsonl"
    file.write_text(lines(GOOD[3]), encoding="utf-8")
    first = ingest(file, state)
    assert first.exit_code == 0 and " matched=0 changed=0 kept_aside=1 " in first.stdout
    sent(state, ("k3", CARLA, "wamid.C3"))
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    later = ingest(tmp_path / "empty.jsonl", state)
    assert later.exit_code == 0
    assert re.search(r" matched=0 changed=1 kept_aside=0 matched_later=1 ", later.stdout)
    assert outcomes(state, "k3") == {"k3": "read"}


@pytest.mark.parametrize("what", ["missing", "folder"])
def test_a_file_that_cannot_be_read_is_exit_2_and_nothing_is_created(tmp_path, what):
    source = tmp_path / ("nope.jsonl" if what == "missing" else "a-folder")
    if what == "folder":
        source.mkdir()
    done = ingest(source, tmp_path / "state")
    assert done.exit_code == 2
    reason = "No such file or directory" if what == "missing" else "Is a directory"
    assert done.stderr == f"{source}: cannot be read ({reason}); nothing was ingested\n"
    assert done.stdout == "" and not (tmp_path / "state").exists()


def test_a_ledger_that_cannot_be_opened_is_exit_2(tmp_path):
    file = tmp_path / "webhooks.jsonl"
    file.write_text(lines(*GOOD), encoding="utf-8")
    state = tmp_path / "state"
    state.mkdir()
    ledger_path(state).write_bytes(b"")  # truncated: never a reason to start afresh
    done = ingest(file, state)
    assert done.exit_code == 2
    assert done.stderr.startswith(f"{ledger_path(state)}: this ledger is empty or is not a ")
    assert done.stdout == ""


# ---- the same on PostgreSQL ----------------------------------------------------------------


def test_ingest_on_a_postgresql_ledger(postgres_url, tmp_path):
    import psycopg

    journal = open_ledger(state_from(postgres_url), readonly=False)
    assert journal is not None
    journal.close()
    with psycopg.connect(postgres_url) as db:
        for key, phone, wamid in (("k1", ANA, "wamid.A1"), ("k2", BRUNO, "wamid.B2")):
            db.execute(
                "INSERT INTO deliveries (campaign, key, row, phone, status, message_id,"
                " updated_at) VALUES (%s, %s, 1, %s, 'sent', %s, '2026-09-21T10:00:00Z')",
                (CAMPAIGN, key, phone, wamid),
            )
    file = tmp_path / "webhooks.jsonl"
    file.write_text(lines(*GOOD, "bad line"), encoding="utf-8")
    done = ingest(file, postgres_url)
    assert done.exit_code == 1
    assert done.stderr.splitlines()[0] == (
        f"{file}:5: not a JSON document: skipped (ingest reads one payload a line, JSON "
        "Lines; compact a pretty-printed file first, e.g. `jq -c . FILE`)"
    )
    assert " payloads=4 statuses=4 matched=3 changed=2 kept_aside=1 " in done.stdout
    assert " suppressed=1 " in done.stdout
    assert outcomes(postgres_url, "k1", "k2") == {"k1": "delivered", "k2": "failed"}
    again = ingest(file, postgres_url)
    assert again.exit_code == 1 and " matched=3 changed=0 " in again.stdout
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT phone, kind FROM suppressions").fetchall() == [
            (BRUNO, "opted-out")
        ]
        assert db.execute("SELECT message_id FROM unmatched_statuses").fetchall() == [("wamid.C3",)]


def test_a_ledger_that_fails_mid_file_stops_with_exit_3_and_says_what_is_in(
    postgres_url, tmp_path, monkeypatch
):
    monkeypatch.setattr(ingest_module, "INGEST_BATCH_LINES", 2)
    journal = open_ledger(state_from(postgres_url), readonly=False)
    assert journal is not None
    journal.close()
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as db:  # a row the database refuses
        db.execute(
            "ALTER TABLE unmatched_statuses ADD CONSTRAINT refuse_z9"
            " CHECK (message_id <> 'wamid.Z9')"
        )
    refused = payload(status("wamid.Z9", "failed", T0, ANA, code=131026))
    file = tmp_path / "webhooks.jsonl"
    file.write_text(lines(GOOD[0], GOOD[1], refused, GOOD[3]), encoding="utf-8")
    done = ingest(file, postgres_url)
    assert done.exit_code == 3
    assert done.stderr.startswith(f"{file}:3: cannot write the ledger postgresql://")
    assert done.stderr.rstrip().endswith(
        "stopped; the lines before line 3 are in the ledger. Ingest the file again once the "
        "ledger is fixed (what is in it already changes nothing)"
    )
    with psycopg.connect(postgres_url) as db:
        kept = db.execute("SELECT message_id, status FROM unmatched_statuses ORDER BY 2").fetchall()
    assert kept == [("wamid.A1", "delivered"), ("wamid.A1", "sent")]


def test_a_nul_character_is_a_located_problem_and_the_rest_is_ingested(tmp_path):
    state = tmp_path / "state"
    nul = payload(status("wamid.Z9", "failed", T0, ANA, code=131026))
    nul["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["title"] = "bad\u0000"
    file = tmp_path / "webhooks.jsonl"
    file.write_text(lines(GOOD[0], nul, GOOD[1]), encoding="utf-8")
    done = ingest(file, state)  # PostgreSQL could never store it: refused on both ledgers
    assert done.exit_code == 1
    assert (
        f"{file}:2: entry[0].changes[0].value.statuses[0].errors[0].title: contains a NUL character"
    ) in done.stderr
    with sqlite3.connect(ledger_path(state)) as db:
        kept = {row[0] for row in db.execute("SELECT message_id FROM unmatched_statuses")}
    assert "wamid.Z9" not in kept and kept
