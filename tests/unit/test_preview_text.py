"""The text reporter: each seed body as the few readable lines `campaign preview` prints."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from campaign_runner.preview.message import describe
from campaign_runner.preview.model import Role, ShownRow, Summary, Unsendable
from campaign_runner.preview.text import message_lines, row_lines, summary_lines
from campaign_runner.status import Status

SEED_BODIES = runpy.run_path(str(Path(__file__).parents[1] / "acceptance" / "seed_bodies.py"))[
    "SEED_BODIES"
]


@pytest.mark.parametrize(
    ("seed", "lines"),
    [
        ("text", ["text: Chamando Dioniso beta via Kong"]),
        (
            "template",
            [
                "template: beta_abandoncart_link_v1_1 (pt_BR)",
                "  body: [name]",
                "  button 0 url: [target_url]",
            ],
        ),
        (
            "interactive",
            [
                "interactive button",
                "  body: Olá, o que você gostaria de fazer? teste às 15:59",
                "  [ Obter benefício ]  (id OLÁ, QUERO RECEBER MEU BENEFÍCIO.)",
                "  [ Falar com a loja ]  (id #FALARCOMALOJA)",
            ],
        ),
        ("contacts", ["contact card: NAME (PHONE_NUMBER, PHONE_NUMBER)"]),
        (
            "location",
            ["location: 0.0, 0.1", "  name: <Location Name>", "  address: <Location's Address>"],
        ),
        ("image", ["image: id 515056594160172"]),
        ("audio", ["audio: id 515056594160172"]),
        ("video", ["video: id 515056594160172"]),
        (
            "document",
            ["document: id 515056594160172", "  filename: myNameDoc.pdf", "  caption: doc"],
        ),
        ("sticker", ["sticker: id 515056594160172"]),
    ],
)
def test_each_seed_body_reads_as_a_few_lines(seed, lines):
    assert message_lines(describe(SEED_BODIES[seed])) == lines


def test_a_multi_line_text_stays_indented_under_its_recipient():
    body = {"type": "text", "text": {"body": "Olá\nAna"}}
    row = ShownRow(2, "+5511948489500", Status.READY, body=body)
    assert list(row_lines(row)) == [
        ("row 2 -> +5511948489500", Role.HEAD),
        ("  text: Olá\n  Ana", None),
        ("", None),
    ]


def test_a_row_that_would_not_go_says_why_in_its_colour():
    row = ShownRow(3, "123", Status.INVALID, "'123' is not a phone number")
    assert list(row_lines(row))[0] == (
        "row 3 -> 123: INVALID: '123' is not a phone number",
        Role.BAD,
    )


def test_the_summary_lists_counts_then_the_rows_that_would_not_go():
    summary = Summary(
        "welcome",
        "recipients.csv",
        total=3,
        counts={Status.DUPLICATE: 1, Status.READY: 2},
        unsendable=[Unsendable(4, "", Status.DUPLICATE, "same key")],
        unlisted=7,
        shown="the first 2",
    )
    assert list(summary_lines(summary)) == [
        ("campaign welcome: 3 recipient(s) in recipients.csv", Role.TITLE),
        ("  ready: 2", Role.GOOD),
        ("  duplicate: 1", Role.NOTE),
        ("would not be sent (1):", Role.BAD),
        ("  row 4 (no phone): duplicate: same key", Role.NOTE),
        ("  ... and 7 more (campaign validate lists them all)", Role.BAD),
        ("showing the first 2", None),
        ("", None),
    ]
