"""The approved template's text (`preview:` in a campaign), for previews only, never sent.

A template message names an approved template and gives the values for its slots; the
sentence the customer reads is built by Meta from the text approved in WhatsApp Manager.
A campaign may carry that text:

    preview:
      template_text: "Olá {{1}}, seu carrinho espera por você!"   # the body, as approved
      header_text: "Seu carrinho"                                  # optional: a text header

so that `campaign preview` shows the filled sentence. The text must agree with the message:
a slot with no value, a value with no slot, numbered slots against named parameters. Meta
would refuse such a message (132000) or send another sentence than the one previewed, so
`check` makes each disagreement a located error when the campaign loads (validate, preview
and run alike): the file is fixed before anything is sent.

Slots are Meta's: numbered `{{1}}`, `{{2}}`... in order (parameter_format POSITIONAL), or
named `{{first_name}}` (NAMED, matched with each parameter's `parameter_name`), never both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from campaign_runner.errors import Problem
from campaign_runner.schemas import ordinal
from campaign_runner.suggest import did_you_mean
from campaign_runner.yaml_source import SourceMap

# Meta's limits on a template's text (docs: whatsapp-limits.md §8 and §9): the body holds
# 1,024 characters when the template has other parts (a header, buttons), 32,768 when the
# body is all there is; a text header holds 60 and at most one slot.
BODY_LIMIT = 1024
BODY_ONLY_LIMIT = 32768
HEADER_LIMIT = 60
HEADER_SLOTS = 1

# `{{ ... }}` on one line, as written, so a slot that is not Meta's (`{{ 1 }}`, `{{Name}}`)
# is reported; a `{{` this does not match is a slot never closed.
_BRACES = re.compile(r"\{\{([^{}\n]*)\}\}")
_NUMBERED = re.compile(r"[1-9][0-9]*")
_NAMED = re.compile(r"[a-z_][a-z0-9_]*")
# YAML's line breaks (PyYAML counts lines on these), to turn a position into line:column.
_YAML_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")

PART_KEYS = {"body": "template_text", "header": "header_text"}  # part -> key under preview:


@dataclass(frozen=True)
class Slot:
    """One `{{...}}` in the approved text: its key ("1" or "first_name") and where it starts."""

    key: str
    start: int

    @property
    def placeholder(self) -> str:
        """The slot as written: `{{1}}`."""
        return "{{" + self.key + "}}"

    @property
    def numbered(self) -> bool:
        """True for `{{1}}`, False for `{{first_name}}`."""
        return self.key.isdigit()


@dataclass(frozen=True)
class ApprovedPart:
    """The approved text of one part (body or header) and its slots."""

    text: str
    slots: tuple[Slot, ...]

    def fill(self, values: Mapping[str, str]) -> str:
        """The text with each slot replaced by VALUES[slot placeholder], in one pass, so a
        value that looks like a slot (`{{2}}` in a CSV cell) is shown as written."""
        return _BRACES.sub(lambda m: values.get(m.group(), m.group()), self.text)


@dataclass(frozen=True)
class ApprovedText:
    """The approved template's parts a campaign carries (`preview:`), by part name."""

    parts: Mapping[str, ApprovedPart]


def parse(preview: Mapping[str, Any] | None) -> ApprovedText | None:
    """The `preview:` section as an `ApprovedText` (checked first by `check`), or None."""
    if not preview:
        return None
    parts = {
        part: ApprovedPart(str(preview[key]), tuple(_slots(str(preview[key]))[0]))
        for part, key in PART_KEYS.items()
        if isinstance(preview.get(key), str)
    }
    return ApprovedText(parts)


# ---- checks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """Turns places in the campaign into located `Problem`s."""

    source: SourceMap
    file_text: str

    def at_path(self, path: tuple, message: str, at_key: bool = False) -> Problem:
        return self.source.problem(path, message, at_key=at_key)

    def in_text(self, key: str, text: str, offset: int, needle: str, message: str) -> Problem:
        """A problem at NEEDLE, found at OFFSET in the value of preview.KEY (TEXT): the
        line and column in the file, found by counting NEEDLE from where the value starts;
        the value's own start when the file writes it otherwise (escapes)."""
        fallback = self.at_path(("preview", key), message)
        if fallback.line is None or fallback.col is None:
            return fallback
        begin = _index_of(self.file_text, fallback.line, fallback.col)
        at = begin - 1
        for _ in range(text.count(needle, 0, offset) + 1):
            at = self.file_text.find(needle, at + 1)
            if at < 0:
                return fallback
        line, col = _line_col(self.file_text, at)
        return Problem(self.source.file, line, col, message)

    def at_slot(self, key: str, text: str, slot: Slot, message: str) -> Problem:
        """A problem at SLOT in the value of preview.KEY (TEXT)."""
        return self.in_text(key, text, slot.start, slot.placeholder, message)


def check(document: Mapping[str, Any], source: SourceMap, file_text: str) -> list[Problem]:
    """Every way the campaign's `preview:` texts disagree with its template message."""
    preview = document.get("preview")
    if not isinstance(preview, Mapping):
        return []
    where = _Where(source, file_text)
    message = document.get("message") or {}
    if message.get("type") != "template":
        return [
            where.at_path(
                ("preview",),
                f"preview: holds the approved text of a template message; this message's "
                f"type is {message.get('type')!r}, whose preview already shows what the "
                "customer reads: remove preview:",
                at_key=True,
            )
        ]
    components = (message.get("template") or {}).get("components") or []
    problems = []
    for part, key in PART_KEYS.items():
        if isinstance(preview.get(key), str):
            found = _component(components, part)
            others = any(_kind(c) != "body" for c in components)
            problems += _check_part(where, part, preview[key], found, others)
    return sorted(problems, key=lambda p: (p.line or 0, p.col or 0))


def _check_part(
    where: _Where,
    part: str,
    text: str,
    found: tuple[int, dict] | None,
    others: bool,
) -> list[Problem]:
    key = PART_KEYS[part]
    slots, mistakes = _slots(text)
    problems = [where.in_text(key, text, at, needle, msg) for at, needle, msg in mistakes]
    problems += _length(where, part, text, others)
    if problems:
        return problems
    problems = _slot_order(where, part, text, slots)
    if part == "header":
        problems += _header_kind(where, text, found)
    if problems:
        return problems
    parameters = (found[1].get("parameters") or []) if found else []
    path = ("message", "template", "components", found[0], "parameters") if found else ()
    if slots and not slots[0].numbered:
        return _named(where, part, text, slots, parameters, path)
    return _numbered(where, part, text, slots, parameters, path)


def _slots(text: str) -> tuple[list[Slot], list[tuple[int, str, str]]]:
    """The slots in TEXT, and (offset, text there, what is wrong) for each `{{` that is not one."""
    slots, problems = [], []
    for match in _BRACES.finditer(text):
        inside = match.group(1)
        if _NUMBERED.fullmatch(inside) or _NAMED.fullmatch(inside):
            slots.append(Slot(inside, match.start()))
        else:
            problems.append((match.start(), match.group(), _not_a_slot(match.group(), inside)))
    blanked = _BRACES.sub(lambda match: " " * len(match.group()), text)
    unclosed = blanked.find("{{")
    if unclosed >= 0:
        problems.append(
            (unclosed, "{{", "a slot opened with {{ is never closed: write it as {{1}}")
        )
    return slots, problems


def _not_a_slot(written: str, inside: str) -> str:
    plain = inside.strip()
    if _NUMBERED.fullmatch(plain) or _NAMED.fullmatch(plain):
        fix = "{{" + plain + "}}"
    elif plain.isdigit():
        fix = "{{" + str(int(plain) or 1) + "}}"
    elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", plain):
        fix = "{{" + plain.lower() + "}}"
    else:
        fix = "{{1}} or {{first_name}}"
    return (
        f"{_short(written)} is not a template slot: slots are numbered from {{{{1}}}} or "
        f"named in lower case, {{{{first_name}}}}, with no spaces; write {fix}"
    )


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _short(text: str, most: int = 40) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def _length(where: _Where, part: str, text: str, others: bool) -> list[Problem]:
    key = PART_KEYS[part]
    if part == "header":
        limit, why = HEADER_LIMIT, "a template's text header"
    elif others:
        limit, why = BODY_LIMIT, "the body of a template with a header or buttons"
    else:
        limit, why = BODY_ONLY_LIMIT, "the body of a template"
    if len(text) <= limit:
        return []
    return [
        where.at_path(
            ("preview", key),
            f"preview.{key} has {len(text):,} characters; {why} holds at most {limit:,}: "
            "copy the approved text from WhatsApp Manager again",
        )
    ]


def _slot_order(where: _Where, part: str, text: str, slots: list[Slot]) -> list[Problem]:
    """Numbered or named, never both; numbered ones go 1, 2, 3... with none missing."""
    key = PART_KEYS[part]
    numbered = [slot for slot in slots if slot.numbered]
    named = [slot for slot in slots if not slot.numbered]
    if numbered and named:
        odd = named[0] if slots[0].numbered else numbered[0]
        return [
            where.at_slot(
                key,
                text,
                odd,
                f"{odd.placeholder} mixes slot kinds: a template's slots are all numbered "
                f"({numbered[0].placeholder}) or all named ({named[0].placeholder}); "
                "copy the approved text again",
            )
        ]
    keys = {int(slot.key) for slot in numbered}
    problems = []
    if part == "header" and len({slot.key for slot in slots}) > HEADER_SLOTS:
        extra = next(s for s in slots if s.key != slots[0].key)
        problems.append(
            where.at_slot(
                key,
                text,
                extra,
                f"a template's text header has at most {HEADER_SLOTS} slot; "
                f"{extra.placeholder} is a second one",
            )
        )
    missing = [n for n in range(1, max(keys, default=0) + 1) if n not in keys]
    if missing:
        shown = ", ".join("{{" + str(n) + "}}" for n in missing)
        problems.append(
            where.at_path(
                ("preview", key),
                f"preview.{key} skips {shown}: a template numbers its slots 1, 2, 3... "
                "with none missing; copy the approved text again",
            )
        )
    return problems


def _header_kind(where: _Where, text: str, found: tuple[int, dict] | None) -> list[Problem]:
    """header_text only fits a text header: not an image, video, document or location."""
    for parameter in (found[1].get("parameters") or []) if found else []:
        kind = parameter.get("type") if isinstance(parameter, dict) else None
        if kind is not None and kind != "text":
            return [
                where.at_path(
                    ("preview", "header_text"),
                    f"the message's header is {_a(str(kind))}, and header_text is for a text "
                    "header: "
                    "remove header_text",
                )
            ]
    return []


def _numbered(
    where: _Where, part: str, text: str, slots: list[Slot], parameters: list, path: tuple
) -> list[Problem]:
    key = PART_KEYS[part]
    count = len({slot.key for slot in slots})
    problems = []
    for slot in slots:
        if int(slot.key) > len(parameters):
            problems.append(
                where.at_slot(
                    key,
                    text,
                    slot,
                    f"{slot.placeholder} has no value: {_given(part, parameters)}; add "
                    f"the {ordinal(int(slot.key))} parameter to the message's {part}, or copy "
                    "the approved text again",
                )
            )
    for number, parameter in enumerate(parameters, start=1):
        if isinstance(parameter, dict) and "parameter_name" in parameter:
            problems.append(
                where.at_path(
                    (*path, number - 1, "parameter_name"),
                    f"preview.{key} numbers its slots ({{{{1}}}}), so the {part}'s parameters "
                    "go by position: remove parameter_name, or copy the approved text, "
                    "with its named slots, again",
                    at_key=True,
                )
            )
        if number > count:
            problems.append(
                where.at_path(
                    (*path, number - 1),
                    f"the {part}'s {ordinal(number)} parameter has no slot in preview.{key}, "
                    f"{_has(slots)}: Meta would refuse the message (132000, wrong number of "
                    "parameters); remove the parameter, or copy the approved text again",
                )
            )
    return problems


def _named(
    where: _Where, part: str, text: str, slots: list[Slot], parameters: list, path: tuple
) -> list[Problem]:
    key = PART_KEYS[part]
    names = {slot.key for slot in slots}
    given: dict[str, int] = {}
    problems = []
    for at, parameter in enumerate(parameters):
        name = parameter.get("parameter_name") if isinstance(parameter, dict) else None
        here = (*path, at)
        if not isinstance(name, str):
            problems.append(
                where.at_path(
                    here,
                    f"the {part}'s {ordinal(at + 1)} parameter has no parameter_name, and "
                    f"preview.{key} names its slots ({_has(slots)}): add parameter_name",
                )
            )
        elif name in given:
            problems.append(
                where.at_path(
                    (*here, "parameter_name"),
                    f"parameter_name {name!r} is given twice in the message's {part}",
                )
            )
        elif name not in names:
            problems.append(
                where.at_path(
                    (*here, "parameter_name"),
                    f"no slot {{{{{name}}}}} in preview.{key}{did_you_mean(name, names)}; "
                    f"its slots are {_slot_list(slots)}",
                )
            )
        if isinstance(name, str):
            given.setdefault(name, at)
    for slot in _first_of_each(slots):
        if slot.key not in given:
            problems.append(
                where.at_slot(
                    key,
                    text,
                    slot,
                    f"{slot.placeholder} has no value: no parameter of the message's {part} "
                    f"has parameter_name: {slot.key}{did_you_mean(slot.key, given)}",
                )
            )
    return problems


def _first_of_each(slots: list[Slot]) -> Iterator[Slot]:
    seen = set()
    for slot in slots:
        if slot.key not in seen:
            seen.add(slot.key)
            yield slot


def _given(part: str, parameters: list) -> str:
    if not parameters:
        return f"the message gives no {part} parameters"
    return f"the message's {part} gives {len(parameters)} parameter(s)"


def _has(slots: list[Slot]) -> str:
    return f"which has {_slot_list(slots)}" if slots else "which has no slots"


def _slot_list(slots: list[Slot]) -> str:
    return ", ".join(slot.placeholder for slot in _first_of_each(slots)) or "none"


def _component(components: list, part: str) -> tuple[int, dict] | None:
    """The first component of kind PART (any case), with its index."""
    for index, component in enumerate(components):
        if isinstance(component, dict) and _kind(component) == part:
            return index, component
    return None


def _kind(component: Any) -> str:
    return str(component.get("type", "")).lower() if isinstance(component, dict) else ""


def _index_of(text: str, line: int, col: int) -> int:
    """The index in TEXT of 1-based LINE and COL, as PyYAML counts them."""
    at = 0
    for _ in range(line - 1):
        found = _YAML_BREAK.search(text, at)
        if found is None:
            break
        at = found.end()
    return at + col - 1


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of INDEX in TEXT, as PyYAML counts them."""
    breaks = list(_YAML_BREAK.finditer(text, 0, index))
    start = breaks[-1].end() if breaks else 0
    return len(breaks) + 1, index - start + 1
