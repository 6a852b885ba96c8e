"""Errors about the user's input. Each carries the place in the user's files that caused it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class MlpipeError(Exception):
    """Bad input: reported as `file:line: message` lines with exit status 2, no traceback."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem("mlpipe", None, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UserError(Exception):
    """Raised by the authoring API inside the user's code; capture turns it into a Problem at the
    user's line. `origin` may be given when the API knows better than the call stack."""

    def __init__(self, message: str, origin=None):
        super().__init__(message)
        self.message = message
        self.origin = origin


class NotSupportedError(UserError):
    pass
