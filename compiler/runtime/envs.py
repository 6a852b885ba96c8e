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


# The installer lines that say what went wrong (uv, then pip); the rest is build noise.
_CAUSE_LINES = re.compile(
    r"^\s*(?:error: |cause: |×|╰─▶|ERROR: )?\s*("
    r"Failed to build .*|Because .*|And because .*|No solution found.*"
    r"|Could not find a version that satisfies .*|No matching distribution found for .*"
    r"|Failed building wheel for .*|Failed to build installable wheels.*)$",
    re.MULTILINE,
)


def explain_install_failure(name: str, output: str, packages: list[str], python: str | None) -> str:
    """One clear message for a failed install: the requirements at fault (not every package of
    the environment), why, and what to change; the installer's full output stays in a log."""
    causes = [m.group(1).strip() for m in _CAUSE_LINES.finditer(output)]
    build_failed = [
        c for c in causes if c.lower().startswith(("failed to build", "failed building"))
    ]
    bad = _failed_packages("\n".join(causes) if causes else output, packages)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if build_failed:
        why = f"it has no pre-built wheel for Python {here} and building it from source failed"
    elif causes:
        why = " ".join(c for c in causes if not c.startswith("No solution"))[:600]
    else:
        why = (output.strip().splitlines() or ["the installer failed"])[-1][:300]
    asked = f" (the environment asks for Python {python})" if python else ""
    return (
        f"environment {name!r}: could not install {', '.join(bad)} on Python {here}{asked}: "
        f"{why}. Versions pinned for an older Python often have no build for this one: relax "
        f"the pin (e.g. `{_requirement_name(bad[0])}>=...` or no version) in the environment's "
        "conda / pip file"
    )


def _python_matches(asked: str) -> bool:
    """`3.7.*`, `3.8`, `3.8.5` against the running interpreter; anything else is not judged."""
    m = re.match(r"^\s*=*\s*(\d+)\.(\d+)", asked)
    if not m:
        return True
    return (int(m.group(1)), int(m.group(2))) == sys.version_info[:2]


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
            asked = env.get("python_version")
            if asked and not _python_matches(asked):
                log(
                    f"environment {name!r} asks for Python {asked}; it runs on this worker's "
                    f"Python {sys.version_info.major}.{sys.version_info.minor} (mlpipe installs "
                    "the packages, not the interpreter)"
                )
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
                log_file = os.path.join(cache_dir, "envs", f"{key}.install.log")
                with open(log_file, "w", encoding="utf-8") as fh:
                    fh.write(out + "\n")
                message = explain_install_failure(name, out, packages, env.get("python_version"))
                raise EnvironmentBuildError(f"{message} (installer output: {log_file})")
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
