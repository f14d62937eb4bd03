"""The preview's structured result: each message described once, the summary, which rows show.

Every reporter (text, jsonl, html) formats these; here they are checked with no format at all.
"""

from __future__ import annotations

import runpy
from collections import Counter
from pathlib import Path

import pytest

from campaign_runner.preview.message import (
    Button,
    Component,
    Contact,
    Contacts,
    Interactive,
    ListRow,
    Location,
    Media,
    Parameter,
    Section,
    Template,
    Text,
    Unknown,
    describe,
)
from campaign_runner.preview.model import (
    MAX_LISTED,
    Role,
    ShownRow,
    Unsendable,
    in_status_order,
    recipient_name,
    role_of,
    summarise,
)
from campaign_runner.preview.selection import describe_selection, pick, sample_evenly
from campaign_runner.status import Status

# The gateway documentation's ten example bodies, shared with the acceptance tests.
SEED_BODIES = runpy.run_path(str(Path(__file__).parents[1] / "acceptance" / "seed_bodies.py"))[
    "SEED_BODIES"
]
SEED_MEDIA_ID = "515056594160172"

# ---- one body, described -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "described"),
    [
        ("text", Text("Chamando Dioniso beta via Kong")),
        (
            "template",
            Template(
                "beta_abandoncart_link_v1_1",
                "pt_BR",
                (
                    Component("body", (Parameter("{{1}}", "[name]"),)),
                    Component(
                        "button", (Parameter("{{1}}", "[target_url]"),), sub_type="url", index="0"
                    ),
                ),
            ),
        ),
        (
            "interactive",
            Interactive(
                kind="button",
                header=None,
                body="Olá, o que você gostaria de fazer? teste às 15:59",
                footer="",
                buttons=(
                    Button(
                        "reply", "Obter benefício", reply_id="OLÁ, QUERO RECEBER MEU BENEFÍCIO."
                    ),
                    Button("reply", "Falar com a loja", reply_id="#FALARCOMALOJA"),
                ),
                sections=(),
            ),
        ),
        (
            "contacts",
            Contacts(
                (
                    Contact(
                        "NAME",
                        work="TITLE · COMPANY",
                        phones=("PHONE_NUMBER", "PHONE_NUMBER"),
                        emails=("EMAIL", "EMAIL"),
                    ),
                )
            ),
        ),
        ("location", Location("0.0, 0.1", "<Location Name>", "<Location's Address>")),
        ("image", Media("image", "id", SEED_MEDIA_ID)),
        ("audio", Media("audio", "id", SEED_MEDIA_ID)),
        ("video", Media("video", "id", SEED_MEDIA_ID)),
        (
            "document",
            Media("document", "id", SEED_MEDIA_ID, filename="myNameDoc.pdf", caption="doc"),
        ),
        ("sticker", Media("sticker", "id", SEED_MEDIA_ID)),
    ],
)
def test_each_seed_body_is_described_once_for_every_reporter(seed, described):
    message = describe(SEED_BODIES[seed])
    assert message == described
    assert message.type == seed


def interactive(kind: str, action: dict, **parts) -> dict:
    return {"type": "interactive", "interactive": {"type": kind, "action": action, **parts}}


@pytest.mark.parametrize(
    ("body", "described"),
    [
        (
            {"type": "audio", "audio": {"link": "https://example.com/a.ogg", "voice": True}},
            Media("audio", "link", "https://example.com/a.ogg", voice=True),
        ),
        (
            {
                "type": "template",
                "template": {
                    "name": "receipt",
                    "language": {"code": "en"},
                    "components": [
                        {
                            "type": "HEADER",
                            "parameters": [
                                {"type": "document", "document": {"id": "77", "filename": "r.pdf"}}
                            ],
                        },
                        {
                            "type": "body",
                            "parameters": [
                                {"type": "text", "text": "Ana", "parameter_name": "name"},
                                {
                                    "type": "currency",
                                    "currency": {
                                        "fallback_value": "R$ 10,00",
                                        "code": "BRL",
                                        "amount_1000": 10000,
                                    },
                                },
                            ],
                        },
                        {"type": "carousel", "cards": []},
                    ],
                },
            },
            Template(
                "receipt",
                "en",
                (
                    Component(
                        "header",
                        (
                            Parameter(
                                "{{1}}", "77", Media("document", "id", "77", filename="r.pdf")
                            ),
                        ),
                    ),
                    Component(
                        "body", (Parameter("{{name}}", "Ana"), Parameter("{{2}}", "R$ 10,00"))
                    ),
                    Component("carousel", as_json='{"type": "carousel", "cards": []}'),
                ),
            ),
        ),
        (
            interactive(
                "list",
                {
                    "button": "Ver opções",
                    "sections": [
                        {
                            "title": "Pedidos",
                            "rows": [
                                {"id": "a", "title": "Rastrear", "description": "Onde está"},
                                {"id": "b", "title": "Trocar"},
                            ],
                        }
                    ],
                },
                header={"type": "text", "text": "Menu"},
                body={"text": "Escolha"},
                footer={"text": "Loja"},
            ),
            Interactive(
                kind="list",
                header="Menu",
                body="Escolha",
                footer="Loja",
                buttons=(Button("list", "Ver opções"),),
                sections=(
                    Section(
                        "Pedidos",
                        (ListRow("a", "Rastrear", "Onde está"), ListRow("b", "Trocar")),
                    ),
                ),
            ),
        ),
        (
            interactive(
                "cta_url",
                {
                    "name": "cta_url",
                    "parameters": {"display_text": "Abrir", "url": "https://example.com"},
                },
                header={"type": "image", "image": {"link": "https://example.com/x.jpg"}},
                body={"text": "Veja"},
            ),
            Interactive(
                kind="cta_url",
                header=Media("image", "link", "https://example.com/x.jpg"),
                body="Veja",
                footer="",
                buttons=(Button("url", "Abrir", url="https://example.com"),),
                sections=(),
            ),
        ),
        (
            interactive(
                "flow",
                {"name": "flow", "parameters": {"flow_cta": "Começar", "flow_id": "1"}},
                body={"text": "Cadastro"},
            ),
            Interactive("flow", None, "Cadastro", "", (Button("flow", "Começar"),), ()),
        ),
        (
            interactive("location_request_message", {"name": "send_location"}, body={"text": "?"}),
            Interactive(
                "location_request_message",
                None,
                "?",
                "",
                (Button("location", "Send location"),),
                (),
            ),
        ),
        (
            interactive(
                "product", {"catalog_id": "c", "product_retailer_id": "SKU-1"}, body={"text": "!"}
            ),
            Interactive("product", None, "!", "", (), (), product="SKU-1"),
        ),
        ({"type": "reaction", "reaction": {"emoji": "👍"}}, Unknown("reaction", '{"emoji": "👍"}')),
        (  # a value with no text of its own shows as JSON, its accents as they are
            {
                "type": "template",
                "template": {
                    "name": "visit",
                    "language": {"code": "pt_BR"},
                    "components": [
                        {
                            "type": "header",
                            "parameters": [
                                {
                                    "type": "location",
                                    "location": {"latitude": 1, "longitude": 2, "name": "São"},
                                }
                            ],
                        }
                    ],
                },
            },
            Template(
                "visit",
                "pt_BR",
                (
                    Component(
                        "header",
                        (Parameter("{{1}}", '{"latitude": 1, "longitude": 2, "name": "São"}'),),
                    ),
                ),
            ),
        ),
    ],
)
def test_other_shapes_are_described_with_what_the_customer_sees(body, described):
    assert describe(body) == described


# ---- statuses: order and roles -----------------------------------------------------------


def test_counts_are_listed_ready_first_then_in_the_order_status_declares():
    counts = Counter({Status.INVALID: 2, Status.EXCLUDED: 1, Status.READY: 5, Status.DUPLICATE: 3})
    assert in_status_order(counts) == [
        (Status.READY, 5),
        (Status.DUPLICATE, 3),
        (Status.EXCLUDED, 1),
        (Status.INVALID, 2),
    ]


@pytest.mark.parametrize(
    ("status", "role"),
    [
        (Status.READY, Role.GOOD),
        (Status.INVALID, Role.BAD),
        (Status.DUPLICATE, Role.NOTE),
        (Status.EXCLUDED, Role.NOTE),
    ],
)
def test_each_status_has_one_colour_role(status, role):
    assert role_of(status) is role


# ---- the summary -------------------------------------------------------------------------


def row(number: int, status: Status = Status.READY, error: str = "") -> ShownRow:
    return ShownRow(number, f"+55119484895{number:02d}", status, error)


def test_the_summary_counts_every_row_and_lists_those_that_would_not_go():
    rows = [row(2), row(3, Status.INVALID, "bad phone"), row(4, Status.DUPLICATE, "same key")]
    summary = summarise(rows, "welcome", "recipients.csv")
    assert (summary.total, summary.not_ready, summary.invalid) == (3, 2, 1)
    assert summary.counts == {Status.READY: 1, Status.INVALID: 1, Status.DUPLICATE: 1}
    assert summary.unsendable == [
        Unsendable(3, "+5511948489503", Status.INVALID, "bad phone"),
        Unsendable(4, "+5511948489504", Status.DUPLICATE, "same key"),
    ]
    assert summary.unlisted == 0


def test_past_the_listing_limit_unsendable_rows_are_only_counted():
    rows = (row(n, Status.INVALID, "x") for n in range(MAX_LISTED + 5))
    summary = summarise(rows, "big", "big.csv")
    assert len(summary.unsendable) == MAX_LISTED and summary.unlisted == 5


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"name": " Ana "}, "Ana"),
        ({"Nome": "Bruno"}, "Bruno"),
        ({"name": "  ", "first_name": "Carla"}, "Carla"),
        ({"phone": "+5511948489500"}, ""),
    ],
)
def test_a_chat_is_titled_with_a_name_like_column(values, name):
    assert recipient_name(values) == name


# ---- which rows show ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "count", "positions"),
    [
        (6, 3, [0, 2, 5]),
        (10, 3, [0, 4, 9]),
        (100, 4, [0, 33, 66, 99]),
        (10, 2, [0, 9]),
        (10, 1, [0]),
        (10, 0, []),
        (3, 5, [0, 1, 2]),
        (0, 3, []),
    ],
)
def test_a_sample_runs_from_the_first_row_to_the_last(total, count, positions):
    assert sample_evenly(total, count) == positions


def test_pick_streams_only_the_wanted_positions_and_stops_after_the_last():
    read = []

    def letters():
        for letter in "abcdefgh":
            read.append(letter)
            yield letter

    assert list(pick(letters(), [0, 3, 5])) == ["a", "d", "f"]
    assert read == list("abcdef")


@pytest.mark.parametrize(
    ("total", "limit", "sample", "said"),
    [
        (10, None, None, "every recipient"),
        (10, 20, None, "every recipient"),
        (10, 4, None, "the first 4"),
        (10, None, 3, "a sample of 3, spread over the file"),
        (10, 5, 2, "a sample of 2, spread over the first 5"),
        (10, None, 10, "every recipient"),
        (10, 3, 5, "the first 3"),
    ],
)
def test_the_selection_is_said_in_words(total, limit, sample, said):
    assert describe_selection(total, limit, sample) == said
