"""HTML preview: each shown recipient's message as a WhatsApp chat bubble, in one page.

Every value from the campaign or the CSV goes through `html.escape` first; WhatsApp's
formatting (*bold*, _italic_, ~strike~, ```mono```) becomes tags only after that, so a CSV
value is only ever shown as text. The page loads nothing: CSS and icons are inline, and its
Content-Security-Policy forbids scripts and any request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from html import escape
from pathlib import Path
from typing import Any

import phonenumbers

from campaign_runner.prepare import PreparedRow as Prepared
from campaign_runner.preview import READY, Summary

_MONO = re.compile(r"```(.+?)```", re.DOTALL)
# WhatsApp styles a span only when the marker hugs a word: `*bold*` but not `2 * 3 * 4`.
_STYLES = [
    (re.compile(rf"(?<![\w{m}]){m}(?=\S)([^\n]*?\S){m}(?![\w{m}])"), tag)
    for m, tag in ((re.escape("*"), "strong"), (re.escape("_"), "em"), (re.escape("~"), "s"))
]
_NAME_COLUMNS = ("name", "nome", "first_name", "firstname", "full_name", "customer", "cliente")


def whatsapp_markup(text: Any) -> str:
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


def render_page(summary: Summary, items: Iterable[Prepared]) -> str:
    """The whole preview page as one HTML string."""
    return "".join(page(summary, items))


def write_page(path: Path, summary: Summary, items: Iterable[Prepared]) -> int:
    """Stream the preview page into PATH; return how many recipients it shows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shown = 0
    with open(path, "w", encoding="utf-8") as handle:
        for chunk in page(summary, items):
            shown += chunk.startswith("<article")
            handle.write(chunk)
    return shown


def page(summary: Summary, items: Iterable[Prepared]) -> Iterator[str]:
    """The preview page in chunks: head, summary, one chunk per recipient, end."""
    title = escape(f"{summary.campaign}: WhatsApp preview")
    yield (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>\n"
    )
    yield _summary(summary)
    yield '<main class="chats">\n'
    for item in items:
        yield chat(item)
    yield "</main></body></html>\n"


# ---- summary -----------------------------------------------------------------------------


def _summary(summary: Summary) -> str:
    counts = "".join(
        f'<li class="count {_status_class(status)}"><span>{escape(status)}</span> '
        f"<b>{count}</b></li>"
        for status, count in sorted(summary.counts.items(), key=lambda kv: (kv[0] != READY, kv[0]))
    )
    out = [
        '<header class="summary">',
        f"<h1>{escape(summary.campaign)}</h1>",
        f'<p class="facts"><b class="total">{summary.total}</b> recipient(s) in '
        f"<code>{escape(summary.recipients_file)}</code>; showing {escape(summary.shown)}</p>",
        f'<ul class="counts">{counts}</ul>',
    ]
    if summary.warnings:
        out.append(
            '<ul class="warnings">'
            + "".join(f"<li>warning: {escape(w)}</li>" for w in summary.warnings)
            + "</ul>"
        )
    not_ready = summary.total - summary.counts[READY]
    if not_ready:
        rows = "".join(
            f'<tr class="{_status_class(u.status)}"><td>{u.row}</td><td>{escape(u.phone)}</td>'
            f"<td>{escape(u.status)}</td><td>{escape(u.error)}</td></tr>"
            for u in summary.unsendable
        )
        if summary.unlisted:
            rows += (
                f'<tr><td colspan="4">... and {summary.unlisted} more '
                "(<code>campaign validate</code> lists them all)</td></tr>"
            )
        out.append(
            f'<section class="unsendable"><h2>Would not be sent ({not_ready})</h2>'
            "<table><thead><tr><th>row</th><th>phone</th><th>status</th><th>reason</th></tr>"
            f"</thead><tbody>{rows}</tbody></table></section>"
        )
    else:
        out.append('<p class="all-ready">Every recipient is ready to send.</p>')
    out.append("</header>\n")
    return "".join(out)


def _status_class(status: str) -> str:
    return "good" if status == READY else ("bad" if status == "invalid" else "note")


# ---- one chat ----------------------------------------------------------------------------


def chat(item: Prepared) -> str:
    """One recipient as a phone-style chat: a top bar with who it is, then the message."""
    name = recipient_name(item.values)
    shown_phone = _pretty_phone(item.phone)
    initial = escape((name or "?")[:1].upper())
    status = READY if item.body is not None else (item.status or "invalid")
    bar = (
        f'<header class="bar"><span class="avatar">{initial}</span><span class="who">'
        f'<b class="name">{escape(name or shown_phone or "(no phone)")}</b>'
        f"<small>{escape(shown_phone)} &middot; row {item.row}</small></span></header>"
    )
    if item.body is None:
        inner = (
            f'<div class="notice {_status_class(status)}"><b>Not sent: {escape(status)}</b>'
            f"<br>{escape(item.error or '')}</div>"
        )
    else:
        inner = message(item.body)
    return (
        f'<article class="chat" data-row="{item.row}" data-status="{escape(status)}">'
        f'{bar}<div class="wall">{inner}</div></article>\n'
    )


def recipient_name(values: dict[str, str]) -> str:
    """The recipient's name from a name-like CSV column (`name`, `nome`, ...), or ''."""
    lowered = {key.lower(): value for key, value in values.items()}
    for column in _NAME_COLUMNS:
        if (lowered.get(column) or "").strip():
            return lowered[column].strip()
    return ""


def _pretty_phone(phone: str) -> str:
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return phone
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def message(body: dict[str, Any]) -> str:
    """One rendered body as WhatsApp shows it: a bubble and the buttons under it."""
    kind = body.get("type")
    content = body.get(kind) if isinstance(kind, str) else None
    draw = _DRAWERS.get(kind, _unknown)
    bubble, below = draw(content)
    plain = " plain" if kind == "sticker" else ""
    return (
        f'<div class="msg" data-type="{escape(str(kind))}"><div class="bubble{plain}">'
        f"{bubble}</div>{below}</div>"
    )


def _button(kind: str, label: str, detail: str = "") -> str:
    extra = f'<small class="btn-detail">{escape(detail)}</small>' if detail else ""
    return (
        f'<div class="wa-btn" data-kind="{escape(kind)}">{_ICONS.get(kind, "")}'
        f'<span class="btn-label">{escape(label)}</span>{extra}</div>'
    )


def _buttons(buttons: list[str]) -> str:
    return f'<div class="buttons">{"".join(buttons)}</div>' if buttons else ""


def _text_block(text: Any, css: str = "text") -> str:
    return f'<div class="{css}">{whatsapp_markup(text)}</div>'


# ---- message types -----------------------------------------------------------------------


def _text(content: dict) -> tuple[str, str]:
    return _text_block(content.get("body", "")), ""


def _media_box(kind: str, content: dict) -> str:
    if content.get("link"):
        source = f'link <span class="src">{escape(str(content["link"]))}</span>'
    else:
        source = f'id <span class="src">{escape(str(content.get("id", "?")))}</span>'
    label = kind.upper() + (" (voice note)" if kind == "audio" and content.get("voice") else "")
    return (
        f'<div class="media {escape(kind)}">{_ICONS.get(kind, "")}'
        f'<span class="media-label">{escape(label)}</span>'
        f'<span class="media-src">{source}</span></div>'
    )


def _media(kind: str):
    def draw(content: dict) -> tuple[str, str]:
        content = content or {}
        out = [_media_box(kind, content)]
        if content.get("filename"):
            out.append(
                f'<div class="filename">{_ICONS["document"]}'
                f"{escape(str(content['filename']))}</div>"
            )
        if content.get("caption"):
            out.append(_text_block(content["caption"], "text caption"))
        return "".join(out), ""

    return draw


def _template(content: dict) -> tuple[str, str]:
    content = content or {}
    language = (content.get("language") or {}).get("code", "?")
    out = [
        '<div class="tpl"><span class="tpl-label">template</span>',
        f'<b class="tpl-name">{escape(str(content.get("name", "?")))}</b>',
        f'<span class="tpl-lang">{escape(str(language))}</span></div>',
    ]
    buttons = []
    for component in content.get("components") or []:
        kind = str(component.get("type", "")).lower()
        parameters = component.get("parameters") or []
        if kind == "button":
            sub_type = str(component.get("sub_type", "")).lower()
            values = ", ".join(_parameter_text(p) for p in parameters)
            label = {
                "url": "URL button",
                "quick_reply": "Quick reply",
                "copy_code": "Copy code",
            }.get(sub_type, f"{sub_type} button")
            buttons.append(
                _button(
                    sub_type or "button", f"{label} {component.get('index', '')}".strip(), values
                )
            )
            continue
        if kind in ("header", "body"):
            rows = "".join(
                f"<dt>{escape(kind)} {escape(_placeholder(p, n))}</dt><dd>{_parameter_html(p)}</dd>"
                for n, p in enumerate(parameters, start=1)
            )
            out.append(f'<dl class="params">{rows}</dl>' if rows else "")
        else:
            shown = escape(json.dumps(component, ensure_ascii=False))
            out.append(f'<div class="component"><b>{escape(kind)}</b> <code>{shown}</code></div>')
    return "".join(out), _buttons(buttons)


def _placeholder(parameter: dict, number: int) -> str:
    name = parameter.get("parameter_name")
    return "{{" + str(name or number) + "}}"


def _parameter_text(parameter: dict) -> str:
    kind = parameter.get("type")
    value = parameter.get(kind)
    if isinstance(value, dict):
        value = (
            value.get("fallback_value")
            or value.get("link")
            or value.get("id")
            or json.dumps(value, ensure_ascii=False)
        )
    return str(value)


def _parameter_html(parameter: dict) -> str:
    kind = str(parameter.get("type", ""))
    if kind in ("image", "video", "document") and isinstance(parameter.get(kind), dict):
        return _media_box(kind, parameter[kind])
    return escape(_parameter_text(parameter))


def _interactive(content: dict) -> tuple[str, str]:
    content = content or {}
    kind = content.get("type")
    out = []
    header = content.get("header") or {}
    header_kind = header.get("type")
    if header_kind == "text":
        out.append(_text_block(header.get("text", ""), "header"))
    elif isinstance(header.get(header_kind), dict):  # image, video, document or gif
        out.append(_media_box(header_kind, header[header_kind]))
    if (content.get("body") or {}).get("text"):
        out.append(_text_block(content["body"]["text"]))
    if (content.get("footer") or {}).get("text"):
        out.append(_text_block(content["footer"]["text"], "footer"))
    action = content.get("action") or {}
    buttons, sheet = [], ""
    for button in action.get("buttons") or []:
        reply = button.get("reply") or {}
        buttons.append(_button("reply", str(reply.get("title", "")), ""))
    if kind == "list" and action.get("button"):
        buttons.append(_button("list", str(action["button"])))
        sheet = _list_sheet(action.get("sections") or [])
    parameters = action.get("parameters") or {}
    if kind == "cta_url":
        buttons.append(
            _button("url", str(parameters.get("display_text", "")), str(parameters.get("url", "")))
        )
    elif kind == "flow":
        buttons.append(_button("flow", str(parameters.get("flow_cta", "Open"))))
    elif kind == "location_request_message":
        buttons.append(_button("location", "Send location"))
    elif kind == "catalog_message":
        buttons.append(_button("catalog", "View catalog"))
    elif kind == "product_list":
        buttons.append(_button("catalog", "View items"))
    elif kind == "product":
        out.append(
            f'<div class="component">product '
            f"<code>{escape(str(action.get('product_retailer_id', '')))}</code></div>"
        )
    return "".join(out), _buttons(buttons) + sheet


def _list_sheet(sections: list) -> str:
    out = ['<div class="sheet">']
    for section in sections:
        out.append(f'<div class="section-title">{escape(str(section.get("title", "")))}</div>')
        for row in section.get("rows") or []:
            description = row.get("description")
            detail = f"<small>{escape(str(description))}</small>" if description else ""
            out.append(
                f'<div class="wa-row"><span><b>{escape(str(row.get("title", "")))}</b>'
                f'{detail}</span><i class="radio"></i></div>'
            )
    out.append("</div>")
    return "".join(out)


def _location(content: dict) -> tuple[str, str]:
    content = content or {}
    place = []
    if content.get("name"):
        place.append(f"<b>{escape(str(content['name']))}</b>")
    if content.get("address"):
        place.append(f"<span>{escape(str(content['address']))}</span>")
    coordinates = f"{content.get('latitude')}, {content.get('longitude')}"
    place.append(f'<small class="coords">{escape(coordinates)}</small>')
    return (f'<div class="map">{_ICONS["pin"]}</div><div class="place">{"".join(place)}</div>'), ""


def _contacts(content: list) -> tuple[str, str]:
    cards = []
    for contact in content or []:
        name = (contact.get("name") or {}).get("formatted_name", "?")
        org = contact.get("org") or {}
        work = " · ".join(str(org[k]) for k in ("title", "company") if org.get(k))
        lines = [f"<span>{escape(work)}</span>"] if work else []
        lines += [
            f"<span>{_ICONS['phone']}{escape(str(p.get('phone', '')))}</span>"
            for p in contact.get("phones") or []
        ]
        lines += [
            f"<span>{_ICONS['mail']}{escape(str(e.get('email', '')))}</span>"
            for e in contact.get("emails") or []
        ]
        cards.append(
            f'<div class="contact">'
            f'<span class="avatar small">{escape(str(name)[:1].upper())}</span>'
            f'<div class="contact-lines"><b>{escape(str(name))}</b>{"".join(lines)}</div></div>'
        )
    return "".join(cards), ""


def _unknown(content: Any) -> tuple[str, str]:
    return f"<code>{escape(json.dumps(content, ensure_ascii=False))}</code>", ""


_DRAWERS = {
    "text": _text,
    "template": _template,
    "interactive": _interactive,
    "location": _location,
    "contacts": _contacts,
    **{kind: _media(kind) for kind in ("image", "audio", "video", "document", "sticker")},
}


def _svg(path: str) -> str:
    return (
        f'<svg class="icon" viewBox="0 0 24 24" aria-hidden="true">'
        f'<path fill="currentColor" d="{path}"/></svg>'
    )


_ICONS = {
    "reply": _svg("M10 9V5l-7 7 7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11z"),
    "quick_reply": _svg("M10 9V5l-7 7 7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11z"),
    "url": _svg(
        "M14 3v2h3.6l-9.8 9.8 1.4 1.4L19 6.4V10h2V3h-7zm5 16H5V5h7V3H5a2 2 0 0 0-2 "
        "2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2v-7h-2v7z"
    ),
    "list": _svg(
        "M3 13h2v-2H3v2zm0 4h2v-2H3v2zm0-8h2V7H3v2zm4 4h14v-2H7v2zm0 4h14v-2H7v2zM7 7v2h14V7H7z"
    ),
    "copy_code": _svg(
        "M16 1H4a2 2 0 0 0-2 2v14h2V3h12V1zm3 4H8a2 2 0 0 0-2 2v14a2 2 0 0 0 2 "
        "2h11a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2zm0 16H8V7h11v14z"
    ),
    "image": _svg(
        "M21 19V5a2 2 0 0 0-2-2H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 "
        "2-2zM8.5 13.5l2.5 3 3.5-4.5 4.5 6H5l3.5-4.5z"
    ),
    "gif": _svg(
        "M21 19V5a2 2 0 0 0-2-2H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 "
        "2-2zM8.5 13.5l2.5 3 3.5-4.5 4.5 6H5l3.5-4.5z"
    ),
    "sticker": _svg(
        "M12 2a10 10 0 1 0 10 10A10 10 0 0 0 12 2zm-3.5 6A1.5 1.5 0 1 1 7 9.5 1.5 "
        "1.5 0 0 1 8.5 8zm7 0A1.5 1.5 0 1 1 14 9.5 1.5 1.5 0 0 1 15.5 8zM12 18a6 6 0 "
        "0 1-5.2-3h10.4A6 6 0 0 1 12 18z"
    ),
    "video": _svg(
        "M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 "
        "1-1v-3.5l4 4v-11l-4 4z"
    ),
    "audio": _svg(
        "M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5.3-3a5.3 5.3 0 0 "
        "1-10.6 0H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 6-6.9h-1.7z"
    ),
    "document": _svg(
        "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8l-6-6zm-1 7V3.5L18.5 9H13z"
    ),
    "pin": _svg(
        "M12 2a7 7 0 0 0-7 7c0 5.2 7 13 7 13s7-7.8 7-13a7 7 0 0 0-7-7zm0 9.5A2.5 2.5 0 "
        "1 1 14.5 9 2.5 2.5 0 0 1 12 11.5z"
    ),
    "location": _svg(
        "M12 2a7 7 0 0 0-7 7c0 5.2 7 13 7 13s7-7.8 7-13a7 7 0 0 0-7-7zm0 9.5A2.5 "
        "2.5 0 1 1 14.5 9 2.5 2.5 0 0 1 12 11.5z"
    ),
    "phone": _svg(
        "M6.6 10.8a15 15 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.2 11.4 11.4 0 0 0 3.6.6 1 "
        "1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1 "
        "11.4 11.4 0 0 0 .6 3.6 1 1 0 0 1-.3 1z"
    ),
    "mail": _svg(
        "M20 4H4a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V6a2 2 0 0 0-2-2zm0 "
        "4-8 5-8-5V6l8 5 8-5v2z"
    ),
}

_CSS = """
*{box-sizing:border-box}
body{margin:0;padding:24px;background:#d1d7db;color:#111b21;
 font:14.2px/1.4 "Segoe UI",Helvetica,Arial,"Liberation Sans","DejaVu Sans",sans-serif}
.summary{background:#fff;border-radius:12px;padding:16px 20px;margin:0 auto 24px;max-width:1180px;
 box-shadow:0 1px 3px rgba(11,20,26,.15)}
.summary h1{margin:0 0 4px;font-size:22px;color:#008069}
.summary .facts{margin:0 0 10px;color:#54656f}
.counts{list-style:none;display:flex;flex-wrap:wrap;gap:8px;margin:0 0 8px;padding:0}
.count{border-radius:999px;padding:3px 12px;background:#e9edef}
.count.good{background:#d9fdd3;color:#0a5c36}.count.bad{background:#ffe1e1;color:#a0161b}
.count.note{background:#fff3c4;color:#6b5300}
.warnings{color:#6b5300;margin:6px 0;padding-left:20px}
.unsendable h2{font-size:15px;margin:12px 0 6px;color:#a0161b}
.unsendable table{border-collapse:collapse;width:100%;font-size:13px}
.unsendable th,.unsendable td{text-align:left;padding:4px 8px;border-bottom:1px solid #e9edef;
 vertical-align:top;overflow-wrap:anywhere}
.unsendable tr.bad td:nth-child(3){color:#a0161b;font-weight:600}
.unsendable tr.note td:nth-child(3){color:#6b5300;font-weight:600}
.all-ready{color:#0a5c36;margin:6px 0 0}
.chats{display:flex;flex-wrap:wrap;gap:24px;justify-content:center;max-width:1180px;margin:0 auto}
.chat{width:360px;min-height:300px;border:10px solid #111b21;border-radius:28px;overflow:hidden;
 background:#efeae2;display:flex;flex-direction:column;box-shadow:0 4px 14px rgba(0,0,0,.25)}
.bar{background:#008069;color:#fff;display:flex;align-items:center;gap:10px;padding:10px 12px}
.avatar{flex:none;width:38px;height:38px;border-radius:50%;background:#dfe5e7;color:#54656f;
 display:flex;align-items:center;justify-content:center;font-weight:700;font-size:17px}
.avatar.small{width:32px;height:32px;font-size:14px}
.who{display:flex;flex-direction:column;min-width:0}
.who .name{font-size:16px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.who small{opacity:.85;font-size:12.5px}
.wall{flex:1;padding:14px 12px 18px;
 background-color:#efeae2;
 background-image:radial-gradient(rgba(0,0,0,.035) 1px,transparent 1px);background-size:14px 14px}
.msg{display:flex;flex-direction:column;max-width:88%;min-width:62%;width:fit-content}
.bubble{position:relative;background:#fff;border-radius:0 7.5px 7.5px 7.5px;padding:6px 8px 8px 9px;
 box-shadow:0 1px .5px rgba(11,20,26,.13);overflow-wrap:anywhere}
.bubble:before{content:"";position:absolute;top:0;left:-8px;border-top:0 solid transparent;
 border-right:8px solid #fff;border-bottom:10px solid transparent}
.bubble.plain{background:transparent;box-shadow:none}.bubble.plain:before{display:none}
.text{white-space:pre-wrap}
.text code,.header code,.footer code{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;
 font-size:13px}
.header{font-weight:700;white-space:pre-wrap;margin-bottom:4px}
.footer{color:#667781;font-size:13px;white-space:pre-wrap;margin-top:4px}
.caption{margin-top:6px}
.buttons{display:flex;flex-direction:column;gap:2px;margin-top:2px}
.wa-btn{background:#fff;border-radius:7.5px;color:#027eb5;text-align:center;padding:8px 10px;
 box-shadow:0 1px .5px rgba(11,20,26,.13);display:flex;flex-wrap:wrap;align-items:center;
 justify-content:center;gap:6px;font-weight:500}
.btn-detail{flex-basis:100%;color:#667781;font-size:12px;font-weight:400;overflow-wrap:anywhere}
.icon{width:17px;height:17px;flex:none;vertical-align:-3px}
.sheet{margin-top:8px;background:#fff;border-radius:10px;padding:6px 0;
 box-shadow:0 1px .5px rgba(11,20,26,.13)}
.section-title{color:#008069;font-size:13px;padding:6px 14px 2px;font-weight:600}
.wa-row{display:flex;justify-content:space-between;align-items:center;gap:10px;padding:7px 14px}
.wa-row span{display:flex;flex-direction:column}.wa-row small{color:#667781}
.wa-row b{font-weight:500}
.radio{flex:none;width:18px;height:18px;border:2px solid #8696a0;border-radius:50%}
.tpl{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px;padding-bottom:6px;
 border-bottom:1px solid #e9edef;margin-bottom:6px}
.tpl-label{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:#fff;
 background:#008069;border-radius:4px;padding:1px 6px}
.tpl-name{overflow-wrap:anywhere}.tpl-lang{color:#667781;font-size:12.5px}
.params{margin:0;display:grid;grid-template-columns:auto 1fr;gap:3px 10px}
.params dt{color:#667781;font-size:12.5px}.params dd{margin:0;white-space:pre-wrap}
.component{font-size:12.5px;color:#54656f;margin-top:4px;overflow-wrap:anywhere}
.media{display:flex;flex-direction:column;align-items:center;justify-content:center;gap:4px;
 min-height:150px;border-radius:6px;background:#cfd8dc;color:#54656f;padding:10px;text-align:center}
.media .icon{width:42px;height:42px}
.media.audio,.media.document{min-height:0;flex-direction:row;flex-wrap:wrap;justify-content:flex-start;
 background:#f0f2f5;text-align:left}
.media.audio .icon,.media.document .icon{width:28px;height:28px}
.media.sticker{width:150px;height:150px;min-height:0;border-radius:18px;background:#fff3c4}
.media-label{font-weight:700;letter-spacing:.05em}
.media-src{font-size:12px;overflow-wrap:anywhere}
.media-src .src{font-family:"DejaVu Sans Mono",monospace}
.filename{display:flex;align-items:center;gap:6px;margin-top:6px;font-weight:600;overflow-wrap:anywhere}
.map{height:120px;border-radius:6px;display:flex;align-items:center;justify-content:center;color:#d93025;
 background:linear-gradient(135deg,#e8f0d8 25%,#f6f1e4 25% 50%,#e8f0d8 50% 75%,#f6f1e4 75%);
 background-size:40px 40px}
.map .icon{width:40px;height:40px}
.place{display:flex;flex-direction:column;margin-top:6px}.place span{color:#54656f}
.coords{color:#667781;font-family:"DejaVu Sans Mono",monospace}
.contact{display:flex;gap:10px;align-items:flex-start;padding:4px 0}
.contact+.contact{border-top:1px solid #e9edef;padding-top:8px;margin-top:4px}
.contact-lines{display:flex;flex-direction:column;min-width:0;overflow-wrap:anywhere}
.contact-lines span{color:#54656f;font-size:13px}
.notice{background:#ffe1e1;color:#a0161b;border-radius:7.5px;padding:8px 10px;font-size:13px;
 overflow-wrap:anywhere}
.notice.note{background:#fff3c4;color:#6b5300}
"""
