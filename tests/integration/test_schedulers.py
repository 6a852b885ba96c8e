"""The compiled output deployed as a platform team would, on real schedulers (once each).

- Airflow 3.3: a scheduler, a dag-processor and an api-server (LocalExecutor, SQLite) pick up a
  DAG compiled into their dags folder while they run, and run a `airflow dags trigger --conf`.
- Prefect 3: `prefect deploy --all` with the generated prefect.yaml, from a folder that is deleted
  afterwards; a process worker running from another copy of the folder; `prefect deployment run
  --param`.

Neither worker Python has mlpipe installed (scripts/setup): the runtime travels with the output.
Both check the log levels the orchestrator itself recorded: mlpipe's progress lines are not errors,
and the script's stderr is in the log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from tests.targets import MLPIPE, VENVS, child_env, driver, run_cmd

PIPELINE = '''\
"""Two steps and a parameter: `greet` writes the word, `echo` copies it on."""
from azureml.core import Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
word = PipelineParameter(name="word", default_value="hello")
said = OutputFileDatasetConfig(name="said")
heard = OutputFileDatasetConfig(name="heard", destination=(ws.get_default_datastore(), "heard"))
greet = PythonScriptStep(name="greet", script_name="greet.py", source_directory="src",
                         arguments=["--word", word, "--out", said])
echo = PythonScriptStep(name="echo", script_name="echo.py", source_directory="src",
                        arguments=["--inp", said.as_input(), "--out", heard])
Pipeline(ws, [greet, echo]).publish(name="greeting")
'''
GREET = """\
import argparse, os, sys
p = argparse.ArgumentParser()
p.add_argument("--word")
p.add_argument("--out")
a = p.parse_args()
print("greet says", a.word)
print("greet warns on stderr", file=sys.stderr)
os.makedirs(a.out, exist_ok=True)
open(os.path.join(a.out, "word.txt"), "w").write(a.word)
"""
ECHO = """\
import argparse, os, shutil
p = argparse.ArgumentParser()
p.add_argument("--inp")
p.add_argument("--out")
a = p.parse_args()
os.makedirs(a.out, exist_ok=True)
shutil.copy(os.path.join(a.inp, "word.txt"), os.path.join(a.out, "word.txt"))
"""


def write_project(folder: Path) -> Path:
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "greet.py").write_text(GREET)
    (folder / "src" / "echo.py").write_text(ECHO)
    (folder / "mlpipe.yaml").write_text(
        "workspace: sched\ndatastores:\n  workspaceblobstore: ./data\n"
    )
    (folder / "pipeline.py").write_text(PIPELINE)
    return folder / "pipeline.py"


def compile_to(pipeline: Path, target: str, out: Path) -> None:
    cmd = [MLPIPE, "compile", str(pipeline), "--target", target, "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(what: str, probe, timeout: float, logs: list[Path]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)
    raise AssertionError(f"{what}: not after {timeout:.0f}s\n{tails}")


# ------------------------------------------------------------------------------------ Airflow


def _db_value(db: Path, query: str, *args):
    try:
        with sqlite3.connect(db, timeout=5) as con:
            row = con.execute(query, args).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


@pytest.mark.integration
@pytest.mark.xdist_group("airflow")
def test_airflow_scheduler_picks_up_a_dropped_in_dag_and_runs_it_with_conf(tmp_path):
    pipeline = write_project(tmp_path / "project")
    home, dags = tmp_path / "airflow-home", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copyfile(driver("airflow")._template_db(), home / "airflow.db")
    port = free_port()
    env = child_env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API_AUTH__JWT_SECRET="mlpipe-test-secret-not-for-production",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="2",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
    )
    airflow = str(VENVS / "airflow" / "bin" / "airflow")
    logs, procs = [], []
    try:
        for command in (["api-server"], ["dag-processor"], ["scheduler"]):
            log = home / f"{command[0]}.log"
            logs.append(log)
            with open(log, "wb") as fh:
                procs.append(
                    subprocess.Popen(
                        [airflow, *command],
                        env=env,
                        stdout=fh,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
        compile_to(pipeline, "airflow", dags)  # dropped into the live folder
        db = home / "airflow.db"
        wait_for(
            "the dag-processor parsed the DAG",
            lambda: _db_value(db, "SELECT 1 FROM serialized_dag WHERE dag_id = 'greeting'"),
            120,
            logs,
        )
        conf = json.dumps({"word": "bonjour"})
        proc = run_cmd([airflow, "dags", "trigger", "greeting", "--conf", conf], env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        state = wait_for(
            "the DAG run ended",
            lambda: _db_value(
                db,
                "SELECT state FROM dag_run WHERE dag_id = 'greeting' "
                "AND state IN ('success', 'failed')",
            ),
            150,
            logs,
        )
    finally:
        stop(procs)
    task_logs = {p.parent.name: p for p in home.glob("logs/dag_id=greeting/**/attempt=1.log")}
    assert state == "success", "\n".join(p.read_text()[-2000:] for p in task_logs.values())
    assert (pipeline.parent / "data" / "heard" / "word.txt").read_text() == "bonjour"
    # The task log as Airflow recorded it (JSON lines with a level).
    entries = [json.loads(x) for x in task_logs["task_id=greet"].read_text().splitlines() if x]
    levels = {e.get("event"): e.get("level") for e in entries}
    ran = [ev for ev in levels if ev and ev.startswith("mlpipe: step 'greet' ran")]
    assert ran and levels[ran[0]] == "info", entries
    assert levels.get("greet says bonjour") == "info"
    assert "greet warns on stderr" in levels  # the script's stderr stays visible


# ------------------------------------------------------------------------------------ Prefect


def _api(url: str, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _prefect_logs(url: str, run_id: str) -> dict[str, int]:
    """{message: level} of a flow run's logs, as the Prefect API has them."""
    records = _api(url, "/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}})
    return {r["message"]: r["level"] for r in records}


@pytest.mark.integration
@pytest.mark.xdist_group("prefect")
def test_prefect_deploy_and_a_process_worker_run_the_flow_from_another_folder(tmp_path):
    pipeline = write_project(tmp_path / "project")
    build, worker_copy = tmp_path / "build" / "flows", tmp_path / "worker-machine" / "flows"
    compile_to(pipeline, "prefect", build)
    shutil.copytree(build, worker_copy)
    drv = driver("prefect")
    env = drv.env()
    url = env["PREFECT_API_URL"]
    prefect = str(VENVS / "prefect" / "bin" / "prefect")
    for cmd in (
        [prefect, "--no-prompt", "work-pool", "create", "mlpipe-process", "--type", "process"],
        [prefect, "--no-prompt", "deploy", "--all"],
    ):
        proc = run_cmd(cmd, env=env, cwd=str(build), timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.rmtree(build.parent)  # the deploy machine's folder is gone
    log = tmp_path / "worker.log"
    with open(log, "wb") as fh:  # starts (imports Prefect) while the run is created
        worker = subprocess.Popen(
            [prefect, "worker", "start", "--pool", "mlpipe-process"],
            env=dict(env, MLPIPE_FLOWS_DIR=str(worker_copy), PREFECT_WORKER_QUERY_SECONDS="2"),
            cwd=str(tmp_path),
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        proc = run_cmd(
            [prefect, "deployment", "run", "greeting/greeting", "--param", "word=bonjour"],
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", proc.stdout).group(1)
        state = wait_for(
            "the flow run ended",
            lambda: (
                (_api(url, f"/flow_runs/{run_id}")["state_type"] or "").lower()
                in ("completed", "failed", "crashed")
                and _api(url, f"/flow_runs/{run_id}")["state_type"]
            ),
            180,
            [log],
        )

        # The run's state reaches the API before its last log lines (Prefect ships logs in
        # batches, the last one as the flow's process exits): stop the worker (and with it that
        # process) only once the step's own line is there.
        def shipped() -> bool:
            lines = _prefect_logs(url, run_id)
            return state != "COMPLETED" or any(
                m.startswith("mlpipe: step 'greet' ran") for m in lines
            )

        wait_for("the step's log line", shipped, 60, [log])
    finally:
        stop([worker])
    levels = _prefect_logs(url, run_id)
    assert state == "COMPLETED", textwrap.shorten(str(levels), 3000)
    assert (pipeline.parent / "data" / "heard" / "word.txt").read_text() == "bonjour"
    ran = [m for m in levels if m.startswith("mlpipe: step 'greet' ran")]
    assert ran and levels[ran[0]] == 20, levels  # INFO
    assert "greet warns on stderr" in levels  # the script's stderr stays visible
