"""Nothing lost when things go wrong around a run: its outputs never clobber its inputs, a
damaged journal is never a fresh start, and a full disk ends in an honest record."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import APIKEY_ENV, cli, env_for, read_report, write_campaign

from campaign_runner.sandbox import Faults


def people(n: int) -> list[dict]:
    return [{"phone": f"+55119{70000000 + i:08d}", "name": f"Pessoa {i}"} for i in range(n)]


def run(path, tmp_path, report, *extra):
    return cli(["run", path, "--report", report, *extra], env=env_for(tmp_path))


def journal_of(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.sqlite"


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs of the given size in KiB (root only); unmounted after the test."""
    mounted: list[Path] = []

    def mount(name: str, kib: int, *options: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("a small file system to fill needs root (mount -t tmpfs)")
        folder = tmp_path / name
        folder.mkdir()
        opts = ",".join([f"size={kib}k", *options])
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)])
        if done.returncode != 0:
            pytest.skip("this machine cannot mount a tmpfs")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)])


# ---- outputs never clobber inputs --------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("recipients.csv", "the recipients file"),
        ("campaign.yaml", "the campaign file"),
        ("optouts.csv", "the exclusion list"),
        ("state/ledger.sqlite", "the ledger"),
        ("state/ledger.sqlite-wal", "the ledger's write-ahead log"),
        ("state/test-campaign.lock", "the campaign's lock"),
    ],
)
def test_the_report_is_never_one_of_the_runs_inputs(sandbox, tmp_path, target, named):
    (tmp_path / "optouts.csv").write_text("phone\n+5511900000000\n")
    path = write_campaign(
        tmp_path,
        rows=people(3),
        gateway_url=sandbox.messages_url,
        recipients={"exclude": ["optouts.csv"]},
    )
    assert run(path, tmp_path, tmp_path / "first.csv").exit_code == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    sent_before = len(sandbox.messages())

    result = run(path, tmp_path, tmp_path / target)

    assert result.exit_code == 2
    assert f"the report is {named}" in result.output
    assert "a run never writes over its inputs" in result.output
    assert len(sandbox.messages()) == sent_before
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if p in before} == before  # byte for byte


def test_a_link_to_an_input_is_the_input(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(2), gateway_url=sandbox.messages_url)
    (tmp_path / "sym.csv").symlink_to(tmp_path / "recipients.csv")
    os.link(tmp_path / "recipients.csv", tmp_path / "hard.csv")
    original = (tmp_path / "recipients.csv").read_bytes()
    for link in ("sym.csv", "hard.csv"):
        result = run(path, tmp_path, tmp_path / link)
        assert result.exit_code == 2 and "the report is the recipients file" in result.output
    assert (tmp_path / "recipients.csv").read_bytes() == original
    assert sandbox.messages() == []


def test_a_report_ending_in_json_would_be_overwritten_by_its_summary(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(2), gateway_url=sandbox.messages_url)
    result = run(path, tmp_path, tmp_path / "r.json")
    assert result.exit_code == 2
    assert "the JSON summary is also the report" in result.output
    assert sandbox.messages() == [] and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("report", "says"),
    [("", "is empty: give a file name"), (".", "is a folder: give a file name")],
)
def test_a_report_path_that_is_no_file_is_a_usage_error(sandbox, tmp_path, report, says):
    path = write_campaign(tmp_path, rows=people(2), gateway_url=sandbox.messages_url)
    result = run(path, tmp_path, report)
    assert result.exit_code == 2 and says in result.output
    assert sandbox.messages() == []


def test_an_unwritable_report_place_is_refused_before_anything_is_sent(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(2), gateway_url=sandbox.messages_url)
    result = run(path, tmp_path, tmp_path / "recipients.csv" / "report.csv")
    assert result.exit_code == 2
    assert "cannot write the report: a part of its folder is a file" in result.output
    assert "nothing was sent" in result.output
    assert sandbox.messages() == []
    assert not journal_of(tmp_path).exists() or "sending" not in journal_text(tmp_path)


def journal_text(tmp_path: Path) -> str:
    db = sqlite3.connect(journal_of(tmp_path))
    try:
        return " ".join(status for (status,) in db.execute("SELECT status FROM deliveries"))
    finally:
        db.close()


def test_a_preview_page_never_overwrites_an_input(tmp_path):
    path = write_campaign(tmp_path, rows=people(2))
    original = path.read_bytes()
    result = cli(["preview", path, "--format", "html", "--output", path], env=env_for(tmp_path))
    assert result.exit_code == 2 and "the preview page is the campaign file" in result.output
    assert path.read_bytes() == original


# ---- a damaged journal is never a fresh start ------------------------------------------


def damage_emptied(journal: Path) -> None:
    journal.write_bytes(b"")


def damage_tables_dropped(journal: Path) -> None:
    db = sqlite3.connect(journal)
    db.executescript("DROP TABLE deliveries; DROP TABLE runs;")
    db.close()


def damage_truncated(journal: Path) -> None:
    data = journal.read_bytes()
    journal.write_bytes(data[: len(data) // 2])


def damage_a_page_in_the_middle(journal: Path) -> None:
    data = bytearray(journal.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle : middle + page] = b"\xff" * page  # sqlite_master (page 1) stays whole
    journal.write_bytes(bytes(data))


def damage_garbage(journal: Path) -> None:
    journal.write_bytes(b"not a database at all, just some bytes\n" * 200)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (damage_emptied, "this ledger is empty or is not a campaign-runner ledger"),
        (damage_tables_dropped, "this ledger is empty or is not a campaign-runner ledger"),
        (damage_truncated, "the ledger cannot be read"),
        (damage_a_page_in_the_middle, "the ledger cannot be read"),
        (damage_garbage, "the ledger cannot be read (file is not a database)"),
    ],
)
def test_a_damaged_journal_stops_every_command_and_sends_nothing(sandbox, tmp_path, damage, says):
    path = write_campaign(tmp_path, rows=people(300), gateway_url=sandbox.messages_url)
    assert run(path, tmp_path, tmp_path / "r1.csv").exit_code == 0
    journal = journal_of(tmp_path)
    for leftover in ("-wal", "-shm"):
        journal.with_name(journal.name + leftover).unlink(missing_ok=True)
    damage(journal)
    damaged = journal.read_bytes()

    for command in (
        ["run", path, "--report", tmp_path / "r2.csv"],
        ["run", path, "--report", tmp_path / "r3.csv", "--dry-run"],
        ["status", path],
    ):
        result = cli(command, env=env_for(tmp_path))
        assert result.exit_code == 2, command
        assert str(journal) in result.output and says in result.output
        assert "Traceback" not in result.output

    assert len(sandbox.messages()) == 300  # nobody was sent the campaign a second time
    assert journal.read_bytes() == damaged  # and the evidence is left as it was


def test_a_journal_on_a_read_only_file_system_is_refused(sandbox, tmp_path, tmpfs):
    state = tmpfs("state", 4096)
    path = write_campaign(tmp_path, rows=people(3), gateway_url=sandbox.messages_url)
    env = {**env_for(tmp_path), "CAMPAIGN_STATE_DIR": str(state)}
    assert cli(["run", path, "--report", tmp_path / "r1.csv"], env=env).exit_code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
    write_campaign(tmp_path, rows=people(5), gateway_url=sandbox.messages_url)

    result = cli(["run", path, "--report", tmp_path / "r2.csv"], env=env)

    assert result.exit_code == 2
    assert "Read-only file system" in result.output and "nothing was sent" in result.output
    assert "Traceback" not in result.output
    assert len(sandbox.messages()) == 3


# ---- full disks and broken runs end in an honest record ------------------------------------


def test_a_full_disk_under_the_journal_stops_the_run_and_the_next_run_sends_no_one_twice(
    sandbox, tmp_path, tmpfs
):
    state = tmpfs("state", 240)  # a fresh ledger (migration 5) is 136 KiB: room to start
    path = write_campaign(tmp_path, rows=people(3000), gateway_url=sandbox.messages_url)
    env = {**env_for(tmp_path), "CAMPAIGN_STATE_DIR": str(state)}

    first = cli(["run", path, "--report", tmp_path / "r1.csv"], env=env)

    assert first.exit_code == 3
    assert "cannot write the ledger" in first.output and "full" in first.output
    assert "cannot rollback" not in first.output and "Traceback" not in first.output
    summary = json.loads((tmp_path / "r1.json").read_text())
    assert summary["exit_code"] == 3 and "cannot write the ledger" in summary["reason"]
    rows = read_report(tmp_path / "r1.csv")
    assert len(rows) == 3000 and rows[-1]["status"] == "not-attempted"
    sent_first = len(sandbox.messages())
    assert 0 < sent_first < 3000

    subprocess.run(["mount", "-o", "remount,size=16m", str(state)], check=True)
    second = cli(["run", path, "--report", tmp_path / "r2.csv"], env=env)

    assert second.exit_code in (0, 1)  # 1 when an outcome could not be recorded: unknown
    counts: dict[str, int] = {}
    for message in sandbox.messages():
        counts[message["to"]] = counts.get(message["to"], 0) + 1
    assert set(counts.values()) == {1}  # nobody twice
    rows = read_report(tmp_path / "r2.csv")
    unknown = {row["phone"] for row in rows if row["status"] == "unknown"}
    assert len(unknown) <= 1 and "not-attempted" not in {row["status"] for row in rows}
    # Nobody lost: each was received, or is reported unknown (in doubt) for a person to check.
    assert set(counts) | unknown == {person["phone"] for person in people(3000)}


def test_a_full_disk_under_the_report_stops_the_run_and_the_next_run_continues(
    sandbox, tmp_path, tmpfs
):
    reports = tmpfs("reports", 64)
    path = write_campaign(tmp_path, rows=people(3000), gateway_url=sandbox.messages_url)

    first = run(path, tmp_path, reports / "r1.csv")

    assert first.exit_code == 3
    assert "cannot write the report" in first.output and "No space left" in first.output
    assert "Traceback" not in first.output
    sent_first = len(sandbox.messages())
    assert 0 < sent_first < 3000

    second = run(path, tmp_path, tmp_path / "r2.csv")

    assert second.exit_code == 0
    statuses = [row["status"] for row in read_report(tmp_path / "r2.csv")]
    assert statuses.count("already-sent") == sent_first
    assert statuses.count("sent") == 3000 - sent_first
    assert len(sandbox.messages()) == 3000


def test_an_unknown_outcome_keeps_its_reason_on_the_next_run(sandbox_factory, tmp_path):
    phone = "+5511970000001"
    gateway = sandbox_factory(Faults(script={phone: ["lost"]}))
    path = write_campaign(tmp_path, rows=people(3), gateway_url=gateway.messages_url)

    assert run(path, tmp_path, tmp_path / "r1.csv").exit_code == 1
    first = {row["phone"]: row for row in read_report(tmp_path / "r1.csv")}
    assert first[phone]["status"] == "unknown"
    assert "no answer after the request was sent" in first[phone]["error"]

    assert run(path, tmp_path, tmp_path / "r2.csv").exit_code == 1
    second = {row["phone"]: row for row in read_report(tmp_path / "r2.csv")}
    assert second[phone]["status"] == "unknown"
    assert "no answer after the request was sent" in second[phone]["error"]
    assert "--resend-unknown" in second[phone]["error"]


CRASH_ON_THIRD_ROW = """
import sys
from campaign_runner import delivery
original = delivery.Delivery.deliver
async def deliver(self, sender, connection, item):
    if item.seq == 2:
        raise ZeroDivisionError("a bug in the runner")
    return await original(self, sender, connection, item)
delivery.Delivery.deliver = deliver
from campaign_runner.cli import main
sys.argv = ["campaign", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("debug", [False, True])
def test_a_run_broken_off_by_a_bug_is_recorded_as_crashed(sandbox, tmp_path, debug):
    """A bug is provoked on purpose (the third row's delivery raises): the record says so."""
    path = write_campaign(tmp_path, rows=people(5), gateway_url=sandbox.messages_url)
    env = {**os.environ, **env_for(tmp_path), **({"CAMPAIGN_DEBUG": "1"} if debug else {})}
    done = subprocess.run(
        [sys.executable, "-c", CRASH_ON_THIRD_ROW, "run", str(path), "--report", "r.csv"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 70
    assert "crashed: ZeroDivisionError" in done.stdout
    assert ("Traceback" in done.stderr) is debug
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["exit_code"] == 70 and summary["reason"].startswith("crashed")
    db = sqlite3.connect(journal_of(tmp_path))
    (exit_code, reason) = db.execute("SELECT exit_code, reason FROM runs").fetchone()
    db.close()
    assert exit_code == 70 and reason.startswith("crashed: ZeroDivisionError")
    assert env[APIKEY_ENV] not in done.stdout + done.stderr


# ---- one campaign, two state folders -----------------------------------------------------


def test_a_second_state_folder_for_the_same_campaign_is_warned_about(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(2), gateway_url=sandbox.messages_url)
    env = env_for(tmp_path)
    first = cli(["run", path, "--report", tmp_path / "a.csv", "--state", tmp_path / "a"], env=env)
    assert first.exit_code == 0 and "also has a ledger" not in first.output

    second = cli(["run", path, "--report", tmp_path / "b.csv", "--state", tmp_path / "b"], env=env)

    assert second.exit_code == 0
    assert f"also has a ledger at {tmp_path / 'a' / 'ledger.sqlite'}" in second.output
    assert "may send the campaign twice" in second.output
    status = cli(["status", path, "--state", tmp_path / "a", "--json"], env=env)
    assert "also has a ledger at" in status.output
    assert str(tmp_path / "b" / "ledger.sqlite") in status.output
    again = cli(["run", path, "--report", tmp_path / "c.csv", "--state", tmp_path / "a"], env=env)
    assert "also has a ledger" in again.output  # until one of them is removed
    for leftover in (tmp_path / "b").iterdir():
        leftover.unlink()
    gone = cli(["run", path, "--report", tmp_path / "d.csv", "--state", tmp_path / "a"], env=env)
    assert "also has a ledger" not in gone.output


def test_a_rehearsal_with_a_refused_environment_starts_no_sandbox(tmp_path):
    path = write_campaign(tmp_path, rows=people(2), gateway={"headers": {"x-team": "${TEAM}"}})
    result = cli(
        ["run", path, "--sandbox", "--report", tmp_path / "r.csv"],
        env={**env_for(tmp_path), "TEAM": "growth"},  # set, but not in CAMPAIGN_ALLOWED_ENV
    )
    assert result.exit_code == 2 and "TEAM" in result.output
    assert "growth" not in result.output
    assert "sandbox gateway on" not in result.output
    assert not (tmp_path / "r.sandbox.jsonl").exists() and not (tmp_path / "r.csv").exists()
