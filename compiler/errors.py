"""Errors about the user's input. Each carries the place in the user's files that caused it."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A notebook cell as a place: "nb.ipynb:cell 3". Its lines read "nb.ipynb:cell 3:line 5".
_CELL = re.compile(r"\.ipynb:cell \d+$")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    @property
    def where(self) -> str:
        if not self.line:
            return self.file
        if _CELL.search(self.file):
            return f"{self.file}:line {self.line}"
        return f"{self.file}:{self.line}"

    def folded(self) -> Problem:
        """The same problem with a notebook cell's line folded into `file` (`line` None), so that
        code printing `file:line` by hand still shows `nb.ipynb:cell 3:line 5`."""
        if self.line and _CELL.search(self.file):
            return Problem(self.where, None, self.message)
        return self


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
