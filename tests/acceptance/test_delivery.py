"""Cron-safe delivery: every recipient gets a campaign once, across re-runs, crashes and retries."""

from __future__ import annotations

import json
import random
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
from helpers import (
    campaign_process,
    cli,
    env_for,
    read_report,
    start_process,
    write_campaign,
    write_old_journal,
)

from campaign_runner import campaign as campaign_mod
from campaign_runner import run as run_mod
from campaign_runner.sandbox import Faults
from campaign_runner.schedule import parse_window


def people(n: int, start: int = 0) -> list[dict]:
    """N recipients with distinct valid Brazilian mobile numbers."""
    return [
        {"phone": f"+55119{70000000 + i:08d}", "name": f"Pessoa {i}"}
        for i in range(start, start + n)
    ]


def run(path, tmp_path, *extra, apikey="test-key", report="r.csv"):
    return cli(
        ["run", path, "--report", tmp_path / report, *extra], env=env_for(tmp_path, apikey=apikey)
    )


def statuses(tmp_path, report="r.csv") -> list[str]:
    return [row["status"] for row in read_report(tmp_path / report)]


def received_per_phone(sandbox) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in sandbox.messages():
        counts[message["to"]] = counts.get(message["to"], 0) + 1
    return counts


# ---- re-runs -----------------------------------------------------------------------------


def test_a_rerun_sends_nothing_twice_and_new_rows_go_out(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(3), gateway_url=sandbox.messages_url)
    assert run(path, tmp_path).exit_code == 0
    again = run(path, tmp_path, report="again.csv")
    assert again.exit_code == 0
    assert statuses(tmp_path, "again.csv") == ["already-sent"] * 3
    first_ids = [r["message_id"] for r in read_report(tmp_path / "r.csv")]
    assert [r["message_id"] for r in read_report(tmp_path / "again.csv")] == first_ids
    write_campaign(tmp_path, rows=people(5), gateway_url=sandbox.messages_url)
    assert run(path, tmp_path, report="more.csv").exit_code == 0
    assert statuses(tmp_path, "more.csv") == ["already-sent"] * 3 + ["sent"] * 2
    assert set(received_per_phone(sandbox).values()) == {1} and len(sandbox.messages()) == 5


def test_a_delivery_key_template_allows_one_message_per_cart(sandbox, tmp_path):
    rows = [
        {"phone": "+5511970000000", "name": "Ana", "cart_id": "1"},
        {"phone": "+5511970000000", "name": "Ana", "cart_id": "2"},
        {"phone": "+5511970000000", "name": "Ana", "cart_id": "2"},
    ]
    path = write_campaign(
        tmp_path,
        rows=rows,
        gateway_url=sandbox.messages_url,
        recipients={"key": "[phone]-[cart_id]"},
    )
    result = run(path, tmp_path)
    assert result.exit_code == 0
    assert statuses(tmp_path) == ["sent", "sent", "duplicate"]
    assert len(sandbox.messages()) == 2


def test_a_transient_failure_is_sent_on_the_next_run(sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(script={"+5511970000001": ["500"] * 3}))
    path = write_campaign(
        tmp_path,
        rows=people(3),
        gateway_url=gateway.messages_url,
        send={"retries": 2, "backoff_s": 0.01},
    )
    assert run(path, tmp_path).exit_code == 1
    report = read_report(tmp_path / "r.csv")
    assert [r["status"] for r in report] == ["sent", "failed", "sent"]
    assert report[1]["http_status"] == "500"
    assert run(path, tmp_path, report="again.csv").exit_code == 0
    assert statuses(tmp_path, "again.csv") == ["already-sent", "sent", "already-sent"]


def test_a_permanent_failure_is_not_retried_unless_asked(sandbox_factory, tmp_path):
    # 131049, not 131026: a 131026 also puts the number on the suppression list (test_rules).
    gateway = sandbox_factory(Faults(script={"+5511970000001": ["131049", "131049"]}))
    path = write_campaign(tmp_path, rows=people(2), gateway_url=gateway.messages_url)
    assert run(path, tmp_path).exit_code == 1
    failed = read_report(tmp_path / "r.csv")[1]
    assert failed["status"] == "failed" and failed["error"].startswith("131049")
    again = run(path, tmp_path, report="again.csv")
    assert again.exit_code == 0
    assert statuses(tmp_path, "again.csv") == ["already-sent", "already-failed"]
    assert "--retry-failed" in read_report(tmp_path / "again.csv")[1]["error"]
    assert run(path, tmp_path, "--retry-failed", report="retry.csv").exit_code == 1
    assert statuses(tmp_path, "retry.csv") == ["already-sent", "failed"]
    assert run(path, tmp_path, "--retry-failed", report="retry2.csv").exit_code == 0
    assert statuses(tmp_path, "retry2.csv") == ["already-sent", "sent"]


# ---- retry rules -------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["429", "500", "130429", "131000", "80007", "4", "131056"])
def test_a_retryable_answer_is_tried_again(fault, sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(script={"+5511970000000": [fault]}, retry_after_s=0))
    path = write_campaign(
        tmp_path, rows=people(1), gateway_url=gateway.messages_url, send={"backoff_s": 0.01}
    )
    assert run(path, tmp_path).exit_code == 0
    assert statuses(tmp_path) == ["sent"]
    assert len(gateway.messages()) == 1


def test_retry_after_is_honoured(sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(script={"+5511970000000": ["429"]}, retry_after_s=1))
    path = write_campaign(
        tmp_path, rows=people(1), gateway_url=gateway.messages_url, send={"backoff_s": 0.01}
    )
    started = time.monotonic()
    assert run(path, tmp_path).exit_code == 0
    assert time.monotonic() - started >= 1.0


@pytest.mark.parametrize("fault", ["131026", "131047", "131050", "132000", "132001", "100"])
def test_a_permanent_answer_fails_that_recipient_only(fault, sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(script={"+5511970000000": [fault]}))
    path = write_campaign(tmp_path, rows=people(2), gateway_url=gateway.messages_url)
    assert run(path, tmp_path).exit_code == 1
    report = read_report(tmp_path / "r.csv")
    assert [r["status"] for r in report] == ["failed", "sent"]
    assert report[0]["error"].startswith(fault)


@pytest.mark.parametrize("fault", ["131048", "133010", "131031", "190"])
def test_a_campaign_wide_answer_stops_the_run_with_exit_3(fault, sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(script={"+5511970000000": [fault]}))
    path = write_campaign(tmp_path, rows=people(3), gateway_url=gateway.messages_url)
    result = run(path, tmp_path)
    assert result.exit_code == 3
    assert statuses(tmp_path) == ["failed", "not-attempted", "not-attempted"]
    assert gateway.messages() == []
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["exit_code"] == 3 and "aborted" in summary["reason"]


def test_a_read_timeout_is_unknown_not_retried(sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(latency_ms=1500))
    path = write_campaign(
        tmp_path, rows=people(1), gateway_url=gateway.messages_url, gateway={"timeout_s": 0.3}
    )
    assert run(path, tmp_path).exit_code == 1
    [row] = read_report(tmp_path / "r.csv")
    assert row["status"] == "unknown" and "no answer" in row["error"]
    time.sleep(1.5)
    assert len(gateway.messages()) == 1  # the gateway did get it: resending would double it


def test_retry_timeouts_opts_in_to_retrying_a_timeout(sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(script={"+5511970000000": ["drop"]}))
    path = write_campaign(
        tmp_path,
        rows=people(1),
        gateway_url=gateway.messages_url,
        send={"retry_timeouts": True, "backoff_s": 0.01},
    )
    assert run(path, tmp_path).exit_code == 0
    assert statuses(tmp_path) == ["sent"]


def test_a_connection_refused_is_retried_then_failed(tmp_path):
    path = write_campaign(
        tmp_path,
        rows=people(1),
        gateway_url="http://127.0.0.1:9/api/Messages",
        send={"retries": 2, "backoff_s": 0.01},
    )
    result = run(path, tmp_path)
    assert result.exit_code == 1
    [row] = read_report(tmp_path / "r.csv")
    assert row["status"] == "failed" and "connection failed" in row["error"]


def test_too_many_failures_in_a_row_stop_the_run(sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(rates={"131026": 1.0}))
    path = write_campaign(
        tmp_path,
        rows=people(6),
        gateway_url=gateway.messages_url,
        send={"max_consecutive_failures": 3},
    )
    result = run(path, tmp_path)
    assert result.exit_code == 3
    assert statuses(tmp_path) == ["failed"] * 3 + ["not-attempted"] * 3
    assert "3 failures in a row" in result.output


def test_a_rate_holds_the_pace(sandbox, tmp_path):
    path = write_campaign(
        tmp_path, rows=people(6), gateway_url=sandbox.messages_url, send={"rate": "10/s"}
    )
    started = time.monotonic()
    assert run(path, tmp_path).exit_code == 0
    assert time.monotonic() - started >= 0.45  # 6 messages at 10/s: at least 5 intervals


# ---- exclusions, windows, expiry ---------------------------------------------------------


def test_excluded_numbers_are_reported_and_not_sent(sandbox, tmp_path):
    (tmp_path / "opt-outs.csv").write_text("phone\n(11) 97000-0001\n", encoding="utf-8")
    path = write_campaign(
        tmp_path,
        rows=people(3),
        gateway_url=sandbox.messages_url,
        recipients={"exclude": ["opt-outs.csv"]},
    )
    assert run(path, tmp_path).exit_code == 0
    assert statuses(tmp_path) == ["sent", "excluded", "sent"]
    assert "+5511970000001" not in received_per_phone(sandbox)


class Clock:
    """A clock the test moves: each reading advances it by STEP."""

    def __init__(self, start: datetime, step: timedelta = timedelta(0)):
        self.now, self.step = start, step

    def __call__(self) -> datetime:
        current = self.now
        self.now += self.step
        return current


def library_run(path, sandbox, tmp_path, clock, report="r.csv"):
    options = run_mod.RunOptions(
        gateway_url=sandbox.messages_url,
        apikey="test-key",
        state=tmp_path / "state",
        report=tmp_path / report,
        clock=clock,
        handle_signals=False,
    )
    return run_mod.run_campaign(campaign_mod.load(path), options)


SAO_PAULO = "America/Sao_Paulo"


def at(text: str) -> datetime:
    """A moment written in São Paulo time (UTC-3, no daylight saving since 2019)."""
    return datetime.fromisoformat(text + "-03:00").astimezone(UTC)


def test_outside_the_window_nothing_is_sent_and_it_says_when_it_opens(sandbox, tmp_path):
    path = write_campaign(
        tmp_path,
        rows=people(2),
        gateway_url=sandbox.messages_url,
        send={"window": f"09:00-20:00 {SAO_PAULO}", "days": ["mon", "tue"]},
    )
    result = library_run(path, sandbox, tmp_path, Clock(at("2026-11-28T10:00:00")))  # a Saturday
    assert result.exit_code == 0
    assert "opens at 2026-11-30 09:00" in result.reason
    assert sandbox.messages() == []


def test_a_run_that_reaches_the_window_end_stops_and_the_next_one_continues(sandbox, tmp_path):
    path = write_campaign(
        tmp_path,
        rows=people(4),
        gateway_url=sandbox.messages_url,
        send={"window": f"09:00-20:00 {SAO_PAULO}"},
    )
    clock = Clock(at("2026-11-27T19:59:57"), step=timedelta(seconds=1))
    first = library_run(path, sandbox, tmp_path, clock)
    assert first.exit_code == 0 and "window closed" in first.reason
    sent_first = statuses(tmp_path).count("sent")
    assert 0 < sent_first < 4 and "not-attempted" in statuses(tmp_path)
    second = library_run(path, sandbox, tmp_path, Clock(at("2026-11-28T09:00:00")), "r2.csv")
    assert second.exit_code == 0
    assert statuses(tmp_path, "r2.csv").count("already-sent") == sent_first
    assert set(received_per_phone(sandbox).values()) == {1} and len(sandbox.messages()) == 4


def test_a_window_across_midnight(tmp_path):
    window = parse_window(f"22:00-06:00 {SAO_PAULO}", None)
    assert window.is_open(at("2026-11-28T23:30:00"))
    assert window.is_open(at("2026-11-29T05:59:00"))
    assert not window.is_open(at("2026-11-29T06:00:00"))
    fridays = parse_window(f"22:00-06:00 {SAO_PAULO}", ["fri"])
    assert fridays.is_open(at("2026-11-28T02:00:00"))  # Saturday early: Friday's night
    assert not fridays.is_open(at("2026-11-28T22:30:00"))  # Saturday night is not Friday's


def test_an_expired_campaign_sends_nothing(sandbox, tmp_path):
    path = write_campaign(
        tmp_path,
        rows=people(2),
        gateway_url=sandbox.messages_url,
        send={"not_after": "2026-11-20T20:00:00-03:00"},
    )
    result = library_run(path, sandbox, tmp_path, Clock(at("2026-11-28T10:00:00")))
    assert result.exit_code == 0 and "expired" in result.reason
    assert sandbox.messages() == []


def test_a_campaign_that_expires_mid_run_stops_sending(sandbox, tmp_path):
    path = write_campaign(
        tmp_path,
        rows=people(5),
        gateway_url=sandbox.messages_url,
        send={"not_after": "2026-11-28T10:00:02-03:00"},
    )
    clock = Clock(at("2026-11-28T10:00:00"), step=timedelta(seconds=1))
    result = library_run(path, sandbox, tmp_path, clock)
    assert "expired" in result.reason
    assert 0 < len(sandbox.messages()) < 5
    assert statuses(tmp_path)[-1] == "not-attempted"


# ---- overlapping runs, signals and crashes -----------------------------------------------


def test_a_second_run_of_the_same_campaign_exits_4_while_one_is_running(sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(latency_ms=100))
    path = write_campaign(tmp_path, rows=people(30), gateway_url=gateway.messages_url)
    first = start_process(["run", path, "--report", tmp_path / "first.csv"], env=env_for(tmp_path))
    try:
        _wait_for(lambda: len(gateway.messages()) >= 1)
        second = campaign_process(
            ["run", path, "--report", tmp_path / "second.csv"], env=env_for(tmp_path)
        )
        assert second.returncode == 4
        assert f"pid {first.pid}" in second.stderr and "already running" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    assert not (tmp_path / "second.csv").exists()


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_finishes_the_request_in_flight_and_writes_the_report(
    signum, code, sandbox_factory, tmp_path
):
    gateway = sandbox_factory(Faults(latency_ms=50))
    path = write_campaign(tmp_path, rows=people(100), gateway_url=gateway.messages_url)
    process = start_process(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    _wait_for(lambda: len(gateway.messages()) >= 5)
    process.send_signal(signum)
    assert process.wait(timeout=30) == code
    report = statuses(tmp_path)
    assert len(report) == 100 and "not-attempted" in report and "unknown" not in report
    assert report.count("sent") == len(gateway.messages())
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["exit_code"] == code and signal.Signals(signum).name in summary["reason"]
    assert run(path, tmp_path, report="rest.csv").exit_code == 0
    assert set(received_per_phone(gateway).values()) == {1} and len(gateway.messages()) == 100


@pytest.mark.parametrize("concurrency", [1, 8])
def test_kill_9_three_times_never_sends_twice_and_ends_exactly_once(
    concurrency, sandbox_factory, tmp_path
):
    """The delivery issue's acceptance run: 2,000 recipients, 10% failures, three SIGKILLs.

    Ten retries make a 500 that never clears (0.1 ** 11 per row) too rare to see, so every
    row must end sent or unknown; with the default three, 2,000 rows fail one in five runs.
    """
    gateway = sandbox_factory(Faults(latency_ms=3, rates={"500": 0.1}, seed=7))
    total = 2000
    path = write_campaign(
        tmp_path,
        rows=people(total),
        gateway_url=gateway.messages_url,
        send={"backoff_s": 0.01, "concurrency": concurrency, "retries": 10},
    )
    env = env_for(tmp_path)
    chance = random.Random(3)
    for attempt in range(3):
        process = start_process(
            ["run", path, "--report", tmp_path / f"killed{attempt}.csv"], env=env
        )
        goal = gateway.message_count() + chance.randint(50, 500)
        _wait_for(lambda goal=goal: gateway.message_count() >= goal)
        process.kill()
        process.wait(timeout=10)
    final = campaign_process(["run", path, "--report", tmp_path / "final.csv"], env=env)
    received = received_per_phone(gateway)
    assert max(received.values()) == 1, "a recipient got the campaign twice"
    report = read_report(tmp_path / "final.csv")
    unknown = {r["phone"] for r in report if r["status"] == "unknown"}
    assert len(unknown) <= 3 * concurrency  # at most the requests in flight at each kill
    assert {r["status"] for r in report} <= {"sent", "already-sent", "unknown"}
    assert set(received) | unknown == {p["phone"] for p in people(total)}
    assert final.returncode == (1 if unknown else 0)
    # The operator's way out where the gateway honours Idempotency-Key: resending is safe.
    gateway.set_idempotency(True)
    resent = campaign_process(
        ["run", path, "--resend-unknown", "--report", tmp_path / "resent.csv"], env=env
    )
    assert resent.returncode == 0, resent.stdout + resent.stderr
    received = received_per_phone(gateway)
    assert set(received.values()) == {1} and len(received) == total


def test_with_concurrency_the_report_keeps_csv_row_order(sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(latency_ms=1, jitter_ms=30, seed=1))
    path = write_campaign(
        tmp_path, rows=people(60), gateway_url=gateway.messages_url, send={"concurrency": 16}
    )
    assert run(path, tmp_path).exit_code == 0
    report = read_report(tmp_path / "r.csv")
    assert [int(r["row"]) for r in report] == list(range(2, 62))
    # Answers came back up to 30 ms apart in random order; the report still follows the CSV.
    assert sorted(m["to"] for m in gateway.messages()) == sorted(r["phone"] for r in report)


def test_status_reports_the_journal_for_monitoring(sandbox_factory, tmp_path):
    gateway = sandbox_factory(Faults(script={"+5511970000001": ["131026"]}))
    path = write_campaign(tmp_path, rows=people(3), gateway_url=gateway.messages_url)
    run(path, tmp_path)
    result = cli(["status", path, "--json"], env=env_for(tmp_path))
    assert result.exit_code == 0
    status = json.loads(result.output)
    assert status["counts"] == {"sent": 2, "failed-permanent": 1}
    assert status["last_run"]["exit_code"] == 1 and status["last_run"]["ended_at"]
    text = cli(["status", path], env=env_for(tmp_path))
    assert "sent: 2" in text.output and "last run" in text.output


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def test_a_dry_run_reads_the_journal_and_shows_what_is_already_sent(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(2), gateway_url=sandbox.messages_url)
    run(path, tmp_path, "--limit", "1")
    result = run(path, tmp_path, "--dry-run", report="dry.csv")
    assert result.exit_code == 0
    assert statuses(tmp_path, "dry.csv") == ["already-sent", "dry-run"]
    assert len(sandbox.messages()) == 1


def test_sigterm_is_heard_while_a_rerun_skips_rows_already_sent(sandbox, tmp_path):
    total = 30_000
    path = write_campaign(tmp_path, rows=people(total), gateway_url=sandbox.messages_url)
    state = tmp_path / "state"
    # Fill a journal as an earlier version would have, without sending 30,000 messages here:
    # the run imports it into the ledger first.
    write_old_journal(
        state / "test-campaign.sqlite",
        [(f"test-campaign:{p['phone']}", i + 2, p["phone"]) for i, p in enumerate(people(total))],
    )
    process = start_process(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    _wait_for(lambda: (tmp_path / "r.csv").exists() and (tmp_path / "r.csv").stat().st_size > 0)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    # The rest of the skipped rows are still reported after the signal: allow a loaded machine.
    assert process.wait(timeout=90) == 143
    assert sandbox.messages() == []
    assert set(statuses(tmp_path)) == {"already-sent"}  # stopping does not hide what is done
