"""The project's settings, taken from environment variables.

A `.env` file at the project root supplies the values the environment does not set, so a CI job
overrides any of them with a real variable. Standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def load_env_file(path: Path = PROJECT_ROOT / ".env") -> None:
    """Copy KEY=VALUE lines of `path` into os.environ where the key is not set yet."""
    if not path.is_file():
        return
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


@dataclass(frozen=True)
class Settings:
    workspace_name: str
    experiment_name: str
    pipeline_name: str
    build_id: str
    compute_name: str
    vm_size: str
    max_nodes: int
    env_name: str
    env_conda_file: str
    rebuild_env: bool
    sources_dir: str
    train_script: str
    evaluate_script: str
    register_script: str
    model_name: str
    dataset_name: str
    dataset_version: str
    data_file: str
    shrink: float
    allow_run_cancel: str


def get_settings() -> Settings:
    load_env_file()
    env = os.environ.get
    return Settings(
        workspace_name=env("WORKSPACE_NAME", "flats-ws"),
        experiment_name=env("EXPERIMENT_NAME", "flats-training"),
        pipeline_name=env("TRAINING_PIPELINE_NAME", "flats-training-pipeline"),
        build_id=env("BUILD_ID", "local"),
        compute_name=env("COMPUTE_NAME", "cpu-cluster"),
        vm_size=env("COMPUTE_VM_SIZE", "STANDARD_DS2_V2"),
        max_nodes=int(env("COMPUTE_MAX_NODES", "2")),
        env_name=env("ENV_NAME", "flats-train-env"),
        env_conda_file=env("ENV_CONDA_FILE", "conda_env.yml"),
        rebuild_env=env("REBUILD_ENV", "false").lower() == "true",
        sources_dir=env("SOURCES_DIR", "training"),
        train_script=env("TRAIN_SCRIPT", "train/train_step.py"),
        evaluate_script=env("EVALUATE_SCRIPT", "evaluate/evaluate_step.py"),
        register_script=env("REGISTER_SCRIPT", "register/register_step.py"),
        model_name=env("MODEL_NAME", "flats_model.json"),
        dataset_name=env("DATASET_NAME", "flats_ds"),
        dataset_version=env("DATASET_VERSION", "latest"),
        data_file=env("DATA_FILE", "data/flats.csv"),
        shrink=float(env("SHRINK", "0.5")),
        allow_run_cancel=env("ALLOW_RUN_CANCEL", "true"),
    )
