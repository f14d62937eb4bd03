"""Consequences that stop sending, by themselves: a campaign whose template Meta paused is
held (its runs send nothing, exit 3) until the operator runs `campaign resume`, and the
quality breaker stops a run whose messages fail with 131049/131050 too often, then holds
the campaign. Statuses come in as `campaign webhook` writes them: Meta-shaped payloads
applied to the real ledger (`apply_events(parse_payload(doc))`), from another thread while
a run sends."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from helpers import cli, env_for, on_a_terminal, read_report, write_campaign
from webhook_builders import payload

from campaign_runner.ledger import open_ledger, state_from
from campaign_runner.sandbox import Faults
from campaign_runner.webhooks.payload import parse_payload

ANA, BIA, CAIO = "+5511970000000", "+5511970000001", "+5511970000002"
PAUSED = "the template is paused by Meta for low quality (Meta 132015)"
NAME = "spring"


def people(*phones: str) -> list[dict]:
    return [{"phone": phone, "name": f"P{i}"} for i, phone in enumerate(phones)]


def crowd(n: int) -> list[dict]:
    return [{"phone": f"+551197{i:07d}", "name": f"P{i}"} for i in range(n)]


def campaign(folder: Path, gateway, rows: list[dict], **send) -> Path:
    """The campaign `spring` in FOLDER (written again with new ROWS: the same campaign)."""
    sections = {"send": send} if send else {}
    return write_campaign(
        folder, name=NAME, rows=rows, gateway_url=gateway.messages_url, **sections
    )


def run(path: Path, state: str, tmp_path: Path, *extra: str):
    """`campaign run` with its own report file; (result, rows by phone, JSON summary)."""
    report = path.parent / f"report-{len(list(path.parent.glob('report-*.json')))}.csv"
    result = cli(["run", path, "--state", state, "--report", report, *extra], env=env_for(tmp_path))
    summary = json.loads(report.with_suffix(".json").read_text())
    rows = read_report(report) if report.exists() else []
    return result, {row["phone"]: row for row in rows}, summary


def final_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if " exit=" in line]
    assert lines, result.output
    return lines[-1]


def received(gateway) -> list[str]:
    return sorted(message["to"] for message in gateway.messages())


# ---- what Meta posts, applied as `campaign webhook` applies it ---------------------------


def failed_status(wamid: str, phone: str, code: int, title: str) -> dict:
    return {
        "id": wamid,
        "status": "failed",
        "timestamp": str(int(time.time())),
        "recipient_id": phone.removeprefix("+"),
        "errors": [{"code": code, "title": title, "error_data": {"details": title}}],
    }


def apply(state: str, statuses: list[dict]):
    """Write STATUSES into the ledger at STATE as the webhook receiver does."""
    journal = open_ledger(state_from(state), readonly=False)
    assert journal is not None
    try:
        events = parse_payload(payload(*statuses, metadata={"phone_number_id": "106540352242922"}))
        assert not events.problems, events.problems
        return journal.apply_events(events)
    finally:
        journal.close()


def accepted(state: str, name: str = NAME) -> list[tuple[str, str]]:
    """(wamid, phone) of every accepted delivery of campaign NAME, read from the file."""
    with sqlite3.connect(Path(state) / "ledger.sqlite") as db:
        return db.execute(
            "SELECT message_id, phone FROM deliveries WHERE campaign=? AND message_id IS NOT NULL"
            " ORDER BY updated_at, key",
            (name,),
        ).fetchall()


def holds_table(state: str) -> dict[str, tuple]:
    with sqlite3.connect(Path(state) / "ledger.sqlite") as db:
        rows = db.execute(
            "SELECT campaign, reason, code, held_at FROM holds WHERE released_at IS NULL"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def pause_template(state: str, name: str = NAME) -> None:
    """Meta reports 132015 for the campaign's first accepted message."""
    wamid, phone = accepted(state, name)[0]
    applied = apply(state, [failed_status(wamid, phone, 132015, "Template is Paused")])
    assert applied.held == [name]


@pytest.fixture
def state(tmp_path) -> str:
    """The ledger folder: the one env_for's CAMPAIGN_STATE_DIR names (preview reads it)."""
    return str(tmp_path / "state")


# ---- a hold from a status webhook --------------------------------------------------------


def test_a_paused_template_holds_the_campaign_until_it_is_resumed(tmp_path, sandbox, state):
    folder = tmp_path / "spring"
    path = campaign(folder, sandbox, people(ANA))
    result, _, _ = run(path, state, tmp_path)
    assert result.exit_code == 0, result.output
    pause_template(state)
    path = campaign(folder, sandbox, people(ANA, BIA, CAIO))  # two new recipients to send

    result, rows, summary = run(path, state, tmp_path)
    assert result.exit_code == 3, result.output
    assert received(sandbox) == [ANA]  # nothing more went out
    assert rows == {}  # no CSV report: like a run outside its window, only the summary
    reason = summary["reason"]
    resume = f"campaign resume {path} --state {state}"
    assert reason.startswith("held since 20") and f": {PAUSED}; nothing sent, 2 recipient(s)" in (
        reason
    )
    assert reason.endswith(f"fix the template or wait until Meta lifts the pause, then: {resume}")
    assert summary["exit_code"] == 3 and summary["report"] is None
    assert summary["plan"]["held"] == reason and summary["plan"]["to_send"] == 2
    assert f"exit=3 summary={summary_path(path)} reason={json.dumps(reason)}" in final_line(result)
    assert " plan rows=3 to_send=2 already-sent=1 " in result.stderr  # `plan`, not `start`

    again, _, _ = run(path, state, tmp_path)  # cron, 15 minutes later: still held
    assert again.exit_code == 3 and received(sandbox) == [ANA]

    resumed = cli(["resume", path, "--state", state], env=env_for(tmp_path))
    assert resumed.exit_code == 0, resumed.output
    assert f"resumed campaign '{NAME}': lifted the hold placed 20" in resumed.stdout
    assert f"Z: {PAUSED}" in resumed.stdout
    assert holds_table(state) == {}
    status = cli(["status", path, "--state", state, "--json"], env=env_for(tmp_path))
    assert json.loads(status.stdout)["held"] is None

    result, rows, _ = run(path, state, tmp_path)
    assert result.exit_code == 0, result.output
    assert [rows[p]["status"] for p in (BIA, CAIO)] == ["sent", "sent"]
    assert received(sandbox) == [ANA, BIA, CAIO]

    not_held = cli(["resume", path, "--state", state], env=env_for(tmp_path))
    assert not_held.exit_code == 0
    assert not_held.stdout == f"campaign '{NAME}' is not held: its runs may send\n"


def test_on_a_terminal_a_held_run_shows_its_plan_and_asks_nothing(tmp_path, sandbox, state):
    folder = tmp_path / "spring"
    path = campaign(folder, sandbox, people(ANA))
    assert run(path, state, tmp_path)[0].exit_code == 0
    pause_template(state)
    path = campaign(folder, sandbox, people(ANA, BIA))
    code, shown, _ = on_a_terminal(
        ["run", path, "--state", state], env_for(tmp_path), streams=("stdin", "stderr"), answer="n"
    )
    assert code == 3, shown
    assert "to send now: 1 (held since 20" in shown and "[y/N]" not in shown
    assert received(sandbox) == [ANA]


def test_resume_without_a_ledger_creates_none(tmp_path, sandbox, state):
    path = campaign(tmp_path / "spring", sandbox, people(ANA))
    result = cli(["resume", path, "--state", state], env=env_for(tmp_path))
    assert result.exit_code == 0
    assert result.stdout == f"campaign '{NAME}' is not held: its runs may send\n"
    assert not Path(state).exists()


@pytest.mark.parametrize("broken", ["name: [spring", "missing"])
def test_resume_of_a_campaign_file_that_cannot_be_read_lifts_nothing(
    broken, tmp_path, sandbox, state
):
    path = campaign(tmp_path / "spring", sandbox, people(ANA))
    assert run(path, state, tmp_path)[0].exit_code == 0
    pause_template(state)
    if broken == "missing":
        path.unlink()
    else:
        path.write_text(broken + "\n", encoding="utf-8")
    result = cli(["resume", path, "--state", state], env=env_for(tmp_path))
    assert result.exit_code == 2 and result.stderr.startswith(f"{path}:")
    assert "resumed" not in result.output and NAME in holds_table(state)


def summary_path(path: Path) -> Path:
    return sorted(path.parent.glob("report-*.json"))[-1].absolute()


def test_dry_run_preview_and_status_warn_while_held(tmp_path, sandbox, state):
    folder = tmp_path / "spring"
    path = campaign(folder, sandbox, people(ANA))
    assert run(path, state, tmp_path)[0].exit_code == 0
    pause_template(state)
    path = campaign(folder, sandbox, people(ANA, BIA))
    warning = f"warning: campaign '{NAME}' is held since 20"

    dry, rows, summary = run(path, state, tmp_path, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert warning in dry.stderr and "; a real run now sends nothing" in dry.stderr
    assert rows[BIA]["status"] == "dry-run" and summary["plan"]["held"] is None

    preview = cli(["preview", path], env=env_for(tmp_path))
    assert preview.exit_code == 0 and warning in preview.stderr and PAUSED in preview.stderr

    status = cli(["status", path, "--state", state, "--json"], env=env_for(tmp_path))
    assert status.exit_code == 0, status.output
    warnings = json.loads(status.stdout)["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith(warning.removeprefix("warning: "))
    held = json.loads(status.stdout)["held"]  # for monitoring: the hold as data
    assert (held["code"], held["reason"]) == (132015, PAUSED)
    assert held["since"].startswith("20")
    assert warnings[0].endswith(
        f"then: campaign resume {path} --state {state}; a run now sends nothing"
    )
    assert received(sandbox) == [ANA]


def test_a_hold_placed_while_a_run_sends_stops_it(tmp_path, sandbox, state):
    path = campaign(tmp_path / "spring", sandbox, crowd(120), rate="20/s")
    done = threading.Event()

    def meta_pauses_the_template():
        while not done.is_set() and not Path(state, "ledger.sqlite").exists():
            time.sleep(0.05)
        while not done.is_set():
            if Path(state, "ledger.sqlite").exists() and accepted(state):
                pause_template(state)
                return
            time.sleep(0.05)

    webhook = threading.Thread(target=meta_pauses_the_template)
    webhook.start()
    try:
        result, rows, summary = run(path, state, tmp_path)
    finally:
        done.set()
        webhook.join()
    assert result.exit_code == 3, result.output
    assert summary["reason"].startswith("held since ") and PAUSED in summary["reason"]
    statuses = [row["status"] for row in rows.values()]
    assert 0 < statuses.count("sent") < 120 and "not-attempted" in statuses
    assert len(received(sandbox)) == statuses.count("sent")


# ---- a hold from the gateway's own answer ------------------------------------------------


def test_a_run_refused_with_132015_aborts_and_holds_the_next_runs(tmp_path, sandbox_factory, state):
    gateway = sandbox_factory(Faults(script={BIA: ["132015"]}))
    path = campaign(tmp_path / "spring", gateway, people(ANA, BIA, CAIO))

    result, rows, summary = run(path, state, tmp_path)
    assert result.exit_code == 3, result.output
    assert [rows[p]["status"] for p in (ANA, BIA, CAIO)] == ["sent", "failed", "not-attempted"]
    resume = f"campaign resume {path} --state {state}"
    assert summary["reason"].startswith("aborted: the gateway answered 400 132015")
    assert summary["reason"].endswith(
        f"; the campaign is held: fix the template or wait until Meta lifts the pause, "
        f"then: {resume}"
    )
    reason, code, _ = holds_table(state)[NAME]
    assert (reason, code) == (PAUSED, 132015)

    held, _, summary = run(path, state, tmp_path)
    assert held.exit_code == 3 and summary["reason"].startswith("held since ")
    assert PAUSED in summary["reason"] and received(gateway) == [ANA]

    assert cli(["resume", path, "--state", state], env=env_for(tmp_path)).exit_code == 0
    result, rows, _ = run(path, state, tmp_path)
    assert result.exit_code == 0, result.output
    assert [rows[p]["status"] for p in (BIA, CAIO)] == ["sent", "sent"]
    assert received(gateway) == [ANA, BIA, CAIO]


def test_132016_disabled_template_says_to_approve_another(tmp_path, sandbox_factory, state):
    gateway = sandbox_factory(Faults(script={ANA: ["132016"]}))
    path = campaign(tmp_path / "spring", gateway, people(ANA, BIA))
    result, _, summary = run(path, state, tmp_path)
    assert result.exit_code == 3
    assert (
        "; the campaign is held: the template is disabled for good: approve another"
        in (summary["reason"])
    )
    held, _, summary = run(path, state, tmp_path)
    assert held.exit_code == 3
    assert "the template is disabled by Meta (Meta 132016)" in summary["reason"]
    assert received(gateway) == []


# ---- rehearsals keep their own holds -----------------------------------------------------


def test_a_rehearsals_hold_holds_only_rehearsals(tmp_path, sandbox, state):
    path = campaign(tmp_path / "spring", sandbox, people(ANA, BIA))
    rehearsal, _, _ = run(path, state, tmp_path, "--sandbox")
    assert rehearsal.exit_code == 0, rehearsal.output
    pause_template(state, f"{NAME}.sandbox")

    held, _, summary = run(path, state, tmp_path, "--sandbox")
    assert held.exit_code == 3 and summary["reason"].startswith("held since ")
    assert summary["reason"].endswith(f"then: campaign resume {path} --sandbox --state {state}")

    real, rows, _ = run(path, state, tmp_path)
    assert real.exit_code == 0, real.output
    assert [rows[p]["status"] for p in (ANA, BIA)] == ["sent", "sent"]
    assert received(sandbox) == [ANA, BIA]

    not_real = cli(["resume", path, "--state", state], env=env_for(tmp_path))
    assert not_real.stdout == f"campaign '{NAME}' is not held: its runs may send\n"
    lifted = cli(["resume", path, "--sandbox", "--state", state], env=env_for(tmp_path))
    assert lifted.exit_code == 0 and f"resumed campaign '{NAME}.sandbox'" in lifted.stdout
    assert holds_table(state) == {}


def test_a_rehearsal_of_a_held_campaign_warns_and_still_rehearses(tmp_path, sandbox, state):
    path = campaign(tmp_path / "spring", sandbox, people(ANA, BIA))
    assert run(path, state, tmp_path, "--limit", "1")[0].exit_code == 0
    pause_template(state)
    rehearsal, rows, _ = run(path, state, tmp_path, "--sandbox")
    assert rehearsal.exit_code == 0, rehearsal.output
    assert f"warning: campaign '{NAME}' is held for real runs since 20" in rehearsal.stderr
    assert [rows[p]["status"] for p in (ANA, BIA)] == ["sent", "sent"]


# ---- the quality breaker -----------------------------------------------------------------


class MetaFailsMessages(threading.Thread):
    """A webhook receiver's work, in a thread: each accepted message of the campaign that
    `fails(n)` picks (n counts them from 0) gets a failed 131049 status, as it appears in
    the ledger."""

    def __init__(self, state: str, fails):
        super().__init__()
        self.state, self.fails = state, fails
        self.done = threading.Event()
        self.seen: set[str] = set()
        self.failed = 0

    def run(self) -> None:
        ledger = Path(self.state, "ledger.sqlite")
        while not self.done.wait(0.1):
            if not ledger.exists():
                continue
            statuses = []
            for wamid, phone in accepted(self.state):
                if wamid in self.seen:
                    continue
                if self.fails(len(self.seen)):
                    statuses.append(failed_status(wamid, phone, 131049, "Meta chose not to"))
                self.seen.add(wamid)
            if statuses:
                apply(self.state, statuses)
                self.failed += len(statuses)

    def __enter__(self) -> MetaFailsMessages:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.done.set()
        self.join()


BREAKER = {"share": "5%", "codes": [131049, 131050], "min_messages": 40}


def test_the_quality_breaker_stops_the_run_and_holds_the_campaign(tmp_path, sandbox, state):
    path = campaign(tmp_path / "spring", sandbox, crowd(300), rate="25/s", quality_stop=BREAKER)
    with MetaFailsMessages(state, lambda n: n % 4 == 0):  # a quarter of them: 25%
        result, rows, summary = run(path, state, tmp_path)
    assert result.exit_code == 3, result.output
    reason = summary["reason"]
    assert reason.startswith("quality breaker: ") and " of this run's " in reason
    assert " messages failed with 131049/131050 (" in reason and "; the limit is 5%)" in reason
    assert reason.endswith(
        "; the campaign is held: find out why first (campaign status shows the failures by "
        f"code), then: campaign resume {path} --state {state}"
    )
    statuses = [row["status"] for row in rows.values()]
    assert 40 <= statuses.count("sent") < 300 and "not-attempted" in statuses
    assert len(received(sandbox)) == statuses.count("sent")
    assert final_line(result).endswith(f"reason={json.dumps(reason)}")
    hold_reason, _, _ = holds_table(state)[NAME]
    assert hold_reason == reason.split("; the campaign is held")[0]

    held, _, summary = run(path, state, tmp_path)
    assert held.exit_code == 3 and summary["reason"].startswith("held since ")
    assert f": {hold_reason}; nothing sent, " in summary["reason"]
    assert "find out why first (campaign status shows the failures by code)" in summary["reason"]


def test_below_the_threshold_the_run_finishes(tmp_path, sandbox, state):
    path = campaign(tmp_path / "spring", sandbox, crowd(300), rate="60/s", quality_stop=BREAKER)
    with MetaFailsMessages(state, lambda n: n % 50 == 0) as meta:  # 2%, under 5%
        result, rows, summary = run(path, state, tmp_path)
        time.sleep(0.3)
    assert result.exit_code == 0, result.output
    assert summary["counts"] == {"sent": 300} and len(received(sandbox)) == 300
    assert meta.failed >= 4  # the statuses did come in while it ran: it weighed them
    assert holds_table(state) == {}


def test_without_quality_stop_failures_never_stop_a_run(tmp_path, sandbox, state):
    path = campaign(tmp_path / "spring", sandbox, crowd(150), rate="50/s")
    with MetaFailsMessages(state, lambda n: True):  # every one of them
        result, _, summary = run(path, state, tmp_path)
    assert result.exit_code == 0, result.output
    assert summary["counts"] == {"sent": 150} and holds_table(state) == {}


def test_synchronous_refusals_count_for_the_breaker(tmp_path, sandbox_factory, state):
    gateway = sandbox_factory(Faults(rates={"131049": 0.5}, seed=3))
    breaker = {"share": "10%", "min_messages": 30}
    path = campaign(tmp_path / "spring", gateway, crowd(200), rate="40/s", quality_stop=breaker)
    result, rows, summary = run(path, state, tmp_path)
    assert result.exit_code == 3, result.output
    assert summary["reason"].startswith("quality breaker: ")
    assert "failed with 131049/131050" in summary["reason"]
    assert "not-attempted" in [row["status"] for row in rows.values()]
    assert NAME in holds_table(state)


# ---- a setting that cannot be used -------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "line_of", "expected"),
    [
        ({"share": 5}, "share: 5", "send.quality_stop.share: '5' is not a share: write a"),
        ({"share": "five"}, "share: five", "'five' is not a share: write a percentage"),
        ({"share": "0%"}, "share: 0%", "0% is not a share from 0.1% to 100%"),
        ({"share": "150%"}, "share: 150%", "150% is not a share from 0.1% to 100%"),
        (
            {"share": "5%", "codes": [131049, 13105]},
            "- 13105",
            "send.quality_stop.codes[1]: 13105 is not a Meta code that fails one recipient",
        ),
        (
            {"share": "5%", "codes": [132015]},
            "- 132015",
            "132015 is not a Meta code that fails one recipient",
        ),
        ({"share": "5%", "codes": []}, "codes: []", "send.quality_stop.codes"),
        ({"share": "5%", "codes": ["131049"]}, "- '131049'", "send.quality_stop.codes[0]"),
        ({"share": "5%", "min_messages": 0}, "min_messages: 0", "send.quality_stop.min_messages"),
        (
            {"share": "5%", "min_messages": 20_000_000},
            "min_messages: 20000000",
            "min_messages is 20000000; it must be 1 to 10,000,000",
        ),
        ({"share": "5%", "min_message": 9}, "min_message: 9", "did you mean 'min_messages'"),
        ({"codes": [131049]}, "codes:", "send.quality_stop: required key 'share' is missing"),
        ("5%", "quality_stop: 5%", "send.quality_stop"),
    ],
)
def test_a_quality_stop_that_cannot_be_used_is_refused(
    setting, line_of, expected, tmp_path, sandbox, state
):
    path = campaign(tmp_path / "spring", sandbox, people(ANA), quality_stop=setting)
    lines = path.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.strip() == line_of.strip())
    for command in (["validate", path], ["preview", path], ["run", path, "--state", state]):
        result = cli(command, env=env_for(tmp_path))
        assert result.exit_code == 2, (command, result.output)
        assert expected in result.stderr and f"{path}:{line}:" in result.stderr, result.stderr
    assert sandbox.messages() == [] and not Path(state).exists()


# ---- PostgreSQL --------------------------------------------------------------------------


def test_a_hold_stops_a_run_on_postgresql(tmp_path, sandbox, postgres_url):
    folder = tmp_path / "spring"
    path = campaign(folder, sandbox, people(ANA))
    first, _, _ = run(path, postgres_url, tmp_path)
    assert first.exit_code == 0, first.output
    import psycopg

    with psycopg.connect(postgres_url) as db:
        wamid = db.execute("SELECT message_id FROM deliveries WHERE campaign=%s", (NAME,))
        (found,) = wamid.fetchone()
    applied = apply(postgres_url, [failed_status(found, ANA, 132015, "Template is Paused")])
    assert applied.held == [NAME]
    path = campaign(folder, sandbox, people(ANA, BIA))

    held, _, summary = run(path, postgres_url, tmp_path)
    assert held.exit_code == 3, held.output
    assert summary["reason"].startswith("held since ") and PAUSED in summary["reason"]
    assert received(sandbox) == [ANA]

    assert cli(["resume", path, "--state", postgres_url], env=env_for(tmp_path)).exit_code == 0
    result, rows, _ = run(path, postgres_url, tmp_path)
    assert result.exit_code == 0 and rows[BIA]["status"] == "sent"
    assert received(sandbox) == [ANA, BIA]


def test_the_breaker_stops_a_worker_on_postgresql(tmp_path, sandbox_factory, postgres_url):
    gateway = sandbox_factory(Faults(rates={"131049": 0.5}, seed=3))
    breaker = {"share": "10%", "min_messages": 30}
    path = campaign(tmp_path / "spring", gateway, crowd(200), rate="40/s", quality_stop=breaker)
    result, rows, summary = run(path, postgres_url, tmp_path)
    assert result.exit_code == 3, result.output
    assert summary["reason"].startswith("quality breaker: ")
    assert "not-attempted" in [row["status"] for row in rows.values()]

    held, _, summary = run(path, postgres_url, tmp_path)
    assert held.exit_code == 3 and summary["reason"].startswith("held since ")
    assert ": quality breaker: " in summary["reason"]
