"""What a customer sees in one body, described once and in no format: the reporters draw it.

`describe(body)` reads a request body (already valid under the message schemas) and returns
one of the message types below. Values stay plain text here; escaping belongs to the HTML
reporter, which escapes every one of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from campaign_runner.approved_text import ApprovedText


@dataclass(frozen=True)
class Media:
    """An image, video, audio, document, sticker or gif, by `id` or by `link`."""

    kind: str
    source: str  # "link" or "id": how the gateway finds the file
    ref: str  # the URL or the media id
    filename: str = ""
    caption: str = ""
    voice: bool = False  # an audio sent as a voice note

    @property
    def type(self) -> str:
        """The message type, for a media message: its kind."""
        return self.kind


@dataclass(frozen=True)
class Text:
    """A text message."""

    type: ClassVar[str] = "text"
    body: str


@dataclass(frozen=True)
class Parameter:
    """One value filled into a template: its placeholder, the text shown and any media."""

    placeholder: str  # "{{1}}" or "{{name}}"
    text: str
    media: Media | None = None


@dataclass(frozen=True)
class Component:
    """One part of a template (header, body, a button...) and the values filled into it."""

    kind: str  # lower case: header, body, button, carousel...
    parameters: tuple[Parameter, ...] = ()
    sub_type: str = ""  # buttons: url, quick_reply, copy_code...
    index: str = ""  # buttons: their position
    as_json: str = ""  # parts the preview cannot draw (carousel...), shown as they are


@dataclass(frozen=True)
class Template:
    """An approved template by name and language, with the values for its parts."""

    type: ClassVar[str] = "template"
    name: str
    language: str
    components: tuple[Component, ...]
    # The sentences the customer reads, by part (body, header), when the campaign carries
    # the approved text (`preview:`): its slots filled with this message's values.
    filled: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Button:
    """A button under an interactive message; `reply_id` for reply buttons, `url` for links."""

    kind: str  # reply, list, url, flow, location, catalog
    label: str
    reply_id: str = ""
    url: str = ""


@dataclass(frozen=True)
class ListRow:
    """One choice in a list message's sheet."""

    id: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class Section:
    """A titled group of list choices (or of catalog products, which have no rows here)."""

    title: str
    rows: tuple[ListRow, ...] = ()


@dataclass(frozen=True)
class Interactive:
    """An interactive message: header, body, footer, the buttons under it and a list's sheet."""

    type: ClassVar[str] = "interactive"
    kind: str  # button, list, cta_url, flow, product, product_list...
    header: str | Media | None
    body: str
    footer: str
    buttons: tuple[Button, ...]
    sections: tuple[Section, ...]
    product: str = ""  # the product's retailer id, for a single-product message


@dataclass(frozen=True)
class Location:
    """A pin on a map, with an optional name and address."""

    type: ClassVar[str] = "location"
    coordinates: str  # "latitude, longitude" as the body gives them
    name: str = ""
    address: str = ""


@dataclass(frozen=True)
class Contact:
    """One contact card."""

    name: str
    work: str = ""  # "title · company"
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contacts:
    """A message of contact cards."""

    type: ClassVar[str] = "contacts"
    cards: tuple[Contact, ...]


@dataclass(frozen=True)
class Unknown:
    """A type the preview does not know: its content as JSON."""

    kind: str
    as_json: str

    @property
    def type(self) -> str:
        """The message type as the body names it."""
        return self.kind


Message = Text | Media | Template | Interactive | Location | Contacts | Unknown

MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")
_MEDIA_PARAMETERS = ("image", "video", "document")  # the media a template value can carry


def describe(body: dict[str, Any], approved: ApprovedText | None = None) -> Message:
    """What the customer sees in BODY, as one of this module's message types; a template's
    sentences filled in when APPROVED gives its approved text."""
    kind = body.get("type")
    if not isinstance(kind, str):
        return Unknown(str(kind), _json(None))
    describe_kind = _DESCRIBERS.get(kind)
    if describe_kind is None:
        return Unknown(kind, _json(body.get(kind)))
    message = describe_kind(kind, body.get(kind))
    if approved is not None and isinstance(message, Template):
        message = filled_in(message, approved)
    return message


def filled_in(template: Template, approved: ApprovedText) -> Template:
    """TEMPLATE with the approved text of each part filled with the part's values: slot
    `{{1}}` (or `{{first_name}}`) takes the parameter of that position (or parameter_name)."""
    filled = {}
    for part, text in approved.parts.items():
        component = next((c for c in template.components if c.kind == part), None)
        values = {p.placeholder: p.text for p in component.parameters} if component else {}
        filled[part] = text.fill(values)
    return Template(template.name, template.language, template.components, filled)


def _text(kind: str, content: Any) -> Text:
    return Text(str((content or {}).get("body", "")))


def media(kind: str, content: dict[str, Any]) -> Media:
    """The media KIND given by CONTENT (`id` or `link`, filename, caption, voice)."""
    if content.get("link"):
        source, ref = "link", str(content["link"])
    else:
        source, ref = "id", str(content.get("id", "?"))
    return Media(
        kind,
        source,
        ref,
        filename=str(content.get("filename") or ""),
        caption=str(content.get("caption") or ""),
        voice=kind == "audio" and bool(content.get("voice")),
    )


def _media(kind: str, content: Any) -> Media:
    return media(kind, content or {})


def _template(kind: str, content: Any) -> Template:
    content = content or {}
    language = (content.get("language") or {}).get("code", "?")
    components = tuple(_component(c) for c in content.get("components") or [])
    return Template(str(content.get("name", "?")), str(language), components)


def _component(component: dict[str, Any]) -> Component:
    kind = str(component.get("type", "")).lower()
    parameters = tuple(
        _parameter(p, n) for n, p in enumerate(component.get("parameters") or [], start=1)
    )
    if kind == "button":
        sub_type = str(component.get("sub_type", "")).lower()
        return Component(kind, parameters, sub_type, str(component.get("index", "")))
    if kind in ("header", "body"):
        return Component(kind, parameters)
    return Component(kind, parameters, as_json=_json(component))


def _parameter(parameter: dict[str, Any], number: int) -> Parameter:
    kind = str(parameter.get("type", ""))
    value = parameter.get(kind)
    placeholder = "{{" + str(parameter.get("parameter_name") or number) + "}}"
    shown_media = (
        media(kind, value) if kind in _MEDIA_PARAMETERS and isinstance(value, dict) else None
    )
    if isinstance(value, dict):
        value = value.get("fallback_value") or value.get("link") or value.get("id") or _json(value)
    return Parameter(placeholder, str(value), shown_media)


def _interactive(kind: str, content: Any) -> Interactive:
    content = content or {}
    action = content.get("action") or {}
    return Interactive(
        kind=str(content.get("type")),
        header=_header(content.get("header") or {}),
        body=str((content.get("body") or {}).get("text") or ""),
        footer=str((content.get("footer") or {}).get("text") or ""),
        buttons=_interactive_buttons(str(content.get("type")), action),
        sections=tuple(_section(s) for s in action.get("sections") or []),
        product=str(action.get("product_retailer_id") or ""),
    )


def _header(header: dict[str, Any]) -> str | Media | None:
    header_kind = header.get("type")
    if header_kind == "text":
        return str(header.get("text", ""))
    if isinstance(header_kind, str) and isinstance(header.get(header_kind), dict):
        return media(header_kind, header[header_kind])  # image, video, document or gif
    return None


# The button WhatsApp draws under each kind of interactive message that has no buttons list.
_IMPLIED_BUTTONS = {
    "location_request_message": Button("location", "Send location"),
    "catalog_message": Button("catalog", "View catalog"),
    "product_list": Button("catalog", "View items"),
}


def _interactive_buttons(kind: str, action: dict[str, Any]) -> tuple[Button, ...]:
    buttons = [
        Button("reply", str(reply.get("title", "")), reply_id=str(reply.get("id", "")))
        for reply in ((b.get("reply") or {}) for b in action.get("buttons") or [])
    ]
    parameters = action.get("parameters") or {}
    if kind == "list" and action.get("button"):
        buttons.append(Button("list", str(action["button"])))
    elif kind == "cta_url":
        label = str(parameters.get("display_text", ""))
        buttons.append(Button("url", label, url=str(parameters.get("url", ""))))
    elif kind == "flow":
        buttons.append(Button("flow", str(parameters.get("flow_cta", "Open"))))
    elif kind in _IMPLIED_BUTTONS:
        buttons.append(_IMPLIED_BUTTONS[kind])
    return tuple(buttons)


def _section(section: dict[str, Any]) -> Section:
    rows = tuple(
        ListRow(str(row.get("id")), str(row.get("title", "")), str(row.get("description") or ""))
        for row in section.get("rows") or []
    )
    return Section(str(section.get("title", "")), rows)


def _location(kind: str, content: Any) -> Location:
    content = content or {}
    coordinates = f"{content.get('latitude')}, {content.get('longitude')}"
    return Location(coordinates, str(content.get("name") or ""), str(content.get("address") or ""))


def _contacts(kind: str, content: Any) -> Contacts:
    return Contacts(tuple(_contact(contact) for contact in content or []))


def _contact(contact: dict[str, Any]) -> Contact:
    org = contact.get("org") or {}
    return Contact(
        name=str((contact.get("name") or {}).get("formatted_name", "?")),
        work=" · ".join(str(org[k]) for k in ("title", "company") if org.get(k)),
        phones=tuple(str(p.get("phone", "")) for p in contact.get("phones") or []),
        emails=tuple(str(e.get("email", "")) for e in contact.get("emails") or []),
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


_DESCRIBERS: dict[str, Callable[[str, Any], Message]] = {
    "text": _text,
    "template": _template,
    "interactive": _interactive,
    "location": _location,
    "contacts": _contacts,
    **dict.fromkeys(MEDIA_KINDS, _media),
}
