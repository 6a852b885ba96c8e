"""Datastore credentials come only from the environment: they reach the step scripts, and no
secret value appears in the IR, any generated artifact, a run record, a log or a console line.

The supported set-up: credentials in the environment (AWS_* for s3://, AZURE_STORAGE_* for
abfs:// / az://, AZURE_CLIENT_SECRET for a service principal), datastores declared in mlpipe.yaml
by URL only. A v1 file that passes keys to `Datastore.register_*` or a service principal password
to `ServicePrincipalAuthentication` still works; mlpipe keeps none of it. mlpipe.yaml itself refuses
credentials, without repeating them in its error.
"""

from __future__ import annotations

import base64
import gzip
import io
import re
import subprocess
import tarfile
import uuid
import zlib
from pathlib import Path

import pytest

from tests.targets import MLPIPE, child_env

SECRET_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
)


def make_secrets() -> dict[str, str]:
    """Distinctive values; each holds a unique hex core that is searched for on its own too."""
    return {name: f"SeCrEt{uuid.uuid4().hex}{name[-4:]}" for name in SECRET_VARS}


def cores(secrets: dict[str, str]) -> dict[str, str]:
    """{what to search for: which variable}: the whole value and its 32-hex core."""
    found = {}
    for name, value in secrets.items():
        found[value] = name
        found[re.search(r"[0-9a-f]{32}", value).group(0)] = name
    return found


STEP = '''\
"""Checks that the credentials reached it (without printing them) and passes data on."""
import os
import sys

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
missing = [v for v in NAMES if len(os.environ.get(v, "")) < 30]
if missing:
    print(f"credentials missing: {missing}", file=sys.stderr)
    sys.exit(3)
print("credentials present:", len(NAMES))
if args.get("--fail") == "True":
    print("failing on purpose after seeing the credentials", file=sys.stderr)
    sys.exit(4)
os.makedirs(args["--out"], exist_ok=True)
text = "ok\\n"
if "--in" in args:
    for root, _, files in os.walk(args["--in"]):
        for f in sorted(files):
            text += open(os.path.join(root, f)).read()
with open(os.path.join(args["--out"], "data.txt"), "w") as fh:
    fh.write(text)
'''.replace("NAMES", repr(list(SECRET_VARS)))

PIPELINE = """\
import os

from azureml.core import Dataset, Datastore, Experiment, Workspace
from azureml.core.authentication import ServicePrincipalAuthentication
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

# v1 habits: a service principal and a registered blob container, secrets read from the env.
auth = ServicePrincipalAuthentication(
    tenant_id="tenant",
    service_principal_id="sp",
    service_principal_password=os.environ["AZURE_CLIENT_SECRET"],
)
ws = Workspace.from_config(auth=auth)
Datastore.register_azure_blob_container(
    workspace=ws,
    datastore_name="registered",
    container_name="container",
    account_name="account",
    account_key=os.environ["AZURE_STORAGE_ACCOUNT_KEY"],
    sas_token=os.environ["AZURE_STORAGE_SAS_TOKEN"],
)
local = ws.get_default_datastore()
scratch = Datastore.get(ws, "scratch")
lake = Datastore.get(ws, "lake")

fail = PipelineParameter(name="fail", default_value=False)
raw = Dataset.File.from_files([(local, "input/")])
middle = OutputFileDatasetConfig(name="middle", destination=(scratch, "middle/{run-id}"))
produce = PythonScriptStep(
    name="produce", script_name="step.py", source_directory="src",
    arguments=["--in", raw.as_named_input("raw").as_mount(), "--out", middle],
)
final = OutputFileDatasetConfig(name="final")
consume = PythonScriptStep(
    name="consume", script_name="step.py", source_directory="src",
    arguments=["--in", middle.as_input(name="middle"), "--out", final, "--fail", fail],
)
pipeline = Pipeline(ws, [produce, consume])
Experiment(ws, "secrets").submit(pipeline)

# Compiled, never run here: reads the registered container, writes to the s3:// lake.
registered = Datastore.get(ws, "registered")
archive = OutputFileDatasetConfig(name="archive", destination=(lake, "archive/{run-id}"))
export = PythonScriptStep(
    name="export", script_name="step.py", source_directory="src",
    arguments=["--in", Dataset.File.from_files([(registered, "raw/")]).as_mount(),
               "--out", archive],
)
Experiment(ws, "export").submit(Pipeline(ws, [export]))
"""

CONFIG = """\
workspace: secrets
datastores:
  workspaceblobstore: ./data
  scratch: memory://mlpipe-secrets-{tag}
  lake: s3://example-bucket/lake
  blob: abfs://container@account.dfs.core.windows.net/base
kubernetes:  # the kubernetes profiles reach the local-path datastore through a PVC
  volumes: [{{name: data, claim: mlpipe-data, datastore: workspaceblobstore}}]
"""


def leaks_in(data: bytes, needles: dict[str, str], where: str, depth: int = 0) -> list[str]:
    """Where any needle occurs in `data`, also inside gzip / tar members and inside base64
    (+zlib) blobs, which is how the KFP executors carry the IR."""
    found = [f"{where}: {var}" for needle, var in needles.items() if needle.encode() in data]
    if depth > 2:
        return found
    if data[:2] == b"\x1f\x8b":
        try:
            inner = gzip.decompress(data)
        except OSError:
            inner = b""
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        blob = tar.extractfile(member).read()
                        found += leaks_in(blob, needles, f"{where}!{member.name}", depth + 1)
        except tarfile.TarError:
            found += leaks_in(inner, needles, f"{where}!gunzip", depth + 1)
    for blob in re.findall(rb"[A-Za-z0-9+/]{64,}={0,2}", data):
        try:
            raw = base64.b64decode(blob, validate=True)
        except ValueError:
            continue
        for decoded in (raw, _inflate(raw)):
            if decoded:
                found += leaks_in(decoded, needles, f"{where}!base64", depth + 1)
    return found


def _inflate(raw: bytes) -> bytes:
    try:
        return zlib.decompress(raw)
    except zlib.error:
        return b""


def test_the_scanner_finds_plain_packed_and_encoded_copies(tmp_path):
    secrets = make_secrets()
    value = secrets["AWS_SECRET_ACCESS_KEY"]
    needles = cores(secrets)
    payload = base64.b64encode(zlib.compress(f'{{"url": "{value}", "pad": "{"x" * 80}"}}'.encode()))
    (tmp_path / "a.yaml").write_bytes(b'STEP = "' + payload + b'"\n')
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = f"key = {value[6:]}\n".encode()  # the hex core alone
        info = tarfile.TarInfo("src/settings.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (tmp_path / "snap.tar.gz").write_bytes(buf.getvalue())
    (tmp_path / "clean.txt").write_text("nothing here")
    found = scan_tree(tmp_path, needles)
    assert any(f.startswith("a.yaml!base64") for f in found), found
    assert any(f.startswith("snap.tar.gz!src/settings.py") for f in found), found
    assert not [f for f in found if f.startswith("clean.txt")]


def scan_tree(root: Path, needles: dict[str, str]) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found += leaks_in(path.read_bytes(), needles, str(path.relative_to(root)))
    return found


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "step.py").write_text(STEP)
    (folder / "data" / "input").mkdir(parents=True)
    (folder / "data" / "input" / "rows.csv").write_text("a,b\n1,2\n")
    (folder / "mlpipe.yaml").write_text(CONFIG.format(tag=uuid.uuid4().hex[:8]))
    (folder / "pipeline.py").write_text(PIPELINE)
    return folder


def run(cmd: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(cwd), timeout=600)


COMPILES = [
    ("airflow", "local"),
    ("airflow", "kubernetes"),
    ("prefect", "local"),
    ("prefect", "kubernetes"),
    ("kfp", "kubernetes"),
]


def test_credentials_reach_the_steps_and_appear_nowhere_else(project, tmp_path):
    secrets = make_secrets()
    needles = cores(secrets)
    cache = tmp_path / "cache"
    env = child_env(MLPIPE_CACHE_DIR=str(cache), **secrets)
    pipeline = project / "pipeline.py"
    transcripts: list[tuple[str, str]] = []

    def mlpipe(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        proc = run([MLPIPE, *args], env, project)
        transcripts.append((" ".join(args), proc.stdout + proc.stderr))
        assert proc.returncode == expect, (args, proc.stdout[-2000:], proc.stderr[-3000:])
        return proc

    ir = mlpipe("ir", str(pipeline))
    assert '"registered"' in ir.stdout  # the registered datastore is kept, by URL only
    mlpipe("validate", str(pipeline))
    mlpipe("graph", str(pipeline))
    outs = tmp_path / "out"
    for target, prof in COMPILES:
        mlpipe(
            "compile",
            str(pipeline),
            "--target",
            target,
            "--profile",
            prof,
            "-o",
            str(outs / f"{target}-{prof}"),
        )
    # Runs: one that succeeds (data through the memory:// datastore), one whose last step fails
    # after seeing the credentials (failure records keep argv and the stderr tail), one reused.
    runnable = f"{pipeline}:secrets"
    ok = mlpipe("run", runnable)
    assert "credentials present" in ok.stdout + ok.stderr
    mlpipe("run", runnable, "--param", "fail=True", expect=1)
    mlpipe("run", runnable)

    leaks = scan_tree(tmp_path, needles)
    for label, text in transcripts:
        leaks += leaks_in(text.encode(), needles, f"output of `mlpipe {label}`")
    assert not leaks, "\n".join(sorted(set(leaks)))
    # The runs really happened: three run records, the failure recorded as such.
    runs = sorted((project / "data" / ".mlpipe" / "runs").iterdir())
    assert len(runs) == 3
    assert any("failing on purpose" in p.read_text() for p in project.rglob("consume*.json"))


# mlpipe.yaml must refuse credentials, and must not repeat them in its error.
REFUSED_CONFIGS = {
    "key-beside-url": "  lake:\n    url: s3://bucket/lake\n    aws_secret_access_key: {secret}\n",
    "account-key": "  blob:\n    url: abfs://c@acct.dfs.core.windows.net\n    account_key: {secret}\n",
    "password-in-url": "  lake: s3://AKIDEXAMPLE:{secret}@bucket/lake\n",
    "sas-in-url": "  blob: https://acct.blob.core.windows.net/c?sv=2022-11-02&sig={secret}\n",
    "sas-in-abfs-url": "  blob: abfs://c@acct.dfs.core.windows.net/base?sig={secret}\n",
}


@pytest.mark.parametrize("what", sorted(REFUSED_CONFIGS))
def test_mlpipe_yaml_refuses_credentials_without_repeating_them(what, project, tmp_path):
    secret = f"SeCrEt{uuid.uuid4().hex}"
    config = (
        "workspace: secrets\ndatastores:\n  workspaceblobstore: ./data\n"
        "  scratch: memory://x\n" + REFUSED_CONFIGS[what].format(secret=secret)
    )
    if "lake" not in config:
        config += "  lake: s3://example-bucket/lake\n"
    (project / "mlpipe.yaml").write_text(config)
    out = tmp_path / "out"
    env = child_env(MLPIPE_CACHE_DIR=str(tmp_path / "cache"), **make_secrets())
    proc = run(
        [MLPIPE, "compile", "pipeline.py", "--target", "airflow", "-o", str(out)], env, project
    )
    assert proc.returncode == 2, (proc.stdout[-1500:], proc.stderr[-1500:])
    assert "Traceback" not in proc.stderr
    assert re.search(r"mlpipe\.yaml:\d+: ", proc.stderr), proc.stderr
    assert secret not in proc.stdout + proc.stderr
    assert not out.exists()


def test_the_runtime_never_records_the_environment(project, tmp_path):
    """A failing step's record keeps argv and the stderr tail; the environment (which holds the
    credentials) is never written: checked on the files of a run that failed before its script
    could start (a missing input), the path where a runtime is tempted to dump its context."""
    secrets = make_secrets()
    env = child_env(MLPIPE_CACHE_DIR=str(tmp_path / "cache"), **secrets)
    (project / "data" / "input" / "rows.csv").unlink()
    (project / "data" / "input").rmdir()
    proc = run([MLPIPE, "run", "pipeline.py:secrets"], env, project)
    assert proc.returncode != 0
    leaks = scan_tree(project, cores(secrets))
    leaks += leaks_in((proc.stdout + proc.stderr).encode(), cores(secrets), "console")
    assert not leaks, leaks
