"""The training environment, from the conda file next to the training code."""

import os

from azureml.core import Environment


def training_environment(workspace, name: str, sources_dir: str, conda_file: str):
    known = Environment.list(workspace=workspace)
    if name in known:
        return known[name]
    env = Environment.from_conda_specification(name, os.path.join(sources_dir, conda_file))
    env.environment_variables["MODEL_KIND"] = "line"
    env.register(workspace)
    return env
