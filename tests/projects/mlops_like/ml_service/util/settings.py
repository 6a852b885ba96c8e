"""Every setting of the project, from environment variables (a `.env` file fills in the rest)."""

import os
from dataclasses import dataclass, field


def _load_env_file(path: str = ".env") -> None:
    """KEY=VALUE lines of `path` become environment variables unless already set."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                os.environ.setdefault(key.strip(), value.strip())


def _get(name: str, default: str | None = None):
    return field(default_factory=lambda: os.environ.get(name, default))


_load_env_file()


@dataclass(frozen=True)
class Settings:
    workspace_name: str = _get("WORKSPACE_NAME")
    subscription_id: str = _get("SUBSCRIPTION_ID")
    resource_group: str = _get("RESOURCE_GROUP")
    compute_name: str = _get("COMPUTE_NAME")
    vm_size: str = _get("COMPUTE_VM_SIZE", "STANDARD_DS2_V2")
    max_nodes: int = field(default_factory=lambda: int(os.environ.get("COMPUTE_MAX_NODES", "2")))
    environment_name: str = _get("ENVIRONMENT_NAME")
    sources_dir: str = _get("SOURCES_DIR")
    conda_file: str = _get("CONDA_FILE", "conda_dependencies.yml")
    train_script: str = _get("TRAIN_SCRIPT")
    evaluate_script: str = _get("EVALUATE_SCRIPT")
    register_script: str = _get("REGISTER_SCRIPT")
    model_name: str = _get("MODEL_NAME")
    pipeline_name: str = _get("PIPELINE_NAME")
    build_id: str = _get("BUILD_ID", "local")
