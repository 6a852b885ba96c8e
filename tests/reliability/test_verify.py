"""`mlpipe verify`: the target's own loader, damage to generated files, and staleness."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.targets import MLPIPE, python_of

TARGETS = ["airflow", "prefect", "kfp"]
MAIN = {"airflow": "*.py", "prefect": "*_flow.py", "kfp": "*.yaml"}


def verify(out: Path, target: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MLPIPE, "verify", str(out), "--target", target, "--python", python_of(target), *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    "target", [pytest.param(t, marks=pytest.mark.xdist_group(t)) for t in TARGETS]
)
def test_verify_loads_detects_damage_and_staleness(target, pipeline_copy, tmp_path):
    pipeline = pipeline_copy("chain_closure")
    out = tmp_path / "out"
    proc = subprocess.run(
        [MLPIPE, "compile", str(pipeline), "--target", target, "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    ok = verify(out, target, "--source", str(pipeline))
    assert ok.returncode == 0, ok.stderr
    assert "load and are current" in ok.stderr

    # a step script changes: the compiled artifacts are stale
    script = pipeline.parent / "src" / "square.py"
    script.write_text(script.read_text() + "\n# edited\n")
    stale = verify(out, target, "--source", str(pipeline))
    assert stale.returncode == 1
    assert "is stale" in stale.stderr and "compile again" in stale.stderr

    # a generated file is damaged: both the manifest check and the target's loader notice
    main = sorted(p for p in out.glob(MAIN[target]) if not p.name.endswith(".deploy.yaml"))[0]
    main.write_text(main.read_text() + "\n)( this is not valid\n")
    damaged = verify(out, target)
    assert damaged.returncode == 1
    assert f"{main}: changed since mlpipe wrote it" in damaged.stderr
    loader_lines = [ln for ln in damaged.stderr.splitlines() if "changed since" not in ln]
    assert any("cannot" in ln for ln in loader_lines), damaged.stderr


def test_verify_refuses_a_folder_without_artifacts(tmp_path):
    proc = subprocess.run(
        [MLPIPE, "verify", str(tmp_path), "--target", "kfp"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "holds no kfp artifacts written by mlpipe" in proc.stderr
