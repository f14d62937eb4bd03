"""YAML with positions: parse a campaign file into plain data plus where each value was written.

Every problem with a campaign is reported as `FILE:LINE:COL: message`, so the parser keeps
the line and column of every key and value (`SourceMap`) while it builds plain Python data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from campaign_runner.errors import CampaignInvalid, Problem

_MERGE_TAG = "tag:yaml.org,2002:merge"


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


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML TEXT into plain data and a `SourceMap`; duplicate keys are errors."""
    source = SourceMap(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = " ".join(part for part in (error.context, error.problem) if part)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise CampaignInvalid(Problem(file, line, col, f"not valid YAML: {what}")) from None
    except yaml.YAMLError as error:
        raise CampaignInvalid(Problem(file, None, None, f"not valid YAML: {error}")) from None
    if node is None:
        raise CampaignInvalid(Problem(file, 1, 1, "the campaign file is empty"))
    problems: list[Problem] = []
    document = _construct(node, (), source, problems)
    if problems:
        raise CampaignInvalid(problems)
    return document, source


def _position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _construct(node: yaml.Node, path: tuple, source: SourceMap, problems: list[Problem]) -> Any:
    source.values[path] = _position(node)
    if isinstance(node, yaml.MappingNode):
        return _construct_mapping(node, path, source, problems)
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), source, problems) for i, item in enumerate(node.value)]
    value = yaml.SafeLoader(b"").construct_object(node, deep=True)
    if isinstance(value, datetime | date):
        # Keep dates as written: a campaign's values are text sent to WhatsApp, not Python dates.
        return node.value
    return value


def _construct_mapping(
    node: yaml.MappingNode, path: tuple, source: SourceMap, problems: list[Problem]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            problems.append(source.problem(path, "YAML merge keys (<<) are not supported here"))
            continue
        key = yaml.SafeLoader(b"").construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        child = (*path, key)
        if key in out:
            first = source.keys[child]
            problems.append(
                Problem(
                    source.file,
                    *_position(key_node),
                    f"key '{key}' is given twice (first at line {first[0]})",
                )
            )
            continue
        source.keys[child] = _position(key_node)
        out[key] = _construct(value_node, child, source, problems)
    return out
