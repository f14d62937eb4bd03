"""Builders the webhook tests share: deliveries as a run records them, Meta's payloads,
and the outcomes the ledger holds."""

from __future__ import annotations

from pathlib import Path

from campaign_runner.ledger import open_ledger, state_from
from campaign_runner.ledger.sqlite import SQLiteJournal, ledger_path

CAMPAIGN = "black-friday"
ANA, BRUNO, CARLA = "+5511948489500", "+5521987654321", "+5531991234567"
T0 = 1_790_000_000  # 2026-09-21, Unix seconds as Meta sends them


def sent(state: Path, *deliveries: tuple[str, str, str], campaign: str = CAMPAIGN) -> None:
    """Record DELIVERIES (key, phone, wamid) as a run does: marked, then sent with a wamid."""
    journal = SQLiteJournal(ledger_path(state), campaign)
    try:
        journal.mark_sending(
            [(key, row, phone) for row, (key, phone, _) in enumerate(deliveries, 1)], "run-1"
        )
        for key, _, wamid in deliveries:
            journal.record(key, "sent", message_id=wamid, http_status=200)
        journal.flush()
    finally:
        journal.close()


def status(wamid: str, word: str, at: int, phone: str, code: int | None = None) -> dict:
    item: dict = {"id": wamid, "status": word, "timestamp": str(at), "recipient_id": phone[1:]}
    if code is not None:
        item["errors"] = [{"code": code, "title": f"error {code}"}]
    if word != "failed":
        item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "marketing"}
    return item


def payload(*statuses: dict, **value: object) -> dict:
    """A webhook as Meta posts it, with STATUSES (and other VALUE fields)."""
    change = {"value": {"messaging_product": "whatsapp", "statuses": list(statuses), **value}}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{**change, "field": "messages"}]}],
    }


def outcomes(state: Path | str, *keys: str, campaign: str = CAMPAIGN) -> dict[str, str]:
    """Each key's final outcome word, read from the ledger."""
    journal = open_ledger(state_from(str(state)), readonly=True)
    assert journal is not None
    try:
        found = journal.outcomes_of(campaign, list(keys))
        return {key: found[key].final for key in keys}
    finally:
        journal.close()
