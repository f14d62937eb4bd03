"""The HTML reporter: each shown recipient's message as a WhatsApp chat bubble, in one page.

Every value from the campaign or the CSV goes through `html.escape` first; WhatsApp's
formatting (*bold*, _italic_, ~strike~, ```mono```) becomes tags only after that, so a CSV
value is only ever shown as text. The page loads nothing: CSS and icons are inline (read from
page.css and icons/*.svg beside this module), and its Content-Security-Policy forbids
scripts and any request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, singledispatch
from html import escape
from importlib import resources
from pathlib import Path

import phonenumbers

from campaign_runner.outputs import open_output
from campaign_runner.preview.message import (
    Button,
    Component,
    Contacts,
    Interactive,
    Location,
    Media,
    Message,
    Section,
    Template,
    Text,
    Unknown,
)
from campaign_runner.preview.model import ShownRow, Summary, in_status_order, role_of

_MONO = re.compile(r"```(.+?)```", re.DOTALL)
# WhatsApp styles a span only when the marker hugs a word: `*bold*` but not `2 * 3 * 4`.
_STYLES = [
    (re.compile(rf"(?<![\w{m}]){m}(?=\S)([^\n]*?\S){m}(?![\w{m}])"), tag)
    for m, tag in ((re.escape("*"), "strong"), (re.escape("_"), "em"), (re.escape("~"), "s"))
]
# Icons drawn the same as another: the file they share.
_ICON_ALIASES = {"quick_reply": "reply", "gif": "image", "location": "pin"}
_TEMPLATE_BUTTONS = {"url": "URL button", "quick_reply": "Quick reply", "copy_code": "Copy code"}


@dataclass(frozen=True)
class Written:
    """Where the page went and how many recipients it shows."""

    path: Path
    shown: int


def page_name(campaign: str) -> str:
    """The page's file name when no --output is given (the folder is the run's report folder)."""
    return f"{campaign}-preview.html"


def write(summary: Summary, rows: Iterable[ShownRow], path: Path) -> Written:
    """Stream the page into PATH, one recipient at a time."""
    shown = 0

    def counted(rows: Iterable[ShownRow]) -> Iterator[ShownRow]:
        nonlocal shown
        for row in rows:
            shown += 1
            yield row

    with open_output("the preview page", path) as handle:
        handle.writelines(page(summary, counted(rows)))
    return Written(path, shown)


def page(summary: Summary, rows: Iterable[ShownRow]) -> Iterator[str]:
    """The preview page in chunks: head, summary, one chunk per recipient, end."""
    title = escape(f"{summary.campaign}: WhatsApp preview")
    yield (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>\n{_css()}</style></head><body>\n"
    )
    yield summary_html(summary)
    yield '<main class="chats">\n'
    for row in rows:
        yield chat(row)
    yield "</main></body></html>\n"


def whatsapp_markup(text: object) -> str:
    """TEXT escaped for HTML, then WhatsApp's *bold*, _italic_, ~strike~ and ```mono``` as tags."""
    parts = _MONO.split(escape(str(text)))
    for i, part in enumerate(parts):
        if i % 2:
            parts[i] = f"<code>{part}</code>"
            continue
        for pattern, tag in _STYLES:
            part = pattern.sub(rf"<{tag}>\1</{tag}>", part)
        parts[i] = part
    return "".join(parts)


# ---- resources ---------------------------------------------------------------------------


@cache
def _css() -> str:
    return resources.files(__package__).joinpath("page.css").read_text(encoding="utf-8")


@cache
def _icons() -> dict[str, str]:
    folder = resources.files(__package__).joinpath("icons")
    icons = {
        entry.name.removesuffix(".svg"): entry.read_text(encoding="utf-8").strip()
        for entry in folder.iterdir()
        if entry.name.endswith(".svg")
    }
    return icons | {alias: icons[name] for alias, name in _ICON_ALIASES.items()}


def _icon(kind: str) -> str:
    return _icons().get(kind, "")


# ---- summary -----------------------------------------------------------------------------


def warnings_list(warnings: list[str]) -> str:
    """WARNINGS as the page's list of them; nothing when there are none."""
    if not warnings:
        return ""
    items = "".join(f"<li>warning: {escape(warning)}</li>" for warning in warnings)
    return f'<ul class="warnings">{items}</ul>'


def summary_html(summary: Summary) -> str:
    """The page's header: campaign, counts per status, warnings, the rows that would not go."""
    counts = "".join(
        f'<li class="count {role_of(status)}"><span>{escape(status)}</span> <b>{count}</b></li>'
        for status, count in in_status_order(summary.counts)
    )
    out = [
        '<header class="summary">',
        f"<h1>{escape(summary.campaign)}</h1>",
        f'<p class="facts"><b class="total">{summary.total}</b> recipient(s) in '
        f"<code>{escape(summary.recipients_file)}</code>; showing {escape(summary.shown)}</p>",
        f'<ul class="counts">{counts}</ul>',
    ]
    out.append(warnings_list(summary.warnings))
    out.append(_unsendable(summary))
    out.append("</header>\n")
    return "".join(out)


def _unsendable(summary: Summary) -> str:
    if not summary.not_ready:
        return '<p class="all-ready">Every recipient is ready to send.</p>'
    rows = "".join(
        f'<tr class="{role_of(u.status)}"><td>{u.row}</td><td>{escape(u.phone)}</td>'
        f"<td>{escape(u.status)}</td><td>{escape(u.error)}</td></tr>"
        for u in summary.unsendable
    )
    if summary.unlisted:
        rows += (
            f'<tr><td colspan="4">... and {summary.unlisted} more '
            "(<code>campaign validate</code> lists them all)</td></tr>"
        )
    return (
        f'<section class="unsendable"><h2>Would not be sent ({summary.not_ready})</h2>'
        "<table><thead><tr><th>row</th><th>phone</th><th>status</th><th>reason</th></tr>"
        f"</thead><tbody>{rows}</tbody></table></section>"
    )


# ---- one chat ----------------------------------------------------------------------------


def chat(row: ShownRow) -> str:
    """One recipient as a phone-style chat: a top bar with who it is, then the message."""
    shown_phone = _pretty_phone(row.phone)
    initial = escape((row.name or "?")[:1].upper())
    bar = (
        f'<header class="bar"><span class="avatar">{initial}</span><span class="who">'
        f'<b class="name">{escape(row.name or shown_phone or "(no phone)")}</b>'
        f"<small>{escape(shown_phone)} &middot; row {row.row}</small></span></header>"
    )
    if row.message is None:
        inner = (
            f'<div class="notice {role_of(row.status)}"><b>Not sent: {escape(row.status)}</b>'
            f"<br>{escape(row.error)}</div>"
        )
    else:
        inner = message_html(row.message)
    return (
        f'<article class="chat" data-row="{row.row}" data-status="{escape(row.status)}">'
        f'{bar}<div class="wall">{inner}</div></article>\n'
    )


def _pretty_phone(phone: str) -> str:
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return phone
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def message_html(message: Message) -> str:
    """One message as WhatsApp shows it: a bubble and the buttons under it."""
    bubble, below = draw(message)
    plain = " plain" if message.type == "sticker" else ""
    return (
        f'<div class="msg" data-type="{escape(message.type)}"><div class="bubble{plain}">'
        f"{bubble}</div>{below}</div>"
    )


def _button(kind: str, label: str, detail: str = "") -> str:
    extra = f'<small class="btn-detail">{escape(detail)}</small>' if detail else ""
    return (
        f'<div class="wa-btn" data-kind="{escape(kind)}">{_icon(kind)}'
        f'<span class="btn-label">{escape(label)}</span>{extra}</div>'
    )


def _buttons(buttons: list[str]) -> str:
    return f'<div class="buttons">{"".join(buttons)}</div>' if buttons else ""


def _text_block(text: str, css: str = "text") -> str:
    return f'<div class="{css}">{whatsapp_markup(text)}</div>'


def _media_box(media: Media) -> str:
    source = f'{media.source} <span class="src">{escape(media.ref)}</span>'
    label = media.kind.upper() + (" (voice note)" if media.voice else "")
    return (
        f'<div class="media {escape(media.kind)}">{_icon(media.kind)}'
        f'<span class="media-label">{escape(label)}</span>'
        f'<span class="media-src">{source}</span></div>'
    )


# ---- message types: (inside the bubble, under it) ----------------------------------------


@singledispatch
def draw(message: Message) -> tuple[str, str]:
    """MESSAGE as (what goes inside its bubble, what goes under it: buttons, a list's sheet)."""
    raise TypeError(f"no drawing for {type(message).__name__}")


@draw.register
def _text(message: Text) -> tuple[str, str]:
    return _text_block(message.body), ""


@draw.register
def _media(message: Media) -> tuple[str, str]:
    out = [_media_box(message)]
    if message.filename:
        out.append(f'<div class="filename">{_icon("document")}{escape(message.filename)}</div>')
    if message.caption:
        out.append(_text_block(message.caption, "text caption"))
    return "".join(out), ""


@draw.register
def _template(message: Template) -> tuple[str, str]:
    out = [
        '<div class="tpl"><span class="tpl-label">template</span>',
        f'<b class="tpl-name">{escape(message.name)}</b>',
        f'<span class="tpl-lang">{escape(message.language)}</span></div>',
    ]
    if "header" in message.filled:
        out.append(_text_block(message.filled["header"], "header"))
    if "body" in message.filled:
        out.append(_text_block(message.filled["body"]))
    buttons = []
    for component in message.components:
        if component.kind in message.filled:
            continue  # drawn above as the sentence the customer reads
        if component.kind == "button":
            buttons.append(_template_button(component))
        elif component.kind in ("header", "body"):
            out.append(_template_values(component))
        else:
            shown = escape(component.as_json)
            out.append(
                f'<div class="component"><b>{escape(component.kind)}</b> <code>{shown}</code></div>'
            )
    return "".join(out), _buttons(buttons)


def _template_button(component: Component) -> str:
    sub_type = component.sub_type
    label = _TEMPLATE_BUTTONS.get(sub_type, f"{sub_type} button")
    values = ", ".join(p.text for p in component.parameters)
    return _button(sub_type or "button", f"{label} {component.index}".strip(), values)


def _template_values(component: Component) -> str:
    rows = "".join(
        f"<dt>{escape(component.kind)} {escape(p.placeholder)}</dt>"
        f"<dd>{_media_box(p.media) if p.media else escape(p.text)}</dd>"
        for p in component.parameters
    )
    return f'<dl class="params">{rows}</dl>' if rows else ""


@draw.register
def _interactive(message: Interactive) -> tuple[str, str]:
    out = []
    if isinstance(message.header, str):
        out.append(_text_block(message.header, "header"))
    elif isinstance(message.header, Media):
        out.append(_media_box(message.header))
    if message.body:
        out.append(_text_block(message.body))
    if message.footer:
        out.append(_text_block(message.footer, "footer"))
    if message.kind == "product":
        out.append(f'<div class="component">product <code>{escape(message.product)}</code></div>')
    buttons = [_button(b.kind, b.label, b.url) for b in message.buttons]
    sheet = _list_sheet(message.sections) if _opens_a_list(message.buttons) else ""
    return "".join(out), _buttons(buttons) + sheet


def _opens_a_list(buttons: tuple[Button, ...]) -> bool:
    return any(button.kind == "list" for button in buttons)


def _list_sheet(sections: tuple[Section, ...]) -> str:
    out = ['<div class="sheet">']
    for section in sections:
        out.append(f'<div class="section-title">{escape(section.title)}</div>')
        for choice in section.rows:
            detail = f"<small>{escape(choice.description)}</small>" if choice.description else ""
            out.append(
                f'<div class="wa-row"><span><b>{escape(choice.title)}</b>'
                f'{detail}</span><i class="radio"></i></div>'
            )
    out.append("</div>")
    return "".join(out)


@draw.register
def _location(message: Location) -> tuple[str, str]:
    place = []
    if message.name:
        place.append(f"<b>{escape(message.name)}</b>")
    if message.address:
        place.append(f"<span>{escape(message.address)}</span>")
    place.append(f'<small class="coords">{escape(message.coordinates)}</small>')
    return f'<div class="map">{_icon("pin")}</div><div class="place">{"".join(place)}</div>', ""


@draw.register
def _contacts(message: Contacts) -> tuple[str, str]:
    cards = []
    for card in message.cards:
        lines = [f"<span>{escape(card.work)}</span>"] if card.work else []
        lines += [f"<span>{_icon('phone')}{escape(phone)}</span>" for phone in card.phones]
        lines += [f"<span>{_icon('mail')}{escape(email)}</span>" for email in card.emails]
        cards.append(
            f'<div class="contact">'
            f'<span class="avatar small">{escape(card.name[:1].upper())}</span>'
            f'<div class="contact-lines"><b>{escape(card.name)}</b>{"".join(lines)}</div></div>'
        )
    return "".join(cards), ""


@draw.register
def _unknown(message: Unknown) -> tuple[str, str]:
    return f"<code>{escape(message.as_json)}</code>", ""
