"""What a CSV cell may hold: text that reads the same to the customer as in the spreadsheet.

Control characters (C0 other than tab, newline and a CR before a newline; DEL; C1, which
includes terminal escapes) and Unicode bidi overrides, embeddings, isolates and marks can
make a message read differently from how it looks in the file, or rewrite a terminal when a
value is printed. `unsafe_character` finds them; `quoted` shows any value from data with
them escaped, so no output ever writes a control character that came from a file.
"""

from __future__ import annotations

import re
import unicodedata

# Bidi controls that a right-to-left name may legitimately carry: marks (LRM, RLM, ALM),
# embeddings and their pop (LRE, RLE, PDF), isolates (LRI, RLI, FSI, PDI).
_BIDI_ALLOWABLE = "\u200e\u200f\u061c\u202a\u202b\u202c\u2066\u2067\u2068\u2069"
# Overrides (LRO, RLO) reverse how text is shown; no name needs them: always refused.
_BIDI_OVERRIDES = "\u202d\u202e"
_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_LONE_CR = r"\r(?!\n)"

_UNSAFE = re.compile(f"[{_CONTROLS}{_BIDI_OVERRIDES}{_BIDI_ALLOWABLE}]|{_LONE_CR}")
_UNSAFE_WITH_BIDI = re.compile(f"[{_CONTROLS}{_BIDI_OVERRIDES}]|{_LONE_CR}")
_ESCAPED = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in (
        *range(0x20),
        0x7F,
        *range(0x80, 0xA0),
        *map(ord, _BIDI_ALLOWABLE + "\u202d\u202e"),
    )
}
_ESCAPED.update({ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"})

MAX_QUOTED_CHARS = 60  # a value quoted in a message is cut here: enough to recognise it


def unsafe_pattern(allow_bidi: bool = False) -> re.Pattern[str]:
    """The compiled search for characters a cell must not hold (bidi marks allowed or not)."""
    return _UNSAFE_WITH_BIDI if allow_bidi else _UNSAFE


def describe(character: str) -> str:
    """`U+202E (RIGHT-TO-LEFT OVERRIDE)`: a character named so a person can find it."""
    name = unicodedata.name(character, "") or _CONTROL_NAMES.get(character, "control character")
    return f"U+{ord(character):04X} ({name})"


def unsafe_reason(value: str, allow_bidi: bool = False) -> str | None:
    """Why VALUE cannot go into a message (its first unsafe character, described), or None."""
    match = unsafe_pattern(allow_bidi).search(value)
    if match is None:
        return None
    character = match.group()
    what = "a bidi control" if character in _BIDI_ALLOWABLE + _BIDI_OVERRIDES else "a control"
    return f"holds {what} character {describe(character)}"


def quoted(value: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """VALUE in single quotes, every control and bidi character escaped, cut at LIMIT."""
    cut = value if len(value) <= limit else value[:limit] + "…"
    return "'" + cut.translate(_ESCAPED) + "'"


_CONTROL_NAMES = {
    "\x00": "NUL",
    "\x1b": "ESCAPE",
    "\x7f": "DELETE",
    "\x9b": "CONTROL SEQUENCE INTRODUCER",
    "\r": "CARRIAGE RETURN",
}
