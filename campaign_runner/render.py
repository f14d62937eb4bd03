"""Render stage: build one request body per recipient from the campaign's message.

Every string in the message is a template, compiled once per run in Jinja's sandbox under
`template_rules`: it reads the CSV's columns and nothing else. The seed's `[column]`
placeholders are rewritten to Jinja first, in the text Jinja's own lexer calls data, so raw
blocks, comments and string literals stay exactly as written. CSV values only ever enter as
data, so `{{ 7*7 }}` in a name is sent as those seven characters. Bodies are built as
dicts, never by templating JSON text.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jinja2

from campaign_runner import template_rules
from campaign_runner.campaign import Campaign, has_template_markup
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.recipients import column_list
from campaign_runner.suggest import did_you_mean
from campaign_runner.template_rules import (
    COLUMNS,
    MAX_RENDERED_CHARS,
    TemplateEnvironment,
    TemplateLimitError,
)
from campaign_runner.yaml_source import SourceMap

_PLACEHOLDER = re.compile(r"\[([^\W\d][\w-]*)\]")
# Any short bracketed text on one line: checked against the columns, loosely (see `_loose`).
_BRACKETED = re.compile(r"\[([^\[\]\n]{1,100})\]")
ENVELOPE_DEFAULTS = {"messaging_product": "whatsapp", "recipient_type": "individual"}
_LEXER_ENV = TemplateEnvironment()


class RenderError(ValueError):
    """A recipient whose message cannot be rendered (a blank value, a failing filter)."""


def to_jinja(text: str) -> str:
    """Rewrite the seed's `[column]` placeholders as Jinja, leaving Jinja markup untouched.

    Only what Jinja's lexer calls data outside `{% raw %}` is rewritten; raises
    `jinja2.TemplateSyntaxError` when TEXT does not lex.
    """
    return "".join(
        _PLACEHOLDER.sub(_placeholder_expression, piece) if kind == "plain" else piece
        for kind, piece in _pieces(text)
    )


def _pieces(text: str) -> Iterable[tuple[str, str]]:
    """TEXT as Jinja lexes it: ('plain', text), ('raw', text in a raw block) or ('markup', ...)."""
    in_raw = False
    for _, token, value in _LEXER_ENV.lexer.tokeniter(text, None):
        if token in ("raw_begin", "raw_end"):
            in_raw = token == "raw_begin"
        if token != "data":
            yield "markup", value
        else:
            yield ("raw" if in_raw else "plain"), value


def _placeholder_expression(match: re.Match) -> str:
    # Always row["..."]: `[none]`, `[true]` or `[in]` are columns, never Jinja keywords.
    return "{{ row[" + _jinja_string(match.group(1)) + "] }}"


def _jinja_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def written_as(column: str) -> str:
    """How a template names COLUMN: `[name]` for a plain word, else `{{ row["the name"] }}`."""
    if _PLACEHOLDER.fullmatch(f"[{column}]"):
        return f"[{column}]"
    return "{{ row[" + _jinja_string(column) + "] }}"


def _loose(text: str) -> str:
    """TEXT ignoring case, accents, spaces, underscores and hyphens: `Endereço_1` -> `endereco1`."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\s_\-]+", "", bare.casefold())


def _literal_brackets(pieces: Iterable[tuple[str, str]]) -> list[str]:
    """Bracketed texts left as plain text (not placeholders), to check against the columns."""
    found = []
    for kind, piece in pieces:
        if kind == "plain":
            found += [
                m.group(0)
                for m in _BRACKETED.finditer(piece)
                if not _PLACEHOLDER.fullmatch(m.group(0))
            ]
    return found


def environment() -> TemplateEnvironment:
    """The sandboxed Jinja environment every campaign template is compiled in."""
    return TemplateEnvironment()


@dataclass(frozen=True)
class TemplateSlot:
    """One string of the message that is a template: where it is written, and what it reads."""

    path: tuple
    source: str
    template: jinja2.Template
    columns: frozenset[str]


class _Rendering:
    """One recipient's rendering: the columns it reads and the text the message may still take."""

    __slots__ = ("context", "left")

    def __init__(self, columns: dict[str, str]):
        self.context = {COLUMNS: columns}
        self.left = MAX_RENDERED_CHARS

    def join(self, parts: Iterable[str]) -> str:
        """The parts of one rendered string, stopped as soon as the message grows too long."""
        out = []
        for part in parts:
            self.left -= len(part)
            if self.left < 0:
                raise TemplateLimitError(
                    f"the message would be longer than {MAX_RENDERED_CHARS:,} characters"
                )
            out.append(part)
        return "".join(out)


class Renderer:
    """The campaign's message compiled once: call `body(row, phone)` for each recipient."""

    def __init__(self, campaign: Campaign):
        self.env = environment()
        self.template_slots: list[TemplateSlot] = []
        self.literal_brackets: list[tuple[tuple, str]] = []  # (path, "[first name]")
        self._problems: list[Problem] = []
        message = {**ENVELOPE_DEFAULTS, **campaign.message}
        message.pop("to", None)
        self._build = self._compile(message, ("message",), campaign.source)
        self.key_template = None
        if campaign.recipients.key:
            self.key_template = self._compile_one(
                campaign.recipients.key, ("recipients", "key"), campaign.source
            )
        if self._problems:
            raise CampaignInvalid(self._problems)

    @property
    def columns(self) -> set[str]:
        """Every CSV column the message's templates read."""
        return {c for slot in self.template_slots for c in slot.columns}

    def check_columns(self, available: list[str], source: SourceMap, csv_name: str) -> None:
        """Raise, before anything is sent, when a template names a column the CSV lacks,
        or leaves as plain text a bracketed name that is a column written loosely."""
        loosely: dict[str, str] = {}
        for column in available:
            loosely.setdefault(_loose(column), column)
        problems = []
        for slot in self.template_slots:
            for column in sorted(slot.columns - set(available)):
                message = _no_such_column(column, available, loosely.get(_loose(column)), csv_name)
                problems.append(source.problem(slot.path, message))
        for path, bracketed in self.literal_brackets:
            meant = loosely.get(_loose(bracketed[1:-1]))
            if meant is not None:
                problems.append(source.problem(path, _not_a_placeholder(bracketed, meant)))
        if problems:
            raise CampaignInvalid(problems)

    def body(self, values: dict[str, str], phone: str) -> dict[str, Any]:
        """The request body for one recipient; `RenderError` when a value it needs is blank."""
        body = self._build(_Rendering(_present(values)))
        body["to"] = phone
        return body

    def key(self, values: dict[str, str], phone: str) -> str:
        """The delivery key: the normalised phone, or the `recipients.key` template rendered."""
        if self.key_template is None:
            return phone
        return self.key_template(_Rendering({**_present(values), "phone": phone}))

    # ---- compiling --------------------------------------------------------------------

    def _compile(self, value: Any, path: tuple, source: SourceMap) -> Callable[[_Rendering], Any]:
        if isinstance(value, dict):
            parts = [
                (key, self._compile(item, (*path, key), source)) for key, item in value.items()
            ]
            return lambda rendering: {key: build(rendering) for key, build in parts}
        if isinstance(value, list):
            items = [self._compile(item, (*path, i), source) for i, item in enumerate(value)]
            return lambda rendering: [build(rendering) for build in items]
        if isinstance(value, str) and has_template_markup(value):
            return self._compile_one(value, path, source)
        if isinstance(value, str):
            self._note_brackets(path, [("plain", value)])
        return lambda rendering: value

    def _note_brackets(self, path: tuple, pieces: Iterable[tuple[str, str]]) -> None:
        self.literal_brackets += [(path, text) for text in _literal_brackets(pieces)]

    def _compile_one(
        self, text: str, path: tuple, source: SourceMap
    ) -> Callable[[_Rendering], str]:
        try:
            template, columns = self._template(text, path)
        except _Refused as refused:
            self._problems += [source.problem(path, message) for message in refused.messages]
            return lambda rendering: text
        self.template_slots.append(TemplateSlot(path, text, template, columns))
        return _renderer(template, ".".join(str(p) for p in path[1:]))

    def _template(self, text: str, path: tuple) -> tuple[jinja2.Template, frozenset[str]]:
        """TEXT compiled under the template rules, and the columns it needs; or `_Refused`."""
        try:
            pieces = list(_pieces(text))
            self._note_brackets(path, pieces)
            tree = self.env.parse(to_jinja(text))
        except jinja2.TemplateSyntaxError as error:
            raise _Refused([f"template error: {error.message}"]) from None
        except ValueError:  # the lexer's int(): Python refuses over 4,300 digits
            raise _Refused(["template error: a number has too many digits"]) from None
        except (RecursionError, MemoryError) as error:
            raise _Refused([f"template error: {_compile_failure(error)}"]) from None
        checked = template_rules.check(tree)
        if checked.problems:
            raise _Refused(checked.problems)
        try:
            template = self.env.from_string(checked.tree)
        except (jinja2.TemplateError, RecursionError, SyntaxError, MemoryError) as error:
            raise _Refused([f"template error: {_compile_failure(error)}"]) from None
        return template, frozenset(checked.columns - checked.optional)


class _Refused(Exception):
    def __init__(self, messages: list[str]):
        super().__init__(messages)
        self.messages = messages


def _compile_failure(error: BaseException) -> str:
    if isinstance(error, RecursionError | SyntaxError | MemoryError):
        return "the template is nested too deeply"
    return str(error)


def _renderer(template: jinja2.Template, where: str) -> Callable[[_Rendering], str]:
    """A function rendering TEMPLATE for one recipient; `RenderError` says why it cannot."""

    def render(rendering: _Rendering) -> str:
        try:
            return rendering.join(
                template.root_render_func(template.new_context(rendering.context))
            )
        except jinja2.UndefinedError as error:
            raise RenderError(f"{where}: {error}") from None
        except jinja2.TemplateError as error:
            raise RenderError(f"{where}: template error: {error}") from None
        except (TypeError, ValueError, ArithmeticError) as error:
            raise RenderError(f"{where}: {error}") from None

    return render


def _present(values: dict[str, str]) -> dict[str, str]:
    # A blank cell is left out so that using it raises (or falls back to `default(...)`).
    return {name: value for name, value in values.items() if value.strip()}


def _no_such_column(column: str, available: list[str], loose: str | None, csv_name: str) -> str:
    if loose is not None:
        hint = f" (the column is '{loose}': write {written_as(loose)})"
    else:
        hint = did_you_mean(column, available)
    return (
        f"placeholder '{column}' names no column of {csv_name}{hint}; "
        f"the columns are: {column_list(available)}"
    )


def _not_a_placeholder(bracketed: str, column: str) -> str:
    return (
        f"{bracketed} would be sent as written, but it looks like the column '{column}': "
        f"write {written_as(column)} (or {{{{ {_jinja_string(bracketed)} }}}} to send the brackets)"
    )
