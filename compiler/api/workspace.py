"""Workspace, datastores and compute targets, backed by mlpipe.yaml instead of Azure."""

from __future__ import annotations

import os

from ..runtime import store
from . import _live
from ._session import current, fail
from ._v1 import V1Object
from .exceptions import ComputeTargetException, UnknownCompute, UnknownComputeKey, UnknownDatastore  # noqa: F401 (re-exported)


class _Status:
    def __init__(self, state: str, extra: dict | None = None):
        self.state = state
        self._extra = extra or {}

    def serialize(self) -> dict:
        return {"provisioningState": self.state, **self._extra}

    def __repr__(self) -> str:
        return f"Status({self.state})"


class Workspace(V1Object):
    """The workspace described by mlpipe.yaml (found beside the pipeline file or in a parent)."""

    def __init__(
        self,
        subscription_id=None,
        resource_group=None,
        workspace_name=None,
        auth=None,
        _location=None,
        _disable_service_check=False,
        _workspace_id=None,
        sku="basic",
        tags=None,
        _cloud="AzureCloud",
    ):
        # Inside a step: the pipeline's workspace from the run context (no mlpipe.yaml, no PyYAML).
        self._info = _live.step_info()
        self.name = workspace_name or (self._info.name if self._info else current().config.name)
        self.subscription_id = subscription_id or "00000000-0000-0000-0000-000000000000"
        self.resource_group = resource_group or "mlpipe"
        self.location = _location or "local"
        self.sku = sku
        self.tags = tags or {}
        self._default_datastore = self._info.default if self._info else "workspaceblobstore"

    @classmethod
    def from_config(cls, path=None, auth=None, _logger=None, _file_name=None):
        return cls()

    @classmethod
    def get(
        cls,
        name=None,
        auth=None,
        subscription_id=None,
        resource_group=None,
        location=None,
        cloud="AzureCloud",
        id=None,
    ):
        return cls(subscription_id, resource_group, name)

    @classmethod
    def create(
        cls, name, auth=None, subscription_id=None, resource_group=None, location=None, **kwargs
    ):
        return cls(subscription_id, resource_group, name, _location=location)

    def write_config(self, path=None, file_name=None):
        return None

    def get_details(self) -> dict:
        return {
            "name": self.name,
            "location": self.location,
            "resourceGroup": self.resource_group,
            "subscriptionId": self.subscription_id,
        }

    def get_default_datastore(self) -> Datastore:
        return Datastore(self, self._default_datastore)

    def set_default_datastore(self, name: str) -> None:
        Datastore(self, name)  # validates the name
        self._default_datastore = name

    @property
    def datastores(self) -> dict[str, Datastore]:
        if self._info is not None:
            return {n: Datastore(self, n) for n in self._info.names}
        return {n: Datastore(self, n) for n in sorted(current().config.datastores)}

    @property
    def datasets(self) -> dict:
        """Registered datasets, name -> latest version (during a capture: plus the file's own)."""
        from .data import Dataset

        return Dataset.get_all(self)

    @property
    def models(self) -> dict:
        """Registered models, name -> latest version."""
        from .model import Model

        return {m.name: m for m in Model.list(self, latest=True)}

    @property
    def compute_targets(self) -> dict[str, ComputeTarget]:
        _materialise_declared()
        return _ComputeTargets(sorted(current().computes.items()))

    @property
    def environments(self) -> dict:
        return dict(sorted(current().environments.items()))

    @property
    def experiments(self) -> dict:
        """Experiments this capture submitted to; any other name also resolves (REST calls and
        earlier sessions create experiments mlpipe cannot see)."""
        sess = current()
        names = {s.experiment for p in sess.pipelines for s in p._submissions}
        names |= {s._ir.experiment_name for s in sess.schedules if s._ir.experiment_name}
        return _Experiments(self, {n: _experiment(self, n) for n in sorted(names)})

    def get_mlflow_tracking_uri(self) -> str:
        return f"file://{current().pipeline_dir / '.mlpipe' / 'mlruns'}"

    def delete(self, *args, **kwargs):
        return None

    def __repr__(self) -> str:
        return f"Workspace.create(name='{self.name}', subscription_id='{self.subscription_id}', resource_group='{self.resource_group}')"


def _experiment(workspace, name):
    from .pipeline import Experiment

    return Experiment(workspace, name)


class _Experiments(dict):
    def __init__(self, workspace, items):
        super().__init__(items)
        self._workspace = workspace

    def __missing__(self, name):
        return _experiment(self._workspace, name)


# ----------------------------------------------------------------------------------- datastores

# register_* kind -> (v1 datastore_type, IR type)
_KINDS = {
    "blob": ("AzureBlob", "azure_blob"),
    "file": ("AzureFile", "azure_file"),
    "adls": ("AzureDataLake", "adls_gen1"),
    "adls2": ("AzureDataLakeGen2", "adls_gen2"),
    "sqldb": ("AzureSqlDatabase", "azure_sql"),
    "psql": ("AzurePostgreSql", "postgresql"),
    "mysql": ("AzureMySql", "mysql"),
    "dbfs": ("DBFS", "dbfs"),
    "hdfs": ("HDFS", "hdfs"),
}
_NOT_FILES = {"azure_sql", "postgresql", "mysql"}


class Datastore:
    """A named datastore; its location comes from mlpipe.yaml (a folder or an fsspec URL), or from a
    `Datastore.register_*` call earlier in the file (its credentials are never kept)."""

    def __init__(self, workspace, name=None):
        if name is None:
            name = workspace.get_default_datastore().name if workspace else "workspaceblobstore"
        if not _live.capturing():
            self._init_live(workspace, name)
            return
        sess = current()
        cfg = sess.config
        if name not in cfg.datastores:
            raise UnknownDatastore(
                f"unknown datastore {name!r}: declare it in mlpipe.yaml under datastores: "
                f"(e.g. `{name}: ./data/{name}` or an s3:// / abfs:// URL)",
                sess.origin(),
            )
        self.workspace = workspace
        self.name = name
        registered = sess.registered_datastores.get(name)
        if registered is not None:
            self.datastore_type = next(v for v, t in _KINDS.values() if t == registered[0])
        else:
            self.datastore_type = "AzureBlob" if name != "workspacefilestore" else "AzureFile"
        self.container_name = name
        self.account_name = "local"

    def _init_live(self, workspace, name):
        info = _live.info_of(workspace)
        if name not in info.names:
            raise _live.NotFound(
                f"unknown datastore {name!r} in workspace {info.name!r} (datastores: "
                f"{', '.join(info.names) or 'none'}); declare it in mlpipe.yaml under datastores:"
            )
        self.workspace = workspace
        self.name = name
        self.datastore_type = "AzureBlob" if name != "workspacefilestore" else "AzureFile"
        self.container_name = name
        self.account_name = "local"
        self._info = info

    @staticmethod
    def get(workspace, datastore_name):
        return Datastore(workspace, datastore_name)

    # ---- registration: recorded as datastore declarations, credentials dropped
    @staticmethod
    def _register(workspace, name, kind: str, url: str):
        sess = current()
        if not isinstance(name, str) or not name:
            raise fail("Datastore.register_*: datastore_name must be a non-empty string")
        cfg = sess.config
        ir_type = _KINDS[kind][1]
        if name in cfg.datastores and name not in sess.registered_datastores:
            return Datastore(workspace, name)  # mlpipe.yaml (or a built-in store) wins
        cfg.datastores[name] = url
        sess.registered_datastores[name] = (ir_type, sess.origin())
        if ir_type in _NOT_FILES:
            hint = "it is a database, not file storage: steps cannot mount or download it"
        else:
            hint = (
                "credentials passed here are not kept: at run time they come from the "
                "environment (e.g. AZURE_STORAGE_* variables) or the orchestrator's connections"
            )
        sess.warn(
            f"datastore {name!r} registered as {url} ({hint}); declare it in mlpipe.yaml to "
            "point it somewhere else"
        )
        return Datastore(workspace, name)

    @staticmethod
    def register_azure_blob_container(
        workspace, datastore_name, container_name, account_name, *args, **kwargs
    ):
        url = f"abfs://{container_name}@{account_name}.dfs.core.windows.net"
        return Datastore._register(workspace, datastore_name, "blob", url)

    @staticmethod
    def register_azure_file_share(
        workspace, datastore_name, file_share_name, account_name, *args, **kwargs
    ):
        url = f"azfile://{file_share_name}@{account_name}.file.core.windows.net"
        return Datastore._register(workspace, datastore_name, "file", url)

    @staticmethod
    def register_azure_data_lake(workspace, datastore_name, store_name, *args, **kwargs):
        url = f"adl://{store_name}.azuredatalakestore.net"
        return Datastore._register(workspace, datastore_name, "adls", url)

    @staticmethod
    def register_azure_data_lake_gen2(
        workspace, datastore_name, filesystem, account_name, *args, **kwargs
    ):
        url = f"abfs://{filesystem}@{account_name}.dfs.core.windows.net"
        return Datastore._register(workspace, datastore_name, "adls2", url)

    @staticmethod
    def register_azure_sql_database(
        workspace, datastore_name, server_name, database_name, *args, **kwargs
    ):
        url = f"mssql://{server_name}.database.windows.net/{database_name}"
        return Datastore._register(workspace, datastore_name, "sqldb", url)

    @staticmethod
    def register_azure_postgre_sql(
        workspace, datastore_name, server_name, database_name, *args, **kwargs
    ):
        url = f"postgresql://{server_name}.postgres.database.azure.com/{database_name}"
        return Datastore._register(workspace, datastore_name, "psql", url)

    @staticmethod
    def register_azure_my_sql(
        workspace, datastore_name, server_name, database_name, *args, **kwargs
    ):
        url = f"mysql://{server_name}.mysql.database.azure.com/{database_name}"
        return Datastore._register(workspace, datastore_name, "mysql", url)

    @staticmethod
    def register_dbfs(workspace, datastore_name, *args, **kwargs):
        return Datastore._register(workspace, datastore_name, "dbfs", "dbfs://")

    @staticmethod
    def register_hdfs(workspace, datastore_name, *args, **kwargs):
        return Datastore._register(workspace, datastore_name, "hdfs", "hdfs://")

    def unregister(self):
        return None

    @staticmethod
    def get_default(workspace):
        return workspace.get_default_datastore()

    def set_as_default(self):
        self.workspace.set_default_datastore(self.name)

    def path(self, path=None, data_reference_name=None):
        from .data import DataReference

        return DataReference(self, data_reference_name=data_reference_name, path_on_datastore=path)

    def as_mount(self):
        return self.path().as_mount()

    def as_download(self, path_on_compute=None):
        return self.path().as_download(path_on_compute)

    def _record_upload(self, what, sources, directory, relative_root, target_path, overwrite):
        from ..ir import DatastoreUpload

        sess = current()
        if isinstance(sources, str | bytes) or not hasattr(sources, "__iter__"):
            sources = [sources]
        files = [sess.rel_path(os.fspath(f)) for f in sources]
        target = str(target_path or "").strip("/")
        sess.uploads.append(
            DatastoreUpload(
                datastore=self.name,
                target_path=target,
                files=files,
                directory=directory,
                relative_root=None if relative_root is None else sess.rel_path(relative_root),
                overwrite=bool(overwrite),
                origin=sess.origin(),
            )
        )
        # Applied by `mlpipe run` / `mlpipe compile` before the pipeline runs (never by validate /
        # ir): see compiler/side_effects.py.
        missing = [f for f in sources if not os.path.exists(os.fspath(f))]
        if missing:
            sess.warn(
                f"{what}: {', '.join(map(str, missing))} not found: `mlpipe run` / `mlpipe "
                "compile` upload the files before the pipeline runs, so they must exist then"
            )
        return self.path(target or None)

    def upload(self, src_dir, target_path=None, overwrite=False, show_progress=True):
        if _live.capturing():
            return self._record_upload(
                "Datastore.upload", [src_dir], True, None, target_path, overwrite
            )
        plan = _live.upload_plan([src_dir], True, None)
        return self._upload_now(plan, target_path, overwrite, show_progress)

    def upload_files(
        self, files, relative_root=None, target_path=None, overwrite=False, show_progress=True
    ):
        if _live.capturing():
            return self._record_upload(
                "Datastore.upload_files", files, False, relative_root, target_path, overwrite
            )
        if isinstance(files, str | bytes | os.PathLike):
            files = [files]
        plan = _live.upload_plan([os.fspath(f) for f in files], False, relative_root)
        return self._upload_now(plan, target_path, overwrite, show_progress)

    def _upload_now(self, plan, target_path, overwrite, show_progress):
        done = _live.upload(self._info, self.name, plan, target_path, bool(overwrite))
        if show_progress:
            print(
                f"Uploaded {len(done['uploaded'])} files to {self.name}"
                + (f" ({len(done['unchanged'])} unchanged)" if done["unchanged"] else "")
                + (f" ({len(done['kept'])} existing kept)" if done["kept"] else "")
            )
        return self.path(str(target_path or "").strip("/") or None)

    def download(self, target_path, prefix=None, overwrite=False, show_progress=True):
        """Copy the datastore's files (under `prefix`) into target_path, keeping their paths;
        returns how many were copied (existing files are kept unless overwrite)."""
        if _live.capturing():
            raise fail(
                "Datastore.download() during a capture would read data: download in a step "
                "script or a plain script instead"
            )
        prefix = str(prefix or "").strip("/")
        root = self._info.location(self.name, "")
        try:
            _, files = store.resolve_files(self._info.location(self.name, prefix))
        except FileNotFoundError:
            files = []
        count = 0
        base = os.path.abspath(os.path.expanduser(os.fspath(target_path)))
        for loc, _rel in files:
            rel = _relative_to(loc, root)
            dest = os.path.join(base, *rel.split("/"))
            if os.path.exists(dest) and not overwrite:
                continue
            store.fetch_file(loc, dest)
            count += 1
        if show_progress:
            print(f"Downloaded {count} files from {self.name} to {base}")
        return count

    def __eq__(self, other):
        return isinstance(other, Datastore) and other.name == self.name

    def __hash__(self):
        return hash(("datastore", self.name))

    def __repr__(self) -> str:
        return f"Datastore({self.name!r})"


def _relative_to(location: str, root: str) -> str:
    if store.is_local(location):
        return os.path.relpath(store.local_path(location), store.local_path(root)).replace(
            os.sep, "/"
        )
    _, path = store._fs(location)
    _, base = store._fs(root)
    return path[len(base.rstrip("/")) :].lstrip("/")


# -------------------------------------------------------------------------------------- compute


class ProvisioningConfiguration(V1Object):
    def __init__(self, vm_size, vm_priority, min_nodes, max_nodes, origin):
        self.vm_size = vm_size
        self.vm_priority = vm_priority
        self.min_nodes = min_nodes
        self.max_nodes = max_nodes
        self.origin = origin


def _check_vm_size(vm_size):
    if vm_size in (None, ""):
        return None
    key = str(vm_size).upper()
    if key not in current().config.vm_sizes:
        raise fail(
            f"unknown vm_size {vm_size!r}: use a size from the built-in catalogue or declare it "
            f"under vm_sizes: in mlpipe.yaml (cpu, memory_gib, gpus, gpu_type)"
        )
    return key


class ComputeTarget(V1Object):
    """A compute target. Looking up an undeclared name raises ComputeTargetException, so the usual
    v1 `try: ComputeTarget(ws, name) except ComputeTargetException: create(...)` branch runs."""

    type = "AmlCompute"

    def __new__(cls, workspace=None, name=None):
        if name is None:
            return super().__new__(cls)
        _materialise_declared()
        found = current().computes.get(name)
        if found is None:
            raise UnknownCompute(_unknown_compute_message(name), current().origin())
        return found

    def __init__(self, workspace=None, name=None):
        pass

    def _setup(self, name, vm_size, vm_priority, min_nodes, max_nodes, origin, declared):
        self.name = name
        self.vm_size = vm_size
        self.vm_priority = vm_priority
        self.scale_settings = type(
            "ScaleSettings", (), {"minimum_node_count": min_nodes, "maximum_node_count": max_nodes}
        )()
        self.min_nodes = min_nodes
        self.max_nodes = max_nodes
        self.origin = origin
        self.declared = declared
        self.provisioning_state = "Succeeded"
        self.status = _Status("Succeeded", {"vmSize": vm_size, "maxNodes": max_nodes})
        return self

    @staticmethod
    def create(workspace, name, provisioning_configuration):
        cfg = provisioning_configuration
        sess = current()
        _materialise_declared()
        existing = sess.computes.get(name)
        if existing is not None and existing.declared:
            return existing  # mlpipe.yaml wins over what the script would provision
        target = AmlCompute.__new__(AmlCompute)._setup(
            name, cfg.vm_size, cfg.vm_priority, cfg.min_nodes, cfg.max_nodes, sess.origin(), False
        )
        sess.computes[name] = target
        return target

    @staticmethod
    def list(workspace):
        _materialise_declared()
        return list(dict(sorted(current().computes.items())).values())

    def wait_for_completion(
        self,
        show_output=False,
        min_node_count=None,
        timeout_in_minutes=25,
        is_delete_operation=False,
    ):
        return None

    def get_status(self):
        return self.status

    def refresh_state(self):
        return None

    def delete(self):
        return None

    def detach(self):
        return None

    def serialize(self):
        return {"name": self.name, "vmSize": self.vm_size}

    def __repr__(self) -> str:
        return f"AmlCompute(name={self.name!r}, vm_size={self.vm_size!r})"


class AmlCompute(ComputeTarget):
    @staticmethod
    def provisioning_configuration(
        vm_size="",
        vm_priority="dedicated",
        min_nodes=0,
        max_nodes=4,
        idle_seconds_before_scaledown=None,
        admin_username=None,
        admin_user_password=None,
        admin_user_ssh_key=None,
        vnet_resourcegroup_name=None,
        vnet_name=None,
        subnet_name=None,
        tags=None,
        description=None,
        remote_login_port_public_access="NotSpecified",
        identity_type=None,
        identity_id=None,
        location=None,
        enable_node_public_ip=True,
    ):
        size = _check_vm_size(vm_size)
        if max_nodes is None:
            max_nodes = 4
        if int(max_nodes) < 1:
            raise fail("max_nodes must be at least 1")
        return ProvisioningConfiguration(
            size, vm_priority, int(min_nodes or 0), int(max_nodes), current().origin()
        )

    @staticmethod
    def supported_vmsizes(workspace, location=None):
        return [
            {"name": n, "vCPUs": v.cpu, "memoryGB": v.memory_gib, "gpus": v.gpus}
            for n, v in sorted(current().config.vm_sizes.items())
        ]


class ComputeInstance(ComputeTarget):
    type = "ComputeInstance"

    @staticmethod
    def provisioning_configuration(
        vm_size="",
        ssh_public_access=False,
        admin_user_ssh_public_key=None,
        vnet_resourcegroup_name=None,
        vnet_name=None,
        subnet_name=None,
        tags=None,
        description=None,
        assigned_user_object_id=None,
        assigned_user_tenant_id=None,
    ):
        return ProvisioningConfiguration(
            _check_vm_size(vm_size), "dedicated", 0, 1, current().origin()
        )


class _ComputeTargets(dict):
    """`ws.compute_targets`: a missing name is a KeyError (as in v1) that says what to declare."""

    def __missing__(self, name):
        raise UnknownComputeKey(_unknown_compute_message(name), current().origin())


def _unknown_compute_message(name) -> str:
    cfg = current().config
    where = str(cfg.path) if cfg.path else f"{cfg.base_dir / 'mlpipe.yaml'} (create it)"
    known = ", ".join(sorted(current().computes)) or "none"
    return (
        f"ComputeTargetNotFound: compute target {name!r} is not declared: add it to {where} "
        f"under computes: (e.g. `{name}: {{vm_size: STANDARD_DS2_V2, max_nodes: 2}}`) or create "
        f"it with ComputeTarget.create(...) (declared: {known})"
    )


def _materialise_declared(sess=None) -> None:
    """Make the computes of mlpipe.yaml known by name, whether or not the code listed them."""
    sess = sess or current()
    for name, decl in sess.config.computes.items():
        if name not in sess.computes:
            from ..ir import Origin

            cfg_file = sess.config.path.name if sess.config.path else "mlpipe.yaml"
            sess.computes[name] = AmlCompute.__new__(AmlCompute)._setup(
                name,
                decl.vm_size,
                "dedicated",
                decl.min_nodes,
                decl.max_nodes,
                Origin(file=cfg_file, line=decl.line or 1),
                True,
            )
