"""Step environments: a cached virtualenv per environment content hash.

The IR already folds curated `AzureML-*` names and the pip-installable part of conda dependencies into
`pip_packages`; here they are installed into `<cache_dir>/envs/<key>/`, built once under a file lock and
marked ready with a marker file, so concurrent builders (threads or processes) are safe.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

from . import store

READY_MARKER = ".mlpipe-ready"


class EnvironmentBuildError(RuntimeError):
    pass


def _requirement_name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[@(]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def installable_packages(env: dict) -> list[str]:
    """The environment's pip requirements minus what mlpipe provides or cannot install."""
    out = []
    for req in env.get("pip_packages") or []:
        req = req.strip()
        if not req or req.startswith("#") or req.startswith("-"):
            continue
        name = _requirement_name(req)
        if name.startswith("azureml-") or name in ("azureml", "python", "pip", "mlpipe"):
            continue
        out.append(req)
    return out


def env_key(env: dict) -> str:
    base = (
        env.get("content_hash")
        or hashlib.sha256("\n".join(installable_packages(env)).encode()).hexdigest()
    )
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    return f"{base[:32]}-{tag}"


def _venv_python(root: str) -> str:
    if os.name == "nt":  # pragma: no cover
        return os.path.join(root, "Scripts", "python.exe")
    return os.path.join(root, "bin", "python")


def find_uv() -> str | None:
    cand = os.path.join(os.path.dirname(sys.executable), "uv")
    if os.path.isfile(cand) and os.access(cand, os.X_OK):
        return cand
    return shutil.which("uv")


def _failed_packages(output: str, packages: list[str]) -> list[str]:
    names = {_requirement_name(p): p for p in packages}
    low = output.lower().replace("_", "-")
    hit = [
        req
        for name, req in names.items()
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", low)
    ]
    return hit or packages


def ensure_env(env: dict, cache_dir: str, log=None) -> str:
    """The python executable of the environment's venv, building it if needed."""
    packages = installable_packages(env)
    key = env_key(env)
    root = os.path.join(cache_dir, "envs", key)
    python = _venv_python(root)
    marker = os.path.join(root, READY_MARKER)
    if os.path.exists(marker):
        return python
    with store.file_lock(os.path.join(cache_dir, "envs", f"{key}.lock")):
        if os.path.exists(marker):
            return python
        if os.path.exists(root):
            shutil.rmtree(root)  # a build that died half-way
        name = env.get("name") or key
        if log:
            log(f"building environment {name!r} ({len(packages)} package(s)) in {root}")
        started = time.monotonic()
        uv = find_uv()
        envvars = dict(os.environ)
        envvars.pop("VIRTUAL_ENV", None)
        envvars.setdefault("UV_NO_PROGRESS", "1")
        envvars.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        if uv:
            create = [uv, "venv", "-q", "--python", sys.executable, root]
            install = [uv, "pip", "install", "-q", "--python", python, *packages]
        else:
            create = [sys.executable, "-m", "venv", root]
            install = [python, "-m", "pip", "install", "-q", *packages]
        proc = subprocess.run(create, capture_output=True, text=True, env=envvars)
        if proc.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise EnvironmentBuildError(
                f"environment {name!r}: could not create a virtualenv: {proc.stderr.strip()[-2000:]}"
            )
        if packages:
            proc = subprocess.run(install, capture_output=True, text=True, env=envvars)
            if proc.returncode != 0:
                out = (proc.stdout + "\n" + proc.stderr).strip()
                shutil.rmtree(root, ignore_errors=True)
                bad = _failed_packages(out, packages)
                raise EnvironmentBuildError(
                    f"environment {name!r}: could not install {', '.join(bad)}:\n{out[-3000:]}"
                )
        with open(marker, "w") as fh:
            fh.write("\n".join(packages) + "\n")
        if log:
            log(f"environment {name!r} ready in {time.monotonic() - started:.1f}s")
    return python


def step_python(env: dict | None, cache_dir: str, use_current_python: bool, log=None) -> str:
    # user_managed (v1 `user_managed_dependencies=True`): the packages are already where it runs.
    if env is None or use_current_python or env.get("user_managed"):
        return sys.executable
    if not installable_packages(env):
        return sys.executable
    return ensure_env(env, cache_dir, log=log)
