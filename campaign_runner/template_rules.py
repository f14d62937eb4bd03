"""What a campaign template may contain, checked once when the campaign loads.

A template reads the CSV's columns and nothing else: `[name]`, `{{ name }}`,
`{{ row["target url"] }}`, a short list of filters and tests, `{% if %}`, comparisons and
arithmetic. Loops, macros, `{% set %}`, function calls, attributes and Jinja's globals
(`range`, `lipsum`, `dict`...) are refused with a located error, so a campaign file can
neither print Python internals nor take the machine down.

`check` walks the parsed template once per run and rewrites every name into a lookup in
the row's columns: `name`, `row`, `self` or `range` are just columns, whatever Jinja would
otherwise make of them. Constant arithmetic is evaluated there, under the same bounds as
at render time, so `{{ 10**(10**8) }}` fails before anything is sent; what depends on a
row's values is bounded again while rendering, and only makes that recipient invalid.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import jinja2
from jinja2 import nodes
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.tests import TESTS as JINJA_TESTS
from jinja2.visitor import NodeTransformer

from campaign_runner.suggest import did_you_mean

# The most text one message may render (all its templated strings together), and the most
# any single value a template computes may hold. WhatsApp's longest field is 4,096 characters.
MAX_RENDERED_CHARS = 100_000
# Numbers a template computes stay below 10**100; `10**(10**8)` would take minutes and GBs.
MAX_NUMBER = 10**100
# Nesting of template syntax (an `if` in an `if`, an operator's operand...); real ones use < 10.
MAX_TEMPLATE_DEPTH = 50
# `round(x, N)`: digits after the point.
MAX_ROUND_DIGITS = 20

# The one name the rewritten templates read: the row's columns, by name.
COLUMNS = "columns"
ROW = "row"  # `row["target url"]` names a column whose name is not a plain word


class TemplateLimitError(ValueError):
    """A template computed more than a message can hold (text, number or nesting)."""


def _text_fits(length: int) -> None:
    if length > MAX_RENDERED_CHARS:
        raise TemplateLimitError(
            f"the template makes a text of {length:,} characters; "
            f"at most {MAX_RENDERED_CHARS:,} are allowed"
        )


def _number_fits(value: Any) -> Any:
    if isinstance(value, int) and abs(value) >= MAX_NUMBER:
        raise TemplateLimitError("the template makes a number of more than 100 digits")
    return value


def _power(left: Any, right: Any) -> Any:
    is_int = isinstance(left, int) and isinstance(right, int)
    if is_int and right > 0 and abs(left) > 1 and right * (abs(left).bit_length() - 1) > 340:
        raise TemplateLimitError("the template makes a number of more than 100 digits")
    return operator.pow(left, right)


def _times(left: Any, right: Any) -> Any:
    for text, count in ((left, right), (right, left)):
        if isinstance(text, str | list | tuple) and isinstance(count, int):
            _text_fits(len(text) * max(count, 0))
    return operator.mul(left, right)


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):  # printf-style formatting can pad to any width
        raise TemplateLimitError("'%' formatting of text is not available; join text with ~")
    return operator.mod(left, right)


def _plus(left: Any, right: Any) -> Any:
    if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        _text_fits(len(left) + len(right))
    return operator.add(left, right)


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": _plus,
    "-": operator.sub,
    "*": _times,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": _modulo,
    "**": _power,
}
_NODE_OPERATORS = {
    nodes.Add: "+",
    nodes.Sub: "-",
    nodes.Mul: "*",
    nodes.Div: "/",
    nodes.FloorDiv: "//",
    nodes.Mod: "%",
    nodes.Pow: "**",
}


def binop(symbol: str, left: Any, right: Any) -> Any:
    """`left SYMBOL right`, refused before it computes more than a message can hold."""
    return _number_fits(_BINOPS[symbol](left, right))


def _replace(value: Any, old: Any, new: Any, count: int | None = None) -> str:
    value, old, new = str(value), str(old), str(new)
    times = value.count(old) if old else len(value) + 1
    if count is not None and count >= 0:
        times = min(times, count)
    _text_fits(len(value) + times * (len(new) - len(old)))
    return value.replace(old, new, -1 if count is None else count)


def _center(value: Any, width: int = 80) -> str:
    _text_fits(width)
    return str(value).center(width)


def _round(value: Any, precision: int = 0, method: str = "common") -> float:
    if abs(precision) > MAX_ROUND_DIGITS:
        raise TemplateLimitError(f"round() keeps at most {MAX_ROUND_DIGITS} digits")
    return JINJA_FILTERS["round"](value, precision, method)


_NO_DEFAULT = object()


def _strict_number(name: str) -> Callable[..., Any]:
    """Jinja's `int`/`float` turn `abc` into 0, a guess sent to a customer: here a value
    that is not a number makes the recipient invalid, unless the template gives a default."""

    def convert(value: Any, default: Any = _NO_DEFAULT, *rest: Any) -> Any:
        converted = JINJA_FILTERS[name](value, None, *rest)
        if converted is None:
            if default is _NO_DEFAULT:
                raise ValueError(f"{str(value)!r} is not a number ({name} filter)")
            return default
        return _number_fits(converted)

    return convert


def _join_text(parts: list) -> str:
    """`a ~ b ~ c`: Jinja's own join, bounded in length before the text is built."""
    texts = [str(part) for part in parts]
    _text_fits(sum(map(len, texts)))
    return "".join(texts)


_JINJA_FILTERS_KEPT = [
    "abs",
    "capitalize",
    "count",
    "d",
    "default",
    "first",
    "last",
    "length",
    "lower",
    "string",
    "title",
    "trim",
    "truncate",
    "upper",
    "urlencode",
    "wordcount",
]
FILTERS: dict[str, Callable[..., Any]] = {
    **{name: JINJA_FILTERS[name] for name in _JINJA_FILTERS_KEPT},
    "center": _center,
    "float": _strict_number("float"),
    "int": _strict_number("int"),
    "replace": _replace,
    "round": _round,
}
_ALL_TESTS = cast("dict[str, Callable[..., Any]]", JINJA_TESTS)
TESTS: dict[str, Callable[..., Any]] = {
    name: _ALL_TESTS[name]
    for name in [
        "defined",
        "undefined",
        "none",
        "number",
        "string",
        "lower",
        "upper",
        "odd",
        "even",
        "divisibleby",
        "in",
        "eq",
        "equalto",
        "==",
        "ne",
        "!=",
        "lt",
        "lessthan",
        "<",
        "le",
        "<=",
        "gt",
        "greaterthan",
        ">",
        "ge",
        ">=",
    ]
}
_JOIN_TEXT = "join text"  # an internal filter: a space keeps it out of any template's reach


class BlankColumn(jinja2.StrictUndefined):
    """A column that is absent or blank for this recipient: using it makes the row invalid."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint is None and isinstance(self._undefined_name, str):
            return f"column {self._undefined_name!r} is blank for this recipient"
        return super()._undefined_message


class TemplateEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's sandbox with no globals, the filters and tests above, and bounded operators."""

    intercepted_binops = frozenset(_BINOPS)

    def __init__(self) -> None:
        super().__init__(
            undefined=BlankColumn,  # a blank value raises: never a hole in a message
            autoescape=False,
            keep_trailing_newline=True,
        )
        self.globals.clear()
        self.filters = {**FILTERS, _JOIN_TEXT: _join_text}
        self.tests = dict(TESTS)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Every arithmetic operator goes through `binop`'s bounds."""
        return binop(operator, left, right)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Only the row's columns are ever indexed; a missing one is a `BlankColumn`.

        Jinja's own getitem falls back to attributes, so a blank `items` column would
        render a dict method; this one never does.
        """
        try:
            return obj[argument]
        except (KeyError, TypeError):
            return self.undefined(obj=obj, name=argument)


@dataclass
class CheckedTemplate:
    """A template's syntax tree rewritten to read columns, and what the check found."""

    tree: nodes.Template
    columns: set[str] = field(default_factory=set)  # every column it reads
    optional: set[str] = field(default_factory=set)  # read under `is defined` or `default`
    problems: list[str] = field(default_factory=list)


def check(tree: nodes.Template) -> CheckedTemplate:
    """Check TREE against the allowed syntax and rewrite its names into column lookups."""
    result = CheckedTemplate(tree)
    try:
        result.tree = _Rewriter(result).visit(tree)
    except RecursionError:
        result.problems.append(_too_deep())
    return result


def _too_deep() -> str:
    return f"the template is nested more than {MAX_TEMPLATE_DEPTH} levels deep"


_PLAIN = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Keyword,
    nodes.If,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
)
_REFUSED_WORDS = {
    nodes.For: "loops ({% for %})",
    nodes.Macro: "macros ({% macro %})",
    nodes.CallBlock: "{% call %} blocks",
    nodes.Call: "calling a function or method, as in name(...)",
    nodes.Getattr: 'attributes, as in name.something (a column is row["name"])',
    nodes.Slice: "slices, as in name[1:3]",
    nodes.Assign: "variables ({% set %})",
    nodes.AssignBlock: "variables ({% set %})",
    nodes.With: "{% with %} blocks",
    nodes.FilterBlock: "{% filter %} blocks (use a filter: {{ name | upper }})",
    nodes.Include: "other templates ({% include %})",
    nodes.Import: "other templates ({% import %})",
    nodes.FromImport: "other templates ({% from ... import %})",
    nodes.Extends: "other templates ({% extends %})",
    nodes.Block: "{% block %}",
    nodes.Dict: "dictionaries, as in {'a': 1}",
    nodes.List: "lists, except after `in`, as in name in ['a', 'b']",
    nodes.Tuple: "tuples, except after `in`, as in name in ('a', 'b')",
}


class _Rewriter(NodeTransformer):
    """One pass over a template: refuse what is not allowed, rewrite names, fold constants."""

    def __init__(self, result: CheckedTemplate):
        self.result = result
        self.depth = 0

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        """Visit NODE at one more level of nesting; past the limit, stop with a problem."""
        self.depth += 1
        try:
            if self.depth > MAX_TEMPLATE_DEPTH:
                raise RecursionError
            return super().visit(node, *args, **kwargs)
        finally:
            self.depth -= 1

    def refuse(self, node: nodes.Node, message: str) -> nodes.Node:
        self.result.problems.append(message)
        return node

    def generic_visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        """Nodes on the plain list are walked; every other kind is refused, unwalked."""
        if isinstance(node, _PLAIN):
            return super().generic_visit(node, *args, **kwargs)
        what = _REFUSED_WORDS.get(type(node), f"'{type(node).__name__}'")
        return self.refuse(
            node,
            f"campaign templates cannot use {what}; "
            "they read columns, with filters, tests and {% if %}",
        )

    def visit_Name(self, node: nodes.Name) -> nodes.Node:
        return self.column(node.name, node)

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        name = _row_subscript(node)
        if name is None:
            return self.refuse(node, 'only row["column"] can be indexed in a campaign template')
        return self.column(name, node)

    def column(self, name: str, node: nodes.Node) -> nodes.Node:
        self.result.columns.add(name)
        lookup = nodes.Getitem(nodes.Name(COLUMNS, "load"), nodes.Const(name), "load")
        return lookup.set_lineno(node.lineno)

    def visit_Filter(self, node: nodes.Filter) -> nodes.Node:
        return self.call_like(node, "filter", FILTERS, ("default", "d"))

    def visit_Test(self, node: nodes.Test) -> nodes.Node:
        return self.call_like(node, "test", TESTS, ("defined", "undefined"))

    def call_like(
        self, node: nodes.Filter | nodes.Test, kind: str, allowed: dict, optional: tuple
    ) -> nodes.Node:
        if node.name not in allowed:
            hint = did_you_mean(node.name, allowed)
            return self.refuse(
                node,
                f"{kind} '{node.name}' is not available in a campaign template{hint}; "
                f"the {kind}s are: {', '.join(sorted(allowed))}",
            )
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            return self.refuse(node, f"*args and **kwargs cannot be given to {kind} '{node.name}'")
        if node.name in optional and node.node is not None:
            name = _column_name(node.node)
            if name is not None:
                self.result.optional.add(name)
        super().generic_visit(node)  # rewrites the node's own fields in place
        for argument in (*node.args, *(keyword.value for keyword in node.kwargs)):
            if isinstance(argument, nodes.Const) and isinstance(argument.value, int):
                self.bounded_argument(node, kind, argument.value)
        return node

    def bounded_argument(self, node: nodes.Filter | nodes.Test, kind: str, value: int) -> None:
        if abs(value) > MAX_RENDERED_CHARS:
            self.result.problems.append(
                f"{kind} '{node.name}' is given {value:,}; "
                f"at most {MAX_RENDERED_CHARS:,} is allowed"
            )

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        parts = [self.visit(part) for part in node.nodes]
        joined = nodes.Filter(nodes.List(parts), _JOIN_TEXT, [], [], None, None)
        return joined.set_lineno(node.lineno)

    def visit_Operand(self, node: nodes.Operand) -> nodes.Node:
        if node.op in ("in", "notin") and isinstance(node.expr, nodes.List | nodes.Tuple):
            node.expr.items = [self.visit(item) for item in node.expr.items]
            return node
        return super().generic_visit(node)

    def visit_BinExpr(self, node: nodes.BinExpr) -> nodes.Node:
        super().generic_visit(node)  # rewrites the node's own fields in place
        if not (isinstance(node.left, nodes.Const) and isinstance(node.right, nodes.Const)):
            return node
        try:
            value = binop(_NODE_OPERATORS[type(node)], node.left.value, node.right.value)
        except TemplateLimitError as error:
            return self.refuse(node, str(error))
        except (TypeError, ArithmeticError):
            return node  # left for the render to report
        return nodes.Const(value).set_lineno(node.lineno)

    # Each arithmetic node class is walked by visit_BinExpr.
    visit_Add = visit_Sub = visit_Mul = visit_Div = visit_BinExpr
    visit_FloorDiv = visit_Mod = visit_Pow = visit_BinExpr


def _row_subscript(node: nodes.Getitem) -> str | None:
    """The column of `row["name"]`, or None for any other subscript."""
    if not (isinstance(node.node, nodes.Name) and node.node.name == ROW):
        return None
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def _column_name(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getitem):
        return _row_subscript(node)
    return None
