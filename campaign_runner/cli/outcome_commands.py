"""The commands about what happened after "sent" (issue 14): receiving Meta's webhooks,
ingesting logged payloads, reports from the ledger and resuming a held campaign. Each
parses its options and calls one core function, like the commands in `commands`."""

from __future__ import annotations

from campaign_runner.cli.commands import main

__all__ = ["main"]


# ---- webhook and ingest ------------------------------------------------------------------


# ---- report ------------------------------------------------------------------------------


# ---- resume ------------------------------------------------------------------------------
