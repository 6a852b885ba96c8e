"""The codemod on source text: every import form, names without an equivalent, line stability."""

from __future__ import annotations

import textwrap

import pytest

import mlpipe.azureml  # noqa: F401  (serves azureml.* in this process, as capture does)
from mlpipe.migrate import migrate_python, resolve
from tests.migrate.migrate_helpers import azureml_uses


def migrate(source: str) -> tuple[str, list]:
    source = textwrap.dedent(source)
    new, problems = migrate_python(source, "t.py")
    # Invariants of every rewrite: same number of lines, idempotent, still valid Python.
    assert new.count("\n") == source.count("\n")
    again, problems_again = migrate_python(new, "t.py")
    assert again == new
    compile(new, "t.py", "exec")
    return new, problems


def bindings(source: str) -> dict:
    namespace: dict = {}
    exec(compile(textwrap.dedent(source), "t.py", "exec"), namespace)
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


def assert_same_objects(before: str, after: str, names: list[str]) -> None:
    old, new = bindings(before), bindings(after)
    for name in names:
        assert old[name] is new[name], name


def test_from_imports_keep_aliases_comments_and_objects():
    source = """\
        from azureml.core import Workspace, Run as R  # the workspace
        from azureml.core.compute import AmlCompute, ComputeTarget
        from azureml.data.datapath import DataPath
        from azureml.pipeline.core.graph import PipelineParameter
    """
    new, problems = migrate(source)
    assert new == textwrap.dedent(
        """\
        from mlpipe import Workspace, Run as R  # the workspace
        from mlpipe import AmlCompute, ComputeTarget
        from mlpipe import DataPath
        from mlpipe import PipelineParameter
        """
    )
    assert problems == []
    assert_same_objects(
        source,
        new,
        ["Workspace", "R", "AmlCompute", "ComputeTarget", "DataPath", "PipelineParameter"],
    )


def test_parenthesised_import_keeps_its_layout():
    source = """\
        from azureml.pipeline.core import (  # graph classes
            Pipeline,
            PipelineData,  # intermediate data
            PipelineParameter,
        )
    """
    new, _ = migrate(source)
    assert new == textwrap.dedent(source).replace("azureml.pipeline.core", "mlpipe")


def test_module_imports_and_attribute_references():
    source = """\
        import os
        import azureml.core
        import azureml.pipeline.steps

        ws_class = azureml.core.Workspace
        step_class = azureml.pipeline.steps.PythonScriptStep
        ofdc = azureml.data.OutputFileDatasetConfig
        def make():
            return azureml.core.Dataset.File
    """
    new, problems = migrate(source)
    assert new == textwrap.dedent(
        """\
        import os
        import mlpipe
        import mlpipe

        ws_class = mlpipe.Workspace
        step_class = mlpipe.PythonScriptStep
        ofdc = mlpipe.OutputFileDatasetConfig
        def make():
            return mlpipe.Dataset.File
        """
    )
    assert problems == []
    assert_same_objects(source, new, ["ws_class", "step_class", "ofdc"])
    assert azureml_uses(new) == []


def test_aliased_module_and_submodule_imports():
    source = """\
        import azureml.core as aml
        from azureml.core import compute
        from azureml import pipeline

        W = aml.Workspace
        A = aml.compute.AmlCompute
        C = compute.ComputeTarget
        S = pipeline.steps.PythonScriptStep
    """
    new, problems = migrate(source)
    assert new == textwrap.dedent(
        """\
        import mlpipe as aml
        import mlpipe as compute
        import mlpipe as pipeline

        W = aml.Workspace
        A = aml.AmlCompute
        C = compute.ComputeTarget
        S = pipeline.PythonScriptStep
        """
    )
    assert problems == []
    assert_same_objects(source, new, ["W", "A", "C", "S"])


def test_imports_inside_functions_and_try_blocks():
    source = """\
        try:
            from azureml.core import Run
        except ImportError:
            Run = None

        def main():
            from azureml.core.run import Run as StepRun
            return StepRun
        got = main()
    """
    new, _ = migrate(source)
    assert "from mlpipe import Run\n" in new
    assert "from mlpipe import Run as StepRun\n" in new
    assert_same_objects(source, new, ["Run", "got"])


def test_names_without_equivalent_stay_on_azureml_and_are_reported():
    source = """\
        from azureml.pipeline.steps import PythonScriptStep, ParallelRunStep
        from azureml.core.model import InferenceConfig
        from azureml.core import *
    """
    new, problems = migrate(source)
    assert new.splitlines() == [
        "from mlpipe import PythonScriptStep; from azureml.pipeline.steps import ParallelRunStep",
        "from azureml.core.model import InferenceConfig",
        "from azureml.core import *",
    ]
    by_line = {p.line: p.message for p in problems}
    assert sorted(by_line) == [1, 2, 3]
    assert "ParallelRunStep is not supported by mlpipe yet" in by_line[1]
    assert "fan-out" in by_line[1]  # the alternative from mlpipe's own table
    assert "no mlpipe equivalent" in by_line[2]
    assert "import *" in by_line[3]
    assert all(p.file == "t.py" for p in problems)


def test_dropping_a_name_from_a_parenthesised_import_keeps_every_line():
    source = """\
        from azureml.pipeline.steps import (
            CommandStep,
            HyperDriveStep,  # tuning
            PythonScriptStep as PSS,
        )
        step = PSS
    """
    new, problems = migrate(source)
    lines = new.splitlines()
    assert lines[0] == "from mlpipe import ("
    assert lines[1] == "    CommandStep,"
    assert lines[2].lstrip().startswith("# HyperDriveStep: still imported from azureml")
    assert lines[2].endswith("# tuning")
    assert lines[3] == "    PythonScriptStep as PSS,"
    assert lines[4] == "); from azureml.pipeline.steps import HyperDriveStep"
    assert lines[5] == "step = PSS"
    assert [p.line for p in problems] == [3]
    assert_same_objects(source, new, ["CommandStep", "PSS", "HyperDriveStep", "step"])


@pytest.mark.parametrize("dropped", ["first", "middle", "last"])
def test_dropping_names_anywhere_in_a_list(dropped):
    names = {"first": 0, "middle": 1, "last": 2}
    items = ["Workspace", "Run", "Experiment"]
    items[names[dropped]] = "Webservice"  # azureml.core.Webservice has no mlpipe equivalent
    body = "".join(f"    {n},\n" for n in items)
    source = f"from azureml.core import (\n{body})\nx = 1\n"
    new, problems = migrate(source)
    assert new.splitlines()[-1] == "x = 1"
    assert "from azureml.core import Webservice" in new
    assert [p.line for p in problems] == [2 + names[dropped]]


def test_no_trailing_comma_and_names_sharing_lines():
    source = """\
        from azureml.core import (Workspace, Webservice,
                                  Run)
        x = 1
    """
    new, _ = migrate(source)
    assert new.splitlines()[2] == "x = 1"
    assert "from azureml.core import Webservice" in new
    assert_same_objects(source, new, ["Workspace", "Run", "Webservice"])


def test_module_references_without_equivalent_keep_the_azureml_import():
    source = """\
        import azureml.core
        version = azureml.core.VERSION
        W = azureml.core.Workspace
    """
    new, problems = migrate(source)
    assert new == textwrap.dedent(
        """\
        import azureml.core, mlpipe
        version = azureml.core.VERSION
        W = mlpipe.Workspace
        """
    )
    assert [(p.line, "VERSION" in p.message) for p in problems] == [(2, True)]
    assert_same_objects(source, new, ["version", "W"])


def test_aliased_module_with_unresolved_use_is_left_whole():
    source = """\
        import azureml.core as aml
        W = aml.Workspace
        v = aml.VERSION
    """
    new, problems = migrate(source)
    assert new == textwrap.dedent(source)
    assert {p.line for p in problems} == {1, 3}


def test_continuation_lines_aligned_under_the_parenthesis_stay_aligned():
    source = """\
        def f():
            from azureml.core import (Workspace,
                                      Run)
    """
    new, _ = migrate(source)
    assert new.splitlines()[1:] == [
        "    from mlpipe import (Workspace,",
        "                        Run)",
    ]


def test_backslash_continued_import():
    source = "from azureml.core import Workspace, \\\n    Run\nx = 1\n"
    new, _ = migrate(source)
    assert new == "from mlpipe import Workspace, \\\n    Run\nx = 1\n"


def test_code_without_azureml_is_untouched():
    source = """\
        import os  # azureml is only mentioned in this comment
        PACKAGES = ["azureml-sdk", "azureml-defaults"]
        from mlpipe import Workspace
    """
    new, problems = migrate(source)
    assert new == textwrap.dedent(source)
    assert problems == []


def test_crlf_line_endings_survive():
    source = "from azureml.core import Run\r\nrun = Run.get_context()\r\n"
    new, _ = migrate_python(source, "t.py")
    assert new == "from mlpipe import Run\r\nrun = Run.get_context()\r\n"


def test_equivalents_come_from_mlpipe_tables():
    import importlib

    import mlpipe
    from mlpipe.api.unsupported import ALTERNATIVES
    from mlpipe.azureml import MODULES

    mapped = 0
    for path, names in MODULES.items():
        module = importlib.import_module(".".join(p for p in ("azureml", path) if p))
        for name in names:
            r = resolve(path, name)
            if r.kind == "name":
                # The mlpipe name is the very object that azureml.<path> serves.
                assert getattr(mlpipe, name) is getattr(module, name), (path, name)
                mapped += 1
            else:
                assert r.kind == "none" and r.reason
    assert mapped > 50
    for name in ALTERNATIVES:
        assert resolve("pipeline.steps", name).kind == "none"
    assert resolve("core", "Run").kind == "name"
    assert resolve("core", "compute").kind == "module"
    assert resolve("core", "VERSION").kind == "none"


def test_the_migration_guide_lists_every_unsupported_class():
    from pathlib import Path

    from mlpipe.api.unsupported import ALTERNATIVES

    guide = Path(__file__).resolve().parents[2] / "docs" / "migrating-from-azureml-v1.md"
    text = guide.read_text(encoding="utf-8")
    missing = [name for name in ALTERNATIVES if f"`{name}`" not in text]
    assert missing == [], f"add these to 'Not supported yet' in {guide.name}"
