"""`Model`: v1's model registry, kept in the workspace's default datastore.

Works in step scripts (any target) and plain scripts; registering during a capture is refused
(`mlpipe validate` / `ir` never write). Storage and concurrency: compiler/runtime/models.py.
"""

from __future__ import annotations

import os
import sys

from ..runtime.models import ModelRegistry, mirror_to_mlflow, step_run_info
from ..runtime.registry import RegistryError
from . import _live
from ._session import fail


def _registry(workspace) -> ModelRegistry:
    return ModelRegistry(_live.info_of(workspace))


def _say(message: str) -> None:
    print(f"mlpipe: {message}", file=sys.stderr)


class Model:
    """A registered model version: `.name`, `.version`, `.id` (`name:version`), `.tags`,
    `.properties`, `.description`, `.url` (where its files are stored)."""

    def __init__(
        self,
        workspace,
        name=None,
        id=None,
        tags=None,
        properties=None,
        version=None,
        run_id=None,
        model_framework=None,
        expand=True,
        **kwargs,
    ):
        if id and not name:
            name, _, ver = str(id).rpartition(":")
            version = version or (int(ver) if ver.isdigit() else None)
        if not name:
            raise _live.NotFound("Model(ws, name=...) needs a name or an id 'name:version'")
        reg = _registry(workspace)
        try:
            if tags or properties or run_id:
                found = reg.list(name, tags, properties, run_id)
                if version is not None:
                    found = [d for d in found if d["version"] == int(version)]
                if not found:
                    raise RegistryError(
                        f"no version of model {name!r} matches tags={tags!r} "
                        f"properties={properties!r}"
                    )
                doc = found[0]
            else:
                doc = reg.get(name, version)
        except RegistryError as exc:
            raise _live.not_found(exc) from None
        self._set(workspace, doc)

    def _set(self, workspace, doc: dict) -> None:
        self.workspace = workspace
        self._doc = doc
        self.name = doc["name"]
        self.version = doc["version"]
        self.id = doc["id"]
        self.tags = dict(doc.get("tags") or {})
        self.properties = dict(doc.get("properties") or {})
        self.description = doc.get("description")
        self.created_time = doc.get("created")
        self.model_framework = doc.get("framework")
        self.model_framework_version = doc.get("framework_version")
        self.url = doc.get("url")
        self.run_id = (doc.get("run") or {}).get("id")
        self.experiment_name = (doc.get("run") or {}).get("experiment")
        self.datasets = {}
        for item in doc.get("datasets") or []:
            if isinstance(item, list) and len(item) == 2:
                self.datasets.setdefault(item[0], []).append(item[1])

    @classmethod
    def _from_doc(cls, workspace, doc: dict) -> Model:
        model = cls.__new__(cls)
        model._set(workspace, doc)
        return model

    # ---------------------------------------------------------------------------- registering
    @staticmethod
    def register(
        workspace,
        model_path,
        model_name,
        tags=None,
        properties=None,
        description=None,
        datasets=None,
        model_framework=None,
        model_framework_version=None,
        child_paths=None,
        sample_input_dataset=None,
        sample_output_dataset=None,
        resource_configuration=None,
        **kwargs,
    ) -> Model:
        return Model._register(
            workspace,
            model_path,
            model_name,
            tags=tags,
            properties=properties,
            description=description,
            datasets=datasets,
            model_framework=model_framework,
            model_framework_version=model_framework_version,
            run_info=step_run_info(),
        )

    @staticmethod
    def _register(
        workspace,
        model_path,
        model_name,
        *,
        tags=None,
        properties=None,
        description=None,
        datasets=None,
        model_framework=None,
        model_framework_version=None,
        run_info=None,
        **_ignored,
    ) -> Model:
        if _live.capturing():
            raise fail(
                "Model.register() while capturing a pipeline would write to the registry: "
                "register models in a step script (or run.register_model) or a plain script"
            )
        reg = _registry(workspace)
        doc = reg.register(
            model_name,
            model_path,
            tags=tags,
            properties=properties,
            description=description,
            datasets=[_dataset_ref(d) for d in datasets or []],
            framework=model_framework,
            framework_version=model_framework_version,
            run=run_info or {},
        )
        try:
            mirrored = mirror_to_mlflow(doc, _say)
        except Exception as exc:  # registered in mlpipe all the same; say what MLflow lacks
            _say(f"warning: model {doc['id']} not registered in MLflow: {exc}")
            mirrored = None
        if mirrored is not None:
            reg.edit(doc["name"], doc["version"], "set", {"mlflow": mirrored})
            doc = reg.get(doc["name"], doc["version"])
        _say(f"registered model {doc['name']!r} version {doc['version']}")
        return Model._from_doc(workspace, doc)

    # ---------------------------------------------------------------------------- querying
    @staticmethod
    def list(
        workspace,
        name=None,
        tags=None,
        properties=None,
        run_id=None,
        latest=False,
        expand=True,
        model_framework=None,
        dataset_id=None,
        **kwargs,
    ) -> list[Model]:
        docs = _registry(workspace).list(name, tags, properties, run_id, latest)
        if model_framework:
            docs = [d for d in docs if d.get("framework") == model_framework]
        return [Model._from_doc(workspace, d) for d in docs]

    @staticmethod
    def get_model_path(model_name, version=None, _workspace=None) -> str:
        """A local path to the model's file or folder: `./azureml-models/<name>/<version>/`
        (v1's layout), downloaded there from the registry the first time."""
        try:
            doc = _registry(_workspace).get(model_name, version)
        except RegistryError as exc:
            raise _live.not_found(exc) from None
        target = os.path.join(os.getcwd(), "azureml-models", doc["name"], str(doc["version"]))
        entry = os.path.join(target, doc["files"]["entry"])
        if not os.path.exists(entry):
            ModelRegistry(_live.info_of(_workspace)).download(doc, target, exist_ok=True)
        return entry

    # ---------------------------------------------------------------------------- files
    def download(self, target_dir=".", exist_ok=False, exists_ok=None) -> str:
        if exists_ok is not None:  # v1's deprecated spelling
            exist_ok = exists_ok
        return _registry(self.workspace).download(self._doc, target_dir, bool(exist_ok))

    def get_sas_urls(self) -> dict:
        return {rel: f"{self.url}/{rel}" for rel in self._doc["files"]["list"]}

    # ---------------------------------------------------------------------------- edits
    def _edit(self, op: str, value) -> None:
        reg = _registry(self.workspace)
        reg.edit(self.name, self.version, op, value)
        self._set(self.workspace, reg.get(self.name, self.version))

    def add_tags(self, tags: dict) -> None:
        self._edit("add_tags", {str(k): v for k, v in (tags or {}).items()})

    def remove_tags(self, tags) -> None:
        keys = [tags] if isinstance(tags, str) else list(tags or [])
        self._edit("remove_tags", [str(k) for k in keys])

    def add_properties(self, properties: dict) -> None:
        """Properties are add-only: changing an existing one is an error (v1)."""
        for key, value in (properties or {}).items():
            if key in self.properties and self.properties[key] != value:
                raise _live.NotFound(
                    f"model {self.id}: property {key!r} is already {self.properties[key]!r}; "
                    "properties cannot be changed, only added"
                )
        self._edit("add_properties", {str(k): v for k, v in (properties or {}).items()})

    def update(self, tags=None, description=None, **kwargs) -> None:
        if tags:
            self.add_tags(tags)
        if description is not None:
            self._edit("set", {"description": description})

    def serialize(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "tags": dict(self.tags),
            "properties": dict(self.properties),
            "description": self.description,
            "url": self.url,
            "runId": self.run_id,
            "createdTime": self.created_time,
        }

    def __eq__(self, other):
        return isinstance(other, Model) and other.id == self.id

    def __hash__(self):
        return hash(("model", self.id))

    def __repr__(self) -> str:
        return f"Model(workspace={getattr(self.workspace, 'name', None)!r}, name={self.name!r}, id={self.id!r}, version={self.version}, tags={self.tags!r})"


def _dataset_ref(item) -> list:
    """v1 takes [(purpose, dataset)]: kept as [purpose, dataset id]."""
    if isinstance(item, list | tuple) and len(item) == 2:
        purpose, ds = item
        return [str(purpose), getattr(ds, "id", None) or str(ds)]
    return ["input", getattr(item, "id", None) or str(item)]


def register_model(workspace, model_name: str, model_path: str | None = None, run=None, **kwargs):
    """`Run.register_model(...)` for the step's Run (called by runtime/context.py).

    Here, not in runtime/models.py, so that the runtime never imports the authoring API back.

    `model_path` is a local file or folder (the run resolves `outputs/...` against its working
    folder; v1 read it from the run's uploaded files, which are the same files). The version
    records the registering run (`Model.list(ws, run_id=run.id)`). Returns a `Model`."""
    run_info = step_run_info()
    if getattr(run, "id", None):
        run_info["id"] = run.id
    return Model._register(
        workspace, model_path or "outputs", model_name, run_info=run_info, **kwargs
    )
