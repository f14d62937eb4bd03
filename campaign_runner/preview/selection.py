"""Which rows a preview shows: all, the first N, or N spread evenly over the file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

Item = TypeVar("Item")

# Messages `preview` shows on a terminal unless --limit, --sample or --all says otherwise:
# enough to read, where 27,000 would scroll the counts away.
TERMINAL_SAMPLE = 5


def terminal_sample(
    limit: int | None, sample: int | None, show_all: bool, on_terminal: bool
) -> int | None:
    """The sample a preview shows: SAMPLE as given, else `TERMINAL_SAMPLE` on a terminal
    when no --limit or --all asks for the rows in order."""
    if sample or limit or show_all or not on_terminal:
        return sample
    return TERMINAL_SAMPLE


def sample_evenly(total: int, count: int) -> list[int]:
    """COUNT row positions (0-based) spread evenly from the first to the last of TOTAL rows."""
    if count >= total:
        return list(range(total))
    if count <= 1:
        return [0] if count == 1 else []
    return [i * (total - 1) // (count - 1) for i in range(count)]


def pick(items: Iterable[Item], positions: Sequence[int]) -> Iterator[Item]:
    """Only the ITEMS at POSITIONS (0-based, sorted), stopping after the last one."""
    wanted = iter(positions)
    target = next(wanted, None)
    if target is None:
        return
    for position, item in enumerate(items):
        if position == target:
            yield item
            target = next(wanted, None)
            if target is None:
                return  # read no row past the last one shown


def describe_selection(total: int, limit: int | None, sample: int | None) -> str:
    """Which recipients a preview shows, in words."""
    considered = min(total, limit) if limit else total
    if sample and sample < considered:
        where = f"the first {considered}" if considered < total else "the file"
        return f"a sample of {sample}, spread over {where}"
    if considered < total:
        return f"the first {considered}"
    return "every recipient"
