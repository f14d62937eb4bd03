"""Small builders the tests share: a campaign folder on disk, and ways to run the real CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml
from click.testing import CliRunner

from campaign_runner.cli import main

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS = ROOT / "campaigns"
APIKEY_ENV = "TEST_CAMPAIGN_APIKEY"

TEXT_MESSAGE = {"type": "text", "text": {"body": "Olá [name], seu pedido chegou!"}}


def write_campaign(
    folder: Path,
    *,
    message: dict | None = None,
    rows: list[dict] | str | None = None,
    gateway_url: str | None = None,
    name: str = "test-campaign",
    file_name: str = "campaign.yaml",
    **sections,
) -> Path:
    """Write campaign.yaml and recipients.csv into FOLDER; return the campaign's path."""
    folder.mkdir(parents=True, exist_ok=True)
    if rows is None:
        rows = [
            {"phone": "+5511948489500", "name": "Ana"},
            {"phone": "+5521987654321", "name": "Bruno"},
        ]
    csv_path = folder / "recipients.csv"
    if isinstance(rows, str):
        csv_path.write_text(rows, encoding="utf-8")
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["phone"])
        writer.writeheader()
        writer.writerows(rows)
        csv_path.write_text(buffer.getvalue(), encoding="utf-8")
    document = {
        "name": name,
        "recipients": {
            "file": "recipients.csv",
            "default_region": "BR",
            **sections.pop("recipients", {}),
        },
        "gateway": {
            "apikey_env": APIKEY_ENV,
            **({"url": gateway_url} if gateway_url else {}),
            **sections.pop("gateway", {}),
        },
        **sections,
        "message": message or TEXT_MESSAGE,
    }
    path = folder / file_name
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def env_for(tmp_path: Path, apikey: str | None = "test-key", **extra: str) -> dict[str, str]:
    """The environment a run gets in tests: its own state folder and, by default, the test key."""
    env = {"CAMPAIGN_STATE_DIR": str(tmp_path / "state"), **extra}
    if apikey is not None:
        env[APIKEY_ENV] = apikey
    return env


def cli(args: list[str], env: dict[str, str] | None = None, input: str | None = None):
    """Run the CLI in-process with click's CliRunner; return the result (exit_code, output)."""
    runner = CliRunner()
    return runner.invoke(main, [str(a) for a in args], env=env, input=input, catch_exceptions=False)


def campaign_process(args: list[str], env: dict[str, str] | None = None, **kwargs):
    """Run `python -m campaign_runner ARGS` as a real subprocess; return the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "campaign_runner", *[str(a) for a in args]],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def start_process(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `python -m campaign_runner ARGS` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "campaign_runner", *[str(a) for a in args]],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def on_a_terminal(
    args: list, env: dict[str, str] | None = None, *, streams=("stdout",), answer: str | None = None
) -> tuple[int, str, str]:
    """Run `python -m campaign_runner ARGS` with STREAMS on a pseudo-terminal, answering
    `[y/N]` with ANSWER; return the exit code, what the terminal showed and what went to a
    piped stdout."""
    leader, follower = pty.openpty()
    defaults = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.DEVNULL,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "campaign_runner", *[str(a) for a in args]],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        **{name: follower if name in streams else way for name, way in defaults.items()},
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes when the process exits
            break
        if not chunk:
            break
        shown += chunk
        if answer is not None and b"[y/N]" in shown:
            os.write(leader, answer.encode() + b"\n")
            answer = None
    os.close(leader)
    piped = process.stdout.read().decode() if process.stdout else ""
    return process.wait(timeout=60), shown.decode(), piped


def read_report(path: Path) -> list[dict]:
    """The report CSV's rows as dicts, read as a spreadsheet does: a BOM means UTF-8, and the
    header line says the delimiter (`;` after `;` recipients or a workbook)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        delimiter = ";" if ";" in handle.readline().split(",")[0] else ","
        handle.seek(0)
        return list(csv.DictReader(handle, delimiter=delimiter))


_REFUSED_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ campaign=\S+ exit=(\d+) reason=(\".*\")\n\Z", re.M
)


def without_final_line(result):
    """RESULT (CliRunner's) with its output cut before the final log line a refused `run`
    ends with, once that line is checked: the run's exit code, and a reason already said in
    the output above it (so nothing, no secret, is in the line that is not above)."""
    match = _REFUSED_LINE.search(result.output)
    if match is None:
        return result
    above = result.output[: match.start()]
    reason = json.loads(match[2]).removeprefix("nothing sent: ")
    assert int(match[1]) == result.exit_code, result.output
    assert reason in above, result.output
    return SimpleNamespace(exit_code=result.exit_code, output=above)


OLD_JOURNAL_SCHEMA = """
CREATE TABLE deliveries (key TEXT PRIMARY KEY, row INTEGER, phone TEXT, status TEXT NOT NULL,
    permanent INTEGER NOT NULL DEFAULT 0, message_id TEXT, http_status INTEGER, error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, run_id TEXT, updated_at TEXT NOT NULL);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, ended_at TEXT,
    exit_code INTEGER, reason TEXT, counts TEXT);
PRAGMA user_version=1;
"""


def write_old_journal(path: Path, sent: list[tuple[str, int, str]], run_id: str = "old") -> Path:
    """A per-campaign journal as versions before the ledger wrote it (STATE/NAME.sqlite), with
    each (key, row, phone) in SENT recorded as sent by one finished run."""
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(OLD_JOURNAL_SCHEMA)
    db.executemany(
        "INSERT INTO deliveries VALUES (?, ?, ?, 'sent', 0, 'wamid.old', 200, NULL, 1, ?, ?)",
        [(key, row, phone, run_id, "2026-11-01T10:00:00.000+00:00") for key, row, phone in sent],
    )
    db.execute(
        "INSERT INTO runs VALUES (?, '2026-11-01T10:00:00+00:00', '2026-11-01T10:05:00+00:00',"
        " 0, 'every recipient handled', ?)",
        (run_id, json.dumps({"sent": len(sent)})),
    )
    db.commit()
    db.close()
    return path
