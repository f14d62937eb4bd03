"""Preview: what each recipient would receive, as exact JSON bodies or as readable text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from runner.pipeline import Prepared


def jsonl_lines(items: Iterator[Prepared]) -> Iterator[str | Prepared]:
    """The exact request body of each sendable item, one JSON object per line.

    Items that cannot be sent are yielded as they are, for the caller to report.
    """
    for item in items:
        if item.body is None:
            yield item
        else:
            yield json.dumps(item.body, ensure_ascii=False, separators=(",", ":"))


def describe(body: dict[str, Any]) -> list[str]:
    """A few readable lines for one body: what the customer will see."""
    kind = body.get("type")
    content = body.get(kind) if isinstance(kind, str) else None
    describe_kind = _DESCRIBERS.get(kind, lambda c: [json.dumps(c, ensure_ascii=False)])
    return describe_kind(content)


def _text(content: dict) -> list[str]:
    return ["text: " + _indent(content.get("body", ""))]


def _media(kind: str):
    def lines(content: dict) -> list[str]:
        where = f"id {content['id']}" if content.get("id") else f"link {content.get('link')}"
        out = [f"{kind}: {where}"]
        if content.get("filename"):
            out.append(f"  filename: {content['filename']}")
        if content.get("caption"):
            out.append("  caption: " + _indent(content["caption"], 4))
        return out

    return lines


def _template(content: dict) -> list[str]:
    language = (content.get("language") or {}).get("code", "?")
    out = [f"template: {content.get('name')} ({language})"]
    for component in content.get("components") or []:
        kind = str(component.get("type", "")).lower()
        label = kind
        if kind == "button":
            label = f"button {component.get('index')} {str(component.get('sub_type', '')).lower()}"
        values = [_parameter(p) for p in component.get("parameters") or []]
        out.append(f"  {label}: " + " | ".join(values))
    return out


def _parameter(parameter: dict) -> str:
    kind = parameter.get("type")
    value = parameter.get(kind)
    if isinstance(value, dict):
        value = value.get("fallback_value") or value.get("link") or value.get("id") or json.dumps(value)
    return str(value)


def _interactive(content: dict) -> list[str]:
    out = [f"interactive {content.get('type')}"]
    header = content.get("header") or {}
    if header.get("text"):
        out.append(f"  header: {header['text']}")
    if (content.get("body") or {}).get("text"):
        out.append("  body: " + _indent(content["body"]["text"], 4))
    if (content.get("footer") or {}).get("text"):
        out.append(f"  footer: {content['footer']['text']}")
    action = content.get("action") or {}
    for button in action.get("buttons") or []:
        reply = button.get("reply") or {}
        out.append(f"  [ {reply.get('title')} ]  (id {reply.get('id')})")
    if action.get("button"):
        out.append(f"  list button: [ {action['button']} ]")
    for section in action.get("sections") or []:
        out.append(f"  section: {section.get('title', '')}")
        for row in section.get("rows") or []:
            out.append(f"    - {row.get('title')}  (id {row.get('id')})")
    parameters = action.get("parameters") or {}
    if parameters.get("display_text"):
        out.append(f"  [ {parameters['display_text']} ] -> {parameters.get('url')}")
    return out


def _location(content: dict) -> list[str]:
    out = [f"location: {content.get('latitude')}, {content.get('longitude')}"]
    for key in ("name", "address"):
        if content.get(key):
            out.append(f"  {key}: {content[key]}")
    return out


def _contacts(content: list) -> list[str]:
    out = []
    for contact in content or []:
        name = (contact.get("name") or {}).get("formatted_name", "?")
        phones = ", ".join(p.get("phone", "") for p in contact.get("phones") or [])
        out.append(f"contact card: {name}" + (f" ({phones})" if phones else ""))
    return out


def _indent(text: str, spaces: int = 2) -> str:
    return text.replace("\n", "\n" + " " * spaces)


_DESCRIBERS = {
    "text": _text,
    "template": _template,
    "interactive": _interactive,
    "location": _location,
    "contacts": _contacts,
    **{kind: _media(kind) for kind in ("image", "audio", "video", "document", "sticker")},
}
