"""Strict Kubernetes schema validation of manifests rendered by an orchestrator's own code."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from . import VENV


def validate_strict(manifests: dict[str, dict], folder: Path) -> None:
    """`kubernetes-validate --strict` (unknown fields are errors) on every manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, manifest in manifests.items():
        path = folder / f"{name.replace('/', '_')}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=True))
        files.append(str(path))
    cmd = [str(VENV / "bin" / "kubernetes-validate"), "--strict", "--quiet", *files]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def quantity(text: str) -> float:
    """A Kubernetes CPU / memory quantity as a number (cores; bytes)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)
