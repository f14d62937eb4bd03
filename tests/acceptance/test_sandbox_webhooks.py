"""`campaign sandbox --webhook-url URL`: Meta's signed status webhooks for what it accepts.

Each test runs a small receiver of its own on 127.0.0.1 (stdlib http.server in a thread)
that keeps every body and its headers, and can answer 500 to the first posts; the sandbox
posts to it for real, and the tests read what arrived with the project's own parser.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from helpers import cli, env_for, read_report, write_campaign

from campaign_runner.gateway.answers import META_CODES
from campaign_runner.sandbox import Faults, Sandbox, Webhooks
from campaign_runner.webhooks.payload import parse_payload
from campaign_runner.webhooks.signature import signature_valid

PROJECT = Path(__file__).resolve().parents[2]
SECRET = "sandbox-app-secret-7f3a"
KEY = "test-key"
HEADERS = {"apikey": KEY, "version": "4.0"}


class Receiver:
    """A webhook receiver on 127.0.0.1: keeps (body, lower-case headers) of every POST and
    answers 500 to the first FAIL_FIRST of them, 200 after."""

    def __init__(self, fail_first: int = 0, always: int | None = None):
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.posts.append((body, {k.lower(): v for k, v in self.headers.items()}))
                    seen = len(receiver.posts)
                status = always or (500 if seen <= fail_first else 200)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [body for body, _ in self.posts]

    def statuses(self) -> list:
        """Every status that arrived, in arrival order, read by the project's parser."""
        found = []
        for body in self.bodies():
            events = parse_payload(json.loads(body))
            assert events.problems == []
            found += events.statuses
        return found

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory():
    started: list[Receiver] = []

    def start(**options) -> Receiver:
        started.append(Receiver(**options))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture
def receiver(receiver_factory):
    return receiver_factory()


def hooks(url: str, **settings) -> Webhooks:
    """Quick statuses for a test: sent at once, delivered after 0.15 s, read after 0.3 s."""
    quick = {"delivered_after_s": 0.15, "read_after_s": 0.3, "seed": 1, **settings}
    return Webhooks(url=url, secret=SECRET, **quick)


def send(sandbox: Sandbox, count: int, first: int = 0, **extra) -> list[str]:
    """Send COUNT text messages to distinct numbers; the wamids, in order."""
    wamids = []
    with httpx.Client(timeout=5) as client:
        for n in range(first, first + count):
            body = {
                "messaging_product": "whatsapp",
                "to": f"+55119{n:08d}",
                "type": "text",
                "text": {"body": "Olá"},
                **extra,
            }
            answer = client.post(sandbox.messages_url, json=body, headers=HEADERS)
            assert answer.status_code == 200, answer.text
            wamids.append(answer.json()["messages"][0]["id"])
    return wamids


def settled(sandbox: Sandbox, timeout: float = 10) -> dict:
    """Wait until no status is waiting to be posted; the sandbox's counts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = sandbox.webhook_counts()
        if counts["pending"] == 0:
            return counts
        time.sleep(0.02)
    raise AssertionError(f"webhooks still pending: {sandbox.webhook_counts()}")


def by_wamid(statuses) -> dict[str, list[str]]:
    """Each wamid's statuses, in arrival order."""
    found: dict[str, list[str]] = defaultdict(list)
    for status in statuses:
        found[status.message_id].append(status.status)
    return found


def start(sandbox_factory, url: str, echo=None, **settings) -> Sandbox:
    return sandbox_factory(webhooks=hooks(url, **settings), echo=echo)


# ---- what arrives ------------------------------------------------------------------------


def test_each_accepted_message_is_sent_then_delivered_signed_and_in_metas_shape(
    sandbox_factory, receiver
):
    sandbox = start(sandbox_factory, receiver.url, read_share=0)
    wamids = send(sandbox, 5, biz_opaque_callback_data="campaign-7:row-2")
    counts = settled(sandbox)
    assert counts["posted"] == 10 and counts["gave-up"] == counts["dropped"] == 0
    for body, headers in receiver.posts:
        assert signature_valid(body, headers["x-hub-signature-256"], SECRET)
        assert not signature_valid(body, headers["x-hub-signature-256"], "another-secret")
        assert headers["content-type"] == "application/json"
    assert by_wamid(receiver.statuses()) == {w: ["sent", "delivered"] for w in wamids}
    first = json.loads(receiver.bodies()[0])
    status = first["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert first["object"] == "whatsapp_business_account"
    assert first["entry"][0]["changes"][0]["field"] == "messages"
    value = first["entry"][0]["changes"][0]["value"]
    assert value["messaging_product"] == "whatsapp"
    assert set(value["metadata"]) == {"display_phone_number", "phone_number_id"}
    assert status["id"] == wamids[0] and status["status"] == "sent"
    assert status["recipient_id"] == "5511900000000"
    assert re.fullmatch(r"\d{10}", status["timestamp"])
    assert abs(int(status["timestamp"]) - time.time()) < 30
    assert status["conversation"]["origin"] == {"type": "marketing"}
    assert status["pricing"] == {"billable": True, "pricing_model": "PMP", "category": "marketing"}
    assert status["biz_opaque_callback_data"] == "campaign-7:row-2"
    assert "errors" not in status
    logged = sandbox.webhooks()
    assert len(logged) == 10
    assert {(e["outcome"], e["attempts"], e["answer"]) for e in logged} == {("posted", 1, 200)}


def test_read_comes_after_delivered_for_the_share_asked(sandbox_factory, receiver_factory):
    everyone, half = receiver_factory(), receiver_factory()
    reading = start(sandbox_factory, everyone.url, read_share=1.0)
    halving = start(sandbox_factory, half.url, read_share=0.5, seed=4)
    send(reading, 6)
    wamids = send(halving, 30)
    settled(reading)
    settled(halving)
    assert set(map(tuple, by_wamid(everyone.statuses()).values())) == {
        ("sent", "delivered", "read")
    }
    got = by_wamid(half.statuses())
    assert set(got) == set(wamids)
    read = [w for w in wamids if got[w] == ["sent", "delivered", "read"]]
    unread = [w for w in wamids if got[w] == ["sent", "delivered"]]
    assert len(read) + len(unread) == 30
    assert 5 <= len(read) <= 25  # a seeded draw of half of 30


def test_a_message_without_a_message_callback_has_no_callback_data(sandbox_factory, receiver):
    sandbox = start(sandbox_factory, receiver.url, read_share=0, delivered_share=0)
    send(sandbox, 1)
    settled(sandbox)
    (status,) = receiver.statuses()
    assert status.status == "sent" and status.callback_data is None
    assert "biz_opaque_callback_data" not in receiver.bodies()[0].decode()


def test_fail_later_fails_its_share_with_the_code_and_metas_title(sandbox_factory, receiver):
    sandbox = start(
        sandbox_factory, receiver.url, read_share=1.0, fail_later={131026: 0.25, 131050: 0.25}
    )
    wamids = send(sandbox, 40)
    settled(sandbox)
    got = by_wamid(receiver.statuses())
    assert set(got) == set(wamids)
    failed = {s.message_id: s for s in receiver.statuses() if s.status == "failed"}
    codes = {s.code for s in failed.values()}
    assert codes == {131026, 131050}
    assert 8 <= len(failed) <= 32  # a seeded draw of half of 40
    for status in failed.values():
        assert status.title == META_CODES[status.code].title
        assert status.details == META_CODES[status.code].details
        assert got[status.message_id] == ["sent", "failed"]  # never delivered nor read
    for wamid in set(wamids) - set(failed):
        assert got[wamid] == ["sent", "delivered", "read"]
    raw = next(json.loads(b) for b in receiver.bodies() if b'"failed"' in b)
    status = raw["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert set(status["errors"][0]) >= {"code", "title", "message", "error_data"}
    assert "pricing" not in status  # a failed message is not billed


def test_the_same_seed_gives_the_same_fates(sandbox_factory, receiver_factory):
    fates = []
    for _ in range(2):
        receiver = receiver_factory()
        sandbox = start(sandbox_factory, receiver.url, fail_later={131049: 0.3}, seed=11)
        wamids = send(sandbox, 20)
        settled(sandbox)
        got = by_wamid(receiver.statuses())
        fates.append([tuple(got[w]) for w in wamids])
    assert fates[0] == fates[1]
    assert len(set(fates[0])) > 1


def test_duplicates_post_a_status_twice_with_the_same_bytes(sandbox_factory, receiver):
    sandbox = start(sandbox_factory, receiver.url, read_share=0, duplicates=1.0)
    wamids = send(sandbox, 3)
    counts = settled(sandbox)
    assert counts["posted"] == 12
    bodies = receiver.bodies()
    assert len(bodies) == 12 and len(set(bodies)) == 6
    assert all(bodies.count(body) == 2 for body in bodies)
    got = by_wamid(receiver.statuses())
    assert {w: sorted(got[w]) for w in wamids} == {
        w: ["delivered", "delivered", "sent", "sent"] for w in wamids
    }
    assert sum(entry["duplicate"] for entry in sandbox.webhooks()) == 6


def test_out_of_order_posts_the_newest_status_first(sandbox_factory, receiver):
    sandbox = start(
        sandbox_factory, receiver.url, read_share=1.0, out_of_order=1.0, fail_later={131047: 0.5}
    )
    wamids = send(sandbox, 10)
    settled(sandbox)
    got = by_wamid(receiver.statuses())
    orders = {tuple(got[w]) for w in wamids}
    assert orders == {("read", "delivered", "sent"), ("failed", "sent")}
    times: dict[str, list[str]] = defaultdict(list)
    for status in receiver.statuses():
        times[status.message_id].append(status.at)
    for wamid in wamids:  # the timestamps still tell the true order: newest arrives first
        assert times[wamid] == sorted(times[wamid], reverse=True)


# ---- when the receiver fails ---------------------------------------------------------------


def test_a_500_is_retried_with_backoff_until_a_200(sandbox_factory, receiver_factory):
    receiver = receiver_factory(fail_first=3)
    said: list[str] = []
    sandbox = start(
        sandbox_factory, receiver.url, echo=said.append, read_share=0, first_retry_s=0.05
    )
    (wamid,) = send(sandbox, 1)
    counts = settled(sandbox)
    assert counts == {"pending": 0, "posted": 2, "gave-up": 0, "dropped": 0, "attempts": 5}
    assert by_wamid(receiver.statuses())[wamid].count("sent") >= 2  # the same one, again
    assert {s.status for s in receiver.statuses()} == {"sent", "delivered"}
    assert max(e["attempts"] for e in sandbox.webhooks()) >= 2
    retries = [line for line in said if "-> 500: attempt" in line]
    assert len(retries) == 3
    assert any("attempt 2 in 0.05 s" in line for line in retries)
    assert any("in 0.1 s" in line or "in 0.2 s" in line for line in retries)  # doubled


def test_the_sandbox_gives_up_after_its_attempts_and_says_so(sandbox_factory, receiver_factory):
    receiver = receiver_factory(always=503)
    said: list[str] = []
    sandbox = start(
        sandbox_factory,
        receiver.url,
        echo=said.append,
        delivered_share=0,
        attempts=3,
        first_retry_s=0.02,
    )
    (wamid,) = send(sandbox, 1)
    counts = settled(sandbox)
    assert counts["gave-up"] == 1 and counts["posted"] == 0 and counts["attempts"] == 3
    assert len(receiver.posts) == 3
    (entry,) = sandbox.webhooks()
    assert entry == {**entry, "wamid": wamid, "outcome": "gave-up", "attempts": 3, "answer": 503}
    assert any(f"webhook sent {wamid} -> 503: gave up after 3 attempts" in line for line in said)


def test_no_receiver_listening_is_retried_then_given_up(sandbox_factory):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    said: list[str] = []
    sandbox = start(
        sandbox_factory,
        f"http://127.0.0.1:{port}/webhook",
        echo=said.append,
        delivered_share=0,
        attempts=2,
        first_retry_s=0.02,
    )
    send(sandbox, 1)
    assert settled(sandbox)["gave-up"] == 1
    (entry,) = sandbox.webhooks()
    assert entry["answer"] == "no answer (ConnectError)" and entry["attempts"] == 2
    assert any("gave up after 2 attempts" in line for line in said)


def test_the_gateway_answers_at_once_whatever_the_receiver_does(sandbox_factory):
    stuck = socket.socket()  # accepts connections and never answers
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(64)
    try:
        sandbox = start(sandbox_factory, f"http://127.0.0.1:{stuck.getsockname()[1]}/w")
        began = time.monotonic()
        send(sandbox, 20)
        assert time.monotonic() - began < 2
        assert sandbox.message_count() == 20
    finally:
        stuck.close()


# ---- only what was accepted ----------------------------------------------------------------


def test_refused_requests_get_no_webhooks(sandbox_factory, receiver):
    sandbox = start(sandbox_factory, receiver.url, read_share=0)
    text = {"messaging_product": "whatsapp", "to": "+5511900000001", "type": "text"}
    with httpx.Client(timeout=5) as client:
        wrong_key = client.post(
            sandbox.messages_url, json={**text, "text": {"body": "x"}}, headers={"apikey": "no"}
        )
        no_key = client.post(sandbox.messages_url, json={**text, "text": {"body": "x"}})
        invalid = client.post(sandbox.messages_url, json=text, headers=HEADERS)  # no text
        # Scripted, not drawn: six draws at even odds were all 500 once in about 30 runs.
        script = {"+5511900000001": ["500", "131026", "500", "131026", "500", "131026"]}
        sandbox.set_faults(Faults(script=script))
        faulted = [
            client.post(sandbox.messages_url, json={**text, "text": {"body": "x"}}, headers=HEADERS)
            for _ in range(6)
        ]
    assert (wrong_key.status_code, no_key.status_code, invalid.status_code) == (401, 401, 400)
    assert {answer.status_code for answer in faulted} == {500, 400}
    time.sleep(0.3)  # past delivered_after: anything scheduled would have come
    assert receiver.posts == [] and sandbox.webhook_counts()["attempts"] == 0
    sandbox.set_faults(Faults())
    (accepted,) = send(sandbox, 1)
    settled(sandbox)
    assert set(by_wamid(receiver.statuses())) == {accepted}


def test_a_lost_answer_still_gets_its_webhooks_as_meta_delivers_it(sandbox_factory, receiver):
    sandbox = start(sandbox_factory, receiver.url, read_share=0)
    sandbox.set_faults(Faults(rates={"lost": 1.0}))
    body = {"messaging_product": "whatsapp", "to": "+5511900000002", "type": "text"}
    with pytest.raises(httpx.TransportError):
        httpx.post(
            sandbox.messages_url, json={**body, "text": {"body": "x"}}, headers=HEADERS, timeout=5
        )
    settled(sandbox)
    (record,) = sandbox.messages()
    assert by_wamid(receiver.statuses()) == {record["id"]: ["sent", "delivered"]}


def test_a_repeated_idempotency_key_gets_no_second_webhooks(sandbox_factory, receiver):
    sandbox = sandbox_factory(webhooks=hooks(receiver.url, read_share=0), idempotency=True)
    body = {
        "messaging_product": "whatsapp",
        "to": "+5511900000003",
        "type": "text",
        "text": {"body": "x"},
    }
    for _ in range(3):
        httpx.post(
            sandbox.messages_url, json=body, headers={**HEADERS, "Idempotency-Key": "k"}, timeout=5
        )
    settled(sandbox)
    assert len(receiver.posts) == 2


# ---- shutdown, the log, a campaign ---------------------------------------------------------


def test_stopping_posts_what_still_waits_at_once(sandbox_factory, receiver):
    said: list[str] = []
    sandbox = start(
        sandbox_factory, receiver.url, echo=said.append, delivered_after_s=60, read_share=0
    )
    wamids = send(sandbox, 3)
    sandbox.stop()
    got = by_wamid(receiver.statuses())
    assert {w: sorted(got[w]) for w in wamids} == {w: ["delivered", "sent"] for w in wamids}
    assert any(re.search(r"webhooks: \d+ posted, 0 given up, 0 dropped$", line) for line in said)


def test_stopping_with_a_failing_receiver_reports_the_statuses_dropped(
    sandbox_factory, receiver_factory
):
    receiver = receiver_factory(always=500)
    said: list[str] = []
    sandbox = start(
        sandbox_factory, receiver.url, echo=said.append, delivered_after_s=60, read_share=0
    )
    send(sandbox, 2)
    time.sleep(0.2)  # the two `sent` fail once and wait for their retry
    sandbox.stop()
    counts = sandbox.webhook_counts()
    assert counts["dropped"] == 4 and counts["posted"] == 0 and counts["pending"] == 0
    assert any("dropped, the sandbox is stopping" in line for line in said)
    assert any(line.endswith("webhooks: 0 posted, 0 given up, 4 dropped") for line in said)


def test_the_webhooks_endpoint_shows_the_log_to_the_keys_holder(sandbox_factory, receiver):
    sandbox = start(sandbox_factory, receiver.url, read_share=0)
    (wamid,) = send(sandbox, 1)
    settled(sandbox)
    with httpx.Client(timeout=5) as client:
        refused = client.get(sandbox.url + "/webhooks")
        shown = client.get(sandbox.url + "/webhooks?limit=1", headers={"apikey": KEY})
        bad_limit = client.get(sandbox.url + "/webhooks?limit=x", headers={"apikey": KEY})
    assert refused.status_code == 401
    assert shown.status_code == 200
    assert shown.json()["counts"]["posted"] == 2
    (post,) = shown.json()["posts"]
    assert post["wamid"] == wamid and post["status"] == "delivered"
    assert bad_limit.status_code == 400


def test_without_webhooks_there_is_no_webhooks_endpoint(sandbox):
    answer = httpx.get(sandbox.url + "/webhooks", headers={"apikey": KEY}, timeout=5)
    assert answer.status_code == 404
    assert sandbox.webhooks() == [] and sandbox.webhook_counts() == {}


def test_a_campaign_run_against_the_sandbox_gets_statuses_for_each_row(
    sandbox_factory, receiver, tmp_path
):
    sandbox = start(sandbox_factory, receiver.url, read_share=1.0)
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    settled(sandbox)
    rows = read_report(tmp_path / "r.csv")
    got = by_wamid(receiver.statuses())
    assert {row["message_id"]: got[row["message_id"]] for row in rows} == {
        row["message_id"]: ["sent", "delivered", "read"] for row in rows
    }
    recipients = {s.recipient for s in receiver.statuses()}
    assert recipients == {row["phone"] for row in rows}


# ---- the command line ----------------------------------------------------------------------


def sandbox_process(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "campaign_runner", "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT), **env},
    )


@pytest.mark.parametrize("secret_from", ["environment", "option"])
def test_campaign_sandbox_posts_signed_webhooks_and_never_shows_the_secret(receiver, secret_from):
    by_env = secret_from == "environment"
    args = [
        "--apikey",
        KEY,
        "--webhook-url",
        receiver.url + "?token=query-token-42",
        "--delivered-after",
        "0.1",
        "--read-after",
        "0.2",
        "--read-share",
        "1",
        "--fail-later",
        "131026=0.5",
        "--seed",
        "3",
        *([] if by_env else ["--webhook-secret", SECRET]),
    ]
    process = sandbox_process(args, {"WHATSAPP_APP_SECRET": SECRET} if by_env else {})
    watchdog = threading.Timer(30, process.kill)
    watchdog.start()
    try:
        banner = [process.stdout.readline(), process.stdout.readline()]
        url = re.search(r"listening on (http://\S+)", banner[0]).group(1)
        assert f"posting signed status webhooks to {receiver.url}:" in banner[1]
        with httpx.Client(timeout=5) as client:
            for n in range(8):
                body = {
                    "messaging_product": "whatsapp",
                    "to": f"+55119{n:08d}",
                    "type": "text",
                    "text": {"body": "Olá"},
                }
                assert client.post(url, json=body, headers=HEADERS).status_code == 200
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                shown = client.get(url.replace("/api/Messages", "/webhooks"), headers=HEADERS)
                if shown.json()["counts"]["pending"] == 0:
                    break
                time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=15)
    finally:
        watchdog.cancel()
        process.kill()
    output = "".join(banner) + rest
    assert process.returncode == 0, output
    assert SECRET not in output and "query-token-42" not in output
    assert "Traceback" not in output
    assert all(signature_valid(b, h["x-hub-signature-256"], SECRET) for b, h in receiver.posts)
    got = by_wamid(receiver.statuses())
    assert len(got) == 8
    assert {tuple(s) for s in got.values()} == {("sent", "delivered", "read"), ("sent", "failed")}
    assert re.search(r"webhook failed wamid\.\S+ -> 200", rest)
    assert re.search(r"webhooks: \d+ posted, 0 given up, 0 dropped", rest)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--webhook-url", "ftp://127.0.0.1/hook"], "must start with http:// or https://, not"),
        (["--webhook-url", "127.0.0.1:8000/webhook"], "must start with http:// or https://"),
        (["--webhook-url", "http:///webhook"], "--webhook-url: no host"),
        (["--webhook-url", "http://u:pw@127.0.0.1/h"], "a user or password in the URL"),
        (["--webhook-url", "http://127.0.0.1:99999/h"], "--webhook-url: Port out of range"),
        (["--fail-later", "131999=0.1"], "--fail-later 131999: not a Meta error code"),
        (["--fail-later", "abc=0.1"], "'abc=0.1' is not CODE=SHARE, e.g. 131026=0.03"),
        (["--fail-later", "131026"], "'131026' is not CODE=SHARE"),
        (["--fail-later", "131026=1.5"], "share in '131026=1.5' must be between 0 and 1"),
        (["--fail-later", "131026=-0.1"], "must be between 0 and 1"),
        (
            ["--fail-later", "131026=0.6", "--fail-later", "131050=0.6"],
            "--fail-later: the shares add up to 1.2; at most 1 allowed",
        ),
        (
            ["--fail-later", "131026=0.1", "--fail-later", "131026=0.2"],
            "--fail-later 131026 is given twice",
        ),
        (
            ["--delivered-share", "0.9", "--fail-later", "131026=0.2"],
            "--delivered-share: 0.9 and --fail-later's 0.2 add up to 1.1",
        ),
        (["--read-share", "1.5"], "'--read-share'"),
        (["--webhook-duplicates", "2"], "'--webhook-duplicates'"),
        (["--webhook-out-of-order", "-1"], "'--webhook-out-of-order'"),
        (["--delivered-after", "-1"], "'--delivered-after'"),
        (["--webhook-attempts", "0"], "'--webhook-attempts'"),
    ],
)
def test_bad_webhook_options_are_refused_with_exit_2(args, message):
    if args[0] != "--webhook-url":
        args = ["--webhook-url", "http://127.0.0.1:9/webhook", *args]
    result = cli(["sandbox", "--port", "0", *args], env={"WHATSAPP_APP_SECRET": SECRET})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert SECRET not in result.output
    assert "listening" not in result.output


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--read-share", "0.3"], {}, "--read-share needs --webhook-url"),
        (["--fail-later", "131026=0.1"], {}, "--fail-later needs --webhook-url"),
        (
            ["--webhook-url", "http://127.0.0.1:9/webhook"],
            {"WHATSAPP_APP_SECRET": ""},
            "--webhook-url needs the app secret that signs the webhooks: set WHATSAPP_APP_SECRET",
        ),
        (
            ["--webhook-url", "http://127.0.0.1:9/webhook", "--webhook-secret", "  "],
            {},
            "--webhook-secret: the app secret is empty",
        ),
    ],
)
def test_webhook_options_need_a_url_and_a_secret(args, env, message):
    result = cli(["sandbox", "--port", "0", *args], env={"WHATSAPP_APP_SECRET": "", **env})
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_the_help_names_the_defaults_the_sandbox_uses():
    result = cli(["sandbox", "--help"])
    text = " ".join(result.output.split())
    default = Webhooks(url="http://127.0.0.1/webhook", secret="x")
    assert f"`sent` this long after accepting [{default.sent_after_s:g}]" in text
    assert f"`delivered` after this [{default.delivered_after_s:g}]" in text
    assert f"`read` after this [{default.read_after_s:g}]" in text
    assert f"Share of the delivered also read [{default.read_share:g}]" in text
    assert f"at most this many times when the receiver fails [{default.attempts}]" in text
    assert "$WHATSAPP_APP_SECRET" in text
