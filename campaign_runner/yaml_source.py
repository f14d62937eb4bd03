"""YAML with positions: parse a campaign file into plain data plus where each value was written.

Every problem with a campaign is reported as `FILE:LINE:COL: message`, so the parser keeps
the line and column of every key and value (`SourceMap`) while it builds plain Python data.

A campaign file may come from anyone, so parsing is bounded: nesting depth and the number
of values are checked on libyaml's event stream before anything is composed, and the
values and text that aliases (`*name`) expand to are counted while the data is built, so a
"billion laughs" file fails in milliseconds. Only YAML's plain tags are read (text,
numbers, booleans, null, dates as text, lists and mappings): `!!python/...` and any other
tag is a located error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from campaign_runner.errors import CampaignInvalid, Problem

# Lists and mappings inside one another; real campaigns nest fewer than 10 deep.
MAX_YAML_DEPTH = 64
# Values (keys, scalars, lists, mappings) once aliases are expanded; a campaign has < 1,000.
MAX_YAML_VALUES = 100_000
# Characters of text once aliases are expanded: twice the largest file (campaign.py).
MAX_YAML_TEXT = 2 * (256 * 1024)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")
)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: 5x faster


@dataclass(frozen=True)
class SourceMap:
    """Where each key and value of the YAML document was written (1-based line and column)."""

    file: str
    keys: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    values: dict[tuple, tuple[int, int]] = field(default_factory=dict)

    def problem(self, path: tuple, message: str, *, at_key: bool = False) -> Problem:
        """A `Problem` located at PATH, or at its nearest ancestor that was written down."""
        table = self.keys if at_key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return Problem(self.file, *table[probe], message)
            if probe in self.values:
                return Problem(self.file, *self.values[probe], message)
            probe = probe[:-1]
        return Problem(self.file, *self.values.get((), (1, 1)), message)


class _Refused(Exception):
    """A value the campaign file may not hold, where it was written."""

    def __init__(self, where: Any, message: str):
        super().__init__(message)
        self.line: int | None = None
        self.col: int | None = None
        if isinstance(where, tuple):
            self.line, self.col = where
        else:
            mark = getattr(where, "start_mark", where)
            self.line, self.col = mark.line + 1, mark.column + 1
        self.message = message


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML TEXT into plain data and a `SourceMap`; duplicate keys are errors."""
    source = SourceMap(file)
    try:
        _check_shape(text)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = " ".join(part for part in (error.context, error.problem) if part)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise CampaignInvalid(Problem(file, line, col, f"not valid YAML: {what}")) from None
    except yaml.YAMLError as error:
        raise CampaignInvalid(Problem(file, None, None, f"not valid YAML: {error}")) from None
    except _Refused as refused:
        raise CampaignInvalid(Problem(file, refused.line, refused.col, refused.message)) from None
    if node is None:
        raise CampaignInvalid(Problem(file, 1, 1, "the campaign file is empty"))
    builder = _Builder(source)
    try:
        document = builder.value(node, ())
    except _Refused as refused:
        raise CampaignInvalid(Problem(file, refused.line, refused.col, refused.message)) from None
    if builder.problems:
        raise CampaignInvalid(builder.problems)
    return document, source


def _check_shape(text: str) -> None:
    """Refuse a document nested too deeply or with too many values, before composing it
    (composing recurses once per level, and holds every node)."""
    depth = values = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.NodeEvent):
            values += 1
            if values > MAX_YAML_VALUES:
                raise _Refused(event, _too_many_values())
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise _Refused(event, f"lists and mappings nest more than {MAX_YAML_DEPTH} deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _too_many_values() -> str:
    return (
        f"the campaign holds more than {MAX_YAML_VALUES:,} values "
        "(counting each use of an alias *name in full)"
    )


def _position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Plain data from composed YAML nodes, counting what aliases expand to as it goes."""

    def __init__(self, source: SourceMap):
        self.source = source
        self.problems: list[Problem] = []
        self.constructor = SafeConstructor()
        self.values = 0
        self.text = 0
        self.depth = 0

    def value(self, node: yaml.Node, path: tuple) -> Any:
        """NODE as plain data, written down in the source map at PATH."""
        self.source.values[path] = _position(node)
        self.count(node, path)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self.depth += 1
            if self.depth > MAX_YAML_DEPTH:
                raise _Refused(
                    self.blame(path), f"lists and mappings nest more than {MAX_YAML_DEPTH} deep"
                )
            try:
                if isinstance(node, yaml.MappingNode):
                    return self.mapping(node, path)
                return [self.value(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self.depth -= 1
        value = self.scalar(node)
        if isinstance(value, datetime | date):
            # Keep dates as written: a campaign's values are text sent to WhatsApp, not dates.
            return node.value
        return value

    def blame(self, path: tuple) -> tuple[int, int]:
        """Where to report a limit hit at PATH: the top-level value being built, because
        aliases share nodes, so the node itself may sit anywhere in the file."""
        return self.source.values[path[:1]]

    def count(self, node: yaml.Node, path: tuple) -> None:
        if node.tag not in _PLAIN_TAGS and node.tag != _MERGE_TAG:
            raise _Refused(
                node,
                f"the tag {node.tag!r} is not allowed: a campaign holds only text, numbers, "
                "true/false, null, lists and mappings",
            )
        self.values += 1
        if self.values > MAX_YAML_VALUES:
            raise _Refused(self.blame(path), _too_many_values())
        if isinstance(node, yaml.ScalarNode):
            self.text += len(node.value)
            if self.text > MAX_YAML_TEXT:
                raise _Refused(
                    self.blame(path),
                    f"the campaign holds more than {MAX_YAML_TEXT:,} characters of text "
                    "(counting each use of an alias *name in full)",
                )

    def scalar(self, node: yaml.Node) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as error:
            reason = getattr(error, "problem", None) or str(error)
            raise _Refused(node, f"{node.value[:40]!r} is not a valid value: {reason}") from None

    def mapping(self, node: yaml.MappingNode, path: tuple) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self.problems.append(
                    self.source.problem(path, "YAML merge keys (<<) are not supported here")
                )
                continue
            key = self.key(key_node, path)
            child = (*path, key)
            if key in out:
                first = self.source.keys[child]
                self.problems.append(
                    Problem(
                        self.source.file,
                        *_position(key_node),
                        f"key {key!r} is given twice (first at line {first[0]})",
                    )
                )
                continue
            self.source.keys[child] = _position(key_node)
            out[key] = self.value(value_node, child)
        return out

    def key(self, node: yaml.Node, path: tuple) -> str:
        self.count(node, (*path, None) if path else ())
        if not isinstance(node, yaml.ScalarNode):
            raise _Refused(node, "a key must be plain text, not a list or a mapping")
        key = self.scalar(node)
        return key if isinstance(key, str) else str(key)
