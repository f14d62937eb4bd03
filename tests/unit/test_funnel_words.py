"""The funnel in words and numbers (campaign_runner/funnel.py): what `campaign status` says and
`--json` holds, for every shape of funnel, table-driven."""

from __future__ import annotations

import pytest

from campaign_runner import funnel as words
from campaign_runner.ledger import Funnel


@pytest.mark.parametrize(
    ("part", "whole", "percent"),
    [(0, 0, 0), (3, 0, 0), (1, 6, 16), (2, 3, 66), (199, 200, 99), (200, 200, 100), (0, 5, 0)],
)
def test_shares_are_rounded_down_so_100_means_every_one(part, whole, percent):
    assert words.share(part, whole) == percent


SENTENCES = [
    (Funnel(), "outcomes: none: the gateway accepted no message of this campaign yet"),
    (
        Funnel(accepted=3),
        "outcomes: none reported yet for the 3 accepted message(s) "
        "(run `campaign webhook` or `campaign ingest`)",
    ),
    (
        Funnel(accepted=4, sent=4, delivered=4, read=4),
        "outcomes: accepted 4 → sent 4 (100%) → delivered 4 (100%) → read 4 (100%); failed 0",
    ),
    (  # failed only: nothing went further, and nobody is left without a status
        Funnel(accepted=2, failed=2, failed_by_code=[(131026, "Message undeliverable", 2)]),
        "outcomes: accepted 2 → sent 0 (0%) → delivered 0 (0%) → read 0 (0%); "
        "failed 2: 131026 ×2 'Message undeliverable'",
    ),
    (  # a failure Meta gave no code and no title for
        Funnel(accepted=3, sent=1, failed=1, failed_by_code=[(None, None, 1)]),
        "outcomes: accepted 3 → sent 1 (33%) → delivered 0 (0%) → read 0 (0%); "
        "failed 1: no code ×1; no status yet 1",
    ),
    (  # a title with a terminal escape is shown escaped, never run
        Funnel(accepted=1, failed=1, failed_by_code=[(131000, "x\x1b[2Jy", 1)]),
        "outcomes: accepted 1 → sent 0 (0%) → delivered 0 (0%) → read 0 (0%); "
        "failed 1: 131000 ×1 'x\\x1b[2Jy'",
    ),
]


@pytest.mark.parametrize(("funnel", "sentence"), SENTENCES)
def test_the_funnel_in_one_line(funnel, sentence):
    assert words.sentence(funnel) == sentence


def test_a_line_names_five_codes_and_counts_the_rest():
    codes = [(131000 + i, f"title {i}", 10 - i) for i in range(7)]
    funnel = Funnel(accepted=49, failed=sum(n for *_, n in codes), failed_by_code=codes)
    line = words.sentence(funnel)
    assert line.endswith(
        "failed 49: 131000 ×10 'title 0', 131001 ×9 'title 1', 131002 ×8 'title 2', "
        "131003 ×7 'title 3', 131004 ×6 'title 4', and 2 more code(s)"
    )
    assert len(words.as_dict(funnel)["failed_by_code"]) == 7  # the JSON keeps them all


def test_a_long_title_is_cut_in_the_line_and_whole_in_json():
    title = "This message was not delivered to maintain healthy ecosystem engagement."
    funnel = Funnel(accepted=1, failed=1, failed_by_code=[(131049, title, 1)])
    assert words.sentence(funnel).endswith(f"131049 ×1 '{title[:60]}…'")
    assert words.as_dict(funnel)["failed_by_code"] == [{"code": 131049, "title": title, "count": 1}]


@pytest.mark.parametrize(
    ("pricing", "shown"),
    [
        ({}, None),
        ({"utility": 1, "marketing": 5}, "marketing 5, utility 1"),
        ({"service": 2, "authentication": 2}, "authentication 2, service 2"),
        ({"mar\x1bketing": 1}, "mar\\x1bketing 1"),
    ],
)
def test_pricing_most_first_and_escaped(pricing, shown):
    assert words.pricing_words(Funnel(accepted=1, sent=1, pricing=pricing)) == shown


def test_the_json_has_every_key_even_for_an_empty_funnel():
    assert words.as_dict(Funnel()) == {
        "accepted": 0,
        "sent": 0,
        "delivered": 0,
        "read": 0,
        "failed": 0,
        "no_status": 0,
        "failed_by_code": [],
        "pricing": {},
    }


def test_no_status_is_what_neither_went_out_nor_failed():
    funnel = Funnel(accepted=10, sent=6, delivered=5, read=2, failed=3)
    assert words.no_status(funnel) == 1
    assert [(s.name, s.count, s.percent) for s in words.stages(funnel)] == [
        ("accepted", 10, 100),
        ("sent", 6, 60),
        ("delivered", 5, 50),
        ("read", 2, 20),
    ]
