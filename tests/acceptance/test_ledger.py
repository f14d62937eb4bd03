"""One ledger for every campaign: `STATE/ledger.sqlite`, migrations, journals of earlier
versions imported on first use with nothing lost, and what each run used recorded."""

from __future__ import annotations

import json
import sqlite3

import pytest
from helpers import cli, env_for, read_report, write_campaign, write_old_journal

from campaign_runner.ledger.migrations import LATEST


def people(n: int) -> list[dict]:
    return [{"phone": f"+55119{70_000_000 + i:08d}", "name": f"Pessoa {i}"} for i in range(n)]


def run(path, tmp_path, report: str, *extra, **env):
    return cli(["run", path, "--report", tmp_path / report, *extra], env=env_for(tmp_path, **env))


def test_every_campaign_shares_one_ledger_file(sandbox, tmp_path):
    first = write_campaign(tmp_path / "a", name="first", gateway_url=sandbox.messages_url)
    second = write_campaign(tmp_path / "b", name="second", gateway_url=sandbox.messages_url)
    assert run(first, tmp_path, "1.csv").exit_code == 0
    assert run(second, tmp_path, "2.csv").exit_code == 0
    state = tmp_path / "state"
    assert sorted(p.name for p in state.glob("*.sqlite")) == ["ledger.sqlite"]
    db = sqlite3.connect(state / "ledger.sqlite")
    per_campaign = dict(db.execute("SELECT campaign, count(*) FROM deliveries GROUP BY campaign"))
    versions = [v for (v,) in db.execute("SELECT version FROM schema_migrations")]
    db.close()
    assert per_campaign == {"first": 2, "second": 2} and versions == list(range(1, LATEST + 1))
    for path, name in ((first, "first"), (second, "second")):
        found = json.loads(cli(["status", path, "--json"], env=env_for(tmp_path)).output)
        assert found["campaign"] == name and found["counts"] == {"sent": 2}
        assert found["journal"] == str(state / "ledger.sqlite")


def test_a_journal_of_an_earlier_version_is_imported_once_and_kept(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(3), gateway_url=sandbox.messages_url)
    state = tmp_path / "state"
    old = write_old_journal(
        state / "test-campaign.sqlite",
        [(f"test-campaign:{p['phone']}", i + 2, p["phone"]) for i, p in enumerate(people(2))],
    )
    first = run(path, tmp_path, "r1.csv")
    assert first.exit_code == 0
    assert f"imported the journal {old} into the ledger (2 deliveries, 1 runs)" in first.output
    assert [r["status"] for r in read_report(tmp_path / "r1.csv")] == [
        "already-sent",
        "already-sent",
        "sent",
    ]
    assert [m["to"] for m in sandbox.messages()] == ["+5511970000002"]
    assert not old.exists() and (state / "test-campaign.sqlite.imported").exists()
    second = run(path, tmp_path, "r2.csv")
    assert second.exit_code == 0 and "imported" not in second.output
    assert {r["status"] for r in read_report(tmp_path / "r2.csv")} == {"already-sent"}
    assert len(sandbox.messages()) == 1


def test_status_and_a_dry_run_import_the_old_journal_too(sandbox, tmp_path):
    path = write_campaign(tmp_path, rows=people(2), gateway_url=sandbox.messages_url)
    write_old_journal(
        tmp_path / "state" / "test-campaign.sqlite",
        [("test-campaign:+5511970000000", 2, "+5511970000000")],
    )
    status = json.loads(cli(["status", path, "--json"], env=env_for(tmp_path)).stdout)
    assert status["counts"] == {"sent": 1} and status["left"] == 1
    assert status["last_run"]["reason"] == "every recipient handled"
    dry = run(path, tmp_path, "dry.csv", "--dry-run")
    assert [r["status"] for r in read_report(tmp_path / "dry.csv")] == ["already-sent", "dry-run"]
    assert dry.exit_code == 0 and sandbox.messages() == []


def test_a_stray_database_in_the_state_folder_is_left_alone_with_a_warning(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    stray = tmp_path / "state" / "notes.sqlite"
    stray.parent.mkdir()
    db = sqlite3.connect(stray)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()
    result = run(path, tmp_path, "r.csv")
    assert result.exit_code == 0 and f"warning: {stray} is not a campaign journal" in result.output
    assert stray.exists() and len(sandbox.messages()) == 2


def test_a_ledger_from_a_newer_runner_is_refused(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    assert run(path, tmp_path, "r1.csv", "--limit", "1").exit_code == 0
    db = sqlite3.connect(tmp_path / "state" / "ledger.sqlite")
    db.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 'x')")
    db.commit()
    db.close()
    for command in (["run", path, "--report", tmp_path / "r2.csv"], ["status", path]):
        result = cli(command, env=env_for(tmp_path))
        assert result.exit_code == 2
        assert "written by a newer campaign-runner (schema 99" in result.output
    assert len(sandbox.messages()) == 1


def test_each_run_records_its_host_files_and_message_fingerprint(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    assert run(path, tmp_path, "r.csv").exit_code == 0
    db = sqlite3.connect(tmp_path / "state" / "ledger.sqlite")
    (found,) = db.execute(
        "SELECT campaign, host, pid, campaign_file, fingerprint, recipients_file FROM runs"
    ).fetchall()
    db.close()
    campaign, host, pid, campaign_file, fingerprint, recipients_file = found
    assert campaign == "test-campaign" and host and pid > 0
    assert campaign_file == str(path) and recipients_file == str(tmp_path / "recipients.csv")
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0


def test_campaign_state_names_the_ledger_and_the_older_variable_still_works(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    env = {"CAMPAIGN_STATE": str(tmp_path / "new"), "CAMPAIGN_STATE_DIR": ""}
    assert run(path, tmp_path, "a.csv", **env).exit_code == 0
    assert (tmp_path / "new" / "ledger.sqlite").exists()
    old = {"CAMPAIGN_STATE": "", "CAMPAIGN_STATE_DIR": str(tmp_path / "old")}
    assert run(path, tmp_path, "b.csv", **old).exit_code == 0
    assert (tmp_path / "old" / "ledger.sqlite").exists()


# ---- campaign identity: a changed message is never silently "already sent" -------------------


def test_a_changed_message_is_refused_until_the_operator_says_what_it_is(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    assert run(path, tmp_path, "r1.csv").exit_code == 0
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("seu pedido chegou", "seu pedido foi enviado"), encoding="utf-8")
    assert text != path.read_text(encoding="utf-8")
    message_line = text.splitlines().index("message:") + 1

    refused = run(path, tmp_path, "r2.csv")
    assert refused.exit_code == 2 and len(sandbox.messages()) == 2
    assert f"{path}:{message_line}:1: the message changed since campaign 'test-campaign'" in (
        refused.output
    )
    assert "2 recipient(s) got the earlier message" in refused.output
    assert "new `name:`" in refused.output and "--accept-changed-message" in refused.output
    assert not (tmp_path / "r2.csv").exists()

    dry = run(path, tmp_path, "dry.csv", "--dry-run")
    assert dry.exit_code == 0 and "warning: the message changed" in dry.output

    same = run(path, tmp_path, "r3.csv", "--accept-changed-message")
    assert same.exit_code == 0 and len(sandbox.messages()) == 2
    assert {r["status"] for r in read_report(tmp_path / "r3.csv")} == {"already-sent"}
    # Accepted once, the new message is the campaign's: the next run needs no option.
    assert run(path, tmp_path, "r4.csv").exit_code == 0

    renamed = path.read_text(encoding="utf-8").replace("name: test-campaign", "name: second-wave")
    path.write_text(renamed, encoding="utf-8")
    assert run(path, tmp_path, "r5.csv").exit_code == 0
    assert len(sandbox.messages()) == 4  # a new campaign: everyone gets the new message


def test_what_a_failed_commit_carried_is_written_by_the_next_one(tmp_path):
    # A commit that fails after writing the pending outcome (here its mark breaks a
    # constraint) rolls it back. The outcome, and the suppression Meta's 131050 taught,
    # must not be lost: the next commit writes them, so the key does not stay `sending`
    # (unknown) while the report says it was sent.
    from campaign_runner.ledger import LedgerError, open_journal, state_from

    journal = open_journal(state_from(tmp_path / "state"), "busy")
    try:
        journal.mark_sending([("busy:k1", 2, "+5511970000001")], "r")
        journal.record("busy:k1", "sent", message_id="wamid.k1", http_status=200)
        journal.suppress_later("+5511970000002", "opted-out", "Meta 131050")
        with pytest.raises(LedgerError, match="NOT NULL"):
            journal.mark_sending([(None, 3, "+5511970000003")], "r")
        assert journal.lookup("busy:k1").status == "sending"  # rolled back with the mark
        assert journal.suppressions_of(["+5511970000002"]) == {}
        journal.flush()
        assert journal.lookup("busy:k1").message_id == "wamid.k1"
        assert set(journal.suppressions_of(["+5511970000002"])) == {"+5511970000002"}
    finally:
        journal.close()
