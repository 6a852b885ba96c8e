"""No network during capture; the v1 surface notebooks use around the pipeline; unsupported steps."""

from __future__ import annotations

import json
import socket
import textwrap
import threading

import pytest

from conftest import HEADER, HERE, mlpipe, warnings_of, write_notebook
from mlpipe.api.unsupported import STEP_TYPES
from mlpipe.ir import PipelineIR

STEP = "step = PythonScriptStep('s.py', source_directory='src')"
SUBMIT = "run = Experiment(ws, 'exp').submit(Pipeline(ws, [step]))"


@pytest.fixture
def listener():
    """A local TCP server counting the connections it accepts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    server.close()


def test_network_calls_are_refused_and_reported(folder, listener):
    port, accepted = listener
    write_notebook(
        folder / "nb.ipynb",
        [
            "import socket\nimport urllib.request\nimport requests",
            f"socket.create_connection(('127.0.0.1', {port}))",
            f"s = socket.socket()\ns.connect(('127.0.0.1', {port}))",
            f"urllib.request.urlopen('http://127.0.0.1:{port}/data?token=SECRET')",
            f"requests.post('http://127.0.0.1:{port}/submit', json={{'a': 1}})",
            "socket.getaddrinfo('example.org', 443)",
            "try:\n    urllib.request.urlretrieve('http://example.org/x.csv', 'x.csv')\n"
            "except OSError as exc:\n    print('offline:', exc)",
            HEADER + STEP + "\n" + SUBMIT,
            f"status = requests.get('http://127.0.0.1:{port}/status').json()",
        ],
    )
    proc = mlpipe("validate", "nb.ipynb", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert accepted == []  # nothing reached the listener
    assert "SECRET" not in proc.stderr
    assert not (folder / "x.csv").exists()
    notes = warnings_of(proc.stderr)
    expected = [
        (2, 1, f"connection to 127.0.0.1:{port}"),
        (3, 2, f"connection to 127.0.0.1:{port}"),
        (4, 1, f"GET http://127.0.0.1:{port}/data"),
        (5, 1, f"POST http://127.0.0.1:{port}/submit"),
        (6, 1, "DNS lookup of example.org"),
        (7, 2, "GET http://example.org/x.csv"),
        (9, 1, f"GET http://127.0.0.1:{port}/status"),
    ]
    for cell, line, what in expected:
        prefix = f"nb.ipynb:cell {cell}:line {line}: warning: network access refused during "
        assert any(n.startswith(prefix) and what in n for n in notes), (cell, notes)
    # a cell that died of a refusal is cut short; one that handled the error is not
    assert any(n.startswith("nb.ipynb:cell 4:line 1: ") and "not run" in n for n in notes)
    assert not any(n.startswith("nb.ipynb:cell 7:") and "not run" in n for n in notes)


def test_network_call_before_submit_in_a_python_file_fails(folder):
    (folder / "pipeline.py").write_text(
        "import urllib.request\n" + HEADER + "urllib.request.urlopen('https://example.org/x')\n"
    )
    proc = mlpipe("validate", "pipeline.py", cwd=folder)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "pipeline.py:6: your code raised urllib.error.URLError" in proc.stderr
    assert "GET https://example.org/x refused (mlpipe never contacts" in proc.stderr


def capture_py(folder, body: str) -> tuple[list[PipelineIR], str]:
    (folder / "pipeline.py").write_text(textwrap.dedent(body))
    proc = mlpipe("ir", "pipeline.py", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    data = data if isinstance(data, list) else [data]
    return [PipelineIR.model_validate(d) for d in data], proc.stderr + proc.stdout


def test_compute_lookup_raises_the_exception_v1_code_catches(folder):
    (p,), _ = capture_py(
        folder,
        """
        from azureml.core import Workspace, Experiment
        from azureml.core.compute import AmlCompute, ComputeTarget
        from azureml.core.compute_target import ComputeTargetException as A
        from azureml.exceptions import ComputeTargetException as B
        from azureml.pipeline.core import Pipeline
        from azureml.pipeline.steps import PythonScriptStep
        ws = Workspace.from_config()
        assert A is B
        for lookup in (lambda: AmlCompute(ws, "big"), lambda: ComputeTarget(workspace=ws, name="big")):
            try:
                lookup()
                raise SystemExit("no exception")
            except B as exc:
                assert "big" in exc.message
        big = ComputeTarget.create(ws, "big", AmlCompute.provisioning_configuration(
            vm_size="STANDARD_NC12", min_nodes=1, max_nodes=3, vm_priority="lowpriority"))
        assert "big" in ws.compute_targets and ws.compute_targets["big"].type == "AmlCompute"
        assert big.get_status().serialize()["provisioningState"] == "Succeeded"
        step = PythonScriptStep("s.py", source_directory="src", compute_target="big")
        Experiment(ws, "e").submit(Pipeline(ws, [step]))
        """,
    )
    big = p.compute("big")
    assert (big.vm_size, big.min_nodes, big.max_nodes, big.vm_priority, big.gpu_count) == (
        "STANDARD_NC12",
        1,
        3,
        "lowpriority",
        2,
    )


def test_registered_datastores_are_declared_without_credentials(folder):
    (p,), text = capture_py(
        folder,
        """
        from azureml.core import Dataset, Datastore, Workspace, Experiment
        from azureml.exceptions import UserErrorException
        from azureml.pipeline.core import Pipeline
        from azureml.pipeline.steps import PythonScriptStep
        ws = Workspace.from_config()
        try:
            lake = Datastore.get(ws, "lake")
        except UserErrorException:
            lake = Datastore.register_azure_blob_container(
                workspace=ws, datastore_name="lake", container_name="raw",
                account_name="acct", account_key="TOP-SECRET-KEY")
        gen2 = Datastore.register_azure_data_lake_gen2(
            ws, "gen2", filesystem="fs", account_name="acct2", client_secret="TOP-SECRET-2")
        assert Datastore(ws, "lake").datastore_type == "AzureBlob" and "lake" in ws.datastores
        data = Dataset.File.from_files((lake, "drops/"))
        step = PythonScriptStep("s.py", source_directory="src",
                                arguments=[data.as_named_input("drops").as_download()])
        Experiment(ws, "e").submit(Pipeline(ws, [step]))
        """,
    )
    stores = {d.name: d for d in p.datastores}
    assert stores["lake"].url == "abfs://raw@acct.dfs.core.windows.net"
    assert stores["lake"].type == "azure_blob" and stores["lake"].origin.line == 10
    assert stores["gen2"].url == "abfs://fs@acct2.dfs.core.windows.net"
    assert "TOP-SECRET" not in p.model_dump_json() and "TOP-SECRET" not in text
    assert p.steps[0].inputs[0].source.dataset.paths[0].datastore == "lake"


def test_runs_endpoints_and_widgets_are_inert(folder):
    (p,), text = capture_py(
        folder,
        """
        import azureml.core
        from azureml.core import Workspace, Experiment
        from azureml.core.authentication import InteractiveLoginAuthentication
        from azureml.pipeline.core import Pipeline, PipelineRun, PublishedPipeline
        from azureml.pipeline.core.run import StepRun
        from azureml.pipeline.steps import PythonScriptStep
        from azureml.data import OutputFileDatasetConfig
        from azureml.widgets import RunDetails
        ws = Workspace.from_config()
        assert isinstance(azureml.core.VERSION, str)
        out = OutputFileDatasetConfig(name="result")
        step = PythonScriptStep("s.py", name="work", source_directory="src", arguments=[out])
        pipeline = Pipeline(ws, [step])
        run = Experiment(ws, "e").submit(pipeline)
        RunDetails(run).show()
        assert run.wait_for_completion(show_output=True) == "Finished"
        (child,) = run.get_children()
        assert child.name == "work" and child.get_metrics() == {}
        ref = child.get_outputs()["result"].get_port_data_reference()
        assert ref.datastore_name == "workspaceblobstore"
        assert run.find_step_run("work")[0].get_output_data("result").download("dl") == "dl"
        assert run.find_step_run("elsewhere")
        pub = run.publish_pipeline(name="svc", description="d", version="2")
        assert PublishedPipeline.get(ws, pub.id) is pub and PublishedPipeline.list(ws) == [pub]
        again = PipelineRun(ws.experiments["from-rest"], "some-run-id")
        assert again.get_status() == "Finished" and again.id == "some-run-id"
        assert ws.experiments["e"].name == "e"
        header = InteractiveLoginAuthentication().get_authentication_header()
        assert header["Authorization"].startswith("Bearer ")
        pub.submit(ws, "e2", pipeline_parameters={})
        """,
    )
    assert [s.experiment for s in p.submissions] == ["e", "e2"]
    assert [(x.name, x.version) for x in p.publications] == [("svc", "2")]
    assert not (folder / "dl").exists()


def test_commands_are_split_like_a_shell_but_never_run_through_one(folder):
    (p,), _ = capture_py(
        folder,
        """
        from azureml.core import Workspace, Experiment, ScriptRunConfig
        from azureml.pipeline.core import Pipeline
        from azureml.pipeline.steps import CommandStep
        ws = Workspace.from_config()
        exact = ScriptRunConfig(source_directory="src", script="s.py",
                                arguments=["--msg", "hello world"])
        a = CommandStep(name="a", runconfig=exact)
        b = CommandStep(name="b", command=["python s.py --msg 'hi there'", "--n", "1"],
                        source_directory="src")
        c = CommandStep(name="c", runconfig=ScriptRunConfig(source_directory="src",
                                                            command="python s.py --x 'y z'"))
        Experiment(ws, "e").submit(Pipeline(ws, [a, b, c]))
        """,
    )

    def argv(name):
        return [x.value for x in p.step(name).command]

    assert argv("a") == ["python", "s.py", "--msg", "hello world"]
    assert argv("b") == ["python", "s.py", "--msg", "hi there", "--n", "1"]
    assert argv("c") == ["python", "s.py", "--x", "y z"]
    (folder / "bad.py").write_text(
        HEADER.replace("PythonScriptStep", "CommandStep")
        + "CommandStep(name='x', command='python a.py && python b.py', source_directory='src')\n"
    )
    proc = mlpipe("validate", "bad.py", cwd=folder)
    assert proc.returncode == 2 and "bad.py:5: CommandStep command uses shell syntax" in proc.stderr


# ------------------------------------------------------------------ unsupported step types

UNSUPPORTED = sorted((HERE / "unsupported").glob("*.ipynb"))


def test_every_unsupported_step_type_has_a_notebook():
    named = set()
    for nb in UNSUPPORTED:
        cells = json.loads(nb.read_text())["cells"]
        named.add(cells[0]["source"][0].lstrip("# ").strip())
    assert named == STEP_TYPES - {"RScriptStep"}


@pytest.mark.parametrize("path", UNSUPPORTED, ids=[p.stem for p in UNSUPPORTED])
def test_unsupported_step_type_fails_naming_it(notebooks, path):
    kind = json.loads(path.read_text())["cells"][0]["source"][0].lstrip("# ").strip()
    out = notebooks / "unsupported" / f"out-{path.stem}"
    proc = mlpipe(
        "compile", f"{path.name}", "--target", "kfp", "-o", out, cwd=notebooks / "unsupported"
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"{path.name}:cell 4:line 1: {kind} is not supported yet"), first
    assert not out.exists()


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("azureml.pipeline.steps", "ParallelRunStep"),
        ("azureml.pipeline.steps", "ParallelRunConfig"),
        ("azureml.contrib.pipeline.steps", "ParallelRunStep"),
        ("azureml.pipeline.steps", "AutoMLStep"),
        ("azureml.train.automl", "AutoMLConfig"),
        ("azureml.train.automl.runtime", "AutoMLStep"),
        ("azureml.pipeline.steps", "HyperDriveStep"),
        ("azureml.train.hyperdrive", "HyperDriveConfig"),
        ("azureml.pipeline.steps", "DatabricksStep"),
        ("azureml.pipeline.steps", "DataTransferStep"),
        ("azureml.pipeline.steps", "AdlaStep"),
        ("azureml.pipeline.steps.kusto_step", "KustoStep"),
        ("azureml.pipeline.steps", "AzureBatchStep"),
        ("azureml.pipeline.steps", "ModuleStep"),
        ("azureml.pipeline.core", "Module"),
        ("azureml.contrib.notebook", "NotebookRunnerStep"),
        ("azureml.pipeline.steps", "SynapseSparkStep"),
        ("azureml.pipeline.steps", "EstimatorStep"),
        ("azureml.train.estimator", "Estimator"),
        ("azureml.pipeline.steps", "MpiStep"),
        ("azureml.contrib.automl.pipeline.steps", "AutoMLPipelineBuilder"),
    ],
)
def test_unsupported_names_import_from_where_users_import_them(module, name):
    import importlib

    import mlpipe.azureml  # noqa: F401
    from mlpipe.errors import NotSupportedError

    cls = getattr(importlib.import_module(module), name)
    with pytest.raises(NotSupportedError, match=f"{name} is not supported yet"):
        cls()
