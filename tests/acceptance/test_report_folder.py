"""Where reports land: beside the campaign file, not wherever cron happened to start."""

from __future__ import annotations

import pytest
from helpers import cli, env_for, read_report, write_campaign


def reports_in(folder):
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """The folder a cron job starts in: never where the campaign is."""
    start = tmp_path / "cron-home"
    start.mkdir()
    monkeypatch.chdir(start)
    return start


def test_reports_land_beside_the_campaign_file(tmp_path, elsewhere):
    path = write_campaign(tmp_path / "campaigns", name="big")
    result = cli(["run", path, "--dry-run"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    names = reports_in(tmp_path / "campaigns" / "reports")
    assert [name.rsplit("-", 2)[0] for name in names] == ["big", "big"]
    assert {name.rsplit(".", 1)[1] for name in names} == {"csv", "json"}
    assert reports_in(elsewhere) == []
    report = tmp_path / "campaigns" / "reports" / next(n for n in names if n.endswith(".csv"))
    assert [r["status"] for r in read_report(report)] == ["dry-run", "dry-run"]


def test_a_relative_campaign_path_puts_them_under_its_folder(tmp_path, monkeypatch):
    write_campaign(tmp_path / "campaigns", name="big")
    monkeypatch.chdir(tmp_path)
    result = cli(["run", "campaigns/campaign.yaml", "--dry-run"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert len(reports_in(tmp_path / "campaigns" / "reports")) == 2
    assert not (tmp_path / "reports").exists()


def test_report_dir_in_the_campaign_is_relative_to_it_and_the_option_wins(tmp_path, elsewhere):
    path = write_campaign(tmp_path / "campaigns", name="big", report_dir="../out")
    assert cli(["run", path, "--dry-run"], env=env_for(tmp_path)).exit_code == 0
    assert len(reports_in(tmp_path / "out")) == 2
    chosen = tmp_path / "chosen"
    result = cli(["run", path, "--dry-run", "--report-dir", chosen], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert len(reports_in(chosen)) == 2
    assert len(reports_in(tmp_path / "out")) == 2
    assert reports_in(elsewhere) == []


def test_a_report_dir_that_is_a_file_is_refused_before_anything_is_sent(tmp_path, sandbox):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url, report_dir="campaign.yaml")
    result = cli(["run", path], env=env_for(tmp_path))
    assert result.exit_code == 2, result.output
    assert "a part of its folder is a file, not a folder; nothing was sent" in result.output
    assert sandbox.messages() == []
