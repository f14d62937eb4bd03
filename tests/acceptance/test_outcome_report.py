"""`campaign report` and the funnel in `campaign status`: what became of each message after
"sent", read from the ledger at any time.

Each story sends a small campaign to the sandbox gateway over real HTTP with a real ledger
(SQLite, once PostgreSQL), then writes Meta-shaped status webhooks into that ledger the way
the receiver does (`journal.apply_events(parse_payload(doc))`): late, out of order, twice,
a failure after delivered, one for a wamid the ledger does not know, and a failure whose
title and details are hostile text.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import pytest
from helpers import campaign_process, cli, env_for, read_report, write_campaign
from test_preview import assert_self_contained, browser, open_in_browser  # noqa: F401
from webhook_builders import payload as meta_payload

from campaign_runner import campaign as campaign_mod
from campaign_runner.ledger import open_journal, state_from
from campaign_runner.ledger.migrations import MIGRATIONS, MIGRATIONS_TABLE, statements
from campaign_runner.outcome_report import COLUMNS, ReportRequest, write_report
from campaign_runner.sandbox import Faults
from campaign_runner.webhooks.payload import parse_payload

NAME = "test-campaign"
PEOPLE = [
    ("+5511970000000", "Ana"),  # row 2: sent, delivered, read (read came first), duplicates
    ("+5511970000001", "Bruno"),  # row 3: delivered, priced as utility
    ("+5511970000002", "Carla"),  # row 4: sent, then failed 131049
    ("+5511970000003", "Davi"),  # row 5: delivered, then a late 131026: still delivered
    ("+5511970000004", "Eva"),  # row 6: failed, with a hostile title and details
    ("+5511970000005", "Fabio"),  # row 7: no status came
    ("+5511970000006", "Gil"),  # row 8: refused by the gateway itself (131026): never sent
]
T0 = 1_795_000_000  # Meta's timestamps are Unix seconds
TITLE_131049 = "This message was not delivered to maintain healthy ecosystem engagement."
HOSTILE_TITLE = "=cmd|' /C calc'!A0 <script>alert(1)</script>"
HOSTILE_DETAILS = "@SUM(1+1)*cmd|' /C calc'!A0 <img src=x onerror=alert(2)>"
UNKNOWN_WAMID = "wamid.HBgNNTUxMTk3MDAwMDA5OQAAAAAAAAAAAAAA"
EXPECTED_FUNNEL = {
    "accepted": 6,
    "sent": 3,
    "delivered": 3,
    "read": 1,
    "failed": 2,
    "no_status": 1,
    "failed_by_code": [
        {"code": 131000, "title": HOSTILE_TITLE, "count": 1},
        {"code": 131049, "title": TITLE_131049, "count": 1},
    ],
    "pricing": {"marketing": 3, "utility": 1},
}
FUNNEL_LINE = (
    "outcomes: accepted 6 → sent 3 (50%) → delivered 3 (50%) → read 1 (16%); failed 2: "
    "131000 ×1 '=cmd|' /C calc'!A0 <script>alert(1)</script>', "
    "131049 ×1 'This message was not delivered to maintain healthy ecosystem…'; "
    "no status yet 1"
)


def at(seconds: int) -> str:
    """Meta's time T0 + SECONDS as the report writes it."""
    return datetime.fromtimestamp(T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- Meta-shaped webhooks ------------------------------------------------------------------


def status(wamid, word, seconds, phone, category="marketing", error=None) -> dict:
    """One `statuses[]` entry as Meta posts it."""
    item = {
        "id": wamid,
        "status": word,
        "timestamp": str(T0 + seconds),
        "recipient_id": phone.removeprefix("+"),
    }
    if word == "failed":
        code, title, details = error
        item["errors"] = [
            {
                "code": code,
                "title": title,
                "message": title,
                "error_data": {"details": details},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ]
    else:
        item["conversation"] = {"id": "CONVERSATION_ID", "origin": {"type": category}}
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": category}
    return item


def payload(*statuses) -> dict:
    """A webhook POST's body carrying STATUSES."""
    return meta_payload(
        *statuses,
        metadata={"display_phone_number": "15550000000", "phone_number_id": "PHONE_ID"},
    )


def meta_reports(wamids: dict[str, str]) -> list[dict]:
    """What Meta posts about the campaign's messages, in the order it arrives."""
    a, b, c, d, e, _f, _g = (wamids.get(phone) for phone, _ in PEOPLE)
    ana, bruno, carla, davi, eva = (phone for phone, _ in PEOPLE[:5])
    late = payload(
        status(c, "failed", 40, carla, error=(131049, TITLE_131049, "Marketing limit")),
        status(e, "failed", 8, eva, error=(131000, HOSTILE_TITLE, HOSTILE_DETAILS)),
        status(d, "failed", 50, davi, error=(131026, "Message undeliverable", "not on WA")),
        status(b, "sent", 2, bruno, category="utility"),
    )
    return [
        payload(  # the read before its delivered; a wamid the ledger does not know
            status(a, "read", 30, ana),
            status(b, "delivered", 10, bruno, category="utility"),
            status(UNKNOWN_WAMID, "delivered", 12, "+5511970000099"),
        ),
        payload(
            status(a, "sent", 1, ana),
            status(a, "delivered", 20, ana),
            status(a, "delivered", 20, ana),  # the same status twice in one post
            status(c, "sent", 3, carla),
            status(d, "sent", 4, davi),
            status(d, "delivered", 5, davi),
        ),
        late,
        late,  # Meta posts it again: nothing changes
    ]


def apply_statuses(state_option: str, docs: list[dict]) -> None:
    """Write DOCS into the ledger as the webhook receiver does, one transaction each."""
    journal = open_journal(state_from(state_option), NAME)
    assert journal is not None
    try:
        for doc in docs:
            events = parse_payload(doc)
            assert events.problems == [] and len(events.statuses) > 0
            journal.apply_events(events)
    finally:
        journal.close()


# ---- the campaign --------------------------------------------------------------------------


@pytest.fixture
def sent(sandbox_factory, tmp_path):
    """The campaign of PEOPLE sent to the sandbox (Gil refused with 131026), and Meta's
    statuses in the ledger. Holds the campaign's path, env, state and the run's report."""
    gateway = sandbox_factory(Faults(script={PEOPLE[6][0]: ["131026"]}))
    rows = [{"phone": phone, "name": name} for phone, name in PEOPLE]
    path = write_campaign(tmp_path / "promo", rows=rows, gateway_url=gateway.messages_url)
    env = env_for(tmp_path)
    run = campaign_process(["run", path, "--report", tmp_path / "run.csv"], env=env)
    assert run.returncode == 1, run.stderr  # Gil failed
    report = read_report(tmp_path / "run.csv")
    wamids = {r["phone"]: r["message_id"] for r in report if r["message_id"]}
    assert len(wamids) == 6
    state = str(tmp_path / "state")
    apply_statuses(state, meta_reports(wamids))
    return SimpleNamespace(path=path, env=env, state=state, run=report, wamids=wamids)


def rehearse(path: Path, tmp_path: Path) -> int:
    """`campaign run PATH --sandbox`, in its own process (the runner has its own event loop,
    which Playwright's, running in this one, would refuse)."""
    done = campaign_process(["run", path, "--sandbox"], env_for(tmp_path))
    assert done.returncode == 0, done.stderr
    return done.returncode


def report_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def expected_rows(sent) -> list[list[str]]:
    w = sent.wamids
    gil_error = sent.run[6]["error"]
    assert gil_error.startswith("131026")
    return [
        list(COLUMNS),
        ["2", "+5511970000000", "+5511970000000", "sent", "read"]
        + [at(1), at(20), at(30), "", "", "", "", "marketing", w["+5511970000000"], ""],
        ["3", "+5511970000001", "+5511970000001", "sent", "delivered"]
        + [at(2), at(10), "", "", "", "", "", "utility", w["+5511970000001"], ""],
        ["4", "+5511970000002", "+5511970000002", "sent", "failed"]
        + [at(3), "", "", at(40), "131049", TITLE_131049, "Marketing limit", "marketing"]
        + [w["+5511970000002"], ""],
        # Delivered, then a failure: the person has the message; the failure is kept beside.
        ["5", "+5511970000003", "+5511970000003", "sent", "delivered"]
        + [at(4), at(5), "", at(50), "131026", "Message undeliverable", "not on WA"]
        + ["marketing", w["+5511970000003"], ""],
        # Hostile text from the webhook: a spreadsheet shows it, never runs it.
        ["6", "+5511970000004", "+5511970000004", "sent", "failed"]
        + ["", "", "", at(8), "131000", "'" + HOSTILE_TITLE, "'" + HOSTILE_DETAILS, ""]
        + [w["+5511970000004"], ""],
        ["7", "+5511970000005", "+5511970000005", "sent", "accepted"]
        + ["", "", "", "", "", "", "", "", w["+5511970000005"], ""],
        # Refused by the gateway itself: Meta's code is kept, the error says the rest.
        ["8", "+5511970000006", "+5511970000006", "failed", "failed"]
        + ["", "", "", "", "131026", "", "", "", "", gil_error],
    ]


# ---- the CSV -------------------------------------------------------------------------------


REPORT_LINE = re.compile(r"^report of (\d+) deliver(?:y|ies) of (\S+): (/.+)$")


def printed_report(result) -> tuple[int, str, Path]:
    """The deliveries, campaign and absolute path `campaign report` printed."""
    assert result.exit_code == 0, result.output
    match = REPORT_LINE.match(result.output.splitlines()[0])
    assert match, result.output
    return int(match[1]), match[2], Path(match[3])


def test_the_report_has_each_deliverys_final_outcome_with_times_and_codes(sent, tmp_path):
    result = cli(["report", sent.path], env=sent.env)
    deliveries, name, path = printed_report(result)
    assert (deliveries, name) == (7, NAME)
    assert path.parent == sent.path.parent / "reports"  # beside the campaign, like run's
    assert re.fullmatch(rf"{NAME}-outcomes-\d{{8}}-\d{{6}}\.csv", path.name), path.name
    assert report_rows(path) == expected_rows(sent)
    assert result.output.splitlines()[1] == FUNNEL_LINE


def test_a_report_in_the_same_second_never_overwrites_an_earlier_one(sent):
    loaded = campaign_mod.load(sent.path)
    moment = datetime(2026, 11, 28, 18, 19, 25, tzinfo=UTC)
    request = ReportRequest(state=sent.state, clock=lambda: moment)
    first = write_report(loaded, request)
    stem = f"{NAME}-outcomes-{moment.astimezone():%Y%m%d-%H%M%S}"
    assert first.path == sent.path.parent / "reports" / f"{stem}.csv"
    first.path.write_text("an earlier report someone kept\n")
    second = write_report(loaded, request)
    third = write_report(loaded, ReportRequest(fmt="html", state=sent.state, clock=lambda: moment))
    assert second.path == first.path.with_name(f"{stem}-2.csv")
    assert third.path == first.path.with_name(f"{stem}.html")  # another format, its own name
    assert first.path.read_text() == "an earlier report someone kept\n"
    assert report_rows(second.path) == expected_rows(sent)


@pytest.mark.parametrize(
    "target", ["campaign.yaml", "recipients.csv", "../state/ledger.sqlite", "../state/x.lock"]
)
def test_the_report_never_overwrites_what_the_campaign_reads(sent, tmp_path, target):
    output = sent.path.parent / target
    if target.endswith(".lock"):  # the campaign's lock, by another name: a hard link
        output.hardlink_to(tmp_path / "state" / f"{NAME}.lock")
    before = output.read_bytes()
    result = cli(["report", sent.path, "--output", output], env=sent.env)
    assert result.exit_code == 2
    assert f"{os.path.abspath(output)}: the report is " in result.output
    assert "a run never writes over its inputs" in result.output
    assert output.read_bytes() == before
    assert not (sent.path.parent / "reports").exists()


def test_an_output_under_a_file_is_refused_and_leaves_nothing(sent, tmp_path):
    output = sent.path.parent / "recipients.csv" / "r.csv"
    result = cli(["report", sent.path, "--output", output], env=sent.env)
    assert result.exit_code == 2
    assert result.output == (
        f"{output}: cannot write the report: a part of its folder is a file, not a folder; "
        "nothing written\n"
    )


# ---- status --------------------------------------------------------------------------------


def test_status_shows_the_funnel_in_words_and_in_json(sent):
    result = cli(["status", sent.path], env=sent.env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[3:] == [
        "  failed-permanent: 1",
        "  sent: 6",
        f"  {FUNNEL_LINE}",
        "  pricing: marketing 3, utility 1",
        "  waiting for their message: 1 status(es) the ledger received for messages it does "
        "not know (yet), of any campaign; matched when they appear",
    ]
    found = json.loads(cli(["status", sent.path, "--json"], env=sent.env).output)
    assert found["outcomes"] == EXPECTED_FUNNEL
    assert found["unmatched_statuses"] == 1


def test_status_says_when_no_outcome_came_yet_and_json_keeps_its_shape(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    never = json.loads(cli(["status", path, "--json"], env=env_for(tmp_path)).output)
    zero = {
        "accepted": 0,
        "sent": 0,
        "delivered": 0,
        "read": 0,
        "failed": 0,
        "no_status": 0,
        "failed_by_code": [],
        "pricing": {},
    }
    assert never["outcomes"] == zero and never["unmatched_statuses"] == 0
    run = campaign_process(["run", path, "--report", tmp_path / "r.csv"], env_for(tmp_path))
    assert run.returncode == 0, run.stderr
    text = cli(["status", path], env=env_for(tmp_path)).output
    assert text.splitlines()[-1] == (
        "  outcomes: none reported yet for the 2 accepted message(s) "
        "(run `campaign webhook` or `campaign ingest`)"
    )
    assert "None" not in text
    found = json.loads(cli(["status", path, "--json"], env=env_for(tmp_path)).output)
    assert found["outcomes"] == {**zero, "accepted": 2, "no_status": 2}


# ---- the HTML summary ----------------------------------------------------------------------

STAGES = """els => els.map(e => [e.querySelector('.name').innerText,
    e.querySelector('.figure').innerText,
    Math.round(100 * e.querySelector('.fill').getBoundingClientRect().width
               / e.querySelector('.bar').getBoundingClientRect().width)])"""
OUT_OF_VIEW = """els => els.filter(e => { const r = e.getBoundingClientRect();
    return r.width === 0 || r.left < 0 || r.right > document.documentElement.clientWidth; })
    .map(e => e.innerText)"""


def test_the_html_summary_reads_on_a_320px_phone_in_chromium(sent, browser, tmp_path):  # noqa: F811
    result = cli(["report", sent.path, "--format", "html"], env=sent.env)
    _, _, page_file = printed_report(result)
    assert page_file.suffix == ".html" and page_file.parent == sent.path.parent / "reports"
    opened = open_in_browser(browser, page_file)
    opened.page.set_viewport_size({"width": 320, "height": 800})
    page = opened.page
    assert_self_contained(opened, page_file)
    assert opened.dialogs == [] and page.locator("script, img").count() == 0
    assert page.locator("h1").inner_text() == NAME
    facts = page.locator(".facts").all_inner_texts()
    assert re.fullmatch(
        rf"Made \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ from the ledger {tmp_path}/state/ledger.sqlite",
        facts[0],
    ), facts
    assert facts[1].startswith("Last run: ended ")
    # The numbers are text beside each bar; each bar is as long as its share.
    assert page.locator(".stage").evaluate_all(STAGES) == [
        ["accepted", "6 of 6 · 100%", 100],
        ["sent", "3 of 6 · 50%", 50],
        ["delivered", "3 of 6 · 50%", 50],
        ["read", "1 of 6 · 16%", 16],
    ]
    assert page.locator(".others li").all_inner_texts() == [
        "failed 2 (33%)",
        "no status yet 1 (16%)",
    ]
    cells = page.locator(".failures tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.innerText))"
    )
    assert cells == [["131000", "1", HOSTILE_TITLE], ["131049", "1", TITLE_131049]]
    assert page.locator(".pricing li").all_inner_texts() == ["marketing 3", "utility 1"]
    assert page.locator(".sends li").all_inner_texts() == ["failed-permanent 1", "sent 6"]
    # At 320 px: nothing to scroll sideways, and every number on screen.
    scroll, shown = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= shown == 320
    numbers = page.locator(".figure, .others li, .failures td, .pricing li, .sends li")
    assert numbers.evaluate_all(OUT_OF_VIEW) == []
    page.screenshot(path=str(tmp_path / "outcomes-320.png"), full_page=True)
    page.close()


def test_the_page_says_so_when_no_outcome_came_yet(tmp_path, browser):  # noqa: F811
    path = write_campaign(tmp_path)
    assert rehearse(path, tmp_path) == 0
    result = cli(["report", path, "--sandbox", "--format", "html"], env=env_for(tmp_path))
    _, name, page_file = printed_report(result)
    assert name == f"{NAME}.sandbox" and page_file.name.startswith(f"{NAME}.sandbox-outcomes-")
    opened = open_in_browser(browser, page_file)
    assert_self_contained(opened, page_file)
    page = opened.page
    assert page.locator(".tag").inner_text().lower() == "rehearsal"
    assert page.locator(".funnel .none").inner_text() == (
        "No outcome reported yet for the 2 accepted message(s): "
        "run campaign webhook or campaign ingest."
    )
    assert page.locator(".pricing .none").inner_text() == "Meta reported no pricing category yet."
    assert page.locator(".failures").count() == 0
    page.close()


# ---- nothing to report ---------------------------------------------------------------------


def test_a_campaign_never_run_is_exit_2_with_where_to_look(tmp_path):
    path = write_campaign(tmp_path)
    result = cli(["report", path], env=env_for(tmp_path))
    assert result.exit_code == 2
    assert result.output == (
        f"{path}: campaign '{NAME}' has no deliveries in the ledger "
        f"{tmp_path}/state/ledger.sqlite: nothing to report; it was never run with this "
        "ledger (--state, $CAMPAIGN_STATE); run it first; nothing written\n"
    )
    assert not (tmp_path / "reports").exists() and not (tmp_path / "state").exists()


def test_a_campaign_only_rehearsed_is_pointed_to_sandbox(tmp_path):
    path = write_campaign(tmp_path)
    assert rehearse(path, tmp_path) == 0
    before = sorted((tmp_path / "reports").iterdir())
    result = cli(["report", path], env=env_for(tmp_path))
    assert result.exit_code == 2
    assert "it was only rehearsed: add --sandbox to report the rehearsals; nothing written" in (
        result.output
    )
    assert sorted((tmp_path / "reports").iterdir()) == before
    rehearsed = cli(["report", path, "--sandbox"], env=env_for(tmp_path))
    _, _, csv_file = printed_report(rehearsed)
    assert [row[:5] for row in report_rows(csv_file)[1:]] == [
        ["2", "+5511948489500", "+5511948489500", "sent", "accepted"],
        ["3", "+5521987654321", "+5521987654321", "sent", "accepted"],
    ]


def test_sandbox_for_a_campaign_never_rehearsed_points_to_its_real_sends(sent):
    result = cli(["report", sent.path, "--sandbox"], env=sent.env)
    assert result.exit_code == 2
    assert result.output == (
        f"{sent.path}: campaign '{NAME}' has no rehearsal deliveries in the ledger "
        f"{sent.state}/ledger.sqlite: nothing to report; its real sends are reported without "
        "--sandbox; nothing written\n"
    )


def test_a_campaign_run_with_another_ledger_names_it(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    other = tmp_path / "other-state"
    env = env_for(tmp_path)
    assert campaign_process(["run", path, "--state", other], env).returncode == 0
    result = cli(["report", path], env=env)
    assert result.exit_code == 2
    assert (
        f"it was run with the ledger {other}/ledger.sqlite: give that as --state; nothing written"
        in result.output
    )


def test_a_ledger_from_before_outcomes_is_refused_in_words(tmp_path):
    path = write_campaign(tmp_path)
    ledger = tmp_path / "state" / "ledger.sqlite"
    ledger.parent.mkdir()
    db = sqlite3.connect(ledger)
    db.execute(MIGRATIONS_TABLE)
    for migration in MIGRATIONS[:4]:
        for statement in statements(migration.sqlite):
            db.execute(statement)
        db.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01')",
            (migration.version, migration.description),
        )
    db.execute(
        "INSERT INTO deliveries (campaign, key, row, phone, status, message_id, updated_at)"
        f" VALUES ('{NAME}', '{NAME}:+5511948489500', 2, '+5511948489500', 'sent', 'wamid.x',"
        " '2026-01-01T00:00:00.000+00:00')"
    )
    db.commit()
    db.close()
    result = cli(["report", path], env=env_for(tmp_path))
    assert result.exit_code == 2
    assert result.output.startswith(
        f"{ledger}: this ledger was written by an earlier campaign-runner, before outcomes"
    )
    assert result.output.endswith("nothing written\n")
    assert not (tmp_path / "reports").exists()
    status = cli(["status", path], env=env_for(tmp_path)).output
    assert status.splitlines()[-1] == (
        "  outcomes: none reported yet for the 1 accepted message(s) "
        "(run `campaign webhook` or `campaign ingest`)"
    )


# ---- spreadsheets in a comma-decimal locale ------------------------------------------------


def test_semicolon_recipients_get_a_semicolon_report_with_a_bom(tmp_path):
    rows = "phone;name\n+5511948489500;Ana\n"
    path = write_campaign(tmp_path, rows=rows)
    assert rehearse(path, tmp_path) == 0
    _, _, csv_file = printed_report(cli(["report", path, "--sandbox"], env=env_for(tmp_path)))
    raw = csv_file.read_bytes()
    assert raw.startswith("\ufeffrow;phone;key;status;outcome;".encode())
    assert read_report(csv_file)[0]["outcome"] == "accepted"


# ---- PostgreSQL ----------------------------------------------------------------------------


def with_password(url: str, password: str) -> str:
    """URL with PASSWORD for its user (the test server trusts 127.0.0.1: it never asks)."""
    parts = urlsplit(url)
    netloc = parts.netloc.replace("@", f":{password}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def test_a_report_on_a_postgresql_ledger_never_shows_its_password(
    sandbox_factory,
    tmp_path,
    postgres_url,
    browser,  # noqa: F811
):
    secret = "pw-Kq83-never-shown"
    url = with_password(postgres_url, secret)
    gateway = sandbox_factory(Faults(script={PEOPLE[6][0]: ["131026"]}))
    rows = [{"phone": phone, "name": name} for phone, name in PEOPLE]
    path = write_campaign(tmp_path / "promo", rows=rows, gateway_url=gateway.messages_url)
    env = env_for(tmp_path)
    run = campaign_process(["run", path, "--state", url, "--report", tmp_path / "run.csv"], env)
    assert run.returncode == 1, run.stderr
    report = read_report(tmp_path / "run.csv")
    wamids = {r["phone"]: r["message_id"] for r in report if r["message_id"]}
    apply_statuses(url, meta_reports(wamids))
    sent = SimpleNamespace(path=path, run=report, wamids=wamids)

    result = cli(["report", path, "--state", url], env=env)
    _, _, csv_file = printed_report(result)
    assert report_rows(csv_file) == expected_rows(sent)
    page = cli(["report", path, "--state", url, "--format", "html"], env=env)
    _, _, page_file = printed_report(page)
    status = cli(["status", path, "--state", url, "--json"], env=env)
    assert json.loads(status.output)["outcomes"] == EXPECTED_FUNNEL
    shown = urlunsplit(urlsplit(url)._replace(netloc=urlsplit(url).netloc.replace(secret, "***")))
    opened = open_in_browser(browser, page_file)
    assert f"from the ledger {shown}" in opened.page.locator(".facts").first.inner_text()
    opened.page.close()
    for text in (result.output, page.output, status.output, page_file.read_text()):
        assert secret not in text
    assert secret not in csv_file.read_text()
