"""The whole loop after "sent", through real HTTP on one machine: a campaign goes to the
sandbox gateway, the sandbox posts Meta's signed status webhooks (late, duplicated, out of
order, some failing later) to `campaign webhook`, a forged one is refused, and then the
report and `status` show each recipient's true outcome, a follow-up sends exactly once to
the right people, and the person who opted out is suppressed in the next campaign."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from helpers import campaign_process, env_for, read_report, start_process, write_campaign

from campaign_runner.sandbox import Sandbox, SandboxConfig, Webhooks
from campaign_runner.webhooks.outcome import Outcome, merge
from campaign_runner.webhooks.payload import StatusUpdate
from campaign_runner.webhooks.signature import sign

SECRET = "loop-app-secret-5b1e"
TOKEN = "loop-verify-token-77c"
PEOPLE = [f"+55119700{n:05d}" for n in range(40)]
TEXT = {"type": "text", "text": {"body": "Olá [name], a promoção de primavera começou!"}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def receiver(tmp_path):
    """`campaign webhook` as a real process on 127.0.0.1, on the test's ledger."""
    port = free_port()
    env = {
        **env_for(tmp_path),
        "WHATSAPP_APP_SECRET": SECRET,
        "WHATSAPP_VERIFY_TOKEN": TOKEN,
    }
    process = start_process(
        ["webhook", "--host", "127.0.0.1", "--port", port, "--state", tmp_path / "state"], env
    )
    url = f"http://127.0.0.1:{port}/webhook"

    def listening():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            assert process.poll() is None, process.communicate()
            return False

    wait_for(listening, "the receiver to listen")
    yield url, process
    process.terminate()
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert SECRET not in out + err and TOKEN not in out + err


def expected_outcomes(posted: list[dict]) -> dict[str, Outcome]:
    """What each wamid's statuses, as the sandbox posted them, say became of it."""
    outcomes: dict[str, Outcome] = {}
    for n, entry in enumerate(posted):
        assert entry["outcome"] == "posted", entry
        update = StatusUpdate(entry["wamid"], entry["status"], f"{n:08d}", code=entry["code"])
        outcomes[entry["wamid"]] = merge(outcomes.get(entry["wamid"], Outcome()), update)
    return outcomes


def run(path: Path, tmp_path: Path, report: str, *extra: str):
    env = {**env_for(tmp_path), "CAMPAIGN_STATE": str(tmp_path / "state")}
    result = campaign_process(["run", path, "--report", tmp_path / report, *extra], env)
    return result, {row["phone"]: row for row in read_report(tmp_path / report)}


def test_sent_statuses_come_back_and_drive_the_report_status_follow_up_and_suppression(
    tmp_path, receiver
):
    url, _process = receiver
    hooks = Webhooks(
        url=url,
        secret=SECRET,
        delivered_after_s=0.2,
        read_after_s=0.4,
        read_share=0.5,
        fail_later={131049: 0.2, 131050: 0.1},
        duplicates=0.3,
        out_of_order=0.3,
        seed=11,
    )
    with Sandbox(SandboxConfig(port=0, webhooks=hooks)) as gateway:
        rows = [{"phone": phone, "name": f"P{n}"} for n, phone in enumerate(PEOPLE)]
        spring = write_campaign(
            tmp_path / "spring",
            name="spring-sale",
            rows=rows,
            message=TEXT,
            gateway_url=gateway.messages_url,
        )

        # 1. The campaign goes out; every message is accepted.
        result, first = run(spring, tmp_path, "spring.csv")
        assert result.returncode == 0, result.stderr
        assert {row["status"] for row in first.values()} == {"sent"}
        wamids = {row["message_id"]: phone for phone, row in first.items()}

        # 2. Every status reaches the receiver (retried by the sandbox if need be).
        wait_for(lambda: gateway.webhook_counts()["pending"] == 0, "the sandbox's webhooks")
        posted = gateway.webhooks()
        assert gateway.webhook_counts()["gave-up"] == 0
        assert any(entry["duplicate"] for entry in posted)
        expected = expected_outcomes(posted)
        assert set(expected) == set(wamids)
        finals = {wamid: outcome.final for wamid, outcome in expected.items()}
        failed_with = {w: o.code for w, o in expected.items() if o.final == "failed"}
        assert 131049 in failed_with.values() and 131050 in failed_with.values()

        # 3. A forged status (a bad signature) is refused and changes nothing.
        victim = next(w for w, final in finals.items() if final == "read")
        forged = json.dumps(
            {
                "entry": [
                    {
                        "changes": [
                            {
                                "value": {
                                    "statuses": [
                                        {
                                            "id": victim,
                                            "status": "failed",
                                            "timestamp": str(int(time.time())),
                                            "recipient_id": wamids[victim].lstrip("+"),
                                            "errors": [{"code": 131050, "title": "forged"}],
                                        }
                                    ]
                                }
                            }
                        ]
                    }
                ]
            }
        ).encode()
        for signature in (sign(forged, "not-the-secret"), None):
            headers = {"Content-Type": "application/json"}
            if signature:
                headers["X-Hub-Signature-256"] = signature
            answer = httpx.post(url, content=forged, headers=headers, timeout=5)
            assert answer.status_code in (401, 403)

        # 4. The report from the ledger shows each recipient's true outcome.
        env = {**env_for(tmp_path), "CAMPAIGN_STATE": str(tmp_path / "state")}

        def report_matches():
            made = campaign_process(["report", spring, "--output", tmp_path / "outcomes.csv"], env)
            assert made.returncode == 0, made.stderr
            found = {r["message_id"]: r for r in read_report(tmp_path / "outcomes.csv")}
            return found if {w: r["outcome"] for w, r in found.items()} == finals else None

        report = wait_for(report_matches, "the report to show every outcome")
        for wamid, code in failed_with.items():
            assert report[wamid]["failure_code"] == str(code)
        assert report[victim]["outcome"] == "read" and report[victim]["failure_code"] == ""

        # 5. `status` shows the same funnel.
        status = json.loads(campaign_process(["status", spring, "--json"], env).stdout)
        funnel = status["outcomes"]
        assert funnel["accepted"] == len(PEOPLE)
        assert funnel["read"] == sum(1 for f in finals.values() if f == "read")
        assert funnel["delivered"] == sum(1 for f in finals.values() if f in ("read", "delivered"))
        assert funnel["failed"] == len(failed_with)

        # 6. The follow-up goes to those Meta did not deliver to (131049), exactly once.
        retry_people = sorted(wamids[w] for w, code in failed_with.items() if code == 131049)
        retry = write_campaign(
            tmp_path / "spring",
            name="spring-sale-retry",
            file_name="retry.yaml",
            rows=rows,
            message=TEXT,
            gateway_url=gateway.messages_url,
            follow_up={"of": "spring-sale", "outcome": "failed", "codes": [131049]},
        )
        before = len(gateway.messages())
        result, again = run(retry, tmp_path, "retry.csv")
        assert result.returncode == 0, result.stderr
        assert sorted(p for p, row in again.items() if row["status"] == "sent") == retry_people
        assert {row["status"] for p, row in again.items() if p not in retry_people} == {
            "not-selected"
        }
        received = [m["to"] for m in gateway.messages()[before:]]
        assert sorted(received) == retry_people
        result, third = run(retry, tmp_path, "retry-again.csv")
        assert result.returncode == 0, result.stderr
        assert len(gateway.messages()) == before + len(retry_people)  # re-run: nothing new

        # 7. Whoever stopped marketing messages (after the campaign or its follow-up) is
        # suppressed in the next campaign.
        wait_for(lambda: gateway.webhook_counts()["pending"] == 0, "the follow-up's webhooks")
        opted_out = sorted(
            {f"+{e['recipient_id']}" for e in gateway.webhooks() if e["code"] == 131050}
        )
        assert set(opted_out) >= {wamids[w] for w, code in failed_with.items() if code == 131050}
        autumn = write_campaign(
            tmp_path / "autumn",
            name="autumn-sale",
            rows=rows,
            message=TEXT,
            gateway_url=gateway.messages_url,
        )
        before = len(gateway.messages())
        result, autumn_rows = run(autumn, tmp_path, "autumn.csv")
        assert result.returncode == 0, result.stderr
        assert sorted(p for p, r in autumn_rows.items() if r["status"] == "suppressed") == (
            opted_out
        )
        assert all("131050" in autumn_rows[p]["error"] for p in opted_out)
        received = {m["to"] for m in gateway.messages()[before:]}
        assert received == set(PEOPLE) - set(opted_out)
