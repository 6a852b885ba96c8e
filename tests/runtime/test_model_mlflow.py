"""Model.register mirrors the version to MLflow's model registry when MLFLOW_TRACKING_URI is set
(issue 13 item 8): same name, version and tags, files downloadable from the MLflow server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
import uuid

import pytest

from tests.servers import mlflow_api

pytestmark = pytest.mark.xdist_group("mlflow")  # one MLflow server per test session

REGISTER = """
import json, os, sys
from mlpipe import Model, Workspace
ws = Workspace.from_config()
os.makedirs("outputs", exist_ok=True)
out = []
for mse in (0.5, 0.25):
    with open("outputs/model.json", "w") as fh:
        json.dump({"mse": mse}, fh)
    model = Model.register(ws, "outputs/model.json", sys.argv[1], tags={"mse": mse, "area": "x"},
                           description=f"mse {mse}")
    out.append([model.id, model.tags])
print(json.dumps(out))
"""


def test_model_register_also_registers_the_version_in_mlflow(mlflow_server, tmp_path):
    name = f"mlpipe-model-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(REGISTER), name],
        cwd=tmp_path,
        env=dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr, proc.stderr
    registered = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r[0] for r in registered] == [f"{name}:1", f"{name}:2"]
    for version, mse in ((1, 0.5), (2, 0.25)):
        mv = mlflow_api(mlflow_server, "model-versions/get", {"name": name, "version": version})
        mv = mv["model_version"]
        assert {t["key"]: t["value"] for t in mv["tags"]} == {"mse": str(mse), "area": "x"}
        assert mv["description"] == f"mse {mse}" and mv["status"] == "READY"
        # the files are the run's artifacts on the server: download them back through it
        source = mv["source"].removeprefix("mlflow-artifacts:/")
        url = f"{mlflow_server}/api/2.0/mlflow-artifacts/artifacts/{source}"
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert json.loads(resp.read()) == {"mse": mse}
    # the mlpipe version notes the MLflow version it became
    state = tmp_path / ".mlpipe" / "datastores" / "workspaceblobstore" / ".mlpipe" / "models"
    back = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; from mlpipe import Model, Workspace; "
            "m = Model(Workspace.from_config(), name=sys.argv[1]); "
            "print(json.dumps(m._doc['mlflow']))",
            name,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["version"] == 2
    assert (state / name / "2.json").exists()
