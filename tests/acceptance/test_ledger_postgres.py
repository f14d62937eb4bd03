"""The ledger on a real PostgreSQL server (a throwaway one the tests start): the same
behaviour as the SQLite ledger, one campaign run at a time across hosts, clear errors."""

from __future__ import annotations

import json
import re
import time

import psycopg
from helpers import campaign_process, cli, env_for, read_report, start_process, write_campaign

from campaign_runner.ledger.migrations import LATEST
from campaign_runner.sandbox import Faults


def people(n: int) -> list[dict]:
    return [{"phone": f"+55119{70_000_000 + i:08d}", "name": f"Pessoa {i}"} for i in range(n)]


def run(path, tmp_path, url, report: str, *extra):
    return cli(
        ["run", path, "--report", tmp_path / report, "--state", url, *extra], env_for(tmp_path)
    )


def test_a_run_on_postgres_sends_once_and_status_reads_it(sandbox, tmp_path, postgres_url):
    path = write_campaign(tmp_path, rows=people(3), gateway_url=sandbox.messages_url)
    assert run(path, tmp_path, postgres_url, "r1.csv", "--limit", "2").exit_code == 0
    again = run(path, tmp_path, postgres_url, "r2.csv")
    assert again.exit_code == 0
    assert [r["status"] for r in read_report(tmp_path / "r2.csv")] == [
        "already-sent",
        "already-sent",
        "sent",
    ]
    assert len(sandbox.messages()) == 3
    status = cli(["status", path, "--state", postgres_url, "--json"], env_for(tmp_path))
    found = json.loads(status.stdout)
    assert found["counts"] == {"sent": 3} and found["state"] == "finished" and found["left"] == 0
    assert found["journal"] == postgres_url
    assert not (tmp_path / "state").exists()  # nothing was written to a local folder
    with psycopg.connect(postgres_url) as db:
        versions = [v for (v,) in db.execute("SELECT version FROM schema_migrations")]
        runs = db.execute("SELECT count(*), count(ended_at) FROM runs").fetchone()
    assert versions == list(range(1, LATEST + 1)) and runs == (2, 2)


def test_two_campaigns_share_the_database(sandbox, tmp_path, postgres_url):
    first = write_campaign(tmp_path / "a", name="first", gateway_url=sandbox.messages_url)
    second = write_campaign(tmp_path / "b", name="second", gateway_url=sandbox.messages_url)
    assert run(first, tmp_path, postgres_url, "1.csv").exit_code == 0
    assert run(second, tmp_path, postgres_url, "2.csv").exit_code == 0
    with psycopg.connect(postgres_url) as db:
        per_campaign = dict(
            db.execute("SELECT campaign, count(*) FROM deliveries GROUP BY campaign").fetchall()
        )
    assert per_campaign == {"first": 2, "second": 2}


def test_a_second_run_of_the_campaign_on_any_host_is_refused_while_one_runs(
    sandbox_factory, tmp_path, postgres_url
):
    gateway = sandbox_factory(Faults(latency_ms=100))
    path = write_campaign(tmp_path, rows=people(40), gateway_url=gateway.messages_url)
    env = env_for(tmp_path)
    first = start_process(
        ["run", path, "--report", tmp_path / "a.csv", "--state", postgres_url], env
    )
    try:
        deadline = time.monotonic() + 30
        while len(gateway.messages()) < 2:
            assert time.monotonic() < deadline, "the first run did not start sending"
            time.sleep(0.02)
        other = tmp_path / "other-host"  # another working folder: no shared lock file
        other.mkdir()
        second = campaign_process(
            ["run", path, "--report", other / "b.csv", "--state", postgres_url], env, cwd=other
        )
        assert second.returncode == 4, second.stderr
        assert re.search(rf"already running \(pid {first.pid}, started .+ on \S+\)", second.stderr)
        status = cli(["status", path, "--state", postgres_url], env)
        assert f"in progress (pid {first.pid}" in status.output and "None" not in status.output
    finally:
        assert first.wait(timeout=60) == 0
    assert len(gateway.messages()) == 40  # each once: the refused run sent nothing


def test_an_unreachable_ledger_is_exit_2_and_never_shows_the_password(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    url = "postgresql://ops:s3cr3t-PASSWORD@127.0.0.1:9/campaigns"
    for command in (["run", path, "--state", url], ["status", path, "--state", url]):
        result = cli(command, env_for(tmp_path))
        assert result.exit_code == 2, result.output
        assert "cannot reach the ledger" in result.output and "nothing was sent" in result.output
        assert "s3cr3t-PASSWORD" not in result.output
        assert "postgresql://ops:***@127.0.0.1:9/campaigns" in result.output
    assert sandbox.messages() == []


def test_a_user_who_may_not_create_tables_gets_the_grant_to_ask_for(
    sandbox, tmp_path, postgres_server
):
    database = postgres_server.create_database()
    postgres_server.execute("CREATE ROLE visitor LOGIN")
    try:
        # Since PostgreSQL 15 only the database's owner may create in its public schema.
        url = postgres_server.url(database).replace("postgres@", "visitor@")
        path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
        result = run(path, tmp_path, url, "r.csv")
        assert result.exit_code == 2
        assert "cannot create or upgrade the ledger" in result.output
        assert "CREATE on the database's schema" in result.output
        assert sandbox.messages() == []
    finally:
        postgres_server.drop_database(database)
        postgres_server.execute("DROP ROLE visitor")
