"""The steps' Python environment, from the conda file beside the training sources."""

from __future__ import annotations

import os

from azureml.core import Environment, Workspace


def get_environment(
    workspace: Workspace, name: str, conda_file: str, rebuild: bool = False
) -> Environment:
    registered = Environment.list(workspace=workspace)
    if name in registered and not rebuild:
        return registered[name]
    environment = Environment.from_conda_specification(name, conda_file)
    environment.register(workspace)
    return environment


def conda_file_path(sources_dir: str, file_name: str) -> str:
    return os.path.join(sources_dir, file_name)
