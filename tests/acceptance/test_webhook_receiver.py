"""`campaign webhook`: Meta's webhooks received over real HTTP by the real command, a
subprocess on 127.0.0.1, with real signed requests and a real ledger.

Every test's receiver output (stdout and stderr) is checked for the app secret and the
verify token when it stops: neither may ever be shown."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from helpers import cli, env_for, write_campaign
from webhook_builders import ANA, BRUNO, CAMPAIGN, CARLA, T0, outcomes, payload, sent, status

from campaign_runner.ledger import open_ledger, state_from
from campaign_runner.ledger.sqlite import ledger_path
from campaign_runner.webhooks.batcher import RECONCILE_EVERY_S
from campaign_runner.webhooks.receiver import MAX_BODY_BYTES
from campaign_runner.webhooks.signature import sign

SECRET = "app-secret-3f9a1c77e2"
TOKEN = "verify-token-b81d0e"
_LISTEN = re.compile(r"webhook start listen=http://127\.0\.0\.1:(\d+)/webhook ")


@dataclass
class Receiver:
    """A running `campaign webhook` and where its output goes."""

    process: subprocess.Popen
    url: str
    out: Path
    err: Path

    def post(self, doc: object | bytes, secret: str | None = SECRET, **headers: str):
        """POST DOC (a document, or raw bytes) signed with SECRET (None: unsigned)."""
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        if secret is not None:
            headers.setdefault("X-Hub-Signature-256", sign(body, secret))
        headers.setdefault("Content-Type", "application/json")
        return httpx.post(f"{self.url}/webhook", content=body, headers=headers, trust_env=False)

    def get(self, path: str, **params: str):
        return httpx.get(f"{self.url}{path}", params=params, trust_env=False)

    def log(self) -> str:
        return self.err.read_text(encoding="utf-8")


@pytest.fixture
def start_receiver(tmp_path):
    """Start `campaign webhook --port 0` (a free port, read from its start line) with the
    secret and the token in its environment, unless told otherwise; every one is stopped
    after the test and its output checked for the secret and the token."""
    started: list[Receiver] = []

    def start(*extra: str, state: str | Path | None = None, **env: str | None) -> Receiver:
        port = _free_port() if "--quiet" in extra else 0  # no start line to read it from
        environment = {**os.environ, "WHATSAPP_APP_SECRET": SECRET, "WHATSAPP_VERIFY_TOKEN": TOKEN}
        for name, value in env.items():
            environment.pop(name, None) if value is None else environment.update({name: value})
        n = len(started) + 1
        out, err = tmp_path / f"receiver-{n}.out", tmp_path / f"receiver-{n}.err"
        with open(out, "wb") as out_file, open(err, "wb") as err_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "campaign_runner", "webhook", "--port", str(port)]
                + ["--state", str(state or tmp_path / "state"), *extra],
                stdout=out_file,
                stderr=err_file,
                env=environment,
            )
        receiver = Receiver(process, "", out, err)
        started.append(receiver)
        receiver.url = f"http://127.0.0.1:{port or _port_of(receiver)}"
        if port:
            _wait_for_health(receiver)
        return receiver

    yield start
    for receiver in started:
        if receiver.process.poll() is None:
            receiver.process.kill()
            receiver.process.wait(10)
        shown = receiver.out.read_text() + receiver.err.read_text()
        assert SECRET not in shown and TOKEN not in shown


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_health(receiver: Receiver) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if receiver.get("/healthz").status_code == 200:
                return
        assert receiver.process.poll() is None, receiver.log()
        time.sleep(0.05)
    raise AssertionError(f"no answer on /healthz: {receiver.log()}")


def _port_of(receiver: Receiver) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = _LISTEN.search(receiver.log())
        if found:
            return int(found[1])
        if receiver.process.poll() is not None:
            raise AssertionError(f"the receiver exited: {receiver.log()}")
        time.sleep(0.05)
    raise AssertionError(f"no start line: {receiver.log()}")


def ledger_rows(state: Path) -> dict[str, list[tuple]]:
    """What the outcome tables hold, to compare before and after a refused request."""
    with sqlite3.connect(ledger_path(state)) as db:
        return {
            table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("deliveries", "unmatched_statuses", "replies", "preferences")
            + ("suppressions", "holds")
        }


# ---- the subscription handshake ----------------------------------------------------------


def test_the_handshake_echoes_the_challenge_to_the_holder_of_the_verify_token(start_receiver):
    receiver = start_receiver()
    good = receiver.get(
        "/webhook", **{"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "1158"}
    )
    assert (good.status_code, good.text) == (200, "1158")
    assert good.headers["content-type"].startswith("text/plain")
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158"},
        {"hub.mode": "subscribe", "hub.verify_token": TOKEN[:-1], "hub.challenge": "1158"},
        {"hub.mode": "subscribe", "hub.challenge": "1158"},
        {"hub.mode": "unsubscribe", "hub.verify_token": TOKEN, "hub.challenge": "1158"},
        {},
    ):
        refused = receiver.get("/webhook", **params)
        assert refused.status_code == 403, params
        assert "1158" not in refused.text
    assert "webhook handshake-refused" in receiver.log()


def test_without_a_verify_token_the_handshake_is_refused_and_the_log_says_to_set_it(
    start_receiver,
):
    receiver = start_receiver(WHATSAPP_VERIFY_TOKEN=None)
    answer = receiver.get(
        "/webhook", **{"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "7"}
    )
    assert answer.status_code == 403
    refusals = [line for line in receiver.log().splitlines() if "handshake-refused" in line]
    assert len(refusals) == 1 and "WHATSAPP_VERIFY_TOKEN is not set" in refusals[0]


# ---- starting and stopping ---------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, ""])
def test_it_refuses_to_start_without_the_app_secret(tmp_path, secret):
    env = {k: v for k, v in os.environ.items() if k != "WHATSAPP_APP_SECRET"}
    if secret is not None:
        env["WHATSAPP_APP_SECRET"] = secret
    done = subprocess.run(
        [sys.executable, "-m", "campaign_runner", "webhook", "--port", "0"]
        + ["--state", str(tmp_path / "state")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("WHATSAPP_APP_SECRET: not set: ")
    assert "Nothing was started" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "state").exists()  # refused before the ledger was touched


def test_an_address_in_use_is_a_clear_refusal(start_receiver, tmp_path):
    first = start_receiver()
    port = first.url.rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, "-m", "campaign_runner", "webhook", "--port", port]
        + ["--state", str(tmp_path / "state")],
        env={**os.environ, "WHATSAPP_APP_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"127.0.0.1:{port}: cannot listen there (")
    assert "choose another --host or --port" in done.stderr and SECRET not in done.stderr


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_stops_it_cleanly_with_exit_0(start_receiver, tmp_path, how):
    sent(tmp_path / "state", ("k1", ANA, "wamid.A1"))
    receiver = start_receiver()
    assert receiver.post(payload(status("wamid.A1", "delivered", T0, ANA))).status_code == 200
    receiver.process.send_signal(how)
    assert receiver.process.wait(30) == 0
    log = receiver.log()
    assert f"webhook stop by={how.name}" in log and "Traceback" not in log
    assert re.search(r"webhook counts payloads=1 statuses=1 matched=1 changed=1 ", log)
    assert outcomes(tmp_path / "state", "k1") == {"k1": "delivered"}


def test_healthz_answers_while_the_ledger_takes_writes(start_receiver):
    receiver = start_receiver()
    answer = receiver.get("/healthz")
    assert (answer.status_code, answer.text) == (200, "ok\n")


def test_junk_that_is_not_http_is_answered_400_and_logged_once_in_the_house_style(
    start_receiver,
):
    receiver = start_receiver()
    port = int(receiver.url.rsplit(":", 1)[1])
    for junk in (b"GARBAGE / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(junk)
            assert conn.recv(100).startswith(b"HTTP/1.1 400 ")
    assert receiver.get("/healthz").status_code == 200  # still serving
    receiver.process.send_signal(signal.SIGTERM)
    assert receiver.process.wait(30) == 0
    lines = receiver.log().splitlines()
    assert [line[21:] for line in lines if "Invalid HTTP" in line] == [
        'webhook server why="Invalid HTTP request received."'
    ]


def test_quiet_logs_problems_only(start_receiver):
    receiver = start_receiver("--quiet")
    bad = payload(status("wamid.Q", "delivered", T0, ANA) | {"timestamp": "yesterday"})
    assert receiver.post(bad).status_code == 200
    receiver.process.send_signal(signal.SIGTERM)
    assert receiver.process.wait(30) == 0
    lines = receiver.log().splitlines()
    assert len(lines) == 1 and " webhook problem part=" in lines[0], lines


# ---- refused POSTs: nothing recorded -----------------------------------------------------


def test_unsigned_or_wrongly_signed_posts_are_refused_and_nothing_is_recorded(
    start_receiver, tmp_path
):
    state = tmp_path / "state"
    sent(state, ("k1", ANA, "wamid.A1"))
    receiver = start_receiver()
    doc = payload(status("wamid.A1", "failed", T0, ANA, code=131050))
    body = json.dumps(doc).encode()
    other = json.dumps(payload(status("wamid.A1", "read", T0, ANA))).encode()
    before = ledger_rows(state)
    cases = [
        ({}, None, 401),  # no header at all
        ({"X-Hub-Signature-256": ""}, None, 401),
        ({}, "another-secret", 403),  # signed with the wrong secret
        ({"X-Hub-Signature-256": sign(other, SECRET)}, None, 403),  # another body's
        ({"X-Hub-Signature-256": sign(body, SECRET).replace("sha256=", "sha1=")}, None, 403),
        ({"X-Hub-Signature-256": sign(body, SECRET)[:-2]}, None, 403),  # cut short
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, None, 403),
    ]
    for headers, secret, expected in cases:
        answer = receiver.post(body, secret=secret, **headers)
        assert answer.status_code == expected, headers
    # the same body with a space more than was signed: the raw bytes are what is checked
    spaced = receiver.post(body + b" ", **{"X-Hub-Signature-256": sign(body, SECRET)})
    assert spaced.status_code == 403
    assert ledger_rows(state) == before
    assert outcomes(state, "k1") == {"k1": "accepted"}
    log = receiver.log()
    assert 'webhook refused why="no X-Hub-Signature-256 header" answer=401' in log
    assert "does not match the body (is WHATSAPP_APP_SECRET this app's secret?)" in log
    assert sign(body, SECRET) not in log and "131050" not in log  # no signature, no body


def test_an_oversize_body_is_refused_with_413_whole_or_streamed(start_receiver, tmp_path):
    state = tmp_path / "state"
    sent(state, ("k1", ANA, "wamid.A1"))
    receiver = start_receiver()
    big = payload(status("wamid.A1", "read", T0, ANA), padding="x" * MAX_BODY_BYTES)
    body = json.dumps(big).encode()
    before = ledger_rows(state)
    assert receiver.post(body).status_code == 413

    def chunks():
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    streamed = httpx.post(  # chunked: no Content-Length to refuse it by
        f"{receiver.url}/webhook",
        content=chunks(),
        headers={"X-Hub-Signature-256": sign(body, SECRET)},
        trust_env=False,
    )
    assert streamed.status_code == 413
    assert ledger_rows(state) == before
    # at the limit exactly, it is read
    fits = payload(status("wamid.A1", "read", T0, ANA))
    fits["padding"] = ""
    fits["padding"] = "x" * (MAX_BODY_BYTES - len(json.dumps(fits).encode()))
    assert len(json.dumps(fits).encode()) == MAX_BODY_BYTES
    assert receiver.post(fits).status_code == 200
    assert outcomes(state, "k1") == {"k1": "read"}


@pytest.mark.parametrize(
    "body", [b"not json", b'{"entry": [', b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000]
)
def test_a_signed_body_that_is_not_json_is_refused_with_400(start_receiver, tmp_path, body):
    state = tmp_path / "state"
    sent(state, ("k1", ANA, "wamid.A1"))
    receiver = start_receiver()
    before = ledger_rows(state)
    assert receiver.post(body).status_code == 400
    assert ledger_rows(state) == before
    assert 'webhook refused why="signed, but the body is not JSON" answer=400' in receiver.log()


# ---- what is recorded --------------------------------------------------------------------


def test_statuses_of_known_deliveries_land_in_the_ledger_with_their_consequences(
    start_receiver, tmp_path
):
    state = tmp_path / "state"
    sent(state, ("k1", ANA, "wamid.A1"), ("k2", BRUNO, "wamid.B2"), ("k3", CARLA, "wamid.C3"))
    receiver = start_receiver()
    posts = [
        payload(status("wamid.A1", "sent", T0, ANA)),
        payload(status("wamid.A1", "read", T0 + 9, ANA)),  # read before delivered
        payload(status("wamid.A1", "delivered", T0 + 5, ANA)),
        payload(status("wamid.B2", "failed", T0 + 3, BRUNO, code=131050)),  # stopped marketing
        payload(status("wamid.B2", "failed", T0 + 3, BRUNO, code=131050)),  # Meta's duplicate
        payload(
            status("wamid.C3", "sent", T0, CARLA), status("wamid.C3", "delivered", T0 + 1, CARLA)
        ),
    ]
    for doc in posts:
        assert receiver.post(doc).status_code == 200
    # a 200 means committed: read at once, no waiting
    assert outcomes(state, "k1", "k2", "k3") == {"k1": "read", "k2": "failed", "k3": "delivered"}
    journal = open_ledger(state_from(str(state)), readonly=True)
    assert journal is not None
    try:
        assert list(journal.suppressions_of([BRUNO, ANA])) == [BRUNO]
        funnel = journal.funnel(CAMPAIGN)
    finally:
        journal.close()
    assert (funnel.accepted, funnel.delivered, funnel.read, funnel.failed) == (3, 2, 1, 1)
    assert funnel.failed_by_code == [(131050, "error 131050", 1)]
    receiver.process.send_signal(signal.SIGTERM)
    assert receiver.process.wait(30) == 0
    assert re.search(
        r"webhook counts payloads=6 statuses=7 matched=7 changed=5 kept_aside=0 "
        r"matched_later=0 replies=0 preferences=0 suppressed=1 held=none commits=\d+ problems=0$",
        receiver.log(),
        re.M,
    ), receiver.log()


def test_a_paused_template_holds_its_campaign_and_the_log_names_it(start_receiver, tmp_path):
    state = tmp_path / "state"
    sent(state, ("k1", ANA, "wamid.A1"))
    receiver = start_receiver("--quiet")
    assert (
        receiver.post(payload(status("wamid.A1", "failed", T0, ANA, code=132015))).status_code
        == 200
    )
    assert f"webhook held campaign={CAMPAIGN}" in receiver.log()
    journal = open_ledger(state_from(str(state)), readonly=True)
    assert journal is not None
    try:
        hold = journal.hold_of(CAMPAIGN)
    finally:
        journal.close()
    assert hold is not None and hold.code == 132015


def test_replies_and_opt_outs_are_kept(start_receiver, tmp_path):
    state = tmp_path / "state"
    receiver = start_receiver()
    doc = payload(
        messages=[
            {
                "from": ANA[1:],
                "id": "wamid.IN1",
                "timestamp": str(T0),
                "type": "text",
                "text": {"body": "PARE"},
                "context": {"id": "wamid.A1"},
            }
        ],
    )
    prefs = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "user_preferences",
                        "value": {
                            "user_preferences": [
                                {
                                    "wa_id": BRUNO[1:],
                                    "detail": "User requested to stop",
                                    "category": "marketing_messages",
                                    "value": "stop",
                                    "timestamp": T0,
                                }
                            ]
                        },
                    }
                ],
            }
        ],
    }
    assert receiver.post(doc).status_code == 200
    assert receiver.post(prefs).status_code == 200
    rows = ledger_rows(state)
    assert [r[:2] for r in rows["replies"]] == [("wamid.IN1", ANA)]
    assert [r[:2] for r in rows["preferences"]] == [(BRUNO, "stop")]
    assert [r[:2] for r in rows["suppressions"]] == [(BRUNO, "opted-out")]


def test_a_body_with_bad_parts_is_answered_200_and_its_good_parts_recorded(
    start_receiver, tmp_path
):
    state = tmp_path / "state"
    sent(state, ("k1", ANA, "wamid.A1"), ("k2", BRUNO, "wamid.B2"))
    receiver = start_receiver()
    doc = payload(
        status("wamid.A1", "delivered", T0, ANA),
        status("wamid.B2", "delivered", T0, BRUNO) | {"timestamp": "next-tuesday"},
        {"status": "read", "timestamp": str(T0)},  # no id
    )
    answer = receiver.post(doc)
    assert answer.status_code == 200
    assert outcomes(state, "k1", "k2") == {"k1": "delivered", "k2": "accepted"}
    problems = [line for line in receiver.log().splitlines() if " webhook problem " in line]
    assert problems == [
        problems[0][:21] + "webhook problem part=entry[0].changes[0].value.statuses[1].timestamp"
        " what=\"expected Unix seconds, got 'next-tuesday'\"",
        problems[1][:21]
        + "webhook problem part=entry[0].changes[0].value.statuses[2].id what=missing",
    ]
    log = receiver.log()
    assert '"whatsapp_business_account"' not in log and "recipient_id" not in log  # no body


def test_a_status_before_its_delivery_is_kept_aside_then_matched(start_receiver, tmp_path):
    state = tmp_path / "state"
    receiver = start_receiver()
    assert receiver.post(payload(status("wamid.EARLY", "read", T0 + 4, ANA))).status_code == 200
    assert [r[:2] for r in ledger_rows(state)["unmatched_statuses"]] == [("wamid.EARLY", "read")]
    sent(state, ("k1", ANA, "wamid.EARLY"))  # the run commits its wamid after the webhook
    deadline = time.monotonic() + 3 * RECONCILE_EVERY_S
    while outcomes(state, "k1") != {"k1": "read"} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert outcomes(state, "k1") == {"k1": "read"}
    assert ledger_rows(state)["unmatched_statuses"] == []


def test_a_200_means_committed_even_if_the_receiver_is_killed_right_after(start_receiver, tmp_path):
    state = tmp_path / "state"
    keys = [(f"k{i}", f"+55119{70_000_000 + i:08d}", f"wamid.K{i}") for i in range(20)]
    sent(state, *keys)
    receiver = start_receiver()
    for _key, phone, wamid in keys:
        assert receiver.post(payload(status(wamid, "delivered", T0, phone))).status_code == 200
    receiver.process.kill()  # SIGKILL: no shutdown, no last commit
    receiver.process.wait(10)
    assert set(outcomes(state, *(k for k, _, _ in keys)).values()) == {"delivered"}


def test_a_campaign_sent_to_the_sandbox_then_meta_reports_its_outcomes(
    sandbox, start_receiver, tmp_path
):
    path = write_campaign(tmp_path / "c", name=CAMPAIGN, gateway_url=sandbox.messages_url)
    state = tmp_path / "state"
    ran = cli(
        ["run", path, "--yes", "--state", state, "--report", tmp_path / "r.csv"], env_for(tmp_path)
    )
    assert ran.exit_code == 0, ran.output
    with sqlite3.connect(ledger_path(state)) as db:
        wamids = dict(db.execute("SELECT phone, message_id FROM deliveries").fetchall())
    assert set(wamids) == {ANA, BRUNO} and all(wamids.values())
    receiver = start_receiver()
    answer = receiver.post(
        payload(
            status(wamids[ANA], "read", T0 + 2, ANA),
            status(wamids[BRUNO], "failed", T0 + 1, BRUNO, code=131026),
        )
    )
    assert answer.status_code == 200
    with sqlite3.connect(ledger_path(state)) as db:
        found = dict(db.execute("SELECT phone, outcome FROM deliveries").fetchall())
        marked = db.execute("SELECT phone, kind FROM suppressions").fetchall()
    assert found == {ANA: "read", BRUNO: "failed"}
    assert marked == [(BRUNO, "not-on-whatsapp")]


def _postgres_ledger_with_one_sent(postgres_url: str) -> None:
    """A PostgreSQL ledger (created by the runner) whose delivery `k1` to ANA was sent as
    wamid.PG1."""
    import psycopg

    journal = open_ledger(state_from(postgres_url), readonly=False)
    assert journal is not None
    journal.close()
    with psycopg.connect(postgres_url) as db:
        db.execute(
            "INSERT INTO deliveries (campaign, key, row, phone, status, message_id, updated_at)"
            " VALUES (%s, 'k1', 1, %s, 'sent', 'wamid.PG1', '2026-09-21T10:00:00.000+00:00')",
            (CAMPAIGN, ANA),
        )


def test_it_works_on_a_postgresql_ledger(start_receiver, postgres_url, tmp_path):
    import psycopg

    _postgres_ledger_with_one_sent(postgres_url)
    receiver = start_receiver(state=postgres_url)
    assert receiver.get("/healthz").status_code == 200
    assert receiver.post(payload(status("wamid.PG1", "delivered", T0, ANA))).status_code == 200
    assert receiver.post(payload(status("wamid.PG2", "read", T0, ANA))).status_code == 200
    assert outcomes(postgres_url, "k1") == {"k1": "delivered"}
    with psycopg.connect(postgres_url) as db:
        aside = db.execute("SELECT message_id, status FROM unmatched_statuses").fetchall()
    assert aside == [("wamid.PG2", "read")]
    receiver.process.send_signal(signal.SIGTERM)
    assert receiver.process.wait(30) == 0
    assert "ledger=postgresql://postgres@127.0.0.1:" in receiver.log()


def test_a_lost_postgresql_connection_is_opened_afresh_without_a_refusal(
    start_receiver, postgres_url
):
    import psycopg

    _postgres_ledger_with_one_sent(postgres_url)
    with_password = postgres_url.replace("postgres@", "postgres:pg-pass-7e1@", 1)
    receiver = start_receiver(state=with_password)  # the test server trusts: never checked
    assert receiver.post(payload(status("wamid.PG1", "sent", T0, ANA))).status_code == 200
    with psycopg.connect(postgres_url, autocommit=True) as db:  # as a server restart would
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    assert receiver.post(payload(status("wamid.PG1", "read", T0 + 5, ANA))).status_code == 200
    assert outcomes(postgres_url, "k1") == {"k1": "read"}
    log = receiver.log()
    assert " webhook ledger-error requests=1 error=" in log and " webhook ledger-reopened" in log
    assert "pg-pass-7e1" not in log and "ledger=postgresql://postgres:***@127.0.0.1:" in log


# ---- the whole loop: a campaign sent to the sandbox, whose webhooks reach the receiver -----


def test_the_sandboxs_webhooks_reach_the_ledger_through_the_receiver(
    sandbox_factory, start_receiver, tmp_path
):
    """Late, duplicated, out-of-order statuses and failures that come after `sent`, posted
    by the sandbox to the real receiver: every delivery ends as what Meta (the sandbox)
    said, whatever the order, including the statuses that came before their wamid was
    committed (matched by reconcile)."""
    from campaign_runner.sandbox import Webhooks

    state = tmp_path / "state"
    receiver = start_receiver()
    hooks = Webhooks(
        url=f"{receiver.url}/webhook",
        secret=SECRET,
        delivered_after_s=0.1,
        read_after_s=0.2,
        fail_later={131026: 0.25},
        duplicates=0.3,
        out_of_order=0.3,
        seed=7,
    )
    sandbox = sandbox_factory(webhooks=hooks)
    rows = [{"phone": f"+55119{70_000_000 + i:08d}", "name": f"P{i}"} for i in range(24)]
    path = write_campaign(
        tmp_path / "c", name=CAMPAIGN, rows=rows, gateway_url=sandbox.messages_url
    )
    ran = cli(
        ["run", path, "--yes", "--state", state, "--report", tmp_path / "r.csv"], env_for(tmp_path)
    )
    assert ran.exit_code == 0, ran.output
    deadline = time.monotonic() + 30
    while sandbox.webhook_counts().get("pending") and time.monotonic() < deadline:
        time.sleep(0.05)
    posted = [p for p in sandbox.webhooks() if p["outcome"] == "posted"]
    assert posted and all(p["answer"] == 200 for p in posted)
    expected = _finals(posted)
    assert len(expected) == 24 and {"failed", "read", "delivered"} <= set(expected.values())
    assert any(p["duplicate"] for p in posted)
    deadline = time.monotonic() + 3 * RECONCILE_EVERY_S
    while time.monotonic() < deadline and _ledger_finals(state) != expected:
        time.sleep(0.2)
    assert _ledger_finals(state) == expected
    assert ledger_rows(state)["unmatched_statuses"] == []
    failed_phones = {p["recipient_id"] for p in posted if p["status"] == "failed"}
    assert {f"+{n}" for n in failed_phones} == {
        phone for phone, kind, *_ in ledger_rows(state)["suppressions"] if kind == "not-on-whatsapp"
    }


def _finals(posted: list[dict]) -> dict[str, str]:
    """Each wamid's final outcome by Meta's rules: read or delivered if reached, else failed
    if it failed, else sent."""
    rank = {"sent": 1, "delivered": 2, "read": 3}
    reached: dict[str, str] = {}
    failed: set[str] = set()
    for post in posted:
        wamid, word = post["wamid"], post["status"]
        if word == "failed":
            failed.add(wamid)
        elif rank[word] > rank.get(reached.get(wamid, ""), 0):
            reached[wamid] = word
    finals = {}
    for wamid in reached.keys() | failed:
        best = reached.get(wamid)
        finals[wamid] = best if best in ("delivered", "read") or wamid not in failed else "failed"
    return finals


def _ledger_finals(state: Path) -> dict[str, str]:
    with sqlite3.connect(ledger_path(state)) as db:
        return dict(
            db.execute("SELECT message_id, outcome FROM deliveries WHERE outcome IS NOT NULL")
        )
