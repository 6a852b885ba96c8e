"""The capture session: what the user's file has built so far, and where each object came from.

The authoring API records into the active session; `mlpipe.capture` opens one per file. Outside a
capture (a script importing the API on its own) a default session with the zero-setup workspace is
used, so objects can still be built and inspected.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError

# pydantic (the IR) and PyYAML (mlpipe.yaml) load only when a capture needs them: step scripts
# running in a bare environment venv may still `from azureml.core import Run, Dataset`.
if TYPE_CHECKING:
    from ..ir import Origin
    from ..workspace_config import WorkspaceConfig


class Session:
    def __init__(self, pipeline_dir: Path, user_files: dict[str, str] | None = None):
        # user_files: code filename as compiled -> name relative to pipeline_dir (for Origin.file)
        self.pipeline_dir = pipeline_dir
        self.user_files = dict(user_files or {})
        self._config: WorkspaceConfig | None = None
        self._seq = itertools.count()
        self.computes: dict[str, object] = {}
        self.environments: dict[str, object] = {}
        self.datasets: dict[str, object] = {}
        self.steps: list = []
        self.pipelines: list = []
        self.publications: list = []
        self.schedules: list = []
        self.endpoints: dict = {}
        self.drafts: list = []
        # datastores registered by the code (Datastore.register_*): name -> (type, origin)
        self.registered_datastores: dict[str, tuple[str, Origin | None]] = {}
        self.uploads: list = []  # ir.DatastoreUpload, in order
        self.network_refusals: list[BaseException] = []
        self.warnings: list[tuple[Origin | None, str]] = []
        self.displays: dict[str, str] = {}
        self.last_activity: Origin | None = None

    @property
    def config(self) -> WorkspaceConfig:
        if self._config is None:
            from ..workspace_config import load as load_config

            self._config = load_config(self.pipeline_dir)
        return self._config

    def next_seq(self) -> int:
        return next(self._seq)

    def origin(self) -> Origin | None:
        """The outermost frame of the call stack that lies in the user's file."""
        frame = sys._getframe(1)
        found = None
        while frame is not None:
            rel = self.user_files.get(frame.f_code.co_filename)
            if rel is not None:
                found = (rel, frame.f_lineno)
            frame = frame.f_back
        if found is None:
            return None
        from ..ir import Origin

        return Origin(file=found[0], line=found[1])

    def warn(self, message: str, origin: Origin | None = None) -> None:
        self.warnings.append((origin or self.origin(), message))

    def rel_path(self, path) -> str:
        """`path` relative to the pipeline folder when inside it (POSIX), else absolute."""
        full = Path(os.path.abspath(os.path.expanduser(str(path))))
        try:
            return full.relative_to(self.pipeline_dir.resolve()).as_posix() or "."
        except ValueError:
            return str(full)


_default: Session | None = None
_active: Session | None = None


def current() -> Session:
    global _default
    if _active is not None:
        return _active
    if _default is None:
        _default = Session(Path.cwd())
    return _default


def activate(session: Session | None) -> Session | None:
    global _active
    previous, _active = _active, session
    return previous


def fail(message: str) -> UserError:
    """An error at the user's current line (raise the result)."""
    return UserError(message, current().origin())
