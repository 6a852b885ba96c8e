"""`mlpipe.yaml`: the local stand-in for an Azure ML workspace (datastores, computes, vm sizes).

Found in the pipeline file's folder or a parent. Every error names the file and line to fix.
"""

from __future__ import annotations

import os
import re
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
    # `images:` (the registry `mlpipe images` builds for, see compiler/images.py); {} when absent
    images: dict = field(default_factory=dict)

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

    data = _read_mapping(path, fail)
    lines = data["__lines__"]
    known = {"workspace", "datastores", "computes", "vm_sizes", "kubernetes", "images"}
    for key in data:
        if key != "__lines__" and key not in known:
            fail(
                lines[key],
                f"unknown key {key!r} in {CONFIG_NAME}; expected one of {', '.join(sorted(known))}",
            )
    base = path.parent
    datastores, ds_lines = _parse_datastores(data, base, fail)
    vm_sizes = _parse_vm_sizes(data, fail)
    computes = _parse_computes(data, vm_sizes, fail)
    kube = _parse_kubernetes(data.get("kubernetes"), lines.get("kubernetes"), "kubernetes", fail)
    return WorkspaceConfig(
        name=str(data.get("workspace") or "local"),
        path=path,
        base_dir=base,
        datastores=datastores,
        datastore_lines=ds_lines,
        computes=computes,
        vm_sizes=vm_sizes,
        kubernetes=kube,
        images=parse_images(data.get("images"), lines.get("images"), fail),
    )


def _read_mapping(path: Path, fail) -> dict:
    """The file's YAML as plain data with `__lines__` (an empty file is an empty mapping)."""
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
    return data


def _parse_datastores(data: dict, base: Path, fail) -> tuple[dict[str, str], dict[str, int]]:
    datastores = {
        d: str((base / ".mlpipe" / "datastores" / d).resolve()) for d in DEFAULT_DATASTORES
    }
    ds_lines: dict[str, int] = {}
    raw_ds = data.get("datastores") or {"__lines__": {}}
    if not isinstance(raw_ds, dict):
        fail(
            data["__lines__"].get("datastores"),
            "datastores: must map a datastore name to a path or URL",
        )
    for name, value in raw_ds.items():
        if name == "__lines__":
            continue
        line = raw_ds["__lines__"][name]
        value = _datastore_url(name, value, line, fail)
        datastores[str(name)] = _resolve_store(base, value)
        ds_lines[str(name)] = line
    return datastores, ds_lines


def _datastore_url(name, value, line: int, fail) -> str:
    """A datastore entry's URL (a string, or {url:, type:}), checked for credentials and form."""
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
    return value


def _parse_vm_sizes(data: dict, fail) -> dict[str, VmSize]:
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
    return vm_sizes


COMPUTE_KEYS = ("vm_size", "max_nodes", "min_nodes")


def _parse_computes(data: dict, vm_sizes: dict[str, VmSize], fail) -> dict[str, ComputeDecl]:
    """`computes:`: each a vm size, node counts, and its Kubernetes placement (the keys of the
    workspace-level `kubernetes:` section, merged over it by passes/placement.py)."""
    computes: dict[str, ComputeDecl] = {}
    raw_c = data.get("computes") or {"__lines__": {}}
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
        vm = plain.get("vm_size")
        if vm is not None and str(vm).upper() not in vm_sizes:
            fail(
                spec["__lines__"].get("vm_size", line),
                f"unknown vm_size {vm!r} for compute {name!r}; use a known size or declare it under vm_sizes: in {CONFIG_NAME}",
            )
        placement = {k: v for k, v in spec.items() if k not in COMPUTE_KEYS}
        computes[str(name)] = ComputeDecl(
            name=str(name),
            vm_size=str(vm).upper() if vm else None,
            max_nodes=int(plain.get("max_nodes", 4)),
            min_nodes=int(plain.get("min_nodes", 0)),
            line=line,
            placement=_parse_kubernetes(placement, line, f"compute {name!r}", fail),
        )
    return computes


# ------------------------------------------------------------------------------- kubernetes:
# The placement keys of the workspace-level `kubernetes:` section and of every compute (merged by
# passes/placement.py). Values are checked here so that every target gets the same valid pod:
# mlpipe's keys are snake_case, the Kubernetes objects inside them keep Kubernetes' field names.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
TOLERATION_FIELDS = {"key", "operator", "value", "effect", "tolerationSeconds"}
# container securityContext fields every target sets (KFP's platform spec has exactly these)
SECURITY_CONTEXT_FIELDS = {"runAsUser": int, "runAsGroup": int, "runAsNonRoot": bool}
POD_SECURITY_CONTEXT_FIELDS = {
    **SECURITY_CONTEXT_FIELDS,
    "fsGroup": int,
    "supplementalGroups": list,
    "fsGroupChangePolicy": str,
}
VOLUME_FIELDS = {"name", "claim", "mount_path", "datastore", "sub_path"}
ENV_FROM_FIELDS = {"secret", "config_map", "key", "env"}


def _parse_kubernetes(raw, line: int | None, label: str, fail) -> dict:
    """Checked, normalised placement keys of `kubernetes:` (label "kubernetes") or a compute."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        fail(line, f"{label}: must be a mapping of Kubernetes placement keys")
    lines = raw.get("__lines__", {})
    out: dict = {}
    for key, value in raw.items():
        if key == "__lines__":
            continue
        at = lines.get(key, line)
        check = _PLACEMENT_KEYS.get(key)
        if check is None:
            extra = f"{', '.join(COMPUTE_KEYS)} or " if label != "kubernetes" else ""
            fail(
                at,
                f"{label}: unknown key {key!r}; expected {extra}one of "
                f"{', '.join(sorted(_PLACEMENT_KEYS))} (see docs/architecture.md)",
            )
        if value is None:
            continue

        def bad(msg, at=at, key=key):
            fail(at, f"{label}: {key}: {msg}")

        out[key] = check(value, bad, label)
    return out


def _dns_value(pattern, limit: int, what: str):
    def check(value, bad, label):
        text = str(value)
        if len(text) > limit or not pattern.fullmatch(text):
            bad(
                f"{text!r} is not a valid {what} (lower-case letters, digits, '-', at most {limit})"
            )
        return text

    return check


def _image(value, bad, label):
    if not isinstance(value, str) or not value.strip():
        bad("give an image reference, e.g. registry.example.com/team/image:1.0")
    return value.strip()


def _label_key(key: str, bad) -> str:
    prefix, _, name = key.rpartition("/")
    if (prefix and not (len(prefix) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix))) or not (
        len(name) <= 63 and _LABEL_NAME.fullmatch(name)
    ):
        bad(f"{key!r} is not a valid Kubernetes label / annotation key ([prefix/]name)")
    return key


def _string_map(labels: bool):
    def check(value, bad, label):
        if not isinstance(value, dict):
            bad("must be a mapping of names to values")
        out = {}
        for k, v in _strip(value).items():
            if isinstance(v, dict | list) or v is None:
                bad(f"the value of {k!r} must be a string")
            text = str(v).lower() if isinstance(v, bool) else str(v)
            if labels and (len(text) > 63 or (text and not _LABEL_NAME.fullmatch(text))):
                bad(f"value {text!r} of {k!r} is not a valid label value (at most 63 characters)")
            out[_label_key(str(k), bad)] = text
        return dict(sorted(out.items()))

    return check


def _items(value, bad, fields: set, what: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        bad(f"must be a list of mappings ({what})")
    items = [_strip(v) for v in value]
    for item in items:
        unknown = sorted(set(item) - fields)
        if unknown:
            bad(f"unknown field(s) {', '.join(unknown)}; use {', '.join(sorted(fields))}")
    return items


def _tolerations(value, bad, label):
    out = []
    for tol in _items(value, bad, TOLERATION_FIELDS | {"toleration_seconds"}, "tolerations"):
        if "toleration_seconds" in tol:
            tol["tolerationSeconds"] = tol.pop("toleration_seconds")
        if tol.get("operator", "Equal") not in ("Equal", "Exists"):
            bad(f"operator {tol['operator']!r}: use Equal or Exists")
        if tol.get("effect", "") not in ("", "NoSchedule", "PreferNoSchedule", "NoExecute"):
            bad(f"effect {tol['effect']!r}: use NoSchedule, PreferNoSchedule or NoExecute")
        seconds = tol.get("tolerationSeconds")
        if isinstance(seconds, str) and seconds.strip().lstrip("-").isdigit():
            seconds = tol["tolerationSeconds"] = int(seconds)
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int)):
            bad(f"tolerationSeconds must be a whole number of seconds, got {seconds!r}")
        out.append({k: str(v) for k, v in tol.items()})
    return out


def _names(value, bad, label):
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        bad("must be a list of secret names")
    return [_dns_value(_DNS_SUBDOMAIN, 253, "secret name")(v, bad, label) for v in value]


def _security_context(fields: dict):
    def check(value, bad, label):
        if not isinstance(value, dict):
            bad(f"must be a mapping with some of {', '.join(fields)}")
        out = {}
        for k, v in _strip(value).items():
            kind = fields.get(k)
            if kind is None:
                bad(f"unknown field {k!r}; mlpipe sets {', '.join(fields)} on every target")
            ok = isinstance(v, kind) and not (kind is int and isinstance(v, bool))
            if kind is list:
                ok = ok and all(isinstance(g, int) and not isinstance(g, bool) for g in v)
            if kind is str:
                ok = v in ("Always", "OnRootMismatch")
            if not ok or (kind is int and v < 0):
                bad(f"{k}: {v!r} is not a valid value")
            out[k] = v
        return out

    return check


def _volumes(value, bad, label):
    out = []
    for vol in _items(value, bad, VOLUME_FIELDS, "name, claim, mount_path or datastore"):
        if not vol.get("name") or not vol.get("claim"):
            bad("every volume needs a name and a claim (the PersistentVolumeClaim)")
        _dns_value(_DNS_LABEL, 63, "volume name")(vol["name"], bad, label)
        _dns_value(_DNS_SUBDOMAIN, 253, "claim name")(vol["claim"], bad, label)
        if ("mount_path" in vol) == ("datastore" in vol):
            bad(
                f"volume {vol['name']!r}: give either mount_path or datastore (mounted at its path)"
            )
        if "datastore" in vol and label != "kubernetes":
            bad(
                f"volume {vol['name']!r}: a datastore's volume belongs in the workspace-level "
                "kubernetes: section (every pod reaches the datastores)"
            )
        if "mount_path" in vol and not str(vol["mount_path"]).startswith("/"):
            bad(f"volume {vol['name']!r}: mount_path must be an absolute path")
        out.append({k: str(v) for k, v in vol.items()})
    if len({v["name"] for v in out}) != len(out):
        bad("volume names must be distinct")
    return out


def _env_from(value, bad, label):
    out = []
    for item in _items(value, bad, ENV_FROM_FIELDS, "secret or config_map, key, env"):
        if ("secret" in item) == ("config_map" in item) or not item.get("key"):
            bad("every entry names one secret or config_map, its key and the env variable")
        env = str(item.get("env") or "")
        if not _ENV_NAME.fullmatch(env):
            bad(f"{env!r} is not a valid environment variable name")
        out.append({k: str(v) for k, v in item.items()})
    return out


_PLACEMENT_KEYS = {
    "default_image": _image,
    "namespace": _dns_value(_DNS_LABEL, 63, "namespace"),
    "service_account": _dns_value(_DNS_SUBDOMAIN, 253, "service account name"),
    "priority_class": _dns_value(_DNS_SUBDOMAIN, 253, "priority class name"),
    "node_selector": _string_map(labels=True),
    "labels": _string_map(labels=True),
    "annotations": _string_map(labels=False),
    "tolerations": _tolerations,
    "image_pull_secrets": _names,
    "security_context": _security_context(SECURITY_CONTEXT_FIELDS),
    "pod_security_context": _security_context(POD_SECURITY_CONTEXT_FIELDS),
    "volumes": _volumes,
    "env_from": _env_from,
}


# ----------------------------------------------------------------------------------- images:
IMAGES_KEYS = {"registry", "base_image", "exclude_newer"}
_REGISTRY = re.compile(r"[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*")


def parse_images(raw, line: int | None, fail) -> dict:
    """mlpipe.yaml `images:`: where the step images `mlpipe images` writes build contexts for are
    pushed (`registry`), optionally the image they are built FROM (`base_image`) and the date
    their requirements are resolved as of (`exclude_newer`, so the lock is reproducible)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        fail(line, "images: must be a mapping, e.g. {registry: myacr.azurecr.io/mlpipe}")
    lines = raw.get("__lines__", {})
    plain = _strip(raw)
    bad = set(plain) - IMAGES_KEYS
    if bad:
        fail(
            lines.get(sorted(bad)[0], line),
            f"images: unknown key(s) {', '.join(sorted(bad))}; expected "
            f"{', '.join(sorted(IMAGES_KEYS))}",
        )
    registry = plain.get("registry")
    if not isinstance(registry, str) or not _REGISTRY.fullmatch(registry.strip().rstrip("/")):
        fail(
            lines.get("registry", line),
            "images: registry must be a registry and repository prefix in lower case, e.g. "
            "myacr.azurecr.io/mlpipe (images are pushed as <registry>/<environment>:<hash>)",
        )
    out = {"registry": registry.strip().rstrip("/")}
    base = plain.get("base_image")
    if base is not None:
        if not isinstance(base, str) or not base.strip() or any(c.isspace() for c in base.strip()):
            fail(lines.get("base_image", line), "images: base_image must be an image reference")
        out["base_image"] = base.strip()
    when = plain.get("exclude_newer")
    if when is not None:
        text = when.isoformat() if hasattr(when, "isoformat") else str(when)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})?)?", text):
            fail(
                lines.get("exclude_newer", line),
                "images: exclude_newer must be a date (2026-11-30) or an RFC 3339 time",
            )
        out["exclude_newer"] = text
    return out
