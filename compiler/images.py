"""Step images for the Kubernetes profiles and KFP: one build context per step environment.

`mlpipe images FILE -o DIR --target T` writes, for every distinct step environment of the file's
pipelines, a folder a platform team builds and pushes as it is:

    DIR/<repository>/Dockerfile          FROM a pinned base image; installs requirements.txt
    DIR/<repository>/requirements.in     the environment's pip packages + what the runtime needs
    DIR/<repository>/requirements.txt    every package pinned with its hashes (`uv pip compile`)
    DIR/<repository>/runtime/mlpipe/     mlpipe's step runtime at the compiler's version (files)
    DIR/images.txt                       `<image> <folder>` per image, for a build-and-push loop

With `images: {registry: R}` in mlpipe.yaml, compiled artifacts of the kubernetes profiles and of
KFP name `R/<repository>:<tag>` for each step, and their pods install nothing at start. The tag is
a hash of everything that decides the image (base image, requirements.in, the resolution date,
the runtime's files, the recipe), computed the same way by `mlpipe compile` (no network) and by
`mlpipe images`; the lock is resolved as of `images.exclude_newer` (default EXCLUDE_NEWER), so the
same tag gives the same requirements.txt on every machine.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import MlpipeError, Problem
from .ir import Environment, PipelineIR, Step

TARGETS = ("airflow", "kfp", "prefect")
# Bumped whenever the Dockerfile's shape changes: every tag changes with it.
RECIPE = "1"
# The Prefect version of the generated flows (backends/prefect.py says the same).
PREFECT_VERSION = "3.9.1"
# The base image per Python version (the runtime needs 3.11 or newer): a full release tag on one
# Debian release, so a rebuild gets the same interpreter. `images.base_image` replaces it (a
# digest-pinned reference, a CUDA image...).
BASE_IMAGES = {
    "3.11": "python:3.11.14-slim-bookworm",
    "3.12": "python:3.12.12-slim-bookworm",
    "3.13": "python:3.13.9-slim-bookworm",
}
DEFAULT_PYTHON = "3.11"
# Requirements are resolved as of this time unless mlpipe.yaml says `images.exclude_newer`.
EXCLUDE_NEWER = "2026-12-01T00:00:00Z"
# The platform the lock is resolved for (the base images are Debian bookworm, glibc 2.36).
PLATFORM = "x86_64-manylinux_2_28"
# The repository of steps without an Environment (and of KFP's run-summary task, and Prefect's
# pipeline flow jobs: OWN_TASK_TARGETS).
NO_ENVIRONMENT = "mlpipe-step"
OWN_TASK_TARGETS = ("kfp", "prefect")
# What the step runtime needs in every image, and per datastore URL scheme.
RUNTIME_REQUIREMENTS = ("fsspec>=2024.6",)
FILESYSTEMS = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "az": "adlfs",
    "adl": "adlfs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
}
# What a target's pods need besides the runtime. KFP's executor runs `kfp` installed without its
# dependencies (`_KFP_RUNTIME=true`, as kfp's own lightweight components install it).
TARGET_NO_DEPS = {"kfp": ("kfp==2.17.3",)}
# Resolved together with the environment's packages: Prefect's Kubernetes jobs run
# `prefect flow-run execute`, which pulls the compiled folder (prefect.yaml's pull step) and runs
# the step in the same Python. prefect-kubernetes is the worker's, not the job's.
TARGET_REQUIREMENTS = {"prefect": (f"prefect=={PREFECT_VERSION}",)}
ROOT = "/opt/mlpipe"
# What an image of the user's own must hold to run a step, per target.
OWN_IMAGE_NEEDS = {
    "kfp": "Python >= 3.11 and mlpipe's step runtime on PYTHONPATH (docs/kfp.md#images)",
    "airflow": "Python >= 3.11 and mlpipe's step runtime on PYTHONPATH (docs/airflow.md)",
    "prefect": (
        f"Python >= 3.11, prefect=={PREFECT_VERSION} and fsspec (the job pulls the compiled "
        "folder, which carries the runtime; docs/prefect.md#profile-kubernetes)"
    ),
}
# In the image: the runtime first on PYTHONPATH, and steps run with the image's own Python (its
# packages are the environment's), never a venv built at start.
IMAGE_ENV = {"PYTHONPATH": f"{ROOT}/runtime", "MLPIPE_USE_CURRENT_PYTHON": "1"}
# Per target: Prefect keeps its profile in PREFECT_HOME (default ~/.prefect), and a job's user
# (runAsUser without a passwd entry) may have no writable home; /tmp is the pod's own.
TARGET_ENV = {"prefect": {"PREFECT_HOME": "/tmp/.prefect"}}


@dataclass(frozen=True)
class ImageSpec:
    repository: str
    tag: str
    ref: str
    environment: str | None  # the IR environment key, None for steps without one
    python: str
    exclude_newer: str
    requirements_in: str
    no_deps: tuple[str, ...]
    dockerfile: str
    runtime: dict[str, bytes]


# ------------------------------------------------------------------------ which image a step runs


def environment_of(pipeline: PipelineIR, step: Step | None) -> Environment | None:
    return pipeline.environment_of(step) if step is not None else None


def own_image(env: Environment | None) -> str | None:
    """The image an Environment names itself (`from_docker_image`, `docker.base_image`) or builds
    from its own Dockerfile: the user's, never built by mlpipe. A curated environment's image is
    only mlpipe's stand-in."""
    if env is not None and env.docker_image and not env.curated:
        return env.docker_image
    if env is not None and env.dockerfile:
        return "(the environment's Dockerfile)"
    return None


def step_image(ctx, pipeline: PipelineIR, step: Step | None, target: str, fallback: str) -> str:
    """The image a step's pod runs: mlpipe's image of its environment when mlpipe.yaml names a
    registry and the environment has no image of its own, else `fallback` (the backend's choice)
    with a compile warning at the step's line: that image has no mlpipe runtime mlpipe knows of.
    `step` None is a task of mlpipe's own (KFP's run summary)."""
    env = environment_of(pipeline, step)
    if pipeline.images is not None and own_image(env) is None:
        return image_spec(pipeline, env, target).ref
    if step is not None:
        if pipeline.images is None:
            why = (
                "no image registry is configured: set images: {registry: ...} in mlpipe.yaml "
                "and build the step images with `mlpipe images`"
            )
        else:
            needs = OWN_IMAGE_NEEDS.get(target, OWN_IMAGE_NEEDS["kfp"])
            why = (
                f"environment {env.name!r} names its own image or Dockerfile, which "
                f"`mlpipe images` does not build: the image needs {needs}"
            )
        warn_grouped(ctx, step, fallback, f"which may lack mlpipe's step runtime ({why})")
    return fallback


def warn_grouped(ctx, step: Step, image: str, why: str) -> None:
    """One warning per image and reason, at the first such step's line, naming the steps (a
    5000-step pipeline without a registry gets one line, not 5000)."""
    key = (image, why)
    seen = ctx.grouped.setdefault(key, {"steps": [], "named": set(), "at": None})
    if step.name in seen["named"]:  # one DAG per schedule renders the same steps again
        return
    seen["steps"].append(step.name)
    seen["named"].add(step.name)  # a set: a list's `in` made this quadratic in the steps
    names = seen["steps"]
    shown = ", ".join(repr(n) for n in names[:3])
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    what = "step" if len(names) == 1 else "steps"
    verb = "runs" if len(names) == 1 else "run"
    message = f"{what} {shown}{more} {verb} in image {image}, {why}"
    if seen["at"] is None:
        seen["at"] = len(ctx.warnings)
        ctx.warn(step.origin, message)
    else:
        first = ctx.warnings[seen["at"]]
        ctx.warnings[seen["at"]] = dataclasses.replace(first, message=message)


def built_by_mlpipe(pipeline: PipelineIR, step: Step | None) -> bool:
    """Whether the step's pod runs an image `mlpipe images` built (its packages are in it)."""
    return pipeline.images is not None and own_image(environment_of(pipeline, step)) is None


# ------------------------------------------------------------------------------ the image's recipe


def repository_name(env: Environment | None) -> str:
    """A Docker repository path component from the environment's name."""
    if env is None:
        return NO_ENVIRONMENT
    text = re.sub(r"[^a-z0-9._-]+", "-", env.name.lower())
    text = re.sub(r"[._-]{2,}", "-", text).strip("._-")
    return text[:100].strip("._-") or "environment"


def _python(pipeline: PipelineIR, env: Environment | None) -> str:
    asked = (env.python_version if env is not None else None) or DEFAULT_PYTHON
    m = re.match(r"(\d+)\.(\d+)", asked)
    version = f"{m.group(1)}.{m.group(2)}" if m else DEFAULT_PYTHON
    if version not in BASE_IMAGES:  # older than the runtime needs, or not yet known
        return DEFAULT_PYTHON if tuple(map(int, version.split("."))) < (3, 11) else "3.13"
    return version


def _filesystems(pipeline: PipelineIR) -> list[str]:
    schemes = {d.url.split("://", 1)[0].lower() for d in pipeline.datastores if "://" in d.url}
    return sorted({FILESYSTEMS[s] for s in schemes if s in FILESYSTEMS})


def _requirements_in(pipeline: PipelineIR, env: Environment | None, target: str) -> str:
    from .runtime.envs import installable_packages

    lines = ["# generated by `mlpipe images` (do not edit): resolved into requirements.txt"]
    if env is not None:
        packages = installable_packages({"pip_packages": env.pip_packages})
        lines.append(f"# environment {env.name!r} (azureml-* packages are served by mlpipe)")
        lines.extend(packages)
    lines.append("# mlpipe's step runtime, and the filesystems of the pipeline's datastores")
    lines.extend([*RUNTIME_REQUIREMENTS, *_filesystems(pipeline)])
    if target in TARGET_REQUIREMENTS:
        lines.append(f"# what {target}'s jobs run the step with")
        lines.extend(TARGET_REQUIREMENTS[target])
    return "\n".join(lines) + "\n"


@functools.cache
def image_runtime(target: str) -> dict[str, bytes]:
    """The runtime files the image carries: the `mlpipe` package as Airflow / Prefect workers get
    it, plus KFP's executor entry point for KFP images."""
    from .backends.base import runtime_files

    files = dict(runtime_files()[1])
    if target == "kfp":
        from .backends import kfp_executor

        backends = Path(kfp_executor.__file__).resolve().parent
        for name in ("__init__.py", "kfp_executor.py"):
            files[f"mlpipe/backends/{name}"] = (backends / name).read_bytes()
    return dict(sorted(files.items()))


@functools.cache
def _runtime_digest(target: str) -> bytes:
    digest = hashlib.sha256()
    for rel, data in image_runtime(target).items():
        digest.update(f"{rel}\0{len(data)}\0".encode() + data)
    return digest.digest()


_DOCKERFILE = """\
FROM {base}
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements.txt {root}/requirements.txt
# Every package pinned with its hashes; nothing is resolved or installed when a pod starts.
RUN python -m pip install --no-deps --require-hashes -r {root}/requirements.txt
# mlpipe's step runtime at the compiler's version: files, never a package from an index.
COPY runtime/ {root}/runtime/
ENV {env}
"""


def image_spec(pipeline: PipelineIR, env: Environment | None, target: str) -> ImageSpec:
    """The recipe of one step image and its reference, from the IR alone (no network)."""
    settings = pipeline.images
    if settings is None:
        raise MlpipeError(
            Problem(
                pipeline.source_file,
                None,
                "no image registry is configured: add images: {registry: <registry>/<prefix>} "
                "to mlpipe.yaml",
            )
        )
    python = _python(pipeline, env)
    base = settings.base_image or BASE_IMAGES[python]
    exclude_newer = settings.exclude_newer or EXCLUDE_NEWER
    requirements_in = _requirements_in(pipeline, env, target)
    no_deps = TARGET_NO_DEPS.get(target, ())
    runtime = image_runtime(target)
    body = _DOCKERFILE.format(
        base=base,
        root=ROOT,
        env=" ".join(f"{k}={v}" for k, v in {**IMAGE_ENV, **TARGET_ENV.get(target, {})}.items()),
    )
    digest = hashlib.sha256()
    for part in (RECIPE, target, python, PLATFORM, exclude_newer, body, requirements_in):
        digest.update(part.encode() + b"\0")
    for line in no_deps:
        digest.update(line.encode() + b"\0")
    digest.update(_runtime_digest(target))
    repository = repository_name(env)
    tag = digest.hexdigest()[:16]
    ref = f"{settings.registry}/{repository}:{tag}"
    name = env.name if env is not None else "(steps without an Environment)"
    header = (
        f"# mlpipe step image {ref}\n"
        f"# environment {name!r} for {target}; generated by `mlpipe images` (do not edit).\n"
        f"# Build and push from this folder: docker build -t {ref} . && docker push {ref}\n"
    )
    return ImageSpec(
        repository=repository,
        tag=tag,
        ref=ref,
        environment=env.key if env is not None else None,
        python=python,
        exclude_newer=exclude_newer,
        requirements_in=requirements_in,
        no_deps=no_deps,
        dockerfile=header + body,
        runtime=runtime,
    )


def pipeline_images(pipeline: PipelineIR, target: str) -> list[ImageSpec]:
    """The images mlpipe builds for a pipeline's steps (plus the no-environment image of KFP's run
    summary and of Prefect's pipeline flow job), one per distinct environment, in a fixed order."""
    specs: dict[str, ImageSpec] = {}
    steps = list(pipeline.steps) + ([None] if target in OWN_TASK_TARGETS else [])
    for step in steps:
        env = environment_of(pipeline, step)
        if own_image(env) is None:
            spec = image_spec(pipeline, env, target)
            specs.setdefault(spec.ref, spec)
    return [specs[k] for k in sorted(specs)]


# ------------------------------------------------------------------------------ writing contexts


def find_uv() -> str:
    from .runtime.envs import find_uv as find

    uv = find()
    if uv is None:
        raise MlpipeError(
            "mlpipe images resolves requirements with uv, which is not installed here: "
            "pip install uv (or put uv on PATH)"
        )
    return uv


def lock(spec: ImageSpec, uv: str) -> str:
    """requirements.txt: `uv pip compile` of requirements.in for the image's Python and platform,
    as of the spec's date, with hashes; plus the target's packages installed without theirs."""
    parts = []
    with tempfile.TemporaryDirectory(prefix="mlpipe-images-") as tmp:
        jobs = [("requirements.in", spec.requirements_in, [])]
        if spec.no_deps:
            jobs.append(("no-deps.in", "\n".join(spec.no_deps) + "\n", ["--no-deps"]))
        for name, text, extra in jobs:
            Path(tmp, name).write_text(text, encoding="utf-8")
            cmd = [
                uv,
                "pip",
                "compile",
                "--quiet",
                "--no-header",
                "--annotation-style=line",
                "--generate-hashes",
                f"--python-version={spec.python}",
                f"--python-platform={PLATFORM}",
                f"--exclude-newer={spec.exclude_newer}",
                *extra,
                name,
            ]
            env = {**os.environ, "UV_NO_PROGRESS": "1"}
            env.pop("VIRTUAL_ENV", None)
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise MlpipeError(
                    f"image {spec.ref}: the requirements cannot be resolved as of "
                    f"{spec.exclude_newer} for Python {spec.python}:\n{proc.stderr.strip()}\n"
                    "fix the environment's packages, or set images: {exclude_newer: ...} in "
                    "mlpipe.yaml to a later date"
                )
            parts.append(proc.stdout)
    head = (
        f"# {spec.ref}: every package of the image, pinned with hashes, resolved as of "
        f"{spec.exclude_newer} for Python {spec.python} on {PLATFORM}.\n"
        "# Installed with pip --no-deps --require-hashes (the lock is complete).\n"
    )
    if spec.no_deps:
        parts[1] = "# installed without their dependencies (see the Dockerfile)\n" + parts[1]
    return head + "".join(parts)


def context_files(spec: ImageSpec, folder: str, previous: Path | None, uv: str | None) -> dict:
    """{path: bytes} of one build context; the lock of an unchanged context is kept as it is."""
    files = {
        f"{folder}/Dockerfile": spec.dockerfile.encode(),
        f"{folder}/requirements.in": spec.requirements_in.encode(),
    }
    old = previous / folder if previous is not None else None
    if (
        old is not None
        and (old / "Dockerfile").is_file()
        and (old / "Dockerfile").read_bytes() == files[f"{folder}/Dockerfile"]
        and (old / "requirements.txt").is_file()
    ):
        files[f"{folder}/requirements.txt"] = (old / "requirements.txt").read_bytes()
    else:
        files[f"{folder}/requirements.txt"] = lock(spec, uv or find_uv()).encode()
    for rel, data in spec.runtime.items():
        files[f"{folder}/runtime/{rel}"] = data
    return files


def write_images(
    pipelines: list[PipelineIR], out_dir: Path, target: str, source_key: str = ""
) -> tuple[list[ImageSpec], list[str]]:
    """Write one build context per distinct step image of `pipelines` into `out_dir`, and
    images.txt; returns the images and the folders written."""
    from .backends.base import write_artifacts

    if target not in TARGETS:
        raise MlpipeError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    specs: dict[str, ImageSpec] = {}
    for p in pipelines:
        for spec in pipeline_images(p, target):
            specs.setdefault(spec.ref, spec)
    folders: dict[str, str] = {}
    taken: dict[str, str] = {}
    for ref in sorted(specs):
        spec = specs[ref]
        folder = spec.repository
        if folder in taken and taken[folder] != ref:
            folder = f"{spec.repository}-{spec.tag[:8]}"
        taken[folder] = ref
        folders[ref] = folder
    uv = None  # found when a lock is needed: an unchanged output needs no uv
    artifacts: dict[str, bytes] = {}
    for ref, folder in folders.items():
        artifacts.update(context_files(specs[ref], folder, out_dir, uv))
    listing = "".join(f"{ref} {folder}\n" for ref, folder in sorted(folders.items()))
    artifacts["images.txt"] = listing.encode()
    entry = {"target": "images", "images": sorted(folders)}
    write_artifacts(out_dir, artifacts, source_key, entry)
    return [specs[r] for r in sorted(specs)], [folders[r] for r in sorted(folders)]
