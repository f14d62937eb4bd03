"""Files a command writes: never one of its inputs, never another of its outputs, writable.

Before a run sends anything, `check_outputs` compares every output path (the report, its
JSON summary, a rehearsal's record) with every input (the campaign file, the recipients,
the exclusion lists, the journal and its lock) by what they resolve to on disk, so that a
symlink or a hard link cannot slip through; `open_output` then creates the file, turning
an unusable place into a located error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from campaign_runner.errors import CampaignInvalid, Problem


def same_file(a: Path, b: Path) -> bool:
    """True when A and B name the same file: the same resolved path, or the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): then only the paths can tell
        return False


def check_outputs(outputs: Mapping[str, Path], inputs: Mapping[str, Path]) -> None:
    """Raise `CampaignInvalid` if an output is an input, another output, or not a file.

    Both mappings go from what a person calls the file (`the report`, `the recipients
    file`) to its path.
    """
    problems = []
    seen: dict[str, Path] = {}
    for label, path in outputs.items():
        problem = _unusable(path)
        clash = next((name for name, other in inputs.items() if same_file(path, other)), None)
        twin = next((name for name, other in seen.items() if same_file(path, other)), None)
        if problem is None and clash is not None:
            problem = f"is {clash}: a run never writes over its inputs"
        elif problem is None and twin is not None:
            problem = f"is also {twin}: choose a report name that does not end in .json"
        if problem is not None:
            problems.append(Problem(str(path), None, None, f"{label} {problem}"))
        seen[label] = path
    if problems:
        raise CampaignInvalid(problems)


def _unusable(path: Path) -> str | None:
    if not str(path) or path == Path("."):
        return "is empty: give a file name"
    if path.is_dir():
        return "is a folder: give a file name"
    if path.exists() and not path.is_file():
        return "is not a regular file"
    return None


def open_output(label: str, path: Path) -> TextIO:
    """Create PATH (and its folder) for writing text; a located error when that is impossible."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - returned
    except (FileExistsError, NotADirectoryError):
        reason = "a part of its folder is a file, not a folder"
    except OSError as error:
        reason = error.strerror or type(error).__name__
    else:
        return handle
    raise CampaignInvalid(
        Problem(str(path), None, None, f"cannot write {label}: {reason}; nothing was sent")
    )
