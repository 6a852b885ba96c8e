"""The worker locks hold the orchestrator and what the shipped step runtime needs, nothing of mlpipe.

A platform team installs requirements/airflow.txt or prefect.txt on its workers as they are: the
compiled folder carries mlpipe's step runtime (stdlib + fsspec), so the compiler's own dependencies
(pydantic, jinja2, typer, rich, libcst, ...) are there only when the orchestrator itself needs them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements"


def _pins(lock: str) -> dict[str, str]:
    """{package: the lock's `# via` annotation}."""
    out = {}
    for line in (REQUIREMENTS / lock).read_text().splitlines():
        m = re.match(r"([A-Za-z0-9_.\-\[\]]+)==\S+\s*(?:#\s*via\s*(.*))?$", line)
        if m:
            out[m.group(1).lower()] = m.group(2) or ""
    return out


@pytest.mark.parametrize("name", ["airflow", "prefect"])
def test_a_worker_lock_has_the_runtime_needs_and_nothing_of_mlpipe(name):
    text = (REQUIREMENTS / f"{name}.in").read_text()
    assert "mlpipe.in" not in text
    pins = _pins(f"{name}.txt")
    assert {"fsspec", "s3fs", "adlfs"} <= set(pins)
    assert not [p for p, via in pins.items() if "mlpipe.in" in via]
    assert "mlpipe" not in pins and "mlpipe-compiler" not in pins
    # a compiler-only dependency is in the lock only because the orchestrator pulls it in
    for package in ("pydantic", "jinja2", "typer", "rich", "libcst", "pathspec", "pyyaml"):
        assert package not in pins or pins[package].strip(), package
