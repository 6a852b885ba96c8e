"""`mlpipe compile` without typer (mlpipe.cli.plain_compile): the same arguments, the same output and
the same errors as the typer command, and typer still parses everything else."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpipe import cli, cli_common, commands

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "seed_pipeline" / "pipeline.py"

PLAIN = [
    ["compile", "p.py", "-t", "kfp", "-o", "out"],
    ["compile", "--target", "airflow", "--output", "dags", "p.py"],
    ["compile", "--target=prefect", "--output=flows", "--profile=kubernetes", "p.py:nightly"],
    ["compile", "-m", "pkg.pipe:build", "-t", "kfp", "-o", "o", "--profile", "local"],
    ["compile", "p.py", "-t", "kfp", "-o", "out", "--capture-timeout", "12.5"],
    ["compile", "-t", "kfp", "-o", "out"],  # no FILE: compile_source reports it, as via typer
]

NOT_PLAIN = [
    [],
    ["--version"],
    ["run", "p.py"],
    ["compile"],
    ["compile", "--help"],
    ["compile", "p.py", "-t", "kfp"],  # no -o: typer reports the missing option
    ["compile", "p.py", "-t", "kfp", "-o"],
    ["compile", "p.py", "-t", "kfp", "-t", "airflow", "-o", "out"],
    ["compile", "a.py", "b.py", "-t", "kfp", "-o", "out"],
    ["compile", "p.py", "-t=kfp", "-o", "out"],
    ["compile", "p.py", "-tkfp", "-o", "out"],
    ["compile", "p.py", "--tar", "kfp", "-o", "out"],
    ["compile", "p.py", "-t", "kfp", "-o", "-x"],
    ["compile", "p.py", "-t", "kfp", "-o", ""],
    ["compile", "p.py", "-t", "kfp", "-o", "out", "--"],
    ["compile", "p.py", "-t", "kfp", "-o", "out", "--capture-timeout", "1e3"],
    ["compile", "p.py", "-t", "kfp", "-o", "out", "--capture-timeout", "soon"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_compile_reads_what_typer_reads(argv, monkeypatch):
    seen = {}
    monkeypatch.setattr(commands, "compile_source", lambda *a: seen.update(args=a))
    result = CliRunner().invoke(commands.app, argv)
    assert result.exit_code == 0, result.output
    names = ["target", "output", "profile", "file", "module", "capture_timeout"]
    via_typer = dict(zip(names, seen["args"], strict=True))
    via_typer.setdefault("capture_timeout", cli_common.CAPTURE_TIMEOUT)
    fast = {"capture_timeout": cli_common.CAPTURE_TIMEOUT, **cli.plain_compile(argv)}
    assert fast == via_typer
    assert type(fast["output"]) is type(via_typer["output"])


@pytest.mark.parametrize("argv", NOT_PLAIN, ids=lambda a: " ".join(a) or "(none)")
def test_everything_else_goes_to_typer(argv):
    assert cli.plain_compile(argv) is None


def test_own_targets_are_the_entry_points():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entry_points = project["project"]["entry-points"]["mlpipe.backends"]
    assert {k: ":".join(v) for k, v in cli_common.OWN_TARGETS.items()} == entry_points


def _mlpipe(args, cwd, *, via_typer: bool):
    if via_typer:
        code = "import sys; from mlpipe.commands import app; sys.argv[0] = 'mlpipe'; app()"
    else:
        code = (
            "import sys; from mlpipe.cli import main; sys.argv[0] = 'mlpipe'; main(); "
            "print(sorted(m for m in ('typer', 'rich', 'mlpipe.commands') if m in sys.modules))"
        )
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_same_compile_either_way(tmp_path):
    """Byte-identical artifacts and messages, and the fast path loads neither typer nor rich."""
    outs = {}
    for via_typer in (False, True):
        out = tmp_path / f"out-{via_typer}"
        args = ["compile", str(SAMPLE), "--target", "kfp", "-o", str(out)]
        done = _mlpipe(args, tmp_path, via_typer=via_typer)
        assert done.returncode == 0, done.stderr
        outs[via_typer] = (_tree(out), done.stderr.replace(str(out), "OUT"))
        if not via_typer:
            assert done.stdout.strip() == "[]"
    assert outs[False] == outs[True]


def test_same_errors_either_way(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("raise ValueError('boom')\n")
    for args in (
        ["compile", str(bad), "-t", "kfp", "-o", "out"],
        ["compile", str(SAMPLE), "-t", "nope", "-o", "out"],
        ["compile", "-t", "kfp", "-o", "out"],
    ):
        fast, slow = (_mlpipe(args, tmp_path, via_typer=v) for v in (False, True))
        assert fast.returncode == slow.returncode == 2, (fast.stderr, slow.stderr)
        assert fast.stderr == slow.stderr
        assert "Traceback" not in fast.stderr
