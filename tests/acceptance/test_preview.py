"""`campaign preview`: what each customer will see, as a terminal listing or as chats in a browser.

The HTML previews are opened in a real headless Chromium (Debian's `chromium` package): the
page must load with no error and no request but its own file, show every recipient's name
and the buttons their message carries, and show hostile CSV values as plain text.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from helpers import CAMPAIGNS, TEXT_MESSAGE, cli, env_for, on_a_terminal, write_campaign
from seed_bodies import SEED_BODIES

from campaign_runner.prepare import PreparedRow as Prepared
from campaign_runner.preview import html
from campaign_runner.preview.html import whatsapp_markup
from campaign_runner.preview.model import Summary, Unsendable
from campaign_runner.preview.passes import shown_row
from campaign_runner.preview.selection import sample_evenly

EXAMPLES = sorted(path.stem for path in CAMPAIGNS.glob("*.yaml"))
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE_NAMES = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]


# ---- a real browser ----------------------------------------------------------------------


def chromium_path() -> str | None:
    """Debian's chromium (or another Chromium the machine has), or None."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        found = name and shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the whole module, driven by Playwright."""
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "no Chromium on this machine: install Debian's chromium package "
            "(apt-get install chromium) to run the browser checks"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        yield launched
        launched.close()


@dataclass
class Opened:
    """A page as the browser loaded it, with everything that went wrong or went out."""

    page: object
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def open_in_browser(browser, html_file: Path) -> Opened:
    """Load HTML_FILE from disk, recording console errors, requests and dialogs."""
    page = browser.new_page(viewport={"width": 1240, "height": 900})
    opened = Opened(page)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.on("request", lambda request: opened.requests.append(request.url))
    page.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(html_file.as_uri())
    page.wait_for_load_state("load")
    return opened


def assert_self_contained(opened: Opened, html_file: Path) -> None:
    assert opened.errors == []
    assert opened.requests == [html_file.as_uri()]  # no CSS, font or script from anywhere


def assert_screenshot(opened: Opened, png: Path) -> None:
    opened.page.screenshot(path=str(png), full_page=True)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def expected_buttons(body: dict) -> int:
    """How many buttons WhatsApp shows under this body."""
    if body["type"] == "template":
        return sum(
            str(c.get("type")).lower() == "button" for c in body["template"].get("components") or []
        )
    if body["type"] == "interactive":
        interactive = body["interactive"]
        buttons = (interactive.get("action") or {}).get("buttons") or []
        return len(buttons) + (interactive["type"] in ("list", "cta_url"))
    return 0


def csv_rows(campaign: Path) -> list[dict]:
    with open(campaign.with_suffix(".csv"), newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ---- HTML in the browser -----------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_previews_as_chats_in_a_real_browser(example, browser, tmp_path):
    campaign = CAMPAIGNS / f"{example}.yaml"
    html_file = tmp_path / f"{example}.html"
    result = cli(["preview", campaign, "--format", "html", "--output", html_file])
    assert result.exit_code == 0, result.output
    bodies = [
        json.loads(line)
        for line in cli(["preview", campaign, "--format", "jsonl"]).output.splitlines()
    ]
    rows = csv_rows(campaign)

    opened = open_in_browser(browser, html_file)
    assert_self_contained(opened, html_file)
    page = opened.page
    assert page.locator(".summary h1").inner_text() == yaml.safe_load(campaign.read_text())["name"]
    chats = page.locator("article.chat")
    assert chats.count() == len(rows) == len(bodies)
    for i, (row, body) in enumerate(zip(rows, bodies, strict=True)):
        chat = chats.nth(i)
        assert chat.locator(".name").inner_text() == row["name"]
        assert chat.locator(".name").is_visible()
        if row["name"] in json.dumps(body, ensure_ascii=False):  # the message itself uses [name]
            assert row["name"] in chat.locator(".bubble").inner_text()
        assert chat.locator(".wa-btn").count() == expected_buttons(body)
    assert_screenshot(opened, tmp_path / f"{example}.png")
    page.close()


ABANDONED_CART_WITH_TROUBLE = (
    "phone,name,cart_id,target_url\n"
    "+55 11 94848-9500,Ana,8812,cart/8812?utm_source=whatsapp\n"
    "(11) 98765-4321,Bruno,8813,cart/8813?utm_source=whatsapp\n"
    "5.51195E+12,Mangled,8820,cart/8820\n"
    "5521987654321,Carla,8814,cart/8814?utm_source=whatsapp\n"
    "+55 31 99123-4567,Diego,8815,cart/8815?utm_source=whatsapp\n"
    "+55 21 98765-0000,,8821,cart/8821\n"
    "0055 41 98888-1234,Elisa,8816,cart/8816?utm_source=whatsapp\n"
    "+55 11 94848-9500,Ana again,8812,cart/8812\n"
    "(51) 99777-0001,Fábio,8817,cart/8817?utm_source=whatsapp\n"
)


def test_the_abandoned_cart_preview_shows_sampled_customers_and_who_would_fail(browser, tmp_path):
    shutil.copy(CAMPAIGNS / "abandoned-cart.yaml", tmp_path / "abandoned-cart.yaml")
    (tmp_path / "abandoned-cart.csv").write_text(ABANDONED_CART_WITH_TROUBLE, encoding="utf-8")
    html_file = tmp_path / "preview.html"
    result = cli(
        [
            "preview",
            tmp_path / "abandoned-cart.yaml",
            "--format",
            "html",
            "--sample",
            "3",
            "--output",
            html_file,
        ]
    )
    assert result.exit_code == 1  # some recipients would be invalid
    assert "preview of 3 of 9 recipient(s)" in result.output

    opened = open_in_browser(browser, html_file)
    assert_self_contained(opened, html_file)
    page = opened.page
    summary = page.locator(".summary").inner_text()
    assert "9 recipient(s)" in summary and "a sample of 3" in summary
    counts = {
        page.locator(".count span").nth(i).inner_text(): page.locator(".count b")
        .nth(i)
        .inner_text()
        for i in range(page.locator(".count").count())
    }
    assert counts == {"ready": "6", "invalid": "2", "duplicate": "1"}
    failing = page.locator(".unsendable tbody tr")
    assert failing.count() == 3
    assert "scientific notation" in failing.nth(0).inner_text()
    assert "column 'name' is blank" in failing.nth(1).inner_text()
    assert "an earlier row has the same key" in failing.nth(2).inner_text()

    chats = page.locator("article.chat")
    rows_shown = [chats.nth(i).get_attribute("data-row") for i in range(chats.count())]
    # First, middle and last of the messages that would be sent: failing rows are listed above.
    assert rows_shown == ["2", "5", "10"]
    for i, (name, cart) in enumerate([("Ana", "8812"), ("Carla", "8814"), ("Fábio", "8817")]):
        chat = chats.nth(i)
        assert chat.locator(".name").inner_text() == name
        assert name in chat.locator(".bubble").inner_text()
        [button] = chat.locator(".wa-btn").all()
        assert button.is_visible() and f"cart/{cart}?utm_source=whatsapp" in button.inner_text()
    assert_screenshot(opened, tmp_path / "abandoned-cart.png")
    page.close()


EVERY_KIND = [
    *SEED_BODIES.values(),
    {"type": "text", "text": {"body": "Olá *Ana*, _seu_ ~antigo~ pedido!\nCódigo ```AB-12```"}},
    {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "header": {"type": "text", "text": "Menu"},
            "body": {"text": "Escolha uma opção"},
            "footer": {"text": "Loja Exemplo"},
            "action": {
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
        },
    },
    {
        "type": "interactive",
        "interactive": {
            "type": "cta_url",
            "header": {"type": "image", "image": {"link": "https://example.com/x.jpg"}},
            "body": {"text": "Veja a promoção"},
            "action": {
                "name": "cta_url",
                "parameters": {"display_text": "Abrir loja", "url": "https://example.com/loja"},
            },
        },
    },
    {
        "type": "document",
        "document": {
            "link": "https://example.com/c.pdf",
            "caption": "Catálogo",
            "filename": "catalogo.pdf",
        },
    },
]


def test_every_kind_of_message_draws_in_the_browser(browser, tmp_path):
    items = [
        Prepared(i, i + 2, "+5511948489500", body=body, values={"name": f"Cliente {i}"})
        for i, body in enumerate(EVERY_KIND)
    ]
    summary = Summary(
        "every-kind", "every-kind.csv", total=len(items), counts=Counter(ready=len(items))
    )
    html_file = tmp_path / "every-kind.html"
    html.write(summary, map(shown_row, items), html_file)

    opened = open_in_browser(browser, html_file)
    assert_self_contained(opened, html_file)
    chats = opened.page.locator("article.chat")
    assert chats.count() == len(EVERY_KIND)
    for i, body in enumerate(EVERY_KIND):
        assert chats.nth(i).locator(".name").inner_text() == f"Cliente {i}"
        assert chats.nth(i).locator(".wa-btn").count() == expected_buttons(body)
        assert chats.nth(i).locator(".bubble").is_visible()
    assert_screenshot(opened, tmp_path / "every-kind.png")
    opened.page.close()


def test_hostile_csv_values_show_as_text_and_never_run(browser, tmp_path):
    rows = [{"phone": f"+55119484895{i:02d}", "name": name} for i, name in enumerate(HOSTILE_NAMES)]
    rows.append({"phone": "<b>123</b>", "name": "<i>x</i>"})
    path = write_campaign(tmp_path, rows=rows)
    html_file = tmp_path / "hostile.html"
    result = cli(
        ["preview", path, "--format", "html", "--output", html_file], env=env_for(tmp_path)
    )
    assert result.exit_code == 1  # the last phone is not a number

    opened = open_in_browser(browser, html_file)
    assert_self_contained(opened, html_file)
    page = opened.page
    assert opened.dialogs == []
    assert page.evaluate("document.querySelectorAll('script, img, i').length") == 0
    chats = page.locator("article.chat")
    for i, name in enumerate([*HOSTILE_NAMES, "<i>x</i>"]):
        assert chats.nth(i).locator(".name").inner_text() == name
        if i < len(HOSTILE_NAMES):
            assert chats.nth(i).locator(".bubble").inner_text() == f"Olá {name}, seu pedido chegou!"
    assert "<b>123</b>" in page.locator(".unsendable").inner_text()
    page.close()


# ---- HTML without a browser --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("*bold*", "<strong>bold</strong>"),
        ("_italic_", "<em>italic</em>"),
        ("~strike~", "<s>strike</s>"),
        ("```mono *not bold*```", "<code>mono *not bold*</code>"),
        ("*_both_*", "<strong><em>both</em></strong>"),
        ("2 * 3 * 4 and snake_case_name", "2 * 3 * 4 and snake_case_name"),
        ("<b>*x*</b> & 'y'", "&lt;b&gt;<strong>x</strong>&lt;/b&gt; &amp; &#x27;y&#x27;"),
        ("line one\nline two", "line one\nline two"),  # kept; the bubble shows it as a break
    ],
)
def test_whatsapp_formatting_is_applied_after_escaping(text, html):
    assert whatsapp_markup(text) == html


@pytest.mark.parametrize("hostile", [*HOSTILE_NAMES, '"><svg onload=alert(1)>', "</style><script>"])
def test_no_value_from_the_csv_reaches_the_page_as_markup(hostile):
    body = {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "header": {"type": "text", "text": hostile},
            "body": {"text": hostile},
            "footer": {"text": hostile},
            "action": {"buttons": [{"type": "reply", "reply": {"id": hostile, "title": hostile}}]},
        },
    }
    items = [
        Prepared(0, 2, "+5511948489500", body=body, values={"name": hostile}),
        Prepared(1, 3, hostile, status="invalid", error=hostile, values={"name": hostile}),
    ]
    summary = Summary(
        hostile,
        hostile,
        total=2,
        counts=Counter(ready=1, invalid=1),
        unsendable=[Unsendable(3, hostile, "invalid", hostile)],
        warnings=[hostile],
    )
    page = "".join(html.page(summary, map(shown_row, items)))
    assert hostile not in page
    assert page.count("<script") == 0 and page.count("<svg onload") == 0


# ---- sampling ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "count", "positions"),
    [
        (6, 3, [0, 2, 5]),
        (10, 3, [0, 4, 9]),
        (100, 4, [0, 33, 66, 99]),
        (10, 1, [0]),
        (3, 5, [0, 1, 2]),
        (0, 3, []),
    ],
)
def test_a_sample_is_spread_from_the_first_row_to_the_last(total, count, positions):
    assert sample_evenly(total, count) == positions


def ten_customers(tmp_path) -> Path:
    rows = [{"phone": f"+55119484895{i:02d}", "name": f"Cliente {i}"} for i in range(10)]
    return write_campaign(tmp_path, rows=rows)


@pytest.mark.parametrize(
    ("options", "rows_shown", "said"),
    [
        (["--sample", "3"], [2, 6, 11], "showing a sample of 3, spread over the file"),
        (
            ["--limit", "5", "--sample", "2"],
            [2, 6],
            "showing a sample of 2, spread over the first 5",
        ),
        (["--limit", "2"], [2, 3], "showing the first 2"),
        ([], list(range(2, 12)), "showing every recipient"),
    ],
)
def test_preview_shows_the_first_rows_or_a_sample_but_counts_them_all(
    options, rows_shown, said, tmp_path
):
    result = cli(["preview", ten_customers(tmp_path), *options])
    assert result.exit_code == 0, result.output
    assert "10 recipient(s)" in result.output and "ready: 10" in result.output
    assert said in result.output
    shown = [int(line.split()[1]) for line in result.output.splitlines() if line.startswith("row ")]
    assert shown == rows_shown


def test_jsonl_preview_can_sample_too(tmp_path):
    result = cli(["preview", ten_customers(tmp_path), "--format", "jsonl", "--sample", "2"])
    assert [json.loads(line)["to"] for line in result.output.splitlines()] == [
        "+5511948489500",
        "+5511948489509",
    ]


# Lines each cell's text takes: more than one means the text was broken or wrapped.
LINES_OF_TEXT = """cells => cells.map(cell => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    const tops = new Set([...range.getClientRects()].map(rect => Math.round(rect.top)));
    return [cell.innerText, tops.size];
})"""


@pytest.mark.parametrize("width", [320, 360, 414])
def test_the_failing_rows_stay_readable_on_a_phone(width, browser, tmp_path):
    rows = (
        "phone,name\n+5511948480000,Ana\n12,Short\n+5511948480000,Again\n"
        "+5511948480001,\n+551194848000000000000000,Long\n"
    )
    path = write_campaign(tmp_path, rows=rows)
    page_file = tmp_path / "p.html"
    assert cli(["preview", path, "--format", "html", "--output", page_file]).exit_code == 1
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.goto(page_file.as_uri())
    heads = page.locator(".unsendable th").evaluate_all(LINES_OF_TEXT)
    assert heads == [["row", 1], ["phone", 1], ["status", 1], ["reason", 1]]
    cells = page.locator(".unsendable tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.innerText))"
    )
    assert [row[:3] for row in cells] == [
        ["3", "12", "invalid"],
        ["4", "+5511948480000", "duplicate"],
        ["5", "+5511948480001", "invalid"],
        ["6", "+551194848000000000000000", "invalid"],
    ]
    for column in (1, 2, 3):  # row numbers, phones and statuses: one line each, never broken
        shown = page.locator(f".unsendable td:nth-child({column})").evaluate_all(LINES_OF_TEXT)
        assert {lines for _, lines in shown} == {1}, shown
    # The reason has the row's whole width: a sentence of a few lines, not a column of words.
    reasons = page.locator(".unsendable td:nth-child(4)").evaluate_all(LINES_OF_TEXT)
    assert max(lines for _, lines in reasons) <= 4, reasons
    scroll, width_shown = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= width_shown  # nothing to scroll sideways
    page.close()


# ---- text ----------------------------------------------------------------------------------


TROUBLED_CSV = (
    "phone,name\n"
    "+55 11 94848-9500,Ana\n"
    "123,Short\n"
    "+55 21 98765-4321,\n"
    "0055 11 94848 9500,Ana again\n"
)


def test_the_text_preview_starts_with_the_campaign_its_counts_and_who_would_fail(tmp_path):
    path = write_campaign(tmp_path, rows=TROUBLED_CSV, name="welcome")
    result = cli(["preview", path], env=env_for(tmp_path))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"campaign welcome: 4 recipient(s) in {tmp_path / 'recipients.csv'}"
    assert lines[1:4] == ["  ready: 1", "  duplicate: 1", "  invalid: 2"]
    assert lines[4] == "would not be sent (3):"
    assert lines[5].startswith("  row 3 123: invalid: '123' is not")
    assert lines[6] == (
        "  row 4 +5521987654321: invalid: text.body: column 'name' is blank for this recipient"
    )
    assert lines[7] == (
        "  row 5 +5511948489500: duplicate: an earlier row has the same key +5511948489500"
    )
    assert "row 2 -> +5511948489500" in lines and "  text: Olá Ana, seu pedido chegou!" in lines
    assert "\x1b[" not in result.output  # no colour when stdout is not a terminal


def test_the_text_preview_is_in_colour_on_a_terminal(tmp_path):
    path = write_campaign(tmp_path, rows=TROUBLED_CSV, message=TEXT_MESSAGE)
    code, output, _ = on_a_terminal(["preview", path])
    assert code == 1
    assert "\x1b[32m  ready: 1" in output  # green
    assert "\x1b[31m  invalid: 2" in output  # red
    assert "\x1b[33m  duplicate: 1" in output  # yellow
    assert "row 2 -> +5511948489500" in output


def test_output_is_only_for_html(tmp_path):
    result = cli(["preview", write_campaign(tmp_path), "--output", tmp_path / "x.txt"])
    assert result.exit_code == 2 and "--output is for --format html" in result.output


def test_without_output_the_html_lands_beside_the_run_reports(tmp_path, monkeypatch):
    # Run from another folder, as cron would: the page goes where the run's reports go.
    path = write_campaign(tmp_path / "campaigns", name="welcome")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for given in (path, Path("..") / "campaigns" / "campaign.yaml"):
        result = cli(["preview", given, "--format", "html"])
        assert result.exit_code == 0, result.output
        page_file = tmp_path / "campaigns" / "reports" / "welcome-preview.html"
        assert result.output == f"preview of 2 of 2 recipient(s): {page_file}\n"
        page = page_file.read_text(encoding="utf-8")
        assert "Olá Ana, seu pedido chegou!" in page and "Olá Bruno, seu pedido chegou!" in page
        page_file.unlink()
    assert list(elsewhere.iterdir()) == []


def test_without_output_the_html_follows_the_campaigns_report_dir(tmp_path, monkeypatch):
    path = write_campaign(tmp_path, name="welcome", report_dir="out/pages")
    monkeypatch.chdir(tmp_path.parent)
    result = cli(["preview", path, "--format", "html"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "pages" / "welcome-preview.html").is_file()
    assert not (tmp_path / "reports").exists() and not (tmp_path.parent / "reports").exists()
