"""Render stage: build one request body per recipient from the campaign's message.

Every string in the message is a template, compiled once per run in Jinja's sandbox. The
seed's `[column]` placeholders are rewritten to Jinja before compiling; CSV values only ever
enter as data, so `{{ 7*7 }}` in a name is sent as those seven characters. Bodies are built
as dicts, never by templating JSON text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaign_runner.campaign import Campaign, has_template_markup
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.suggest import did_you_mean
from campaign_runner.yaml_source import SourceMap

_PLACEHOLDER = re.compile(r"\[([^\W\d][\w-]*)\]")
_JINJA_SPAN = re.compile(r"(\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\})", re.DOTALL)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENVELOPE_DEFAULTS = {"messaging_product": "whatsapp", "recipient_type": "individual"}


class RenderError(ValueError):
    """A recipient whose message cannot be rendered (a blank value, a failing filter)."""


def to_jinja(text: str) -> str:
    """Rewrite the seed's `[column]` placeholders as Jinja, leaving Jinja markup untouched."""
    parts = _JINJA_SPAN.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside {{ }}, {% %} and {# #}
        parts[i] = _PLACEHOLDER.sub(_placeholder_expression, parts[i])
    return "".join(parts)


def _placeholder_expression(match: re.Match) -> str:
    name = match.group(1)
    if _IDENTIFIER.match(name):
        return "{{ " + name + " }}"
    return "{{ row[" + repr(name) + "] }}"


def environment() -> ImmutableSandboxedEnvironment:
    """The sandboxed Jinja environment every campaign template is compiled in."""
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,  # a blank value raises: never a hole in a message
        autoescape=False,
        keep_trailing_newline=True,
    )


@dataclass(frozen=True)
class TemplateSlot:
    """One string of the message that is a template: where it is written, and what it reads."""

    path: tuple
    source: str
    template: jinja2.Template
    columns: frozenset[str]


class Renderer:
    """The campaign's message compiled once: call `body(row, phone)` for each recipient."""

    def __init__(self, campaign: Campaign):
        self.env = environment()
        self.template_slots: list[TemplateSlot] = []
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
        """Raise, before anything is sent, when a template names a column the CSV lacks."""
        problems = []
        for slot in self.template_slots:
            for column in sorted(slot.columns - set(available)):
                hint = did_you_mean(column, available)
                problems.append(
                    source.problem(
                        slot.path,
                        f"placeholder '{column}' names no column of {csv_name}{hint}; "
                        f"the columns are: {', '.join(available)}",
                    )
                )
        if problems:
            raise CampaignInvalid(problems)

    def body(self, values: dict[str, str], phone: str) -> dict[str, Any]:
        """The request body for one recipient; `RenderError` when a value it needs is blank."""
        context = _context(values)
        body = self._build(context)
        body["to"] = phone
        return body

    def key(self, values: dict[str, str], phone: str) -> str:
        """The delivery key: the normalised phone, or the `recipients.key` template rendered."""
        if self.key_template is None:
            return phone
        return self.key_template({**_context(values), "phone": phone})

    # ---- compiling --------------------------------------------------------------------

    def _compile(self, value: Any, path: tuple, source: SourceMap) -> Callable[[dict], Any]:
        if isinstance(value, dict):
            parts = [
                (key, self._compile(item, (*path, key), source)) for key, item in value.items()
            ]
            return lambda context: {key: build(context) for key, build in parts}
        if isinstance(value, list):
            items = [self._compile(item, (*path, i), source) for i, item in enumerate(value)]
            return lambda context: [build(context) for build in items]
        if isinstance(value, str) and has_template_markup(value):
            return self._compile_one(value, path, source)
        return lambda context: value

    def _compile_one(self, text: str, path: tuple, source: SourceMap) -> Callable[[dict], str]:
        jinja_text = to_jinja(text)
        try:
            parsed = self.env.parse(jinja_text)
            template = self.env.from_string(parsed)
        except jinja2.TemplateSyntaxError as error:
            self._problems.append(source.problem(path, f"template error: {error.message}"))
            return lambda context: text
        names = meta.find_undeclared_variables(parsed) - set(self.env.globals) - {"row"}
        columns = frozenset((names | _row_subscripts(jinja_text)) - _optional_names(parsed))
        self.template_slots.append(TemplateSlot(path, text, template, columns))
        where = ".".join(str(p) for p in path[1:])

        def render(context: dict) -> str:
            try:
                return template.render(context)
            except jinja2.UndefinedError as error:
                raise RenderError(f"{where}: {_blank_reason(error)}") from None
            except jinja2.TemplateError as error:
                raise RenderError(f"{where}: template error: {error}") from None
            except (TypeError, ValueError, ArithmeticError) as error:
                raise RenderError(f"{where}: {error}") from None

        return render


def _context(values: dict[str, str]) -> dict[str, Any]:
    # A blank cell is left out so that using it raises (or falls back to `default(...)`).
    present = {name: value for name, value in values.items() if value.strip()}
    return {**present, "row": present}


def _optional_names(parsed: nodes.Template) -> set[str]:
    """Names a template itself treats as optional: `x is defined`, `x | default(...)`."""
    tested = [
        test.node for test in parsed.find_all(nodes.Test) if test.name in ("defined", "undefined")
    ]
    defaulted = [f.node for f in parsed.find_all(nodes.Filter) if f.name in ("default", "d")]
    return {node.name for node in (*tested, *defaulted) if isinstance(node, nodes.Name)}


def _row_subscripts(jinja_text: str) -> set[str]:
    return set(re.findall(r"row\[\s*['\"]([^'\"]+)['\"]\s*\]", jinja_text))


def _blank_reason(error: jinja2.UndefinedError) -> str:
    match = re.search(
        r"'([^']+)' is undefined|has no attribute '([^']+)'|no element '([^']+)'|'([^']+)'",
        str(error),
    )
    name = next((g for g in match.groups() if g), None) if match else None
    if name:
        return f"column '{name}' is blank for this recipient"
    return str(error)
