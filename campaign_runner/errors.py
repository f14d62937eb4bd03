"""Errors a person can act on: where the problem is, what is wrong, what was meant.

    CampaignError          exit 2: a user's mistake or a refusal; nothing was sent
     ├── CampaignInvalid   the campaign file, its recipients or its message do not validate
     └── RunBusy           exit 4: another run of the same campaign holds the lock

Every mistake a user can make ends as a `CampaignError` carrying `Problem`s; the CLI prints
them as `FILE:LINE:COL: message` and exits with the error's `exit_code`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

# Characters that change what a terminal shows: C0/C1 controls (escape sequences included),
# and the bidi marks, overrides and isolates that reorder a line.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """TEXT with every control or bidi character shown escaped, as repr() would (`\\x1b`)."""
    return _UNPRINTABLE.sub(lambda match: repr(match.group())[1:-1], text)


class ExitCode(IntEnum):
    """What a run's exit code tells cron (the README's table)."""

    OK = 0  # every recipient sent or skipped on purpose, or nothing to do
    SOME_FAILED = 1  # some recipients failed, were invalid or are unknown
    INVALID = 2  # invalid campaign or usage; nothing sent
    ABORTED = 3  # the gateway refused the credentials, a campaign-wide error, or failures piled up
    BUSY = 4  # another run of the same campaign is in progress
    CRASHED = 70  # a bug in the runner stopped the run (sysexits' EX_SOFTWARE); report written
    SIGINT = 130  # interrupted by Ctrl-C; the report is written
    SIGTERM = 143  # interrupted by SIGTERM; the report is written


@dataclass(frozen=True)
class Problem:
    """One thing wrong, located in a file: `file:line:col: message` (line, col 1-based)."""

    file: str
    line: int | None
    col: int | None
    message: str
    # A line of the file shown under the message, and where in it the caret goes (0-based).
    excerpt: tuple[str, int] | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        # Files and messages quote values from campaign and CSV files: data, never terminal codes.
        text = printable(f"{where}: {self.message}")
        if self.excerpt is None:
            return text
        line, caret = self.excerpt
        pad = " " * len(printable(line[:caret]))
        return f"{text}\n    {printable(line)}\n    {pad}^"


class CampaignError(Exception):
    """A user's mistake or a refusal: carries the problems and the exit code to use."""

    exit_code = ExitCode.INVALID

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem("campaign", None, None, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class CampaignInvalid(CampaignError):
    """The campaign file, its recipients or its message do not validate; nothing was sent."""


class RunBusy(CampaignError):
    """Another run of the same campaign holds the lock."""

    exit_code = ExitCode.BUSY
