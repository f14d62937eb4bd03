"""Rules across campaigns, kept in the ledger: the suppression list, a frequency cap per person
and the daily budget of unique recipients. Each story runs on the SQLite ledger (a folder)
and the key ones on PostgreSQL too (`--state postgresql://...`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from helpers import cli, env_for, read_report, start_process, write_campaign

from campaign_runner.sandbox import Faults

ANA, BIA, CAIO, DORA, EVA = (f"+55119700000{i:02d}" for i in range(5))
TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path):
    """The --state value: a folder (SQLite) or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def sqlite_ledger(tmp_path):
    return str(tmp_path / "ledger")


def people(*phones: str) -> list[dict]:
    return [{"phone": phone, "name": f"P{i}"} for i, phone in enumerate(phones)]


def campaign(tmp_path, gateway, name: str, phones, **send):
    folder = tmp_path / name
    sections = {"send": send} if send else {}
    return write_campaign(
        folder, name=name, rows=people(*phones), gateway_url=gateway.messages_url, **sections
    )


def run(path, tmp_path, state, *extra):
    report = path.parent / f"report-{len(list(path.parent.glob('report-*.csv')))}.csv"
    result = cli(["run", path, "--state", state, "--report", report, *extra], env=env_for(tmp_path))
    summary = json.loads(report.with_suffix(".json").read_text()) if report.exists() else None
    rows = read_report(report) if report.exists() else []
    return result, {row["phone"]: row for row in rows}, summary


def suppress(state, *args, tmp_path):
    return cli(["suppress", *args, "--state", state], env=env_for(tmp_path))


def listed(state, tmp_path) -> dict[str, dict]:
    result = suppress(state, "list", "--json", tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    return {entry["phone"]: entry for entry in json.loads(result.stdout)}


def received(gateway) -> list[str]:
    return [message["to"] for message in gateway.messages()]


# ---- the suppression list ----------------------------------------------------------------


def test_suppress_add_list_remove(ledger, tmp_path):
    added = suppress(
        ledger,
        "add",
        ANA,
        "11 97000-0001",
        "--default-region",
        "BR",
        "--reason",
        "asked by phone",
        tmp_path=tmp_path,
    )
    assert added.exit_code == 0, added.output
    assert "added 2 number(s); 0 already on the list" in added.output
    entries = listed(ledger, tmp_path)
    assert sorted(entries) == [ANA, BIA]
    assert entries[BIA]["kind"] == "manual" and entries[BIA]["reason"] == "asked by phone"
    assert entries[BIA]["campaign"] is None and entries[BIA]["added_at"].startswith(TODAY)

    again = suppress(ledger, "add", ANA, tmp_path=tmp_path)
    assert "added 0 number(s); 1 already on the list" in again.output
    assert listed(ledger, tmp_path)[ANA]["reason"] == "asked by phone"  # the first entry stands

    removed = suppress(ledger, "remove", ANA, CAIO, tmp_path=tmp_path)
    assert removed.exit_code == 0 and "removed 1 number(s); 1 not on the list" in removed.output
    assert sorted(listed(ledger, tmp_path)) == [BIA]
    text = suppress(ledger, "list", tmp_path=tmp_path)
    assert (
        text.stdout.startswith(f"{BIA}\tmanual\t{TODAY}") and "\tops\tasked by phone" in text.stdout
    )


def test_listing_a_ledger_that_does_not_exist_yet_creates_nothing(tmp_path):
    state = tmp_path / "nothing-here"
    assert listed(str(state), tmp_path) == {}
    assert not state.exists()


@pytest.mark.parametrize("bad", ["123", "abc", "5.51E+12", ""])
def test_an_unreadable_number_changes_nothing(bad, sqlite_ledger, tmp_path):
    result = suppress(sqlite_ledger, "add", ANA, bad, tmp_path=tmp_path)
    assert result.exit_code == 2
    assert "PHONE: " in result.output and "nothing was changed" in result.output
    assert listed(sqlite_ledger, tmp_path) == {}


def test_import_reads_a_list_as_strictly_as_an_opt_out_list(ledger, tmp_path):
    good = tmp_path / "optouts.csv"
    good.write_text(f"name,phone\nAna,{ANA}\nBia,(11) 97000-0001\n", encoding="utf-8")
    result = cli(
        ["suppress", "import", good, "--default-region", "BR", "--state", ledger],
        env=env_for(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "added 2 number(s)" in result.output
    entries = listed(ledger, tmp_path)
    assert sorted(entries) == [ANA, BIA] and entries[ANA]["reason"] == "imported from optouts.csv"

    bad = tmp_path / "bad.txt"
    bad.write_text(f"{CAIO}\n123\n{DORA}\n5.51E+12\n", encoding="utf-8")
    refused = cli(["suppress", "import", bad, "--state", ledger], env=env_for(tmp_path))
    assert refused.exit_code == 2
    assert f"{bad}:2: opt-out cannot be read: '123' is not a valid phone number" in refused.output
    assert f"{bad}:4: opt-out cannot be read: '5.51E+12'" in refused.output
    assert sorted(listed(ledger, tmp_path)) == [ANA, BIA]  # nothing of the bad file


def test_a_suppressed_person_is_never_sent_in_any_campaign(ledger, tmp_path, sandbox):
    assert (
        suppress(ledger, "add", BIA, "--reason", "lawyer's letter", tmp_path=tmp_path).exit_code
        == 0
    )
    first = campaign(tmp_path, sandbox, "first", [ANA, BIA])
    second = campaign(tmp_path, sandbox, "second", [BIA, CAIO])
    for path in (first, second):
        result, rows, summary = run(path, tmp_path, ledger)
        assert result.exit_code == 0, result.output
        assert rows[BIA]["status"] == "suppressed"
        assert rows[BIA]["error"] == (
            f"on the suppression list: lawyer's letter (added {TODAY} by ops)"
        )
        assert summary["counts"]["suppressed"] == 1 and summary["plan"]["counts"] == {
            "suppressed": 1
        }
        assert "suppressed=1" in result.output  # the start line's plan figures
    assert sorted(received(sandbox)) == [ANA, CAIO]
    dry_result, dry_rows, _ = run(first, tmp_path, ledger, "--dry-run")
    assert dry_rows[BIA]["status"] == "suppressed" and dry_result.exit_code == 0


def test_meta_131050_and_131026_put_the_number_on_the_list(ledger, tmp_path, sandbox_factory):
    gateway = sandbox_factory(Faults(script={ANA: ["131050"], BIA: ["131026"]}))
    first = campaign(tmp_path, gateway, "first", [ANA, BIA, CAIO])
    result, rows, _ = run(first, tmp_path, ledger)
    assert result.exit_code == 1  # failed is failed, in this run
    assert [rows[p]["status"] for p in (ANA, BIA, CAIO)] == ["failed", "failed", "sent"]
    entries = listed(ledger, tmp_path)
    assert sorted(entries) == [ANA, BIA]
    assert entries[ANA]["kind"] == "opted-out" and entries[ANA]["campaign"] == "first"
    assert entries[ANA]["reason"] == "stopped marketing messages (Meta 131050)"
    assert entries[BIA]["kind"] == "not-on-whatsapp"
    assert entries[BIA]["reason"] == "not a WhatsApp user (Meta 131026)"

    second = campaign(tmp_path, gateway, "second", [ANA, BIA, DORA])
    result, rows, _ = run(second, tmp_path, ledger)
    assert result.exit_code == 0, result.output
    assert rows[ANA]["status"] == rows[BIA]["status"] == "suppressed"
    assert rows[ANA]["error"] == (
        f"on the suppression list: stopped marketing messages (Meta 131050) (added {TODAY} "
        "by campaign first)"
    )
    assert sorted(received(gateway)) == [CAIO, DORA]

    retried, rows, _ = run(first, tmp_path, ledger, "--retry-failed")  # the list still holds
    assert retried.exit_code == 0 and rows[ANA]["status"] == rows[BIA]["status"] == "suppressed"
    assert suppress(ledger, "remove", ANA, BIA, tmp_path=tmp_path).exit_code == 0
    third = campaign(tmp_path, gateway, "third", [ANA, BIA])
    result, rows, _ = run(third, tmp_path, ledger)
    assert result.exit_code == 0 and sorted(received(gateway)) == [ANA, BIA, CAIO, DORA]


def test_a_rehearsal_learns_nothing_from_its_sandbox(sqlite_ledger, tmp_path, sandbox_factory):
    gateway = sandbox_factory(Faults(script={ANA: ["131050"]}))
    path = campaign(tmp_path, gateway, "first", [ANA])
    gateway.set_faults(Faults())
    # The in-process sandbox of --sandbox answers what it is told; nothing real was learned.
    result, rows, _ = run(path, tmp_path, sqlite_ledger, "--sandbox")
    assert result.exit_code == 0 and rows[ANA]["status"] == "sent"
    assert listed(sqlite_ledger, tmp_path) == {}


# ---- the frequency cap -------------------------------------------------------------------


def test_two_campaigns_sharing_a_person_under_a_cap_send_one_message(ledger, tmp_path, sandbox):
    first = campaign(tmp_path, sandbox, "first", [ANA, BIA], frequency_cap="1/24h")
    second = campaign(tmp_path, sandbox, "second", [ANA, CAIO], frequency_cap="1/24h")
    result, rows, _ = run(first, tmp_path, ledger)
    assert result.exit_code == 0 and {r["status"] for r in rows.values()} == {"sent"}
    before = datetime.now(UTC)

    for attempt in (1, 2):  # the next run plans the deferred row again: still deferred
        result, rows, summary = run(second, tmp_path, ledger)
        assert result.exit_code == 0, result.output
        expected = ["deferred", "sent"] if attempt == 1 else ["deferred", "already-sent"]
        assert [rows[ANA]["status"], rows[CAIO]["status"]] == expected
        until = datetime.fromisoformat(rows[ANA]["error"].split(" ")[2].rstrip(":"))
        assert before - timedelta(seconds=30) < until - timedelta(hours=24) <= before
        assert rows[ANA]["error"].endswith(": frequency cap 1/24h (1 message(s) in the window)")
        assert summary["plan"]["counts"]["deferred"] == 1
        assert summary["plan"]["deferred_until"] == rows[ANA]["error"].split(" ")[2].rstrip(":")
        assert "deferred=1" in result.output and "deferred_until=" in result.output
    assert sorted(received(sandbox)) == [ANA, BIA, CAIO]
    status = json.loads(
        cli(["status", second, "--state", ledger, "--json"], env=env_for(tmp_path)).stdout
    )
    assert status["counts"] == {"sent": 1}  # the deferred row is not recorded as failed


def test_the_cap_counts_this_campaigns_own_rows_to_one_person(sqlite_ledger, tmp_path, sandbox):
    rows = [
        {"phone": ANA, "name": "Ana", "order": "1"},
        {"phone": ANA, "name": "Ana", "order": "2"},
        {"phone": ANA, "name": "Ana", "order": "3"},
    ]
    path = write_campaign(
        tmp_path / "orders",
        rows=rows,
        gateway_url=sandbox.messages_url,
        recipients={"key": "[order]"},
        send={"frequency_cap": "2/7d"},
    )
    result, _, summary = run(path, tmp_path, sqlite_ledger)
    assert result.exit_code == 0, result.output
    assert summary["counts"] == {"sent": 2, "deferred": 1}
    assert received(sandbox) == [ANA, ANA]


@pytest.mark.parametrize(
    ("cap", "expected"),
    [
        ("1/24", "send.frequency_cap"),
        ("0/24h", "send.frequency_cap"),
        ("1/400d", "'1/400d': the window is at most 366 days"),
        ("5000/1d", "'5000/1d': at most 1000 messages per window"),
    ],
)
def test_a_frequency_cap_that_cannot_be_read_is_refused(cap, expected, tmp_path, sandbox):
    path = campaign(tmp_path, sandbox, "capped", [ANA], frequency_cap=cap)
    result = cli(["validate", path], env=env_for(tmp_path))
    assert result.exit_code == 2 and expected in result.output
    line = path.read_text().splitlines().index(f"  frequency_cap: {cap}") + 1
    assert f"{path}:{line}:" in result.output
    ran, _, _ = run(path, tmp_path, str(tmp_path / "ledger"))
    assert ran.exit_code == 2 and sandbox.messages() == []


# ---- the daily budget --------------------------------------------------------------------


def budget(state, *args, tmp_path):
    return cli(["budget", *args, "--state", state], env=env_for(tmp_path))


def test_the_budget_defers_new_people_past_it(ledger, tmp_path, sandbox):
    assert budget(ledger, "set", "3", tmp_path=tmp_path).exit_code == 0
    path = campaign(tmp_path, sandbox, "first", [ANA, BIA, CAIO, DORA, EVA])
    result, rows, summary = run(path, tmp_path, ledger)
    assert result.exit_code == 0, result.output
    assert [rows[p]["status"] for p in (ANA, BIA, CAIO, DORA, EVA)] == (
        ["sent"] * 3 + ["deferred"] * 2
    )
    assert "the daily budget of unique recipients is used up" in rows[DORA]["error"]
    assert summary["plan"]["counts"] == {"deferred": 2} and summary["plan"]["to_send"] == 3
    assert summary["plan"]["deferred_until"] is not None

    again, rows, summary = run(path, tmp_path, ledger)  # the same window: nothing more
    assert again.exit_code == 0
    assert summary["counts"] == {"already-sent": 3, "deferred": 2}
    assert len(sandbox.messages()) == 3

    # Someone reached today costs no new place; a new person still waits.
    other = campaign(tmp_path, sandbox, "other", [ANA, EVA])
    result, rows, _ = run(other, tmp_path, ledger)
    assert [rows[ANA]["status"], rows[EVA]["status"]] == ["sent", "deferred"]
    assert sorted(received(sandbox)) == [ANA, ANA, BIA, CAIO]

    shown = json.loads(budget(ledger, "show", "--json", tmp_path=tmp_path).stdout)
    assert shown["limit"] == 3 and shown["used_24h"] == 3 and shown["remaining"] == 0
    assert budget(ledger, "set", "unlimited", tmp_path=tmp_path).exit_code == 0
    result, rows, _ = run(path, tmp_path, ledger)
    assert [rows[DORA]["status"], rows[EVA]["status"]] == ["sent", "sent"]


def test_a_budget_that_cannot_be_read_is_refused(sqlite_ledger, tmp_path):
    for bad in ("1.5", "lots", "2,000", "99999999999"):
        result = budget(sqlite_ledger, "set", bad, tmp_path=tmp_path)
        assert result.exit_code == 2 and "is not a budget" in result.output
    shown = budget(sqlite_ledger, "show", tmp_path=tmp_path)
    assert "daily budget: unlimited" in shown.output


def test_rehearsals_neither_count_toward_nor_claim_the_budget(sqlite_ledger, tmp_path, sandbox):
    assert budget(sqlite_ledger, "set", "1", tmp_path=tmp_path).exit_code == 0
    path = campaign(tmp_path, sandbox, "first", [ANA, BIA])
    rehearsal, rows, _ = run(path, tmp_path, sqlite_ledger, "--sandbox")
    assert [rows[ANA]["status"], rows[BIA]["status"]] == ["sent", "deferred"]
    result, rows, _ = run(path, tmp_path, sqlite_ledger)
    assert [rows[ANA]["status"], rows[BIA]["status"]] == ["sent", "deferred"]
    assert received(sandbox) == [ANA]


def test_two_campaigns_at_once_never_go_over_the_budget(ledger, tmp_path, sandbox):
    assert budget(ledger, "set", "4", tmp_path=tmp_path).exit_code == 0
    first = campaign(tmp_path, sandbox, "first", [f"+5511971{i:06d}" for i in range(30)])
    second = campaign(tmp_path, sandbox, "second", [f"+5511972{i:06d}" for i in range(30)])
    env = {**env_for(tmp_path), "CAMPAIGN_STATE": ledger}
    processes = [
        start_process(
            ["run", path, "--state", ledger, "--yes", "--report", path.parent / "r.csv"], env
        )
        for path in (first, second)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert len(sandbox.messages()) == 4
    counts = [json.loads((p.parent / "r.json").read_text())["counts"] for p in (first, second)]
    assert sum(c.get("sent", 0) for c in counts) == 4
    assert sum(c.get("deferred", 0) for c in counts) == 56
