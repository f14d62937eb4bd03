"""One delivery's line of `campaign report` (outcome_report.cells), table-driven: the
ledger's times in UTC to the second, the send's own words, and outside text made safe."""

from __future__ import annotations

import pytest

from campaign_runner.ledger import DeliveryOutcome
from campaign_runner.outcome_report import COLUMNS, cells, utc_second
from campaign_runner.webhooks.outcome import Outcome


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (None, ""),
        ("", ""),
        ("2026-11-28T18:19:25.000+00:00", "2026-11-28T18:19:25Z"),  # as the ledger writes
        ("2026-11-28T15:19:25.999-03:00", "2026-11-28T18:19:25Z"),  # another offset
        ("2026-11-28T18:19:25", "2026-11-28T18:19:25Z"),  # no offset: read as UTC
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),  # not a time at all: shown, made safe
    ],
)
def test_times_are_utc_to_the_second(stored, shown):
    assert utc_second(stored) == shown


NOTHING_REPORTED = Outcome()


def delivery(status="sent", outcome=NOTHING_REPORTED, **fields) -> DeliveryOutcome:
    values = {
        "key": "promo:+5511948489500",
        "row": 2,
        "phone": "+5511948489500",
        "message_id": "wamid.A",
        "error": None,
        "updated_at": "2026-11-28T18:19:25.000+00:00",
        **fields,
    }
    return DeliveryOutcome(status=status, outcome=outcome, **values)


LINES = [
    (
        delivery(),
        ["2", "+5511948489500", "+5511948489500", "sent", "accepted"] + [""] * 8 + ["wamid.A", ""],
    ),
    (  # in flight or left by a crash: no receipt, as the run's report says it
        delivery("sending", message_id=None),
        ["2", "+5511948489500", "+5511948489500", "unknown", "unknown"] + [""] * 10,
    ),
    (
        delivery("failed", message_id=None, error="131026 not a WhatsApp user\x1b[2J"),
        ["2", "+5511948489500", "+5511948489500", "failed", "failed"]
        + [""] * 9
        + ["131026 not a WhatsApp user\\x1b[2J"],
    ),
    (  # a key rendered from the recipient's columns: a spreadsheet would compute it
        delivery(key="promo:+5511948489500-8812", row=None),
        ["", "+5511948489500", "'+5511948489500-8812", "sent", "accepted"]
        + [""] * 8
        + ["wamid.A", ""],
    ),
    (
        delivery(
            outcome=Outcome(
                reached="read",
                sent_at="2026-11-28T18:19:25.000+00:00",
                read_at="2026-11-28T18:29:25.000+00:00",
                failed_at="2026-11-28T18:20:25.000+00:00",
                code=131049,
                title="-1+1",
                details="@x",
                pricing_category="+marketing",
            )
        ),
        ["2", "+5511948489500", "+5511948489500", "sent", "read"]
        + ["2026-11-28T18:19:25Z", "", "2026-11-28T18:29:25Z", "2026-11-28T18:20:25Z"]
        + ["131049", "'-1+1", "'@x", "'+marketing", "wamid.A", ""],
    ),
]


@pytest.mark.parametrize(("row", "line"), LINES)
def test_a_deliverys_line(row, line):
    assert len(line) == len(COLUMNS)
    assert cells(row, "promo:") == line
