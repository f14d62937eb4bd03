"""A gateway that answers what it does not document, too much, too slowly or "wait a day",
and a person who presses Ctrl-C meanwhile: every run ends in an honest record, and the
next run sends exactly the recipients it should."""

from __future__ import annotations

import json
import signal
import time

import pytest
from helpers import cli, env_for, read_report, start_process, write_campaign
from misbehaving import Endless, Misbehaving, as_json, raw, trickle

from campaign_runner.gateway.answers import MAX_ANSWER_BYTES
from campaign_runner.sandbox import Faults

ANA, BRUNO, CARLA = "+5511970000000", "+5511970000001", "+5511970000002"


def people(n: int) -> list[dict]:
    return [{"phone": f"+55119{70000000 + i:08d}", "name": f"Pessoa {i}"} for i in range(n)]


def phones(n: int) -> list[str]:
    return [p["phone"] for p in people(n)]


@pytest.fixture
def gateway():
    """A misbehaving gateway on loopback; script it with `gateway.script[phone] = [...]`."""
    started = Misbehaving()
    yield started
    started.close()


def run(path, tmp_path, *extra, report="r.csv"):
    return cli(["run", path, "--report", tmp_path / report, *extra], env=env_for(tmp_path))


def rows(tmp_path, report="r.csv") -> list[dict]:
    return read_report(tmp_path / report)


def summary(tmp_path, report="r.json") -> dict:
    return json.loads((tmp_path / report).read_text())


def journal_counts(path, tmp_path) -> dict:
    status = cli(["status", path, "--json"], env=env_for(tmp_path))
    assert status.exit_code == 0, status.output
    return json.loads(status.output)["counts"]


def campaign(tmp_path, url, n=1, **sections):
    return write_campaign(tmp_path, rows=people(n), gateway_url=url, **sections)


# ---- a 2xx that is not the gateway's receipt ---------------------------------------------

NO_RECEIPT = {
    "no messages": as_json(200, {"messages": []}),
    "empty object": as_json(200, {}),
    "null id": as_json(200, {"messages": [{"id": None}]}),
    "numeric id": as_json(200, {"messages": [{"id": 7}]}),
    "malformed JSON": raw(200, b'{"messages":[{"id":"wamid.A"'),
    "an HTML page": raw(200, b"<html><body>Scheduled maintenance</body></html>"),
    "no body": raw(204, b""),
    "a 2xx Meta error with no kind of its own": as_json(200, {"error": {"code": 10}}),
}


@pytest.mark.parametrize("answer", NO_RECEIPT.values(), ids=NO_RECEIPT.keys())
def test_a_2xx_without_a_message_id_is_unknown_and_never_sent_again(answer, gateway, tmp_path):
    gateway.script[ANA] = [answer]
    path = campaign(tmp_path, gateway.url, n=2, send={"retries": 3, "backoff_s": 0.01})
    result = run(path, tmp_path)
    assert result.exit_code == 1
    report = rows(tmp_path)
    assert [r["status"] for r in report] == ["unknown", "sent"]
    assert "no message id" in report[0]["error"] or report[0]["error"].startswith("10")
    assert "may have accepted it" in report[0]["error"]
    assert gateway.to() == [ANA, BRUNO]  # not retried: it may have been delivered
    assert summary(tmp_path)["counts"] == {"sent": 1, "unknown": 1}
    assert journal_counts(path, tmp_path) == {"sent": 1, "unknown": 1}
    # Neither a plain re-run nor --retry-failed sends it again; the reason is kept.
    again = run(path, tmp_path, "--retry-failed", report="again.csv")
    assert again.exit_code == 1
    report = rows(tmp_path, "again.csv")
    assert [r["status"] for r in report] == ["unknown", "already-sent"]
    assert "may have accepted it" in report[0]["error"] and "--resend-unknown" in report[0]["error"]
    assert gateway.to() == [ANA, BRUNO]


def meta(code: object, status: int = 200) -> object:
    return as_json(status, {"error": {"message": f"(#{code}) error", "code": code}})


def test_a_retryable_meta_code_inside_a_2xx_is_retried(gateway, tmp_path):
    gateway.script[ANA] = [meta(131000), meta("131000", 200)]
    path = campaign(tmp_path, gateway.url, send={"backoff_s": 0.01})
    assert run(path, tmp_path).exit_code == 0
    [row] = rows(tmp_path)
    assert row["status"] == "sent" and row["message_id"].startswith("wamid.M")
    assert gateway.to() == [ANA, ANA, ANA]


@pytest.mark.parametrize("code", [190, "190"])
def test_an_expired_token_inside_a_2xx_stops_the_run(code, gateway, tmp_path):
    gateway.script[ANA] = [meta(code)]
    path = campaign(tmp_path, gateway.url, n=3)
    result = run(path, tmp_path)
    assert result.exit_code == 3
    assert [r["status"] for r in rows(tmp_path)] == ["failed", "not-attempted", "not-attempted"]
    assert rows(tmp_path)[0]["error"].startswith("190 ")
    assert gateway.to() == [ANA]
    assert "aborted" in summary(tmp_path)["reason"] and "190" in result.output


def test_a_meta_code_written_as_a_string_fails_that_recipient_for_good(gateway, tmp_path):
    gateway.script[ANA] = [meta("131026", 400)]
    path = campaign(tmp_path, gateway.url, n=2)
    assert run(path, tmp_path).exit_code == 1
    report = rows(tmp_path)
    assert [r["status"] for r in report] == ["failed", "sent"]
    assert report[0]["error"].startswith("131026 ")
    assert journal_counts(path, tmp_path) == {"sent": 1, "failed-permanent": 1}


@pytest.mark.parametrize(
    "answer",
    [
        raw(502, b"<html>\n<h1>502 Bad Gateway</h1>\n</html>"),
        raw(503, b'{"error":{"code":131000,"mess'),  # cut short: the status decides
    ],
    ids=["HTML page", "truncated JSON"],
)
def test_a_5xx_that_is_not_json_is_retried_by_its_status(answer, gateway, tmp_path):
    gateway.script[ANA] = [answer]
    path = campaign(tmp_path, gateway.url, send={"backoff_s": 0.01})
    assert run(path, tmp_path).exit_code == 0
    assert [r["status"] for r in rows(tmp_path)] == ["sent"]
    assert gateway.to() == [ANA, ANA]


# ---- answers that never end ------------------------------------------------------------


def test_a_50_mb_success_is_not_read_and_is_unknown(gateway, tmp_path):
    huge = Endless(200)
    gateway.script[ANA] = [huge]
    path = campaign(tmp_path, gateway.url, n=2)
    started = time.monotonic()
    assert run(path, tmp_path).exit_code == 1
    assert time.monotonic() - started < 10
    report = rows(tmp_path)
    assert [r["status"] for r in report] == ["unknown", "sent"]
    assert f"longer than {MAX_ANSWER_BYTES} bytes" in report[0]["error"]
    assert huge.sent < huge.size // 2  # the runner hung up instead of reading it all
    assert gateway.to() == [ANA, BRUNO]


def test_an_endless_5xx_is_judged_by_its_status_and_retried(gateway, tmp_path):
    endless = Endless(500, size=None)
    gateway.script[ANA] = [endless]
    path = campaign(tmp_path, gateway.url, send={"backoff_s": 0.01})
    assert run(path, tmp_path).exit_code == 0
    assert [r["status"] for r in rows(tmp_path)] == ["sent"]
    assert gateway.to() == [ANA, ANA]
    assert endless.sent < 50 * 1024 * 1024


def test_headers_that_never_end_are_no_answer(gateway, tmp_path):
    long_header = (("X-Padding", "y" * 200_000),)
    gateway.script[ANA] = [raw(200, b'{"messages":[{"id":"wamid.X"}]}', long_header)]
    path = campaign(tmp_path, gateway.url)
    assert run(path, tmp_path).exit_code == 1
    [row] = rows(tmp_path)
    assert row["status"] == "unknown" and "no answer after the request was sent" in row["error"]


# ---- the timeout bounds the whole exchange -----------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_gateway_trickling_its_answer_is_cut_off_at_the_timeout(concurrency, gateway, tmp_path):
    gateway.script[ANA] = [trickle(0.2)]  # ~100 bytes: 20 s at this pace
    path = campaign(
        tmp_path,
        gateway.url,
        n=2,
        gateway={"timeout_s": 1},
        send={"concurrency": concurrency},
    )
    started = time.monotonic()
    assert run(path, tmp_path).exit_code == 1
    assert time.monotonic() - started < 5
    report = rows(tmp_path)
    assert [r["status"] for r in report] == ["unknown", "sent"]
    assert "ReadTimeout" in report[0]["error"] and "gateway.timeout_s (1 s)" in report[0]["error"]
    assert run(path, tmp_path, report="again.csv").exit_code == 1
    assert [r["status"] for r in rows(tmp_path, "again.csv")] == ["unknown", "already-sent"]
    assert sorted(gateway.to()) == [ANA, BRUNO]  # once each; at concurrency 8 in either order


def test_with_retry_timeouts_a_trickle_is_tried_again(gateway, tmp_path):
    gateway.script[ANA] = [trickle(0.2)]
    path = campaign(
        tmp_path,
        gateway.url,
        gateway={"timeout_s": 1},
        send={"retry_timeouts": True, "backoff_s": 0.01},
    )
    assert run(path, tmp_path).exit_code == 0
    assert [r["status"] for r in rows(tmp_path)] == ["sent"]
    assert gateway.to() == [ANA, ANA]


# ---- "come back tomorrow" ----------------------------------------------------------------


@pytest.mark.parametrize("header", ["Retry-After", "RateLimit-Reset"])
def test_a_wait_longer_than_the_cap_stops_the_run_and_says_when_to_come_back(
    header, gateway, tmp_path
):
    gateway.script[ANA] = [
        as_json(429, {"message": "API rate limit exceeded"}, ((header, "86400"),))
    ]
    path = campaign(tmp_path, gateway.url, n=3, send={"backoff_s": 0.01})
    started = time.monotonic()
    result = run(path, tmp_path)
    assert time.monotonic() - started < 10
    assert result.exit_code == 3
    report = rows(tmp_path)
    assert [r["status"] for r in report] == ["not-attempted"] * 3
    reason = summary(tmp_path)["reason"]
    assert "asking to wait 86400 s, longer than the 300 s a run waits" in reason
    assert "run the campaign again after" in reason and reason in result.output
    assert gateway.to() == [ANA]
    # Nothing is held as in doubt: the next run sends all three.
    assert journal_counts(path, tmp_path) == {"failed-transient": 1}
    assert run(path, tmp_path, report="next.csv").exit_code == 0
    assert [r["status"] for r in rows(tmp_path, "next.csv")] == ["sent"] * 3
    assert gateway.to() == [ANA, ANA, BRUNO, CARLA]


def test_the_sandboxs_retry_after_of_a_day_stops_the_run(sandbox_factory, tmp_path):
    sandbox = sandbox_factory(Faults(script={ANA: ["429"]}, retry_after_s=86400))
    path = campaign(tmp_path, sandbox.messages_url, n=2)
    result = run(path, tmp_path)
    assert result.exit_code == 3 and "asking to wait 86400 s" in result.output
    assert [r["status"] for r in rows(tmp_path)] == ["not-attempted"] * 2
    assert run(path, tmp_path, report="next.csv").exit_code == 0
    assert sorted(m["to"] for m in sandbox.messages()) == [ANA, BRUNO]


# ---- signals during waits ----------------------------------------------------------------


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def start(path, tmp_path, report="r.csv"):
    return start_process(["run", path, "--report", tmp_path / report], env=env_for(tmp_path))


LONG_WAITS = {
    "a long backoff after a 500": (
        raw(500, b'{"message":"An unexpected error occurred"}'),
        {"backoff_s": 60},
    ),
    "Retry-After under the cap": (
        as_json(429, {"message": "API rate limit exceeded"}, (("Retry-After", "290"),)),
        {},
    ),
}


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("wait", LONG_WAITS.values(), ids=LONG_WAITS.keys())
def test_a_signal_ends_a_long_wait_at_once(wait, signum, code, concurrency, gateway, tmp_path):
    answer, send = wait
    gateway.script[ANA] = [answer]
    path = campaign(tmp_path, gateway.url, n=3, send={**send, "concurrency": concurrency})
    process = start(path, tmp_path)
    _wait_for(lambda: len(gateway.received) >= 3 if concurrency > 1 else gateway.received)
    time.sleep(0.5)  # now waiting to try Ana again
    signalled = time.monotonic()
    process.send_signal(signum)
    assert process.wait(timeout=15) == code
    assert time.monotonic() - signalled < 5
    report = rows(tmp_path)
    assert report[0]["status"] == "not-attempted"
    assert report[0]["error"].startswith(
        f"not sent: interrupted by {signum.name}; the last attempt: "
    )
    assert summary(tmp_path)["exit_code"] == code
    # Ana's key was only waiting: released, so the next run sends her (once).
    assert run(path, tmp_path, report="next.csv").exit_code == 0
    assert sorted(gateway.to()) == sorted([ANA, ANA, BRUNO, CARLA])


def test_sigterm_ends_the_wait_of_a_slow_pace(sandbox, tmp_path):
    path = campaign(tmp_path, sandbox.messages_url, n=3, send={"rate": "2/min"})
    process = start(path, tmp_path)
    _wait_for(lambda: len(sandbox.messages()) >= 1)
    time.sleep(0.5)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 143
    assert time.monotonic() - signalled < 5
    assert [r["status"] for r in rows(tmp_path)] == ["sent", "not-attempted", "not-attempted"]
    campaign(tmp_path, sandbox.messages_url, n=3)  # the same campaign, without the slow pace
    assert run(path, tmp_path, report="next.csv").exit_code == 0
    assert [r["status"] for r in rows(tmp_path, "next.csv")] == ["already-sent", "sent", "sent"]
    assert sorted(m["to"] for m in sandbox.messages()) == [ANA, BRUNO, CARLA]


@pytest.mark.parametrize(("signals", "on_the_wire"), [(1, "sent"), (2, "unknown")])
def test_at_concurrency_8_only_a_request_on_the_wire_can_be_unknown(
    signals, on_the_wire, gateway, tmp_path
):
    """Four keys wait between attempts after a 500 or a 429; four are on the wire."""
    everyone = phones(8)
    refused = [
        raw(500, b'{"message":"An unexpected error occurred"}'),
        as_json(429, {"message": "API rate limit exceeded"}, (("Retry-After", "200"),)),
    ]
    for i, phone in enumerate(everyone):
        gateway.script[phone] = [refused[i % 2]] if i < 4 else [gateway.hold()]
    path = campaign(tmp_path, gateway.url, n=8, send={"concurrency": 8, "backoff_s": 60})
    process = start(path, tmp_path)
    _wait_for(lambda: len(gateway.received) >= 8)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    if signals == 2:
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
    else:
        time.sleep(0.5)
        gateway.release()  # the requests on the wire are answered: the run waited for them
    assert process.wait(timeout=15) == 130
    report = rows(tmp_path)
    assert [r["status"] for r in report] == ["not-attempted"] * 4 + [on_the_wire] * 4
    assert all("the last attempt: " in r["error"] for r in report[:4])
    counts = journal_counts(path, tmp_path)
    assert counts.get("unknown", 0) == (4 if on_the_wire == "unknown" else 0)
    gateway.release()
    # The next run sends exactly the four that were only waiting.
    before = len(gateway.received)
    again = run(path, tmp_path, report="next.csv")
    assert again.exit_code == (1 if on_the_wire == "unknown" else 0)
    assert sorted(gateway.to()[before:]) == everyone[:4]
    expected_after = "unknown" if on_the_wire == "unknown" else "already-sent"
    assert [r["status"] for r in rows(tmp_path, "next.csv")] == ["sent"] * 4 + [expected_after] * 4
