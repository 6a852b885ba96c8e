"""Datastores and paths on them: `Datastore`, `DataPath`, `DataReference`.

Below both the datasets (api/data.py) and the workspace (api/workspace.py), which use them.
"""

from __future__ import annotations

import copy
import os

from ..runtime import store
from . import _live
from ._session import current, fail
from .exceptions import UnknownDatastore

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


def _datastore_name(obj) -> str:
    if obj is None:
        return "workspaceblobstore"
    if isinstance(obj, Datastore):
        return obj.name
    if isinstance(obj, str):
        Datastore(None, obj)
        return obj
    raise fail(f"expected a Datastore, got {type(obj).__name__}")


# ------------------------------------------------------------------------------ datastore paths


class DataPath:
    def __init__(self, datastore=None, path_on_datastore=None, name=None):
        self.datastore_name = (
            _datastore_name(datastore) if datastore is not None else "workspaceblobstore"
        )
        self.path_on_datastore = path_on_datastore or ""
        self._name = name
        self.origin = current().origin()

    @property
    def name(self):
        return self._name

    def create_data_reference(self, data_reference_name=None, datapath_compute_binding=None):
        b = datapath_compute_binding or DataPathComputeBinding()
        return DataReference(
            self.datastore_name,
            data_reference_name,
            self.path_on_datastore,
            b._mode,
            b.path_on_compute,
            b.overwrite,
        )

    def __repr__(self) -> str:
        return f"DataPath({self.datastore_name!r}, {self.path_on_datastore!r})"


class DataPathComputeBinding:
    def __init__(self, mode="mount", path_on_compute=None, overwrite=False):
        if mode not in ("mount", "download"):
            raise fail(f"DataPathComputeBinding mode must be 'mount' or 'download', not {mode!r}")
        self._mode = mode
        self.path_on_compute = path_on_compute
        self.overwrite = overwrite


class DataReference:
    """A path in a datastore bound to a step as an input (v1's older data API)."""

    def __init__(
        self,
        datastore,
        data_reference_name=None,
        path_on_datastore=None,
        mode="mount",
        path_on_compute=None,
        overwrite=False,
    ):
        self.datastore_name = _datastore_name(datastore)
        self.data_reference_name = data_reference_name
        self.path_on_datastore = path_on_datastore or ""
        self.mode = mode
        self.path_on_compute = path_on_compute
        self.overwrite = overwrite
        self.origin = current().origin()

    def _with(self, **changes):
        other = copy.copy(self)
        other.__dict__.update(changes)
        return other

    def as_mount(self):
        return self._with(mode="mount")

    def as_download(self, path_on_compute=None, overwrite=False):
        return self._with(mode="download", path_on_compute=path_on_compute, overwrite=overwrite)

    def as_upload(self, path_on_compute=None, overwrite=False):
        raise fail(
            "DataReference.as_upload() is not supported yet: use OutputFileDatasetConfig("
            "destination=(datastore, path)) for step outputs"
        )

    def path(self, path=None, data_reference_name=None):
        joined = "/".join(p for p in (self.path_on_datastore.rstrip("/"), path or "") if p)
        return DataReference(self.datastore_name, data_reference_name, joined)

    def __str__(self) -> str:
        return f"$AZUREML_DATAREFERENCE_{self.data_reference_name or self.datastore_name}"


# -------------------------------------------------------------------------------------- datasets
