"""The text reporter: the preview as readable lines, each tagged with a role for colour."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import singledispatch

from campaign_runner.preview.message import (
    Contacts,
    Interactive,
    Location,
    Media,
    Message,
    Template,
    Text,
    Unknown,
)
from campaign_runner.preview.model import Role, ShownRow, Summary, in_status_order, role_of

Line = tuple[str, Role | None]  # the text, and its role (None: no colour)


def lines(summary: Summary, rows: Iterable[ShownRow]) -> Iterator[Line]:
    """The whole text preview: the summary, then each shown recipient."""
    yield from summary_lines(summary)
    for row in rows:
        yield from row_lines(row)


def summary_lines(summary: Summary) -> Iterator[Line]:
    """The preview's header: campaign, counts per status, the rows that would not be sent."""
    where = summary.recipients_file
    yield f"campaign {summary.campaign}: {summary.total} recipient(s) in {where}", Role.TITLE
    for status, count in in_status_order(summary.counts):
        yield f"  {status}: {count}", role_of(status)
    if summary.not_ready:
        yield f"would not be sent ({summary.not_ready}):", Role.BAD
        for row in summary.unsendable:
            phone = row.phone or "(no phone)"
            yield f"  row {row.row} {phone}: {row.status}: {row.error}", role_of(row.status)
        if summary.unlisted:
            yield f"  ... and {summary.unlisted} more (campaign validate lists them all)", Role.BAD
    yield f"showing {summary.shown}", None
    yield "", None


def row_lines(row: ShownRow) -> Iterator[Line]:
    """One recipient: who, then what they would receive or why nothing would go."""
    head = f"row {row.row} -> {row.phone}"
    if row.message is None:
        yield f"{head}: {row.status.upper()}: {row.error}", role_of(row.status)
    else:
        yield head, Role.HEAD
        for line in message_lines(row.message):
            yield "  " + line, None
    yield "", None


@singledispatch
def message_lines(message: Message) -> list[str]:
    """A few readable lines for one message: what the customer will see."""
    raise TypeError(f"no text for {type(message).__name__}")


@message_lines.register
def _text(message: Text) -> list[str]:
    return ["text: " + _indent(message.body)]


@message_lines.register
def _media(message: Media) -> list[str]:
    out = [f"{message.kind}: {message.source} {message.ref}"]
    if message.filename:
        out.append(f"  filename: {message.filename}")
    if message.caption:
        out.append("  caption: " + _indent(message.caption, 4))
    return out


@message_lines.register
def _template(message: Template) -> list[str]:
    out = [f"template: {message.name} ({message.language})"]
    # The sentences the customer reads, when the campaign carries the approved text.
    for part in _FILLED_ORDER:
        if part in message.filled:
            label = f"  {part}: "  # the sentence's lines start under its first word
            out.append(label + _indent(message.filled[part], 2 + len(label)))
    for component in message.components:
        if component.kind in message.filled:
            continue
        label = component.kind
        if component.kind == "button":
            label = f"button {component.index} {component.sub_type}"
        out.append(f"  {label}: " + " | ".join(p.text for p in component.parameters))
    return out


@message_lines.register
def _interactive(message: Interactive) -> list[str]:
    out = [f"interactive {message.kind}"]
    if isinstance(message.header, str) and message.header:
        out.append(f"  header: {message.header}")
    if message.body:
        out.append("  body: " + _indent(message.body, 4))
    if message.footer:
        out.append(f"  footer: {message.footer}")
    named = [button for button in message.buttons if button.kind in _BUTTON_LINES]
    out += ["  " + _BUTTON_LINES[button.kind].format(b=button) for button in named]
    for section in message.sections:
        out.append(f"  section: {section.title}")
        out += [f"    - {choice.title}  (id {choice.id})" for choice in section.rows]
    return out


_FILLED_ORDER = ("header", "body")  # as WhatsApp draws them, top to bottom

# The buttons the text listing names; the HTML page also draws the ones WhatsApp implies.
_BUTTON_LINES = {
    "reply": "[ {b.label} ]  (id {b.reply_id})",
    "list": "list button: [ {b.label} ]",
    "url": "[ {b.label} ] -> {b.url}",
}


@message_lines.register
def _location(message: Location) -> list[str]:
    out = [f"location: {message.coordinates}"]
    if message.name:
        out.append(f"  name: {message.name}")
    if message.address:
        out.append(f"  address: {message.address}")
    return out


@message_lines.register
def _contacts(message: Contacts) -> list[str]:
    out = []
    for card in message.cards:
        phones = ", ".join(card.phones)
        out.append(f"contact card: {card.name}" + (f" ({phones})" if phones else ""))
    return out


@message_lines.register
def _unknown(message: Unknown) -> list[str]:
    return [message.as_json]


def _indent(text: str, spaces: int = 2) -> str:
    return text.replace("\n", "\n" + " " * spaces)
