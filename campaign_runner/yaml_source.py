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


_ZIP_MAGIC = b"PK\x03\x04"  # .xlsx, .docx and .zip files all start so
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# Characters of a line shown under a syntax error: a wide terminal's width.
EXCERPT_CHARS = 100
_SNIFF_BYTES = 8192  # a NUL in the first 8 KiB: a binary file, not text


def decode_campaign(data: bytes, file: str) -> str:
    """The text of a campaign file's bytes, or a plain message saying how to save it."""
    if data.startswith(_ZIP_MAGIC):
        raise _not_text(file, "is a spreadsheet or zip file (.xlsx, .zip), not a campaign")
    if data.startswith(_UTF16_BOMS):
        raise _not_text(file, "is saved as UTF-16: save it as UTF-8 text")
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise _not_text(file, "is a binary file, not a campaign")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start]
        try:
            data.decode("cp1252")
        except UnicodeDecodeError:
            legacy = ""
        else:
            legacy = f", '{bytes([byte]).decode('cp1252')}' in Windows-1252"
        message = (
            f"is not saved as UTF-8 (byte 0x{byte:02X}{legacy}): open it in your editor "
            "and save it with the encoding UTF-8"
        )
        raise CampaignInvalid(Problem(file, line, None, message)) from None


def _not_text(file: str, what: str) -> CampaignInvalid:
    hint = "; a campaign is a YAML text file (`campaign init TYPE` writes a starter one)"
    return CampaignInvalid(Problem(file, None, None, what + hint))


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML TEXT into plain data and a `SourceMap`; duplicate keys are errors."""
    source = SourceMap(file)
    try:
        _check_shape(text)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        raise CampaignInvalid(syntax_problem(error, text, file)) from None
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


# What a person can do about each of libyaml's (and PyYAML's) scanner and parser problems;
# the library gives no code, only these fixed phrases, so this table is keyed by them.
_SYNTAX_HINTS = {
    "mapping values are not allowed in this context": (
        "a ':' where YAML did not expect one: put text holding ': ' in quotes, or line "
        "this key up with the keys above it"
    ),
    "found character that cannot start any token": (
        "YAML cannot start a value with this character: put the text in quotes"
    ),
    "found unexpected end of stream": "the file ends before this is closed",
    "did not find expected key": "this line is not lined up with the keys above it",
    "could not find expected ':'": "a key needs ':' after it (or a quote was left open)",
    "did not find expected ',' or ']'": "a list in [ ] needs ',' between items and a ']'",
    "did not find expected ',' or '}'": "a mapping in { } needs ',' between keys and a '}'",
    "found unknown escape character": (
        "inside double quotes a backslash starts an escape: write \\\\ or use single quotes"
    ),
    "did not find expected <document start>": "a line is not lined up with the ones above it",
    "did not find expected '-' indicator": "this list item is not lined up with the ones above",
}
_TAB_HINT = "YAML indents with spaces, never tabs: replace the tab with spaces"
_OPENERS = {
    "while scanning a quoted scalar": "the quote",
    "while parsing a flow sequence": "the list '['",
    "while parsing a flow mapping": "the mapping '{'",
}


def syntax_problem(error: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    """ERROR in plain words at its line, with that line and a caret under the spot; a quote or
    bracket left open is named with the line where it opened."""
    mark, context = error.problem_mark or error.context_mark, error.context_mark
    if mark is None:
        return Problem(file, None, None, f"not valid YAML: {error.problem or error}")
    lines = text.splitlines() or [""]
    problem = error.problem or ""
    hint = _SYNTAX_HINTS.get(problem) or " ".join(p for p in (error.context, problem) if p)
    opener = _OPENERS.get(error.context or "")
    if opener and context is not None and context.line != mark.line:
        if mark.line >= len(lines) or problem == "found unexpected end of stream":
            # Nothing is wrong where the file ends: the fix is where the quote or bracket opened.
            mark, hint = context, f"{opener} opened here is never closed (the file ends first)"
        else:
            hint += f"; {opener} opened at line {context.line + 1}, column {context.column + 1}"
    index = min(mark.line, len(lines) - 1)
    line = lines[index]
    if problem == "found character that cannot start any token" and "\t" in line[: mark.column + 1]:
        hint = _TAB_HINT
    col = min(mark.column, len(line)) + 1
    message = f"not valid YAML: {hint}"
    return Problem(file, index + 1, col, message, excerpt=_excerpt(line, col - 1))


def _excerpt(line: str, caret: int) -> tuple[str, int]:
    """LINE cut to at most `EXCERPT_CHARS` around CARET, and the caret's place in the cut."""
    if len(line) <= EXCERPT_CHARS:
        return line, caret
    start = max(0, min(caret - EXCERPT_CHARS // 2, len(line) - EXCERPT_CHARS))
    cut = line[start : start + EXCERPT_CHARS]
    head, tail = ("..." if start else ""), ("..." if start + EXCERPT_CHARS < len(line) else "")
    return head + cut + tail, caret - start + len(head)


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
