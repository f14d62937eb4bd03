"""Preview: what each recipient would receive, as exact JSON bodies or as readable text.

A preview first summarises every row of the CSV (counts per status and the rows that would
not be sent), then streams the rows it shows: all, the first N, or N spread over the file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from campaign_runner import prepare as pipeline
from campaign_runner.prepare import PreparedRow as Prepared

READY = "ready"
MAX_LISTED = 1000  # rows listed as not sendable; the rest are counted, to keep memory flat


@dataclass(frozen=True)
class Unsendable:
    """A row that would not be sent, and why."""

    row: int
    phone: str
    status: str
    error: str


@dataclass
class Summary:
    """What a preview says above the messages: totals per status and the rows that would not go."""

    campaign: str
    recipients_file: str
    total: int = 0
    counts: Counter = field(default_factory=Counter)
    unsendable: list[Unsendable] = field(default_factory=list)
    unlisted: int = 0
    warnings: list[str] = field(default_factory=list)
    shown: str = "every recipient"

    @property
    def invalid(self) -> int:
        return self.counts["invalid"]


def summarise(items: Iterable[Prepared], campaign: str, recipients_file: str) -> Summary:
    """Count ITEMS per status (`ready` when sendable) and list the ones that would not be sent."""
    summary = Summary(campaign, recipients_file)
    for item in items:
        summary.total += 1
        summary.counts[READY if item.body is not None else item.status] += 1
        if item.body is None:
            if len(summary.unsendable) < MAX_LISTED:
                reason = Unsendable(item.row, item.phone, item.status, item.error or "")
                summary.unsendable.append(reason)
            else:
                summary.unlisted += 1
    return summary


def summarise_source(source: pipeline.RecipientSource) -> Summary:
    """Prepare every row of SOURCE once and summarise it (bodies are not kept); closes SOURCE."""
    summary = summarise(pipeline.prepare(source), source.campaign.name, str(source.table.path))
    summary.warnings = list(source.warnings)
    return summary


def sample_evenly(total: int, count: int) -> list[int]:
    """COUNT row positions (0-based) spread evenly from the first to the last of TOTAL rows."""
    if count >= total:
        return list(range(total))
    if count <= 1:
        return [0] if count == 1 else []
    return [i * (total - 1) // (count - 1) for i in range(count)]


def pick(items: Iterable[Prepared], positions: Sequence[int]) -> Iterator[Prepared]:
    """Only the items whose `seq` is in POSITIONS (sorted), stopping after the last one."""
    wanted = iter(positions)
    target = next(wanted, None)
    for item in items:
        if target is None:
            return
        if item.seq == target:
            yield item
            target = next(wanted, None)


def shown_rows(
    source: pipeline.RecipientSource,
    limit: int | None = None,
    sample: int | None = None,
    total: int | None = None,
) -> Iterator[Prepared]:
    """The rows a preview shows, streamed: all, the first LIMIT, or SAMPLE of those spread evenly.

    TOTAL is the number of rows when already known; otherwise a sample counts them first.
    """
    if not sample:
        return pipeline.prepare(source, limit)
    if total is None:
        total = pipeline.count_rows(source.campaign, source.table.path)
    positions = sample_evenly(min(total, limit or total), sample)
    stop = positions[-1] + 1 if positions else 0
    return pick(pipeline.prepare(source, stop), positions)


def describe_selection(total: int, limit: int | None, sample: int | None) -> str:
    """Which recipients a preview shows, in words."""
    considered = min(total, limit) if limit else total
    if sample and sample < considered:
        where = f"the first {considered}" if considered < total else "the file"
        return f"a sample of {sample}, spread over {where}"
    if considered < total:
        return f"the first {considered}"
    return "every recipient"


# ---- text --------------------------------------------------------------------------------

# Roles tag text lines so a terminal can colour them; the CLI maps roles to colours.
TITLE, GOOD, BAD, NOTE, HEAD = "title", "good", "bad", "note", "head"


def status_role(status: str) -> str:
    """The colour role of a status: ready is good, invalid bad, duplicate or excluded a note."""
    return GOOD if status == READY else (BAD if status == "invalid" else NOTE)


def summary_lines(summary: Summary) -> Iterator[tuple[str, str | None]]:
    """The preview's header as (text, role) lines: campaign, counts per status, unsendable rows."""
    where = summary.recipients_file
    yield f"campaign {summary.campaign}: {summary.total} recipient(s) in {where}", TITLE
    for status, count in sorted(summary.counts.items(), key=lambda kv: (kv[0] != READY, kv[0])):
        yield f"  {status}: {count}", status_role(status)
    if summary.unsendable:
        yield f"would not be sent ({summary.total - summary.counts[READY]}):", BAD
        for row in summary.unsendable:
            phone = row.phone or "(no phone)"
            yield f"  row {row.row} {phone}: {row.status}: {row.error}", status_role(row.status)
        if summary.unlisted:
            yield f"  ... and {summary.unlisted} more (campaign validate lists them all)", BAD
    yield f"showing {summary.shown}", None
    yield "", None


def text_lines(summary: Summary, items: Iterable[Prepared]) -> Iterator[tuple[str, str | None]]:
    """The whole text preview as (text, role) lines: the header, then each shown recipient."""
    yield from summary_lines(summary)
    for item in items:
        head = f"row {item.row} -> {item.phone}"
        if item.body is None:
            yield f"{head}: {item.status.upper()}: {item.error}", status_role(item.status)
            yield "", None
            continue
        yield head, HEAD
        for line in describe(item.body):
            yield "  " + line, None
        yield "", None


# ---- jsonl -------------------------------------------------------------------------------


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
        value = (
            value.get("fallback_value") or value.get("link") or value.get("id") or json.dumps(value)
        )
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
