"""`campaign status`: whether a run is going now, how the last one ended or that it died,
read without disturbing the run, and never a Python `None` in what a person reads."""

from __future__ import annotations

import fcntl
import json
import re
import time
from datetime import UTC, datetime

from helpers import campaign_process, cli, env_for, read_report, start_process, write_campaign

from campaign_runner.sandbox import Faults

ISO_SECOND = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def people(n: int) -> list[dict]:
    """N recipients with distinct valid Brazilian mobile numbers."""
    return [{"phone": f"+55119{70000000 + i:08d}", "name": f"Pessoa {i}"} for i in range(n)]


def utc_second(stored: str) -> str:
    """A stored ISO time as status shows it: UTC, to the second."""
    return datetime.fromisoformat(stored).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_text(path, tmp_path) -> str:
    result = cli(["status", path], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert "None" not in result.output
    return result.output


def status_json(path, tmp_path) -> dict:
    result = cli(["status", path, "--json"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def start_run(path, tmp_path, report="r.csv"):
    return start_process(["run", path, "--report", tmp_path / report], env=env_for(tmp_path))


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def test_a_campaign_never_run_says_so_and_creates_nothing(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    text = status_text(path, tmp_path)
    assert text.splitlines()[1:] == [
        "  last run: never run",
        "  left: 2 to send of 2 row(s)",
        "  no deliveries yet",
    ]
    found = status_json(path, tmp_path)
    assert found["state"] == "never-run" and found["message"] == "never run"
    assert found["left"] == found["rows"] == 2
    assert found["pid"] is None and found["running_since"] is None and found["last_run"] is None
    assert not (tmp_path / "state").exists()  # no state folder, hence no lock file either


def test_while_a_run_is_going_status_names_its_pid_and_never_disturbs_it(sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(latency_ms=100))
    path = write_campaign(tmp_path, rows=people(40), gateway_url=gateway.messages_url)
    first = start_run(path, tmp_path)
    try:
        # A key's outcome is committed with the next key's mark: by the 3rd request, one is sent.
        wait_for(lambda: len(gateway.messages()) >= 3)
        text = status_text(path, tmp_path)
        assert re.search(
            rf"^  last run: in progress \(pid {first.pid}, started {ISO_SECOND}\)$", text, re.M
        ), text
        assert re.search(r"^  sent: \d+$", text, re.M), text
        found = status_json(path, tmp_path)
        assert found["state"] == "running" and found["pid"] == first.pid
        # The request going out now is in flight, not `unknown` (which would alarm monitoring).
        assert set(found["counts"]) <= {"sent", "in-flight"} and found["counts"]["sent"] >= 1
        assert re.fullmatch(ISO_SECOND, found["running_since"])
        since = found["running_since"]
        assert found["message"] == f"in progress (pid {first.pid}, started {since})"
        for _ in range(20):  # probing the lock again and again takes it from no one
            assert status_json(path, tmp_path)["pid"] == first.pid
        # As a separate process too, and a third run is still refused.
        probe = campaign_process(["status", path], env=env_for(tmp_path))
        assert probe.returncode == 0 and f"in progress (pid {first.pid}," in probe.stdout
        third = campaign_process(
            ["run", path, "--report", tmp_path / "third.csv"], env=env_for(tmp_path)
        )
        assert third.returncode == 4, third.stderr
        assert f"already running (pid {first.pid}, started " in third.stderr
        assert len(gateway.messages()) < 40, "the run ended before status could be checked"
    finally:
        assert first.wait(timeout=60) == 0, first.stderr.read()
    assert sorted(m["to"] for m in gateway.messages()) == [p["phone"] for p in people(40)]
    assert {r["status"] for r in read_report(tmp_path / "r.csv")} == {"sent"}
    assert not (tmp_path / "third.csv").exists()
    assert status_json(path, tmp_path)["state"] == "finished"


def test_a_run_killed_with_sigkill_reads_as_died_and_how_to_continue(sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(latency_ms=50))
    path = write_campaign(tmp_path, rows=people(100), gateway_url=gateway.messages_url)
    process = start_run(path, tmp_path, report="killed.csv")
    wait_for(lambda: len(gateway.messages()) >= 3)
    process.kill()
    process.wait(timeout=10)
    text = status_text(path, tmp_path)
    assert re.search(
        rf"^  last run: died: started {ISO_SECOND} and never finished \(killed or the machine "
        r"stopped\); run it again to continue: no one already sent is sent twice$",
        text,
        re.M,
    ), text
    found = status_json(path, tmp_path)
    assert found["state"] == "died" and found["pid"] is None and found["running_since"] is None
    assert found["last_run"]["ended_at"] is None and found["message"].startswith("died: started")
    assert set(found["counts"]) <= {"sent", "unknown"}  # in flight at the kill: in doubt now
    # Left: every row not sent and not in doubt (the plan a run would make now).
    assert found["left"] == 100 - sum(found["counts"].values()) and found["rows"] == 100
    assert f"  left: {found['left']} to send of 100 row(s)" in text
    # The stale pid the killed run left in its lock file is not taken for a live run.
    assert (tmp_path / "state" / "test-campaign.lock").read_text().startswith(f"pid {process.pid}")
    # Run again as it says: it finishes, and status says so.
    rest = campaign_process(["run", path, "--report", tmp_path / "rest.csv"], env=env_for(tmp_path))
    assert rest.returncode in (0, 1), rest.stderr  # 1 when a request was in flight at the kill
    assert status_json(path, tmp_path)["state"] == "finished"


def test_after_a_clean_end_status_says_when_and_how_it_ended(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(3), gateway_url=sandbox.messages_url)
    done = campaign_process(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "r.json").read_text())
    text = status_text(path, tmp_path)
    assert text.splitlines()[1:] == [
        f"  last run: ended {utc_second(summary['ended_at'])}, exit 0: {summary['reason']}",
        "  left: 0 to send of 3 row(s)",
        "  sent: 3",
        # No status webhook came yet: said in words (the funnel: test_outcome_report.py).
        "  outcomes: none reported yet for the 3 accepted message(s) "
        "(run `campaign webhook` or `campaign ingest`)",
    ]
    found = status_json(path, tmp_path)
    assert found["state"] == "finished" and found["pid"] is None
    assert found["last_run"]["exit_code"] == 0 and found["counts"] == {"sent": 3}
    assert found["message"] == text.splitlines()[1].removeprefix("  last run: ")


def test_status_after_a_run_creates_no_lock_file(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(1), gateway_url=sandbox.messages_url)
    assert cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path)).exit_code == 0
    lock = tmp_path / "state" / "test-campaign.lock"
    lock.unlink()
    assert status_json(path, tmp_path)["state"] == "finished"
    assert not lock.exists()


def test_a_run_starting_during_a_status_probe_waits_for_it_rather_than_exit_4(sandbox, tmp_path):
    """A status probe holds the lock shared for an instant; this one is held for longer
    (as a probe caught mid-way by a loaded machine would be): the run waits, then sends."""
    path = write_campaign(tmp_path, rows=people(2), gateway_url=sandbox.messages_url)
    lock = tmp_path / "state" / "test-campaign.lock"
    lock.parent.mkdir()
    lock.touch()
    with open(lock) as probe:
        fcntl.flock(probe, fcntl.LOCK_SH)
        process = start_run(path, tmp_path)
        time.sleep(1.5)
        assert process.poll() is None and sandbox.messages() == []
    assert process.wait(timeout=60) == 0, process.stderr.read()
    assert len(sandbox.messages()) == 2


def test_a_lock_file_that_cannot_be_read_is_exit_2_not_a_guess(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(1), gateway_url=sandbox.messages_url)
    lock = tmp_path / "state" / "test-campaign.lock"
    lock.parent.mkdir()
    lock.symlink_to(lock)  # a loop: opening it fails, as an unreadable file would
    result = cli(["status", path], env=env_for(tmp_path))
    assert result.exit_code == 2
    assert f"{lock}: cannot read the campaign's lock" in result.output
    assert "cannot tell whether a run is in progress" in result.output


def test_when_the_recipients_cannot_be_read_status_says_so_and_still_answers(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(2), gateway_url=sandbox.messages_url)
    assert cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path)).exit_code == 0
    (tmp_path / "recipients.csv").unlink()
    text = status_text(path, tmp_path)
    assert re.search(r"^  left: cannot tell: .*recipients\.csv: ", text, re.M), text
    found = status_json(path, tmp_path)
    assert found["left"] is None and found["state"] == "finished" and found["counts"] == {"sent": 2}


def test_after_only_rehearsals_status_says_so_and_sandbox_shows_them(tmp_path):
    path = write_campaign(tmp_path, rows=people(3))
    rehearsal = cli(
        ["run", path, "--sandbox", "--report", tmp_path / "r.csv"], env=env_for(tmp_path)
    )
    assert rehearsal.exit_code == 0, rehearsal.output

    real = cli(["status", path], env=env_for(tmp_path))
    assert real.exit_code == 0 and "last run: never run" in real.stdout
    assert (
        f"warning: campaign 'test-campaign' was only rehearsed (run --sandbox) with this ledger:"
        f" campaign status {path} --sandbox shows the rehearsals"
    ) in real.stderr

    rehearsed = cli(["status", path, "--sandbox"], env=env_for(tmp_path))
    assert rehearsed.exit_code == 0, rehearsed.output
    assert "campaign test-campaign.sandbox:" in rehearsed.stdout
    assert re.search(rf"last run: ended {ISO_SECOND}, exit 0", rehearsed.stdout)
    assert "  sent: 3" in rehearsed.stdout and "only rehearsed" not in rehearsed.output
    found = json.loads(cli(["status", path, "--sandbox", "--json"], env=env_for(tmp_path)).stdout)
    assert (found["state"], found["counts"], found["left"]) == ("finished", {"sent": 3}, 0)
