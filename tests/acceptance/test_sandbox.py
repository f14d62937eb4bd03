"""The sandbox gateway, driven over real loopback HTTP the way a sender or a person would."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from campaign_runner.sandbox import Faults, Sandbox, SandboxConfig

PHONE = "+5511948489500"
OTHER_PHONE = "+5521987654321"
TEXT = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": PHONE,
    "type": "text",
    "text": {"body": "hi"},
}
HEADERS = {"apikey": "test-key", "version": "4.0"}
PROJECT = Path(__file__).resolve().parent.parent


def text_to(phone: str, body: str = "hi") -> dict:
    return {**TEXT, "to": phone, "text": {"body": body}}


@pytest.fixture
def client():
    with httpx.Client(timeout=5) as http:
        yield http


# ---- key-auth, version and answers -----------------------------------------------------


def test_health_says_ok(sandbox, client):
    answer = client.get(sandbox.url + "/health")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize("headers", [{"version": "4.0"}, {"apikey": "", "version": "4.0"}])
def test_a_request_without_a_key_gets_kongs_401_and_challenge(sandbox, client, headers):
    answer = client.post(sandbox.messages_url, json=TEXT, headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"message": "No API key found in request"}
    assert answer.headers["www-authenticate"] == 'Key realm="kong"'
    assert sandbox.messages() == []


def test_a_wrong_key_gets_401_invalid_credentials(sandbox, client):
    answer = client.post(sandbox.messages_url, json=TEXT, headers={"apikey": "guess"})
    assert answer.status_code == 401
    assert answer.json() == {"message": "Invalid authentication credentials"}
    assert sandbox.messages() == []


def test_the_right_key_gets_a_wamid_and_the_contact(sandbox, client):
    answer = client.post(sandbox.messages_url, json=TEXT, headers=HEADERS)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    reply = answer.json()
    assert reply["messaging_product"] == "whatsapp"
    assert reply["contacts"] == [{"input": PHONE, "wa_id": "5511948489500"}]
    assert reply["messages"][0]["id"].startswith("wamid.")


def test_without_a_configured_key_any_non_empty_key_will_do(sandbox_factory, client):
    open_sandbox = sandbox_factory(apikey=None)
    assert client.post(open_sandbox.messages_url, json=TEXT, headers={"apikey": "x"}).is_success
    assert client.post(open_sandbox.messages_url, json=TEXT).status_code == 401


def test_the_key_may_come_in_the_query_string_like_kong(sandbox, client):
    answer = client.post(sandbox.messages_url + "?phone_id=123&apikey=test-key", json=TEXT)
    assert answer.status_code == 200


def test_a_key_given_twice_is_refused(sandbox, client):
    headers = [("apikey", "test-key"), ("apikey", "test-key")]
    answer = client.post(sandbox.messages_url, json=TEXT, headers=headers)
    assert (answer.status_code, answer.json()) == (401, {"message": "Duplicate API key found"})


def test_an_unsupported_version_is_refused_and_a_missing_one_accepted(sandbox, client):
    old = client.post(sandbox.messages_url, json=TEXT, headers={**HEADERS, "version": "3.0"})
    assert (old.status_code, old.json()) == (400, {"message": "Unsupported version"})
    unversioned = client.post(sandbox.messages_url, json=TEXT, headers={"apikey": "test-key"})
    assert unversioned.status_code == 200


# ---- bodies the gateway refuses ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (text_to(PHONE, "x" * 4097), "text.body"),
        (
            {**TEXT, "type": "audio", "text": None, "audio": {"id": "1", "caption": "no"}},
            "audio.caption",
        ),
        ({key: value for key, value in TEXT.items() if key != "to"}, "'to' is missing"),
    ],
    ids=["text-too-long", "caption-on-audio", "no-recipient"],
)
def test_a_body_the_schema_refuses_gets_meta_error_100_naming_the_path(sandbox, client, body, path):
    body = {key: value for key, value in body.items() if value is not None}
    answer = client.post(sandbox.messages_url, json=body, headers=HEADERS)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["type"]) == (100, "OAuthException")
    assert error["message"] == "(#100) Invalid parameter"
    assert path in error["error_data"]["details"]
    assert sandbox.messages() == []


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1, 2]", b"\xff\xfe", b""], ids=["text", "array", "binary", "empty"]
)
def test_a_body_that_is_no_json_object_gets_meta_error_100(sandbox, client, raw):
    answer = client.post(sandbox.messages_url, content=raw, headers=HEADERS)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 100


# ---- what the sandbox records ------------------------------------------------------------


def test_accepted_messages_are_listed_and_the_key_is_never_kept(sandbox, client):
    for body in (text_to(PHONE, "one"), text_to(OTHER_PHONE, "two"), text_to(PHONE, "three")):
        client.post(sandbox.messages_url, json=body, headers=HEADERS)
    client.post(sandbox.messages_url, json=text_to(PHONE, ""), headers=HEADERS)  # refused

    listed = client.get(sandbox.url + "/messages", headers=HEADERS).json()
    assert [record["body"]["text"]["body"] for record in listed] == ["one", "two", "three"]
    assert listed == sandbox.messages()
    first = listed[0]
    assert first["to"] == PHONE and first["type"] == "text" and first["id"].startswith("wamid.")
    assert first["received_at"].startswith(time.strftime("%Y-", time.gmtime()))
    assert first["headers"] == {"version": "4.0", "content-type": "application/json"}
    assert "test-key" not in json.dumps(listed)

    to_phone = client.get(sandbox.url + "/messages", params={"to": PHONE}, headers=HEADERS).json()
    assert [record["body"]["text"]["body"] for record in to_phone] == ["one", "three"]
    literal_plus = client.get(sandbox.url + "/messages?to=+5521987654321", headers=HEADERS).json()
    assert [record["to"] for record in literal_plus] == [OTHER_PHONE]
    latest = client.get(sandbox.url + "/messages?limit=1", headers=HEADERS).json()
    assert [record["body"]["text"]["body"] for record in latest] == ["three"]

    assert client.delete(sandbox.url + "/messages", headers=HEADERS).status_code == 200
    assert client.get(sandbox.url + "/messages", headers=HEADERS).json() == []


def test_messages_hands_out_copies(sandbox, client):
    client.post(sandbox.messages_url, json=TEXT, headers=HEADERS)
    sandbox.messages()[0]["body"]["to"] = "tampered"
    assert sandbox.messages()[0]["body"]["to"] == PHONE


def test_the_record_file_gets_one_json_line_per_accepted_message(sandbox_factory, client, tmp_path):
    record = tmp_path / "rehearsals" / "sent.jsonl"  # the folder is made on start
    recording = sandbox_factory(record=record)
    sent = [
        client.post(recording.messages_url, json=text_to(phone), headers=HEADERS)
        for phone in (PHONE, OTHER_PHONE)
    ]
    client.post(recording.messages_url, json={"to": PHONE}, headers=HEADERS)  # refused

    lines = record.read_text(encoding="utf-8").splitlines()  # readable while still running
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == [a.json()["messages"][0]["id"] for a in sent]
    assert [r["to"] for r in records] == [PHONE, OTHER_PHONE]
    assert "test-key" not in record.read_text(encoding="utf-8")


# ---- faults -----------------------------------------------------------------------------


def test_a_500_fault_answers_kongs_unexpected_error(sandbox_factory, client):
    failing = sandbox_factory(Faults(rates={"500": 1.0}))
    answer = client.post(failing.messages_url, json=TEXT, headers=HEADERS)
    assert (answer.status_code, answer.json()) == (500, {"message": "An unexpected error occurred"})
    assert failing.messages() == []


def test_a_429_fault_answers_like_kongs_rate_limiting(sandbox_factory, client):
    limited = sandbox_factory(Faults(rates={"429": 1.0}, retry_after_s=3))
    answer = client.post(limited.messages_url, json=TEXT, headers=HEADERS)
    assert (answer.status_code, answer.json()) == (429, {"message": "API rate limit exceeded"})
    assert answer.headers["retry-after"] == "3"
    assert answer.headers["ratelimit-reset"] == "3"
    assert answer.headers["ratelimit-remaining"] == "0"
    assert answer.headers["x-ratelimit-remaining-second"] == "0"
    assert int(answer.headers["ratelimit-limit"]) > 0
    assert int(answer.headers["x-ratelimit-limit-second"]) > 0


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (130429, 429),
        (131056, 429),
        (131048, 429),
        (4, 429),
        (80007, 429),
        (131026, 400),
        (131047, 400),
        (132001, 400),
        (132000, 400),
        (0, 401),
        (190, 401),
        (10, 403),
        (131031, 403),
        (368, 403),
        (131000, 500),
        (1, 500),
        (2, 500),
        (987654, 400),
    ],
)
def test_a_meta_fault_answers_the_meta_envelope_with_its_http_status(
    sandbox_factory, client, code, status
):
    failing = sandbox_factory(Faults(rates={str(code): 1.0}))
    answer = client.post(failing.messages_url, json=TEXT, headers=HEADERS)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert error["message"].startswith(f"(#{code}) ")
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["error_data"]["details"]
    assert error["fbtrace_id"]
    assert failing.messages() == []


def test_a_dropped_request_gets_no_answer_and_is_not_recorded(sandbox_factory, client):
    dropping = sandbox_factory(Faults(rates={"drop": 1.0}))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(dropping.messages_url, json=TEXT, headers=HEADERS)
    assert dropping.messages() == []


def test_a_lost_answer_leaves_the_message_recorded(sandbox_factory, client):
    losing = sandbox_factory(Faults(rates={"lost": 1.0}))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(losing.messages_url, json=TEXT, headers=HEADERS)
    assert [record["to"] for record in losing.messages()] == [PHONE]


def test_latency_is_added_to_every_answer(sandbox_factory, client):
    slow = sandbox_factory(Faults(latency_ms=150, jitter_ms=20))
    started = time.perf_counter()
    client.post(slow.messages_url, json=TEXT, headers=HEADERS)
    client.post(slow.messages_url, json=TEXT)  # refusals are just as slow
    assert time.perf_counter() - started >= 0.3


def statuses_for(sandboxed: Sandbox, count: int) -> list[int]:
    with httpx.Client(timeout=5) as http:
        return [
            http.post(sandboxed.messages_url, json=TEXT, headers=HEADERS).status_code
            for _ in range(count)
        ]


def test_the_same_seed_gives_the_same_faults_in_the_same_order(sandbox_factory):
    faults = {"500": 0.2, "429": 0.2, "131026": 0.2}
    first = statuses_for(sandbox_factory(Faults(rates=faults, seed=7, retry_after_s=0)), 40)
    again = statuses_for(sandbox_factory(Faults(rates=faults, seed=7, retry_after_s=0)), 40)
    other = statuses_for(sandbox_factory(Faults(rates=faults, seed=8, retry_after_s=0)), 40)
    assert first == again
    assert first != other
    assert {200, 400, 429, 500} <= set(first)


def test_a_script_plays_faults_for_one_recipient_then_behaves(sandbox_factory, client):
    scripted = sandbox_factory(Faults(script={PHONE: ["131056", "131056", "ok", "500"]}))
    mine = [
        client.post(scripted.messages_url, json=TEXT, headers=HEADERS).status_code for _ in range(5)
    ]
    other = client.post(scripted.messages_url, json=text_to(OTHER_PHONE), headers=HEADERS)
    assert mine == [429, 429, 200, 500, 200]
    assert other.status_code == 200
    assert len(scripted.messages()) == 3


def test_a_script_matches_the_recipient_however_it_is_written(sandbox_factory, client):
    scripted = sandbox_factory(Faults(script={"5511948489500": ["131026"]}))
    answer = client.post(scripted.messages_url, json=TEXT, headers=HEADERS)
    assert answer.json()["error"]["code"] == 131026


def test_a_rate_limit_refuses_what_goes_over_it(sandbox_factory, client):
    limited = sandbox_factory(Faults(rate_limit_per_s=5, retry_after_s=0))
    answers = [client.post(limited.messages_url, json=TEXT, headers=HEADERS) for _ in range(12)]
    accepted = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert 5 <= len(accepted) <= 6 and len(accepted) + len(refused) == 12
    assert accepted[0].headers["x-ratelimit-limit-second"] == "5"
    assert accepted[0].headers["x-ratelimit-remaining-second"] == "4"
    assert refused[0].json() == {"message": "API rate limit exceeded"}
    assert refused[0].headers["retry-after"] == "0"
    assert refused[0].headers["ratelimit-remaining"] == "0"


def test_faults_can_change_while_running(sandbox, client):
    sandbox.set_faults(Faults(rates={"500": 1.0}))
    assert client.post(sandbox.messages_url, json=TEXT, headers=HEADERS).status_code == 500
    sandbox.set_faults(Faults())
    assert client.post(sandbox.messages_url, json=TEXT, headers=HEADERS).status_code == 200


@pytest.mark.parametrize(
    "settings",
    [
        {"rates": {"boom": 0.1}},
        {"rates": {"500": 0.7, "429": 0.5}},
        {"rates": {"500": -0.1}},
        {"script": {PHONE: ["nope"]}},
        {"latency_ms": -1},
        {"rate_limit_per_s": 0},
    ],
)
def test_faults_that_make_no_sense_are_refused(settings):
    with pytest.raises(ValueError):
        Faults(**settings)


# ---- malformed traffic never stops the server -------------------------------------------


def raw_exchange(sandboxed: Sandbox, data: bytes, hang_up: bool = False) -> bytes:
    """Send DATA over a bare socket; read what comes back (nothing if HANG_UP)."""
    port = int(sandboxed.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(data)
        if hang_up:
            return b""
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
        return received


def huge_body(sandboxed, http):
    return http.post(sandboxed.messages_url, content=b"x" * 1_200_000, headers=HEADERS)


def unknown_path(sandboxed, http):
    return http.get(sandboxed.url + "/v1/elsewhere", headers=HEADERS)


def wrong_method(method):
    return lambda sandboxed, http: http.request(method, sandboxed.messages_url, headers=HEADERS)


@pytest.mark.parametrize(
    ("misbehave", "status", "message"),
    [
        (huge_body, 413, "Request size limit exceeded"),
        (wrong_method("GET"), 405, "Method not allowed"),
        (wrong_method("PUT"), 405, "Method not allowed"),
        (unknown_path, 404, "no Route matched with those values"),
    ],
    ids=["huge-body", "get", "put", "unknown-path"],
)
def test_bad_requests_get_a_json_answer_and_the_next_request_succeeds(
    sandbox, client, misbehave, status, message
):
    answer = misbehave(sandbox, client)
    assert (answer.status_code, answer.json()) == (status, {"message": message})
    assert client.post(sandbox.messages_url, json=TEXT, headers=HEADERS).status_code == 200


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"HELLO?\r\n\r\n",
        b"GET / HTTP/9\r\n\r\n",
    ],
    ids=["tls-hello", "words", "bad-version"],
)
def test_garbage_bytes_get_a_400_and_the_server_goes_on(sandbox, client, garbage):
    answer = raw_exchange(sandbox, garbage)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"connection: close" in head.lower()
    assert "message" in json.loads(body)
    assert client.post(sandbox.messages_url, json=TEXT, headers=HEADERS).status_code == 200


@pytest.mark.parametrize(
    "partial",
    [
        b"POST /api/Messages HTTP/1.1\r\nHost: x\r\napikey: test",
        b"POST /api/Messages HTTP/1.1\r\nHost: x\r\napikey: test-key\r\n"
        b'Content-Length: 500\r\n\r\n{"to": ',
    ],
    ids=["mid-headers", "mid-body"],
)
def test_a_client_that_hangs_up_mid_request_is_forgotten(sandbox, client, partial):
    raw_exchange(sandbox, partial, hang_up=True)
    assert client.post(sandbox.messages_url, json=TEXT, headers=HEADERS).status_code == 200
    assert len(sandbox.messages()) == 1


# ---- load, lifecycle and the foreground server ------------------------------------------


def test_200_concurrent_requests_over_64_connections_are_all_answered(sandbox_factory):
    busy = sandbox_factory(Faults(latency_ms=20))

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(limits=limits, timeout=10) as http:
            return await asyncio.gather(
                *(
                    http.post(busy.messages_url, json=text_to(PHONE, str(n)), headers=HEADERS)
                    for n in range(200)
                )
            )

    answers = asyncio.run(send_all())
    assert [a.status_code for a in answers] == [200] * 200
    assert len({a.json()["messages"][0]["id"] for a in answers}) == 200
    assert len(busy.messages()) == 200


def test_each_request_is_echoed_on_one_line(sandbox_factory, client):
    lines: list[str] = []
    echoing = sandbox_factory(Faults(script={OTHER_PHONE: ["429"]}), echo=lines.append)
    client.post(echoing.messages_url, json=TEXT, headers=HEADERS)
    client.post(echoing.messages_url, json=text_to(OTHER_PHONE), headers=HEADERS)
    assert lines[0] == (
        f"sandbox gateway listening on {echoing.messages_url} (apikey: the configured key only)"
    )
    assert re.fullmatch(rf"\d\d:\d\d:\d\d 200 text \{PHONE} wamid\.\S+", lines[1])
    assert re.fullmatch(rf"\d\d:\d\d:\d\d 429 fault 429 \{OTHER_PHONE}", lines[2])


def test_a_stopped_sandbox_frees_its_port_and_stops_twice_quietly(client):
    first = Sandbox(SandboxConfig(port=0)).start()
    second = Sandbox(SandboxConfig(port=0)).start()
    assert first.url != second.url
    first.stop()
    first.stop()
    with pytest.raises(httpx.ConnectError):
        client.get(first.url + "/health")
    assert client.get(second.url + "/health").status_code == 200
    second.stop()


def test_a_port_in_use_is_reported_by_start(sandbox):
    port = int(sandbox.url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        Sandbox(SandboxConfig(port=port)).start()


SERVE = (
    "from campaign_runner.sandbox import SandboxConfig, serve\n"
    "serve(SandboxConfig(port=0, apikey='test-key'), lambda line: print(line, flush=True))\n"
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_answers_in_the_foreground_and_stops_cleanly_on_a_signal(signum):
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=PROJECT,
    )
    watchdog = threading.Timer(15, process.kill)  # never let a stuck server hang the suite
    watchdog.start()
    try:
        banner = process.stdout.readline()
        found = re.search(r"listening on (http://\S+)", banner)
        assert found, banner
        answer = httpx.post(found.group(1), json=TEXT, headers=HEADERS, timeout=5)
        assert answer.status_code == 200
        process.send_signal(signum)
        rest, _ = process.communicate(timeout=10)
    finally:
        watchdog.cancel()
        process.kill()
    assert process.returncode == 0
    assert f"200 text {PHONE} wamid." in rest
    assert rest.rstrip().endswith("sandbox stopped")
    assert "Traceback" not in rest


# ---- idempotency and the command line ------------------------------------------------------


def test_a_repeated_idempotency_key_gets_the_first_answer_when_honoured(sandbox_factory, client):
    honouring = sandbox_factory(idempotency=True)
    headers = {**HEADERS, "Idempotency-Key": "k-1"}
    first = client.post(honouring.messages_url, json=TEXT, headers=headers)
    again = client.post(honouring.messages_url, json=TEXT, headers=headers)
    other = client.post(
        honouring.messages_url, json=TEXT, headers={**HEADERS, "Idempotency-Key": "k-2"}
    )
    assert first.json() == again.json()
    assert other.json()["messages"][0]["id"] != first.json()["messages"][0]["id"]
    assert len(honouring.messages()) == 2


def test_by_default_a_repeated_idempotency_key_is_a_second_message(sandbox, client):
    headers = {**HEADERS, "apikey": "test-key", "Idempotency-Key": "k-1"}
    client.post(sandbox.messages_url, json=TEXT, headers=headers)
    client.post(sandbox.messages_url, json=TEXT, headers=headers)
    assert sandbox.message_count() == 2
    sandbox.set_idempotency(True)  # keys seen before the switch are remembered
    client.post(sandbox.messages_url, json=TEXT, headers=headers)
    assert sandbox.message_count() == 2


def test_campaign_sandbox_answers_the_seed_curl_with_a_wamid():
    """The documentation's text example, headers and all, sent to `campaign sandbox`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "campaign_runner", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    watchdog = threading.Timer(15, process.kill)
    watchdog.start()
    try:
        banner = process.stdout.readline()
        url = re.search(r"listening on (http://\S+)", banner).group(1)
        answer = httpx.post(
            url,
            headers={"Content-Type": "application/json", "apikey": "{APIKEY}", "version": "4.0"},
            content=b'{"text": {"body": "Chamando"}, "messaging_product": "whatsapp", '
            b'"to": "+5511948489500", "type": "text", "recipient_type": "individual"}',
            timeout=5,
        )
        assert answer.status_code == 200
        assert answer.json()["messages"][0]["id"].startswith("wamid.")
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=10)
    finally:
        watchdog.cancel()
        process.kill()
    assert process.returncode == 0 and "sandbox stopped" in rest


def test_campaign_sandbox_refuses_a_bad_fault_share_clearly():
    done = subprocess.run(
        [sys.executable, "-m", "campaign_runner", "sandbox", "--fail", "429=2"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert done.returncode == 2 and "between 0 and 1" in done.stderr
