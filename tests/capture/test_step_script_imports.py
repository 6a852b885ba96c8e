"""Step scripts import `azureml.*` inside environment venvs that have neither pydantic nor PyYAML."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_v1_names_import_without_the_compiler_dependencies():
    script = textwrap.dedent("""
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pydantic", "yaml", "jinja2", "typer", "rich", "libcst"):
                    raise ImportError("not in this venv: " + name)

        sys.meta_path.insert(0, Block())
        import mlpipe.azureml  # what the step launcher does first
        from azureml.core import Dataset, Environment, Experiment, Run, Workspace
        from azureml.data import OutputFileDatasetConfig
        from azureml.pipeline.core import PipelineData
        run = Run.get_context()
        run.log("x", 1)
        assert "pydantic" not in sys.modules and "yaml" not in sys.modules
        print("imported", Dataset.__name__, Workspace.__name__, run.id.split("_")[0])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "imported Dataset Workspace OfflineRun"
