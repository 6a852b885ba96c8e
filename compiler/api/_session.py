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
        self.registrations: list = []  # ir.DatasetRegistration, in order
        self.network_refusals: list[BaseException] = []
        self.warnings: list[tuple[Origin | None, str]] = []
        self.displays: dict[str, str] = {}
        self.last_activity: Origin | None = None
        self._project_files: dict[str, str | None] = {}

    @property
    def config(self) -> WorkspaceConfig:
        if self._config is None:
            from ..workspace_config import load as load_config

            self._config = load_config(self.pipeline_dir)
        return self._config

    def next_seq(self) -> int:
        return next(self._seq)

    def project_file(self, filename: str) -> str | None:
        """`filename` relative to the pipeline folder when it is the user's code: the pipeline file
        (or notebook cell) or a helper module of the project (not an installed package)."""
        rel = self.user_files.get(filename)
        if rel is not None or not self.user_files:
            return rel
        if filename not in self._project_files:
            self._project_files[filename] = _project_rel(self.pipeline_dir, filename)
        return self._project_files[filename]

    def origin(self) -> Origin | None:
        """The innermost frame of the call stack that lies in the user's code (the pipeline file
        first: a helper module's line is used only when the pipeline file is not on the stack)."""
        frame = sys._getframe(1)
        found = helper = None
        while frame is not None and found is None:
            name = frame.f_code.co_filename
            rel = self.user_files.get(name)
            if rel is not None:
                found = (rel, frame.f_lineno)
            elif helper is None:
                rel = self.project_file(name)
                helper = (rel, frame.f_lineno) if rel is not None else None
            frame = frame.f_back
        found = found or helper
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


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _project_rel(project: Path, filename: str) -> str | None:
    if not filename.endswith(".py") or not os.path.isabs(filename):
        return None
    root = os.path.abspath(project)
    full = os.path.abspath(filename)
    if full.startswith(_PACKAGE_DIR + os.sep) or not full.startswith(root + os.sep):
        return None
    rel = os.path.relpath(full, root)
    parts = rel.split(os.sep)
    if any(p in ("site-packages", "dist-packages") or p.startswith(".") for p in parts[:-1]):
        return None  # an installed package, or a virtualenv (.venv) inside the project
    return "/".join(parts)


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
