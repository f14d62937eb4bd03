"""Plain words for people: honest exit codes, phone reasons, errors at the line to fix."""

from __future__ import annotations

from helpers import cli, env_for, write_campaign


def test_validate_exits_1_for_an_invalid_recipient_and_2_for_a_broken_campaign(tmp_path):
    fine = write_campaign(tmp_path / "fine", rows="phone,name\n+5511948489500,Ana\n12,Bia\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nmesage: {}\n", encoding="utf-8")

    one_bad_row = cli(["validate", fine], env=env_for(tmp_path))
    assert one_bad_row.exit_code == 1, one_bad_row.output
    assert "1 invalid recipient(s); 1 ready" in one_bad_row.output
    run = cli(["run", fine, "--dry-run", "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    assert run.exit_code == one_bad_row.exit_code  # the same verdict as the run's

    both = cli(["validate", fine, broken], env=env_for(tmp_path))
    assert both.exit_code == 2, both.output  # the worst of the files given
    assert cli(["validate", broken]).exit_code == 2
