"""Plan, then send: the plan before the question, the cron log lines, a trace for every run."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import (
    campaign_process,
    cli,
    env_for,
    on_a_terminal,
    write_campaign,
)

from campaign_runner.sandbox import Faults

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def people(n: int, bad: tuple[int, ...] = ()) -> list[dict]:
    """N recipients; the rows at the positions in BAD have a phone that cannot be read."""
    return [
        {"phone": "123" if i in bad else f"+55119{70_000_000 + i:08d}", "name": f"Pessoa {i}"}
        for i in range(n)
    ]


def closed_today() -> dict:
    """A `send:` whose window is closed all of today and tomorrow (UTC), whatever the date."""
    today = datetime.now(UTC)
    shut = {WEEKDAYS[today.weekday()], WEEKDAYS[(today + timedelta(days=1)).weekday()]}
    return {"window": "00:00-23:59 UTC", "days": [d for d in WEEKDAYS if d not in shut]}


def lines_of(stderr: str, event: str | None = None) -> list[str]:
    """The log lines on STDERR (timestamp first), those with EVENT after the campaign if given."""
    found = [line for line in stderr.splitlines() if re.match(STAMP + " campaign=", line)]
    if event:
        found = [line for line in found if line.split(" ")[2] == event]
    return found


# ---- the plan on a terminal ----------------------------------------------------------------


def test_a_resumed_run_shows_its_plan_and_warnings_before_the_question(sandbox, tmp_path):
    rows = people(8, bad=(5,))
    rows = [{" name": r["name"], "phone": r["phone"]} for r in rows]  # a header with a space
    message = {"type": "text", "text": {"body": "Olá {{ name }}, seu pedido chegou!"}}
    path = write_campaign(tmp_path, rows=rows, message=message, gateway_url=sandbox.messages_url)
    env = env_for(tmp_path)
    first = cli(["run", path, "--limit", "3", "--report", tmp_path / "first.csv"], env)
    assert first.exit_code == 0 and len(sandbox.messages()) == 3
    code, terminal, _ = on_a_terminal(
        ["run", path, "--report", tmp_path / "second.csv"],
        env,
        streams=("stdin", "stderr"),
        answer="n",
    )
    before, _, after = terminal.partition("[y/N]")
    assert "warning:" in before and "' name'" in before  # warnings come before the "y"
    assert "warning:" not in after
    assert "to send now: 4" in before and "already-sent: 3" in before and "invalid: 1" in before
    assert "row 7 123: invalid:" in before  # the invalid row, with its reason
    assert f"gateway: {sandbox.messages_url}" in before
    assert "sample message" in before and "Olá Pessoa 3, seu pedido chegou!" in before
    assert "Send campaign 'test-campaign' to 4 recipient(s) now?" in before
    assert "up to" not in before
    assert code == 2 and len(sandbox.messages()) == 3  # "n": nothing more sent
    summary = json.loads((tmp_path / "second.json").read_text())
    assert summary["reason"] == "nothing sent: not confirmed" and summary["report"] is None
    assert summary["plan"]["to_send"] == 4 and not (tmp_path / "second.csv").exists()


def test_nothing_left_to_send_asks_nothing(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    env = env_for(tmp_path)
    assert cli(["run", path, "--report", tmp_path / "a.csv"], env).exit_code == 0
    code, terminal, _ = on_a_terminal(
        ["run", path, "--report", tmp_path / "b.csv"], env, streams=("stdin", "stderr")
    )
    assert code == 0 and "[y/N]" not in terminal and "to send now: 0" in terminal
    assert len(sandbox.messages()) == 2


def test_the_plan_lists_five_rows_not_sent_and_verbose_lists_them_all(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(12, bad=tuple(range(1, 9))))
    env = env_for(tmp_path, CAMPAIGN_GATEWAY_URL=sandbox.messages_url)
    code, terminal, _ = on_a_terminal(
        ["run", path, "--report", tmp_path / "a.csv"], env, streams=("stdin", "stderr"), answer="n"
    )
    assert code == 2 and terminal.count(": invalid: '123'") == 5
    assert "... and 3 more (--verbose lists them all)" in terminal
    code, terminal, _ = on_a_terminal(
        ["run", path, "-v", "--report", tmp_path / "b.csv"],
        env,
        streams=("stdin", "stderr"),
        answer="n",
    )
    assert code == 2 and terminal.count(": invalid: '123'") == 8 and "more" not in terminal
    assert sandbox.messages() == []


def test_a_live_bar_knows_the_total_on_a_terminal(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(30), gateway_url=sandbox.messages_url)
    code, terminal, out = on_a_terminal(
        ["run", path, "--yes", "--report", tmp_path / "r.csv"],
        env_for(tmp_path),
        streams=("stdin", "stderr"),
    )
    assert code == 0 and "sent 30" in out
    assert re.search(r"sending test-campaign .*30/30 +100%", terminal)


# ---- under cron ----------------------------------------------------------------------------


def test_under_cron_a_start_line_and_one_final_line_with_absolute_paths(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(4, bad=(2,)), gateway_url=sandbox.messages_url)
    done = campaign_process(
        ["run", path.name, "--report", "r.csv"], env=env_for(tmp_path), cwd=tmp_path
    )
    assert done.returncode == 1
    port = sandbox.messages_url.split(":")[2].split("/")[0]
    (start,) = lines_of(done.stderr, "start")
    assert re.fullmatch(
        STAMP
        + f" campaign=test-campaign start rows=4 to_send=3 invalid=1 gateway=127.0.0.1:{port}",
        start,
    )
    assert re.search(STAMP + r" campaign=test-campaign row=4 status=invalid reason=\"", done.stderr)
    final = lines_of(done.stderr)[-1]
    report = (tmp_path / "r.csv").absolute()
    assert re.fullmatch(
        STAMP + f" campaign=test-campaign exit=1 sent=3 invalid=1 report={report} "
        'reason="some recipients were not sent"',
        final,
    )
    assert done.stderr.strip().endswith(final)  # the last thing the run says
    assert f"report: {report}" in done.stdout
    assert "\x1b" not in done.stderr + done.stdout  # no bar, no colour in a log file


def test_under_cron_progress_is_a_timestamped_line_every_few_seconds(sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(latency_ms=40))
    path = write_campaign(tmp_path, rows=people(160), gateway_url=gateway.messages_url)
    done = campaign_process(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert done.returncode == 0
    progress = lines_of(done.stderr, "progress")
    assert progress, done.stderr
    assert re.fullmatch(
        STAMP + r" campaign=test-campaign progress done=(\d+) total=160 pct=[\d.]+ "
        r"rate=\d+/s eta=\d+s sent=\d+",
        progress[0],
    )


def test_quiet_keeps_only_warnings_errors_and_the_final_line(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    done = campaign_process(["run", path, "-q", "--report", tmp_path / "r.csv"], env_for(tmp_path))
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr.splitlines() == lines_of(done.stderr) == lines_of(done.stderr)[-1:]
    assert "exit=0 sent=2" in done.stderr


def test_json_puts_the_summary_on_stdout(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(3, bad=(0,)), gateway_url=sandbox.messages_url)
    done = campaign_process(
        ["run", path, "--json", "--report", tmp_path / "r.csv"], env=env_for(tmp_path)
    )
    result = json.loads(done.stdout)
    assert done.returncode == result["exit_code"] == 1
    assert result["counts"] == {"sent": 2, "invalid": 1}
    assert result["report"] == str(tmp_path / "r.csv")
    assert result["plan"]["to_send"] == 2 and result["plan"]["counts"] == {"invalid": 1}
    assert result == json.loads((tmp_path / "r.json").read_text())
    assert "exit=1" in lines_of(done.stderr)[-1]


# ---- every run leaves a trace --------------------------------------------------------------


@pytest.mark.parametrize(
    "send, words",
    [
        (closed_today(), "2 recipient(s) wait for the window"),
        ({"not_after": "2020-01-01T00:00:00Z"}, "2 recipient(s) were left unsent"),
    ],
    ids=["outside the window", "past not_after"],
)
def test_a_run_that_sends_nothing_still_writes_its_summary(send, words, sandbox, tmp_path):
    path = write_campaign(
        tmp_path, rows=people(3, bad=(1,)), gateway_url=sandbox.messages_url, send=send
    )
    done = campaign_process(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert done.returncode == 0 and sandbox.messages() == []
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["reason"].startswith("nothing sent: ") and summary["reason"].endswith(words)
    assert summary["exit_code"] == 0 and summary["counts"] == {} and summary["report"] is None
    assert summary["plan"]["to_send"] == 2 and summary["plan"]["counts"] == {"invalid": 1}
    assert summary["plan"]["window"] in summary["reason"]
    assert not (tmp_path / "r.csv").exists()
    assert "no recipients" not in done.stdout + done.stderr
    assert "3 row(s) planned, none sent" in done.stdout
    (plan,) = lines_of(done.stderr, "plan")
    assert "to_send=2 invalid=1" in plan and not lines_of(done.stderr, "start")
    final = lines_of(done.stderr)[-1]
    assert f"exit=0 summary={tmp_path / 'r.json'} reason=" in final and words in final


def test_outside_the_window_no_lock_is_taken_and_the_journal_is_not_created(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url, send=closed_today())
    assert cli(["run", path, "--report", tmp_path / "r.csv"], env_for(tmp_path)).exit_code == 0
    assert not any((tmp_path / "state").glob("*.sqlite"))


# ---- colours and shell completion ------------------------------------------------------------


@pytest.mark.parametrize("no_color, coloured", [("", True), ("1", False)])
def test_no_color_turns_colours_off(no_color, coloured, tmp_path):
    path = write_campaign(tmp_path)
    env = {**env_for(tmp_path), "NO_COLOR": no_color}
    code, terminal, _ = on_a_terminal(["preview", path], env, streams=("stdout",))
    assert code == 0 and "Ana" in terminal
    assert ("\x1b[" in terminal) is coloured


def test_shell_completion_scripts_come_from_the_command(tmp_path):
    script = Path(sys.executable).parent / "campaign"
    if not script.exists():
        pytest.skip("the project is not installed in this interpreter's environment")
    import subprocess

    for shell, marker in [
        ("bash", "complete -o nosort -F"),
        ("zsh", "compdef"),
        ("fish", "complete"),
    ]:
        done = subprocess.run(
            [script],
            env={"_CAMPAIGN_COMPLETE": f"{shell}_source", "PATH": str(script.parent)},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0 and marker in done.stdout, shell


# ---- a run that cannot start still ends with its line ---------------------------------------


def test_a_broken_campaign_under_cron_ends_with_a_final_line_and_json(tmp_path):
    path = tmp_path / "promo.yaml"
    path.write_text("name: promo\nrecipients: [\n", encoding="utf-8")
    done = campaign_process(["run", path, "--json"], env=env_for(tmp_path))
    assert done.returncode == 2
    final = lines_of(done.stderr)[-1]
    assert re.fullmatch(STAMP + r' campaign=promo exit=2 reason="nothing sent: .+"', final)
    result = json.loads(done.stdout)
    assert result["exit_code"] == 2 and result["reason"].startswith("nothing sent: ")
    assert result["problems"] and result["problems"][0].startswith(f"{path}:2:")


def test_a_busy_campaign_ends_with_exit_4_in_its_final_line(sandbox, tmp_path):
    import fcntl

    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    (tmp_path / "state").mkdir()
    with open(tmp_path / "state" / "test-campaign.lock", "w") as held:
        held.write("pid 4242, started 2026-11-28T18:00:00Z")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        done = campaign_process(["run", path, "--report", tmp_path / "r.csv"], env_for(tmp_path))
    assert done.returncode == 4 and sandbox.messages() == []
    final = lines_of(done.stderr)[-1]
    assert re.fullmatch(STAMP + r' campaign=test-campaign exit=4 reason=".*pid 4242.*"', final)


def test_two_runs_in_the_same_second_keep_both_reports(sandbox, tmp_path):
    from campaign_runner import campaign as campaign_mod
    from campaign_runner import run as run_mod

    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    moment = datetime(2026, 11, 28, 18, 19, 25, tzinfo=UTC)
    for _ in range(3):  # the same second each time: the names must still differ
        options = run_mod.RunOptions(
            apikey="test-key", state=tmp_path / "state", clock=lambda: moment
        )
        assert run_mod.run_campaign(campaign_mod.load(path), options).exit_code == 0
    reports = sorted(p.name for p in (tmp_path / "reports").glob("*.csv"))
    stem = "test-campaign-" + moment.astimezone().strftime("%Y%m%d-%H%M%S")
    assert reports == [f"{stem}-2.csv", f"{stem}-3.csv", f"{stem}.csv"]
    summaries = (tmp_path / "reports").glob("*.json")
    assert sorted(json.loads(s.read_text())["report"] for s in summaries) == sorted(
        str(tmp_path / "reports" / r) for r in reports
    )


def test_preview_counts_what_a_run_would_send_now_after_a_partial_run(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(6, bad=(4,)), gateway_url=sandbox.messages_url)
    env = env_for(tmp_path)
    assert cli(["run", path, "--limit", "3", "--report", tmp_path / "a.csv"], env).exit_code == 0
    shown = cli(["preview", path], env)
    assert shown.exit_code == 1  # row 6 is invalid
    assert "  ready: 2\n" in shown.output and "  already-sent: 3\n" in shown.output
    assert "would not be sent (1):" in shown.output and "row 6 123: invalid" in shown.output
    sample = cli(["preview", path, "--sample", "5"], env)
    heads = [line for line in sample.output.splitlines() if line.startswith("row ")]
    assert heads == ["row 5 -> +5511970000003", "row 7 -> +5511970000005"]  # never sent ones
