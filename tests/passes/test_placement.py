"""mlpipe.yaml's Kubernetes keys: checked at their line, merged by one rule (passes/placement.py),
and a local-path datastore without a volume refused in a Kubernetes profile on every target."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlpipe.errors import MlpipeError
from mlpipe.ir import KubernetesPlacement
from mlpipe.passes.placement import merge
from mlpipe.workspace_config import load

ROOT = Path(__file__).resolve().parents[2]
MLPIPE = str(ROOT / ".venv" / "bin" / "mlpipe")

# mlpipe.yaml text, the line of the error, words of its message
BAD = [
    ("kubernetes:\n  namespace: ml\n  node_selectors: {a: b}\n", 3, "unknown key 'node_selectors'"),
    (
        "computes:\n  gpu:\n    vm_size: STANDARD_NC6S_V3\n    priority: high\n",
        4,
        "compute 'gpu': unknown key 'priority'; expected vm_size, max_nodes, min_nodes or",
    ),
    ("kubernetes:\n  tolerations:\n    - {key: a, operater: Exists}\n", 2, "operater"),
    ("kubernetes:\n  labels: {team: 'not a label'}\n", 2, "not a valid label value"),
    ("kubernetes:\n  security_context: {privileged: true}\n", 2, "unknown field 'privileged'"),
    ("kubernetes:\n  pod_security_context: {fsGroup: -1}\n", 2, "fsGroup: -1"),
    ("kubernetes:\n  namespace: ML_Team\n", 2, "'ML_Team' is not a valid namespace"),
    (
        "computes:\n  c:\n    volumes: [{name: d, claim: p, datastore: workspaceblobstore}]\n",
        3,
        "belongs in the workspace-level kubernetes: section",
    ),
    ("kubernetes:\n  volumes: [{name: d, claim: p}]\n", 2, "either mount_path or datastore"),
    ("kubernetes:\n  env_from: [{secret: s, key: k, env: 'A B'}]\n", 2, "'A B' is not a valid"),
]


@pytest.mark.parametrize("text,line,words", BAD)
def test_bad_kubernetes_keys_name_their_line(tmp_path, text, line, words):
    (tmp_path / "mlpipe.yaml").write_text(text)
    with pytest.raises(MlpipeError) as err:
        load(tmp_path)
    (problem,) = err.value.problems
    assert (Path(problem.file).name, problem.line) == ("mlpipe.yaml", line), problem
    assert words in problem.message, problem.message


def test_keys_are_normalised(tmp_path):
    (tmp_path / "mlpipe.yaml").write_text(
        "kubernetes:\n"
        "  labels: {enabled: true, n: 3}\n"
        "  tolerations: [{key: a, operator: Exists, toleration_seconds: '30'}]\n"
        "computes:\n  c: {vm_size: STANDARD_D2_V2, node_selector: {pool: cpu}}\n"
    )
    cfg = load(tmp_path)
    assert cfg.kubernetes["labels"] == {"enabled": "true", "n": "3"}
    assert cfg.kubernetes["tolerations"] == [
        {"key": "a", "operator": "Exists", "tolerationSeconds": "30"}
    ]
    assert cfg.computes["c"].placement == {"node_selector": {"pool": "cpu"}}


def test_the_compute_merges_over_the_workspace_by_one_rule():
    workspace = KubernetesPlacement(
        namespace="ml",
        priority_class="batch",
        labels={"team": "a", "tier": "x"},
        security_context={"runAsUser": 1000, "runAsNonRoot": True},
        volumes=[{"name": "d", "claim": "p", "datastore": "workspaceblobstore"}],
        env_from=[{"secret": "s", "key": "k", "env": "K"}],
    )
    compute = KubernetesPlacement(
        priority_class="gpu",
        labels={"team": "b"},
        security_context={"runAsUser": 2000},
        volumes=[{"name": "c", "claim": "cache", "mount_path": "/cache"}],
        env_from=[{"secret": "s", "key": "k", "env": "K"}],  # the same item: once
    )
    merged = merge(workspace, compute)
    assert merged.namespace == "ml" and merged.priority_class == "gpu"
    assert merged.labels == {"team": "b", "tier": "x"}
    assert merged.security_context == {"runAsNonRoot": True, "runAsUser": 2000}
    assert [v["name"] for v in merged.volumes] == ["d", "c"]
    assert merged.env_from == [{"secret": "s", "key": "k", "env": "K"}]
    # one variable, two sources: the compute's, like a map key
    other = KubernetesPlacement(env_from=[{"config_map": "m", "key": "k", "env": "K"}])
    assert merge(workspace, other).env_from == [{"config_map": "m", "key": "k", "env": "K"}]


PIPELINE = """\
from azureml.core import Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
step = PythonScriptStep(name="a", script_name="step.py", source_directory=".")
Pipeline(workspace=ws, steps=[step])
"""


@pytest.mark.parametrize("target", ["airflow", "prefect"])
def test_a_local_datastore_without_a_volume_is_a_compile_error(tmp_path, target):
    """(KFP: tests/backends/test_kfp.py, with its profiles.)"""
    (tmp_path / "mlpipe.yaml").write_text("datastores:\n  workspaceblobstore: ./data\n")
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "step.py").write_text("print('a')\n")
    out = tmp_path / "out"
    cmd = [MLPIPE, "compile", "pipeline.py", "--target", target, "--profile", "kubernetes"]
    proc = subprocess.run(
        [*cmd, "-o", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr
    assert "pipeline.py:" in proc.stderr and "datastore 'workspaceblobstore' is the local path" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr and not out.exists()


ENV_PIPELINE = """\
from azureml.core import Environment, Workspace
from azureml.core.runconfig import RunConfiguration
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
env = Environment("train-env")
env.environment_variables = {"DB_PASSWORD": "placeholder"}
rc = RunConfiguration()
rc.environment = env
step = PythonScriptStep(
    name="a", script_name="step.py", source_directory=".", runconfig=rc
)
Pipeline(workspace=ws, steps=[step])
"""


@pytest.mark.parametrize(
    "env,by",
    [("DB_PASSWORD", "the step's environment variables"), ("AZUREML_RUN_ID", "step runtime")],
)
def test_an_env_from_variable_the_step_never_sees_is_a_compile_error(tmp_path, env, by):
    """The runtime sets the environment's variables (and its own) in the step's process after the
    pod's, so a secret under one of those names would silently never arrive."""
    (tmp_path / "mlpipe.yaml").write_text(
        "datastores:\n  workspaceblobstore: s3://bucket/ml\n"
        f"kubernetes:\n  env_from: [{{secret: db, key: password, env: {env}}}]\n"
    )
    (tmp_path / "pipeline.py").write_text(ENV_PIPELINE)
    (tmp_path / "step.py").write_text("print('a')\n")
    out = tmp_path / "out"
    cmd = [MLPIPE, "compile", "pipeline.py", "--target", "airflow", "--profile", "kubernetes"]
    proc = subprocess.run(
        [*cmd, "-o", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr
    assert f"pipeline.py:11: step 'a': mlpipe.yaml env_from sets {env!r}" in proc.stderr
    assert by in proc.stderr and "Traceback" not in proc.stderr and not out.exists()
