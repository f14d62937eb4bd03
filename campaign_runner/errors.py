"""Errors a person can act on: where the problem is, what is wrong, what was meant.

Every mistake a user can make ends as a `CampaignError` (or a list of `Problem`s inside
one); the CLI prints them as `FILE:LINE:COL: message` and exits with the error's code.
"""

from __future__ import annotations

from dataclasses import dataclass

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_INVALID = 2
EXIT_ABORTED = 3
EXIT_BUSY = 4


@dataclass(frozen=True)
class Problem:
    """One thing wrong, located in a file: `file:line:col: message` (line, col 1-based)."""

    file: str
    line: int | None
    col: int | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        return f"{where}: {self.message}"


class CampaignError(Exception):
    """A user's mistake or a refusal: carries the problems and the exit code to use."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem("campaign", None, None, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class CampaignInvalid(CampaignError):
    """The campaign file, its recipients or its message do not validate; nothing was sent."""


class RunAborted(CampaignError):
    """The run stopped part-way: the gateway refused the credentials, or failures piled up."""

    exit_code = EXIT_ABORTED


class RunBusy(CampaignError):
    """Another run of the same campaign holds the lock."""

    exit_code = EXIT_BUSY
