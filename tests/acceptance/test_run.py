"""`campaign run`: each recipient rendered, validated, POSTed to a loopback gateway, reported."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import yaml
from helpers import (
    APIKEY_ENV,
    CAMPAIGNS,
    campaign_process,
    cli,
    env_for,
    on_a_terminal,
    read_report,
    write_campaign,
)
from seed_bodies import SEED_BODIES

from campaign_runner.schemas import MESSAGE_TYPES


def example_pointed_at(sandbox, kind: str, folder) -> tuple:
    """Copy campaigns/KIND.yaml and its CSV into FOLDER, sending to SANDBOX with the test key."""
    document = yaml.safe_load((CAMPAIGNS / f"{kind}.yaml").read_text(encoding="utf-8"))
    document["gateway"] = {"url": sandbox.messages_url, "apikey_env": APIKEY_ENV}
    shutil.copy(CAMPAIGNS / document["recipients"]["file"], folder / document["recipients"]["file"])
    path = folder / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with open(folder / document["recipients"]["file"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return path, rows


@pytest.mark.parametrize("kind", MESSAGE_TYPES)
def test_each_gateway_example_goes_out_exactly_as_documented(kind, sandbox, tmp_path):
    path, rows = example_pointed_at(sandbox, kind, tmp_path)
    result = cli(["run", path, "--report", tmp_path / "report.csv"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    received = sandbox.messages()
    assert len(received) == len(rows)
    for record, row in zip(received, read_report(tmp_path / "report.csv"), strict=True):
        expected = json.loads(
            json.dumps(SEED_BODIES[kind])
            .replace("[name]", rows[int(row["row"]) - 2].get("name", ""))
            .replace("[target_url]", rows[int(row["row"]) - 2].get("target_url", ""))
        )
        expected["to"] = row["phone"]
        assert record["body"] == expected
        assert record["headers"]["version"] == "4.0"
        assert record["headers"]["content-type"] == "application/json"
        assert row["status"] == "sent" and row["message_id"] == record["id"]


def test_the_quick_start_command_sends_every_recipient_to_the_sandbox(tmp_path):
    report = tmp_path / "quick.csv"
    done = campaign_process(
        ["run", CAMPAIGNS / "abandoned-cart.yaml", "--sandbox", "--report", report],
        env={"CAMPAIGN_STATE_DIR": str(tmp_path / "state")},
    )
    assert done.returncode == 0, done.stderr
    statuses = [row["status"] for row in read_report(report)]
    assert statuses == ["sent"] * 6
    assert "sent 6" in done.stdout and "sandbox received 6 message(s)" in done.stdout
    recorded = [
        json.loads(line) for line in report.with_suffix(".sandbox.jsonl").read_text().splitlines()
    ]
    assert [r["body"]["template"]["components"][0]["parameters"][0]["text"] for r in recorded] == [
        "Ana",
        "Bruno",
        "Carla",
        "Diego",
        "Elisa",
        "Fábio",
    ]
    summary = json.loads(report.with_suffix(".json").read_text())
    assert (
        summary["version"] == 1 and summary["exit_code"] == 0 and summary["counts"] == {"sent": 6}
    )


def test_a_refused_apikey_aborts_the_run_with_exit_3(sandbox, tmp_path):
    rows = [{"phone": f"+55119484895{i:02d}", "name": f"N{i}"} for i in range(5)]
    path = write_campaign(tmp_path, rows=rows, gateway_url=sandbox.messages_url)
    result = cli(
        ["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path, apikey="wrong")
    )
    assert result.exit_code == 3
    assert "Invalid authentication credentials" in result.output
    report = read_report(tmp_path / "r.csv")
    assert report[0]["status"] == "failed" and report[0]["http_status"] == "401"
    assert {r["status"] for r in report[1:]} == {"not-attempted"}
    assert sandbox.messages() == []


def test_bad_rows_are_reported_and_the_others_still_sent(sandbox, tmp_path):
    csv_text = (
        "phone,name\n"
        "+55 11 94848-9500,Ana\n"
        "5.51195E+12,Mangled\n"
        "5511948489501.0,Decimal\n"
        "123,Short\n"
        "(11) 3333-4444,Landline\n"
        "+55 21 98765-4321,\n"
        "0055 11 94848 9500,Ana again\n"
        "(21) 99999-0000,Dora\n"
    )
    path = write_campaign(tmp_path, rows=csv_text, gateway_url=sandbox.messages_url)
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 1, result.output
    report = {int(r["row"]): r for r in read_report(tmp_path / "r.csv")}
    assert report[2]["status"] == "sent"
    assert report[3]["status"] == "invalid" and "scientific notation" in report[3]["error"]
    assert report[4]["status"] == "invalid" and "decimal part" in report[4]["error"]
    assert report[5]["status"] == "invalid" and "not" in report[5]["error"]
    assert report[6]["status"] == "invalid" and "not a mobile number" in report[6]["error"]
    assert report[7]["status"] == "invalid" and "column 'name' is blank" in report[7]["error"]
    assert report[8]["status"] == "duplicate"
    assert report[9]["status"] == "sent"
    assert [m["to"] for m in sandbox.messages()] == ["+5511948489500", "+5521999990000"]
    assert "invalid 5" in result.output and "duplicate 1" in result.output


@pytest.mark.parametrize(
    "hostile",
    [
        "{{ 7*7 }}",
        "[name]",
        '"},{"x":"',
        "{% for x in range(9) %}boom{% endfor %}",
        "{{ ''.__class__.__mro__ }}",
        "<script>alert(1)</script>",
    ],
)
def test_csv_values_are_sent_as_written_never_run(hostile, sandbox, tmp_path):
    rows = [{"phone": "+5511948489500", "name": hostile}]
    path = write_campaign(tmp_path, rows=rows, gateway_url=sandbox.messages_url)
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    [record] = sandbox.messages()
    assert record["body"]["text"]["body"] == f"Olá {hostile}, seu pedido chegou!"


def test_a_dry_run_posts_nothing_and_reports_every_row(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    result = cli(
        ["run", path, "--dry-run", "--report", tmp_path / "r.csv"],
        env=env_for(tmp_path, apikey=None),
    )
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in read_report(tmp_path / "r.csv")] == ["dry-run", "dry-run"]
    assert sandbox.messages() == []


def test_limit_sends_only_the_first_rows(sandbox, tmp_path):
    rows = [{"phone": f"+55119484895{i:02d}", "name": f"N{i}"} for i in range(5)]
    path = write_campaign(tmp_path, rows=rows, gateway_url=sandbox.messages_url)
    result = cli(
        ["run", path, "--limit", "2", "--report", tmp_path / "r.csv"], env=env_for(tmp_path)
    )
    assert result.exit_code == 0
    assert len(sandbox.messages()) == 2 and len(read_report(tmp_path / "r.csv")) == 2


def test_the_apikey_never_shows_in_output_report_or_record(sandbox_factory, tmp_path):
    secret = "s3cr3t-apikey-value-123"
    running = sandbox_factory(apikey=secret, record=tmp_path / "record.jsonl")
    path = write_campaign(tmp_path, gateway_url=running.messages_url)
    done = campaign_process(
        ["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path, apikey=secret)
    )
    assert done.returncode == 0, done.stderr
    assert len(running.messages()) == 2
    for text in (
        done.stdout,
        done.stderr,
        (tmp_path / "r.csv").read_text(),
        (tmp_path / "r.json").read_text(),
        (tmp_path / "record.jsonl").read_text(),
    ):
        assert secret not in text


def test_a_missing_apikey_variable_is_an_error_before_sending(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    result = cli(["run", path], env=env_for(tmp_path, apikey=None))
    assert result.exit_code == 2
    assert f"environment variable {APIKEY_ENV}, which is not set" in result.output
    assert sandbox.messages() == []


@pytest.fixture
def recording_gateway():
    """A bare HTTP server on loopback that keeps each request's path and headers verbatim
    (the sandbox keeps no credential headers, so it cannot show that these went out)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"path": self.path, "headers": dict(self.headers)})
            answer = json.dumps({"messages": [{"id": f"wamid.{len(seen)}"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.seen = seen
    server.url = f"http://127.0.0.1:{server.server_port}/api/Messages"
    yield server
    server.shutdown()
    server.server_close()


def test_extra_headers_and_params_reach_the_gateway(recording_gateway, tmp_path):
    path = write_campaign(
        tmp_path,
        gateway_url=recording_gateway.url,
        gateway={"headers": {"x-origin-group": "${ORIGIN}"}, "params": {"phone_id": "123"}},
    )
    result = cli(
        ["run", path, "--report", tmp_path / "r.csv"],
        env=env_for(tmp_path, ORIGIN="grp-7", CAMPAIGN_ALLOWED_ENV="ORIGIN"),
    )
    assert result.exit_code == 0, result.output
    assert len(recording_gateway.seen) == 2
    for request in recording_gateway.seen:
        assert request["path"] == "/api/Messages?phone_id=123"
        assert request["headers"]["x-origin-group"] == "grp-7"
        assert request["headers"]["apikey"] == "test-key"
        assert request["headers"]["version"] == "4.0"
        assert request["headers"]["Content-Type"] == "application/json"


def test_an_unset_header_variable_is_an_error_before_sending(recording_gateway, tmp_path):
    path = write_campaign(
        tmp_path,
        gateway_url=recording_gateway.url,
        gateway={"headers": {"x-origin-group": "${ORIGIN_NOT_SET}"}},
    )
    result = cli(
        ["run", path, "--report", tmp_path / "r.csv"],
        env=env_for(tmp_path, CAMPAIGN_ALLOWED_ENV="ORIGIN_NOT_SET"),
    )
    assert result.exit_code == 2
    assert "reads the environment variable ORIGIN_NOT_SET, which is not set" in result.output
    assert recording_gateway.seen == []


def test_the_report_neutralises_cells_a_spreadsheet_would_run(sandbox, tmp_path):
    csv_text = 'phone,name\n"=HYPERLINK(""http://x"")",Eve\n@SUM(1),Mal\n+5511948489500,Ana\n'
    path = write_campaign(tmp_path, rows=csv_text, gateway_url=sandbox.messages_url)
    cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[1].startswith("2,\"'=HYPERLINK")
    assert lines[2].startswith("3,'@SUM(1)")
    assert lines[3].startswith("4,+5511948489500,sent")  # a plain number is left alone


def test_preview_jsonl_prints_the_exact_bodies_run_sends(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    preview = cli(["preview", path, "--format", "jsonl"], env=env_for(tmp_path))
    assert preview.exit_code == 0
    bodies = [json.loads(line) for line in preview.output.splitlines()]
    cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert bodies == [m["body"] for m in sandbox.messages()]


def test_preview_text_shows_each_recipient_readably(tmp_path):
    path = write_campaign(tmp_path)
    result = cli(["preview", path], env=env_for(tmp_path))
    assert result.exit_code == 0
    assert "row 2 -> +5511948489500" in result.output
    assert "text: Olá Ana, seu pedido chegou!" in result.output


def test_schema_prints_each_schema_and_refuses_unknown_names():
    assert json.loads(cli(["schema"]).output)["title"]
    for kind in MESSAGE_TYPES:
        assert json.loads(cli(["schema", kind]).output)["$id"] == f"{kind}.schema.json"
    bad = cli(["schema", "reaction"])
    assert bad.exit_code == 2 and "choose one of" in bad.output


def test_python_dash_m_and_help_work_as_a_subprocess():
    done = campaign_process(["--help"])
    assert done.returncode == 0 and "Exit codes" in done.stdout


@pytest.mark.parametrize("answer, code, received", [("n", 2, 0), ("y", 0, 2)])
def test_on_a_terminal_run_asks_before_sending(answer, code, received, sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    returncode, question, _ = on_a_terminal(
        ["run", path, "--report", tmp_path / "r.csv"],
        env_for(tmp_path),
        streams=("stdin", "stderr"),
        answer=answer,
    )
    plan, asked = question.split("[y/N]")[0].rsplit("\n", 1)
    assert "to send now: 2" in plan and f"gateway: {sandbox.messages_url}" in plan
    assert "Send campaign 'test-campaign' to 2 recipient(s) now?" in asked
    assert returncode == code
    assert len(sandbox.messages()) == received


def test_yes_skips_the_question_on_a_terminal(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    returncode, terminal, out = on_a_terminal(
        ["run", path, "--yes", "--report", tmp_path / "r.csv"],
        env_for(tmp_path),
        streams=("stdin", "stderr"),
    )
    assert returncode == 0 and len(sandbox.messages()) == 2
    assert "[y/N]" not in terminal and "sent 2" in out


def test_the_installed_command_works_from_any_folder(tmp_path):
    """`pip install .` ships the schemas: the console script needs no source checkout."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "campaign"
    if not script.exists():
        pytest.skip("the project is not installed in this interpreter's environment")
    schema = subprocess.run(
        [script, "schema", "text"], cwd=tmp_path, capture_output=True, text=True
    )
    assert schema.returncode == 0 and json.loads(schema.stdout)["$id"] == "text.schema.json"
    checked = subprocess.run(
        [script, "validate", CAMPAIGNS / "template.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
