"""Finding the model currently in the registry."""

from __future__ import annotations

from azureml.core import Workspace
from azureml.core.model import Model


def get_model(
    model_name: str,
    workspace: Workspace,
    tag_name: str | None = None,
    tag_value: str | None = None,
) -> Model | None:
    """The newest version of `model_name` carrying the tag, or None when there is none yet."""
    tags = [[tag_name, tag_value]] if tag_name is not None else None
    models = Model.list(workspace, name=model_name, tags=tags, latest=True)
    if len(models) > 1:
        raise RuntimeError(f"expected at most one latest {model_name}, got {len(models)}")
    return models[0] if models else None
