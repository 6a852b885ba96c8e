from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A pipeline folder with a datastore, a side-effect log the scripts append to, a quiet console."""
    from rich.console import Console

    class World:
        base = tmp_path
        ds = tmp_path / "ds"
        side = tmp_path / "side.log"
        cache = os.environ.get("MLPIPE_CACHE_DIR") or str(tmp_path / "cache")

        def __init__(self):
            self.buffer = io.StringIO()
            self.console = Console(file=self.buffer, width=200, force_terminal=False)

        def output(self) -> str:
            return self.buffer.getvalue()

        def run(self, ir, **kw):
            from mlpipe.local import run_pipeline

            self.buffer.seek(0)
            self.buffer.truncate()
            return run_pipeline(ir, self.base, console=self.console, cache_dir=self.cache, **kw)

    w = World()
    w.ds.mkdir()
    monkeypatch.setenv("SIDE_LOG", str(w.side))
    return w
