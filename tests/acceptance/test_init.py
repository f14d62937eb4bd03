"""`campaign init TYPE`: a commented starter campaign and CSV that validate and send as written.

Also the editor support every campaign file carries: a `yaml-language-server` line that
points at a schema file that exists.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from helpers import CAMPAIGNS, ROOT, cli, env_for, read_report

from campaign_runner.schemas import MESSAGE_TYPES, schema_dir
from campaign_runner.starters import campaign_slug, schema_reference

SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)\n")


def referenced_schema(campaign: Path) -> Path:
    """The schema file named on CAMPAIGN's first line (a path relative to it, or a file URI)."""
    match = SCHEMA_LINE.match(campaign.read_text(encoding="utf-8"))
    assert match, f"{campaign} does not start with a yaml-language-server line"
    reference = match.group(1)
    if reference.startswith("file://"):
        return Path(unquote(urlparse(reference).path))
    return (campaign.parent / reference).resolve()


@pytest.mark.parametrize("kind", MESSAGE_TYPES)
def test_each_starter_validates_and_sends_to_the_sandbox_as_written(kind, tmp_path):
    campaign = tmp_path / f"{kind}.yaml"
    written = cli(["init", kind, "--output", campaign])
    assert written.exit_code == 0, written.output
    assert f"wrote {campaign} and {tmp_path / f'{kind}.csv'}" in written.output
    assert referenced_schema(campaign).is_file()

    validated = cli(["validate", campaign])
    assert validated.exit_code == 0, validated.output
    assert "OK, 3 message(s) ready" in validated.output

    report = tmp_path / "report.csv"
    sent = cli(["run", campaign, "--sandbox", "--report", report], env=env_for(tmp_path))
    assert sent.exit_code == 0, sent.output
    assert [row["status"] for row in read_report(report)] == ["sent"] * 3
    received = [
        json.loads(line)["body"]
        for line in report.with_suffix(".sandbox.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [body["type"] for body in received] == [kind] * 3
    assert [body["to"] for body in received] == [
        "+5511948489500",
        "+5511987654321",
        "+5521987654321",
    ]


def test_init_writes_type_yaml_and_csv_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli(["init", "template"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "template.yaml").read_text(encoding="utf-8")
    assert "name: template" in text and "file: template.csv" in text and '"[name]"' in text
    assert (tmp_path / "template.csv").read_text(encoding="utf-8").splitlines()[
        0
    ] == "phone,name,target_url"


def test_init_refuses_to_overwrite_unless_forced(tmp_path):
    campaign = tmp_path / "promo.yaml"
    campaign.write_text("mine\n", encoding="utf-8")
    refused = cli(["init", "text", "--output", campaign])
    assert refused.exit_code == 2
    assert f"{campaign}: already exists" in refused.output
    assert campaign.read_text() == "mine\n" and not (tmp_path / "promo.csv").exists()
    forced = cli(["init", "text", "--output", campaign, "--force"])
    assert forced.exit_code == 0 and "name: promo" in campaign.read_text()


def test_init_names_the_ten_types_when_given_another(tmp_path):
    result = cli(["init", "carousel", "--output", tmp_path / "x.yaml"])
    assert result.exit_code == 2
    assert "'text', 'template', 'interactive'" in result.output


@pytest.mark.parametrize(
    ("stem", "name"),
    [("Black Friday 2026", "black-friday-2026"), ("promo_v2", "promo_v2"), ("---", "text")],
)
def test_the_campaign_name_is_a_slug_of_the_file_name(stem, name):
    assert campaign_slug(stem, "text") == name


def test_a_starter_points_at_the_schema_relatively_inside_the_project_else_by_uri(tmp_path):
    schema = (schema_dir() / "campaign.schema.json").resolve()
    beside_the_examples = schema.parent.parent / "campaigns" / "new.yaml"
    assert schema_reference(beside_the_examples) == "../schemas/campaign.schema.json"
    assert schema_reference(tmp_path / "new.yaml") == schema.as_uri()


@pytest.mark.parametrize("example", sorted(CAMPAIGNS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_starts_with_the_schema_line_of_an_existing_schema(example):
    schema = referenced_schema(example)
    assert schema.is_file()
    assert schema == ROOT / "schemas" / "campaign.schema.json"
