"""What capture runs: a user's program as chunks of code (a whole .py file, or notebook cells).

Its own module so that the notebook reader (which builds programs) and capture (which runs them)
do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Problem


@dataclass
class Chunk:
    """A piece of user code: a whole .py file, or one notebook cell."""

    filename: str  # as compiled (what tracebacks show)
    source: str
    rel: str  # Origin.file: relative to the pipeline folder ("nb.ipynb:cell 3" for a cell)
    display: str  # what error messages show, e.g. "nb.ipynb:cell 3"
    line_offset: int
    # callable(namespace) run when the chunk runs, before its code (a notebook's %%writefile)
    action: object = None


@dataclass
class Program:
    chunks: list[Chunk]
    warnings: list[Problem] = field(default_factory=list)
    before_chunk: object = None  # callable(chunk), called before each chunk runs
    globals: dict = field(default_factory=dict)  # extra names the code sees (notebook builtins)
