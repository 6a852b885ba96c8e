"""`mlpipe.yaml`: the local stand-in for an Azure ML workspace (datastores, computes, vm sizes).

Found in the pipeline file's folder or a parent. Every error names the file and line to fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import yaml

from .errors import MlpipeError, Problem

CONFIG_NAME = "mlpipe.yaml"
DEFAULT_DATASTORES = ("workspaceblobstore", "workspacefilestore")
_URL_SCHEMES = (
    "file://",
    "s3://",
    "s3a://",
    "gs://",
    "gcs://",
    "abfs://",
    "abfss://",
    "az://",
    "adl://",
    "http://",
    "https://",
    "memory://",
    "hdfs://",
    "sftp://",
)


@dataclass
class VmSize:
    cpu: float
    memory_gib: float
    gpus: int = 0
    gpu_type: str | None = None


@dataclass
class ComputeDecl:
    name: str
    vm_size: str | None
    max_nodes: int
    min_nodes: int
    line: int | None
    placement: dict = field(default_factory=dict)


@dataclass
class WorkspaceConfig:
    name: str
    path: Path | None  # the mlpipe.yaml, or None for the zero-setup defaults
    base_dir: Path
    datastores: dict[str, str]
    datastore_lines: dict[str, int]
    computes: dict[str, ComputeDecl]
    vm_sizes: dict[str, VmSize]
    kubernetes: dict

    def where(self, line: int | None) -> tuple[str, int | None]:
        return (str(self.path) if self.path else CONFIG_NAME, line)


@cache
def builtin_vm_sizes() -> dict[str, VmSize]:
    text = resources.files("mlpipe").joinpath("data/vm_sizes.yaml").read_text()
    # libyaml's loader when PyYAML has it: the pure-Python one spends ~40 ms on this file per run.
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return {k.upper(): VmSize(**v) for k, v in data.items()}


def find_config(start: Path) -> Path | None:
    for d in [start, *start.parents]:
        candidate = d / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def _to_python(node: yaml.Node):
    """Plain Python data from a YAML node; mappings become dicts with a `__line__` per key."""
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        lines: dict = {}
        for k, v in node.value:
            key = _to_python(k)
            out[key] = _to_python(v)
            lines[key] = k.start_mark.line + 1
        out["__lines__"] = lines
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v) for v in node.value]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode):
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _strip(data):
    if isinstance(data, dict):
        return {k: _strip(v) for k, v in data.items() if k != "__lines__"}
    if isinstance(data, list):
        return [_strip(v) for v in data]
    return data


# Query keys that carry secrets in storage URLs (SAS tokens, signed URLs, access keys).
_SECRET_QUERY_KEYS = {
    "sig",
    "signature",
    "se",
    "sp",
    "sv",
    "skoid",
    "sktid",
    "token",
    "sas",
    "key",
    "secret",
    "password",
    "access_key",
    "secret_key",
    "credential",
    "x-amz-signature",
    "x-amz-credential",
    "x-goog-signature",
    "x-goog-credential",
}


def credentials_in_url(value: str) -> str | None:
    """What kind of credential a datastore URL carries (never the value itself), or None."""
    if "://" not in value:
        return None
    parts = urlsplit(value)
    if parts.password:
        return "a password in the URL's user part"
    keys = {k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    found = sorted(keys & _SECRET_QUERY_KEYS)
    if found:
        return "the query parameter(s) " + ", ".join(found)
    return None


_BUCKET_SCHEMES = ("s3://", "s3a://", "gs://", "gcs://", "abfs://", "abfss://", "az://", "adl://")


def object_store_problem(value: str) -> str | None:
    """What is wrong with an object-store datastore URL (and what to write instead), or None."""
    parts = urlsplit(value)
    host = parts.hostname or ""
    if value.lower().startswith(("wasb://", "wasbs://")) or host.endswith(".blob.core.windows.net"):
        container = parts.username or parts.path.strip("/").split("/")[0] or "<container>"
        account = host.split(".")[0] or "<account>"
        return (
            f"Azure Blob Storage is reached as az://{container}/<path> (adlfs), with the account "
            f"from the environment (AZURE_STORAGE_ACCOUNT_NAME={account} or "
            "AZURE_STORAGE_CONNECTION_STRING)"
        )
    if value.lower().startswith(_BUCKET_SCHEMES) and not (parts.netloc or "").strip():
        return f"{parts.scheme}:// needs a bucket / container name: {parts.scheme}://<name>/<path>"
    return None


def _resolve_store(base: Path, value: str) -> str:
    if value.startswith(_URL_SCHEMES):
        if value.startswith("file://"):
            return str((base / value[len("file://") :]).resolve())
        return value.rstrip("/")
    return str((base / os.path.expanduser(value)).resolve())


PROJECT_MARKERS = (".git", "pyproject.toml", ".env")


def project_root(start: Path) -> Path:
    """Without an mlpipe.yaml, one project has one workspace: the nearest folder upward holding
    `.git`, `pyproject.toml` or `.env` (so every command and script run anywhere in the project
    sees the same datastores and state); a lone folder without any of them is its own root."""
    start = Path(os.path.abspath(start))
    for d in [start, *start.parents]:
        if any((d / marker).exists() for marker in PROJECT_MARKERS):
            return d
    return start


def load(pipeline_dir: Path) -> WorkspaceConfig:
    path = find_config(pipeline_dir)
    if path is None:
        root = project_root(pipeline_dir)
        return WorkspaceConfig(
            name="local",
            path=None,
            base_dir=root,
            datastores={
                d: str((root / ".mlpipe" / "datastores" / d).resolve()) for d in DEFAULT_DATASTORES
            },
            datastore_lines={},
            computes={},
            vm_sizes=dict(builtin_vm_sizes()),
            kubernetes={},
        )
    return _parse(path)


def _parse(path: Path) -> WorkspaceConfig:
    fname = str(path)

    def fail(line, msg):
        raise MlpipeError(Problem(fname, line, msg))

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(None, f"cannot read {CONFIG_NAME}: {exc.strerror}; check the file's permissions")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        fail(
            line,
            f"{CONFIG_NAME} is not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax",
        )
    data = _to_python(node) if node is not None else {"__lines__": {}}
    if not isinstance(data, dict):
        fail(
            1,
            f"{CONFIG_NAME} must be a mapping with keys workspace, datastores, computes, vm_sizes",
        )
    lines = data["__lines__"]
    known = {"workspace", "datastores", "computes", "vm_sizes", "kubernetes"}
    for key in data:
        if key != "__lines__" and key not in known:
            fail(
                lines[key],
                f"unknown key {key!r} in {CONFIG_NAME}; expected one of {', '.join(sorted(known))}",
            )
    base = path.parent

    datastores = {
        d: str((base / ".mlpipe" / "datastores" / d).resolve()) for d in DEFAULT_DATASTORES
    }
    ds_lines: dict[str, int] = {}
    raw_ds = data.get("datastores") or {"__lines__": {}}
    if not isinstance(raw_ds, dict):
        fail(lines.get("datastores"), "datastores: must map a datastore name to a path or URL")
    for name, value in raw_ds.items():
        if name == "__lines__":
            continue
        line = raw_ds["__lines__"][name]
        if isinstance(value, dict):
            url = value.get("url")
            secretish = {k for k in value if k != "__lines__" and k not in ("url", "type")}
            if secretish:
                fail(
                    line,
                    f"datastore {name!r}: only 'url' and 'type' belong here; credentials come "
                    "from the environment (e.g. AWS_*, AZURE_STORAGE_* variables or the "
                    "orchestrator's connections), never from mlpipe.yaml",
                )
            value = url
        if not isinstance(value, str) or not value:
            fail(
                line,
                f"datastore {name!r} needs a path (relative to {CONFIG_NAME}) or an fsspec URL",
            )
        leak = credentials_in_url(value)
        if leak:
            fail(
                line,
                f"datastore {name!r}: the URL carries credentials ({leak}); remove them and give "
                "them through the environment (e.g. AWS_*, AZURE_STORAGE_* variables or the "
                "orchestrator's connections), never in mlpipe.yaml",
            )
        problem = object_store_problem(value)
        if problem:
            fail(line, f"datastore {name!r}: {problem}")
        datastores[str(name)] = _resolve_store(base, value)
        ds_lines[str(name)] = line

    vm_sizes = dict(builtin_vm_sizes())
    raw_vm = data.get("vm_sizes") or {"__lines__": {}}
    for name, spec in raw_vm.items():
        if name == "__lines__":
            continue
        line = raw_vm["__lines__"][name]
        if not isinstance(spec, dict) or "cpu" not in spec or "memory_gib" not in spec:
            fail(
                line,
                f"vm size {name!r} needs at least cpu and memory_gib (and optionally gpus, gpu_type)",
            )
        spec = _strip(spec)
        try:
            vm_sizes[str(name).upper()] = VmSize(**spec)
        except TypeError:
            fail(line, f"vm size {name!r}: allowed keys are cpu, memory_gib, gpus, gpu_type")

    computes: dict[str, ComputeDecl] = {}
    raw_c = data.get("computes") or {"__lines__": {}}
    placement_keys = {
        "namespace",
        "service_account",
        "node_selector",
        "tolerations",
        "image_pull_secrets",
    }
    for name, spec in raw_c.items():
        if name == "__lines__":
            continue
        line = raw_c["__lines__"][name]
        spec = spec or {"__lines__": {}}
        if not isinstance(spec, dict):
            fail(
                line,
                f"compute {name!r} must be a mapping, e.g. {{vm_size: STANDARD_D2_V2, max_nodes: 2}}",
            )
        plain = _strip(spec)
        bad = set(plain) - {"vm_size", "max_nodes", "min_nodes"} - placement_keys
        if bad:
            fail(line, f"compute {name!r}: unknown key(s) {', '.join(sorted(bad))}")
        vm = plain.get("vm_size")
        if vm is not None and str(vm).upper() not in vm_sizes:
            fail(
                spec["__lines__"].get("vm_size", line),
                f"unknown vm_size {vm!r} for compute {name!r}; use a known size or declare it under vm_sizes: in {CONFIG_NAME}",
            )
        computes[str(name)] = ComputeDecl(
            name=str(name),
            vm_size=str(vm).upper() if vm else None,
            max_nodes=int(plain.get("max_nodes", 4)),
            min_nodes=int(plain.get("min_nodes", 0)),
            line=line,
            placement={k: v for k, v in plain.items() if k in placement_keys},
        )
    kube = _strip(data.get("kubernetes") or {})
    return WorkspaceConfig(
        name=str(data.get("workspace") or "local"),
        path=path,
        base_dir=base,
        datastores=datastores,
        datastore_lines=ds_lines,
        computes=computes,
        vm_sizes=vm_sizes,
        kubernetes=kube,
    )
