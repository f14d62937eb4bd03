"""Which rows a preview shows: all, the first N, or N spread evenly over the file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

Item = TypeVar("Item")


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


def sample_positions(total: int, limit: int | None, sample: int) -> list[int]:
    """SAMPLE positions spread over the first LIMIT of TOTAL rows (all of them without LIMIT)."""
    return sample_evenly(min(total, limit or total), sample)


def describe_selection(total: int, limit: int | None, sample: int | None) -> str:
    """Which recipients a preview shows, in words."""
    considered = min(total, limit) if limit else total
    if sample and sample < considered:
        where = f"the first {considered}" if considered < total else "the file"
        return f"a sample of {sample}, spread over {where}"
    if considered < total:
        return f"the first {considered}"
    return "every recipient"
