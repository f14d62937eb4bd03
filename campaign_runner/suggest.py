"""The one "did you mean" of the project: the closest known word to a misspelt one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice most like WORD, or None when none is close enough (difflib's ratio)."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """` (did you mean 'X'?)` to append to a message, or an empty string."""
    match = closest(word, choices, cutoff)
    return f" (did you mean '{match}'?)" if match else ""
