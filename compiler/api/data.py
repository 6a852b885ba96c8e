"""Datasets, datastore paths and step outputs, as the v1 SDK names them.

During a capture these objects only describe data (nothing is read or written; registrations are
recorded and applied by `mlpipe run` / `mlpipe compile`). In a step or a plain script, registered
datasets are read from and written to the workspace's registry (compiler/runtime/registry.py). Copies made by
`as_mount()`, `as_upload()`, `register_on_complete()`... share the `_uid` of the object they came
from, because v1 identifies outputs by name and producer rather than by Python object identity.
"""

from __future__ import annotations

import copy
import math
import os
import re
import shutil
import sys
import tempfile

from ..runtime import store
from ..runtime.registry import (
    DatasetRegistry,
    RegistryError,
    dataset_files,
    download_files,
    read_frame,
)
from . import _live
from ._live import session_info
from ._session import current, fail
from ._v1 import V1Object
from .datastore import (  # noqa: F401 (DataPath... re-exported: their v1 module)
    DataPath,
    DataPathComputeBinding,
    DataReference,
    Datastore,
    _datastore_name,
)

_PIPELINE_DATA_NAME = re.compile(r"^\w+$")


def _new_uid() -> int:
    return current().next_seq()


def _dataset_paths(path) -> list[dict]:
    """Normalise the `path` argument of from_files / from_delimited_files to IR DatasetPath dicts
    (plain dicts, so step scripts need no pydantic)."""
    items = path if isinstance(path, list) else [path]
    out = []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            out.append(_datapath(_datastore_name(item[0]), str(item[1])))
        elif isinstance(item, DataPath):
            out.append(_datapath(item.datastore_name, item.path_on_datastore))
        elif isinstance(item, DataReference):
            out.append(_datapath(item.datastore_name, item.path_on_datastore))
        elif isinstance(item, str | os.PathLike) and os.fspath(item):
            item = os.fspath(item)
            if "://" in item:
                out.append({"kind": "url", "url": item})
            else:
                # A bare path means the default datastore, like a path on `workspaceblobstore`.
                out.append(_datapath("workspaceblobstore", item))
        else:
            raise fail(
                "dataset path must be a URL, a (datastore, 'relative/path') tuple, a DataPath "
                f"or a list of them; got {type(item).__name__}"
            )
    if not out:
        raise fail("dataset needs at least one path")
    return out


def _datapath(datastore: str, path: str) -> dict:
    return {"kind": "datapath", "datastore": datastore, "path": path.lstrip("/")}


def _header_flag(header) -> bool:
    if isinstance(header, bool):
        return header
    return str(header).lower() not in ("false", "no_headers", "0", "none")


class AbstractDataset:
    """A FileDataset / TabularDataset. During a capture it only describes data; in a step or a
    plain script it reads it (`to_pandas_dataframe`, `to_path`, `download`, `mount`)."""

    _type = "file"

    def __init__(self, paths, separator=",", header=True, fmt="delimited"):
        self._paths = paths
        self._separator = separator
        self._header = header
        self._format = fmt
        self.name = None
        self.version = None
        self.description = None
        self.tags = {}
        self.id = None
        self._workspace = None
        self.origin = current().origin()

    def _definition(self) -> dict:
        return {
            "type": self._type,
            "paths": [dict(p) for p in self._paths],
            "format": self._format,
            "separator": self._separator,
            "header": _header_flag(self._header),
        }

    def _ir(self):
        from ..ir import Dataset

        d = self._definition()
        return Dataset(
            type=d["type"],
            paths=d["paths"],
            separator=d["separator"],
            header=d["header"],
            format=d["format"],
            registered_name=self.name,
            registered_version=self.version,
        )

    @classmethod
    def _from_doc(cls, doc: dict, workspace=None) -> AbstractDataset:
        """A registered version (a registry doc) as a dataset object."""
        klass = TabularDataset if doc.get("type") == "tabular" else FileDataset
        ds = klass(
            [dict(p) for p in doc.get("paths") or []],
            doc.get("separator") or ",",
            doc.get("header", True),
            doc.get("format") or "delimited",
        )
        ds.name = doc.get("name")
        ds.version = doc.get("version")
        ds.id = doc.get("id") or f"{ds.name}:{ds.version}"
        ds.description = doc.get("description")
        ds.tags = dict(doc.get("tags") or {})
        ds._workspace = workspace
        return ds

    def as_named_input(self, name):
        return DatasetConsumptionConfig(name, self, mode="direct")

    def as_mount(self, path_on_compute=None):
        return DatasetConsumptionConfig(None, self, mode="mount", path_on_compute=path_on_compute)

    def as_download(self, path_on_compute=None):
        return DatasetConsumptionConfig(
            None, self, mode="download", path_on_compute=path_on_compute
        )

    def register(self, workspace, name, description=None, tags=None, create_new_version=False):
        if not isinstance(name, str) or not name:
            raise fail("Dataset.register: name must be a non-empty string")
        if _live.capturing():
            return self._register_at_capture(name, description, tags, create_new_version)
        info = _live.info_of(workspace)
        try:
            doc, _created = DatasetRegistry(info).register(
                name,
                self._definition(),
                description=description,
                tags=tags,
                create_new_version=create_new_version,
                source=_registration_source(),
            )
        except RegistryError as exc:
            raise _live.NotFound(str(exc)) from None
        return AbstractDataset._from_doc(doc, workspace)

    def _register_at_capture(self, name, description, tags, create_new_version):
        """Recorded; `mlpipe run` / `mlpipe compile` write it to the registry (side_effects.py)."""
        from ..ir import DatasetRegistration

        sess = current()
        other = copy.copy(self)
        other.name = name
        other.description = description
        other.tags = dict(tags or {})
        prior = sess.datasets.get(name)
        if prior is not None:
            version = prior.version + 1 if create_new_version else prior.version
        else:
            latest = _registered_latest(session_info(), name)
            if latest is None:
                version = 1
            elif AbstractDataset._from_doc(latest)._definition() == self._definition():
                version = latest["version"]  # applying it again adds no version
            else:
                version = latest["version"] + (1 if create_new_version else 0)
        other.version = version
        other.id = f"{name}:{version}"
        sess.datasets[name] = other
        sess.registrations.append(
            DatasetRegistration(
                name=name,
                dataset=self._ir(),
                description=description,
                tags={str(k): _scalar(v) for k, v in (tags or {}).items()},
                create_new_version=bool(create_new_version),
                origin=sess.origin(),
            )
        )
        return other

    # ---- reading the data (steps and plain scripts)
    def _files(self) -> list[tuple[str, str]]:
        info = _live.info_of(self._workspace)
        try:
            return dataset_files(info, self._definition())
        except FileNotFoundError as exc:
            raise _live.NotFound(f"dataset {self.name or ''!r}: {exc}") from None

    def _not_at_capture(self, what):
        raise fail(
            f"{what} reads the data, which mlpipe does not do while capturing a pipeline; "
            "read it inside a step script instead"
        )

    def to_path(self, *a, **k):
        """The files' paths relative to the dataset's base, each starting with '/' (v1)."""
        if _live.capturing():
            # Listing the files is only shown to the user (notebooks print it before building
            # their pipeline): warn and go on rather than stop the capture.
            current().warn(
                "to_path() lists the dataset's files, which mlpipe does not read while "
                "capturing: it returned an empty list here"
            )
            return []
        return ["/" + rel for _, rel in self._files()]

    def download(self, target_path=None, overwrite=False, ignore_not_found=False):
        """Copy the files into target_path (a new temporary folder by default); their paths."""
        if _live.capturing():
            self._not_at_capture("download()")
        target = target_path or tempfile.mkdtemp(prefix="mlpipe-dataset-")
        return download_files(self._files(), os.fspath(target), bool(overwrite))

    def mount(self, mount_point=None, **kwargs):
        """A context manager giving a local folder with the files (links for local datastores)."""
        if _live.capturing():
            self._not_at_capture("mount()")
        return _MountContext(self._files(), mount_point)

    def to_pandas_dataframe(self, on_error="null", out_of_range_datetime="null"):
        if _live.capturing():
            self._not_at_capture("to_pandas_dataframe()")
        files = self._files()
        if all(store.is_local(loc) for loc, _ in files):
            paths = [store.local_path(loc) for loc, _ in files]
            return read_frame(paths, self._format, self._separator, _header_flag(self._header))
        with tempfile.TemporaryDirectory(prefix="mlpipe-dataset-") as tmp:
            paths = download_files(files, tmp, True)
            return read_frame(paths, self._format, self._separator, _header_flag(self._header))

    def take(self, count):
        return self

    def skip(self, count):
        return self

    def __repr__(self) -> str:
        if self.name:
            return f"{type(self).__name__}(name={self.name!r}, version={self.version!r})"
        return f"{type(self).__name__}({self._paths!r})"


class _MountContext:
    """What v1's `dataset.mount()` returns: `with ds.mount() as ctx: ctx.mount_point`."""

    def __init__(self, files, mount_point=None):
        self._files = files
        self.mount_point = os.path.abspath(mount_point or tempfile.mkdtemp(prefix="mlpipe-mount-"))
        self._started = False

    def start(self):
        if self._started:
            return
        os.makedirs(self.mount_point, exist_ok=True)
        for loc, rel in self._files:
            dst = os.path.join(self.mount_point, *rel.split("/"))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.lexists(dst):
                os.unlink(dst)
            if store.is_local(loc):
                os.symlink(store.local_path(loc), dst)  # no copy: a local datastore is "mounted"
            else:
                store.fetch_file(loc, dst)
        self._started = True

    def stop(self):
        if self._started:
            shutil.rmtree(self.mount_point, ignore_errors=True)
            self._started = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def __fspath__(self):
        return self.mount_point

    def __str__(self):
        return self.mount_point


def _scalar(value):
    return value if isinstance(value, bool | int | float | str) else str(value)


def _registration_source() -> dict:
    from ..runtime.registry import run_context_data

    data = run_context_data() or {}
    if data.get("run_id"):
        return {"run_id": data["run_id"], "step": data.get("step")}
    return {"script": os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else None}


def _registered_latest(info, name):
    try:
        return DatasetRegistry(info).get(name)
    except RegistryError:
        return None
    except Exception:  # an unreachable store while capturing: treat as not registered
        return None


class FileDataset(AbstractDataset):
    _type = "file"


class TabularDataset(AbstractDataset):
    _type = "tabular"


class _FileFactory:
    @staticmethod
    def from_files(path, validate=True, partition_format=None, is_file=False):
        return FileDataset(_dataset_paths(path))


class _TabularFactory:
    @staticmethod
    def from_delimited_files(
        path,
        validate=True,
        include_path=False,
        infer_column_types=True,
        set_column_types=None,
        separator=",",
        header=True,
        partition_format=None,
        support_multi_line=False,
        empty_as_string=False,
        encoding="utf8",
    ):
        return TabularDataset(_dataset_paths(path), separator=separator, header=header)

    @staticmethod
    def from_parquet_files(
        path, validate=True, include_path=False, set_column_types=None, partition_format=None
    ):
        return TabularDataset(_dataset_paths(path), fmt="parquet")

    @staticmethod
    def from_json_lines_files(
        path,
        validate=True,
        include_path=False,
        set_column_types=None,
        partition_format=None,
        invalid_lines="error",
        encoding="utf8",
    ):
        return TabularDataset(_dataset_paths(path), fmt="json_lines")

    @staticmethod
    def from_sql_query(*a, **k):
        raise fail(
            "Dataset.Tabular.from_sql_query is not supported: export the data to files first"
        )


class Dataset:
    File = _FileFactory
    Tabular = _TabularFactory

    @staticmethod
    def get_by_name(workspace, name, version="latest"):
        """A registered dataset: during a capture the file's own registrations first, then the
        workspace's registry (read only); elsewhere the registry."""
        if _live.capturing():
            found = current().datasets.get(name)
            if found is not None and (
                version in (None, "latest") or str(version) == str(found.version)
            ):
                return found
        info = _live.info_of(workspace)
        try:
            doc = DatasetRegistry(info).get(name, version)
        except RegistryError as exc:
            if _live.capturing():
                raise fail(
                    f"{exc}; or build it with Dataset.File.from_files(...) / "
                    "Dataset.Tabular.from_delimited_files(...) and .register(ws, name) in this file"
                ) from None
            raise _live.not_found(exc) from None
        return AbstractDataset._from_doc(doc, workspace)

    @staticmethod
    def get_by_id(workspace, id):
        if _live.capturing():
            for ds in current().datasets.values():
                if ds.id == id:
                    return ds
        info = _live.info_of(workspace)
        try:
            doc = DatasetRegistry(info).get_by_id(id)
        except RegistryError as exc:
            if _live.capturing():
                raise fail(str(exc)) from None
            raise _live.not_found(exc) from None
        return AbstractDataset._from_doc(doc, workspace)

    @staticmethod
    def get_all(workspace):
        """name -> latest registered version (during a capture: plus this file's registrations)."""
        info = _live.info_of(workspace)
        reg = DatasetRegistry(info)
        out = {}
        try:
            names = reg.names()
        except Exception:
            names = []
        for name in names:
            try:
                out[name] = AbstractDataset._from_doc(reg.get(name), workspace)
            except RegistryError:
                continue
        if _live.capturing():
            out.update(current().datasets)
        return dict(sorted(out.items()))


# ------------------------------------------------------------------------------------ parameters
# Here, beside the datasets: a parameter may hold a dataset, and a dataset input may be a parameter.


def _uncarriable(text: str) -> str | None:
    """Why `text` cannot reach a step's argv (or the IR's JSON), or None."""
    if "\x00" in text:
        return "contains a NUL character, which no command line can carry"
    if any("\ud800" <= c <= "\udfff" for c in text):
        return "contains a lone surrogate (not valid Unicode text), which cannot be encoded"
    return None


def _check_text(value, what: str) -> None:
    if isinstance(value, str):
        why = _uncarriable(value)
        if why is not None:
            raise fail(f"{what} {value!r} {why}")


class PipelineParameter(V1Object):
    def __init__(self, name, default_value):
        if not isinstance(name, str) or not name.strip():
            raise fail("PipelineParameter needs a non-empty name")
        _check_text(name, "PipelineParameter name")
        _check_text(default_value, f"PipelineParameter {name!r}: default_value")
        if isinstance(default_value, bool):
            kind = "bool"
        elif isinstance(default_value, int):
            kind = "int"
        elif isinstance(default_value, float):
            if not math.isfinite(default_value):
                raise fail(
                    f"PipelineParameter {name!r}: default_value {default_value!r} is not a finite "
                    "number, which no run could pass back as a value; use a finite default"
                )
            kind = "float"
        elif isinstance(default_value, str):
            if "\n" in default_value or "\r" in default_value:
                raise fail(
                    f"PipelineParameter {name!r}: a string default_value cannot contain a "
                    "newline; pass multi-line text through a file instead"
                )
            kind = "string"
        elif isinstance(default_value, DataPath):
            kind = "datapath"
        elif isinstance(default_value, AbstractDataset):
            kind = "dataset"
        else:
            raise fail(
                f"PipelineParameter {name!r}: default_value must be an int, float, bool, str, "
                f"DataPath or dataset, not {type(default_value).__name__}"
            )
        self.name = name
        self.default_value = default_value
        self.type = kind
        self.origin = current().origin()

    def __repr__(self) -> str:
        return f"PipelineParameter(name={self.name!r}, default_value={self.default_value!r})"

    def __str__(self) -> str:
        return str(self.default_value)


class DatasetConsumptionConfig:
    """A dataset bound to a step (`as_named_input`, `as_mount`, `as_download`)."""

    def __init__(self, name, dataset, mode="direct", path_on_compute=None):
        if not isinstance(dataset, AbstractDataset | PipelineParameter):
            raise fail(
                "DatasetConsumptionConfig needs a dataset or a PipelineParameter whose "
                "default_value is a dataset"
            )
        if isinstance(dataset, PipelineParameter) and not isinstance(
            dataset.default_value, AbstractDataset
        ):
            raise fail(
                f"PipelineParameter {dataset.name!r} used as a dataset needs a dataset as default_value"
            )
        self.name = name
        self.dataset = dataset
        self.mode = mode
        self.path_on_compute = path_on_compute
        self.origin = current().origin()

    def _with(self, **changes):
        other = copy.copy(self)
        other.__dict__.update(changes)
        return other

    def as_download(self, path_on_compute=None):
        return self._with(mode="download", path_on_compute=path_on_compute)

    def as_mount(self, path_on_compute=None):
        return self._with(mode="mount", path_on_compute=path_on_compute)

    def as_named_input(self, name):
        return self._with(name=name)


# ---------------------------------------------------------------------------------------- outputs


class _Output:
    """Shared behaviour of OutputFileDatasetConfig and PipelineData: one logical output."""

    _kind = "output_file_dataset"

    def _init_output(self, name, datastore, path, mode):
        self._uid = _new_uid()
        self.name = name
        self._datastore = datastore
        self._path = path
        self._mode = mode
        self._register = None
        self._register_description = None
        self._source_globs = None
        self._overwrite = False
        self.origin = current().origin()

    def _copy(self, **changes):
        other = copy.copy(self)
        other.__dict__.update(changes)
        return other


class OutputFileDatasetConfig(_Output):
    def __init__(self, name=None, destination=None, source=None, partition_format=None):
        if name is not None and not isinstance(name, str):
            raise fail("OutputFileDatasetConfig name must be a string")
        if destination is None:
            store, path = None, None
        elif isinstance(destination, tuple) and len(destination) == 2:
            store, path = _datastore_name(destination[0]), str(destination[1])
        elif isinstance(destination, Datastore | str):
            store, path = _datastore_name(destination), None
        else:
            raise fail("destination must be (datastore, 'path/with/{run-id}') or a datastore")
        self._init_output(name, store, path, "mount")
        self.source = source

    def as_input(self, name=None):
        return _OutputConsumption(self, name, "mount", tabular=None)

    def as_mount(self, disable_metadata_cache=False):
        return self._copy(_mode="mount")

    def as_upload(self, overwrite=False, source_globs=None):
        globs = [source_globs] if isinstance(source_globs, str) else source_globs
        return self._copy(_mode="upload", _overwrite=bool(overwrite), _source_globs=globs)

    def register_on_complete(self, name, description=None, tags=None):
        return self._copy(_register=name, _register_description=description)

    def read_delimited_files(
        self,
        include_path=False,
        separator=",",
        header=True,
        partition_format=None,
        path_glob=None,
        set_column_types=None,
    ):
        return OutputTabularDatasetConfig(self, separator, header)

    def read_parquet_files(self, *a, **k):
        raise fail(
            "OutputFileDatasetConfig.read_parquet_files is not supported yet: consume the "
            "output with .as_input() and read the parquet files in the step script"
        )

    def __repr__(self) -> str:
        return f"OutputFileDatasetConfig(name={self.name!r})"


class OutputTabularDatasetConfig:
    def __init__(self, output, separator, header):
        self._output = output
        self._uid = output._uid
        self._separator = separator
        self._header = header

    def as_input(self, name=None):
        return _OutputConsumption(
            self._output, name, "direct", tabular=(self._separator, self._header)
        )

    def register_on_complete(self, name, description=None, tags=None):
        return OutputTabularDatasetConfig(
            self._output.register_on_complete(name, description), self._separator, self._header
        )

    def keep_columns(self, columns):
        return self

    def drop_columns(self, columns):
        return self

    def random_split(self, *a, **k):
        raise fail(
            "random_split on a step output is not supported yet: split inside the step script"
        )


class _OutputConsumption:
    """An output consumed by another step (`.as_input()`, `PipelineData.as_download()`...)."""

    def __init__(self, output, name, mode, tabular=None, path_on_compute=None):
        self.output = output
        self._uid = output._uid
        self.name = name
        self.mode = mode
        self.tabular = tabular
        self.path_on_compute = path_on_compute
        self.origin = current().origin()

    def as_download(self, path_on_compute=None):
        return _OutputConsumption(self.output, self.name, "download", self.tabular, path_on_compute)

    def as_mount(self):
        return _OutputConsumption(self.output, self.name, "mount", self.tabular)


class PipelineData(_Output):
    _kind = "pipeline_data"

    def __init__(
        self,
        name,
        datastore=None,
        output_name=None,
        output_mode="mount",
        output_path_on_compute=None,
        output_overwrite=None,
        data_type=None,
        is_directory=None,
        pipeline_output_name=None,
        training_output=None,
    ):
        if not isinstance(name, str) or not _PIPELINE_DATA_NAME.match(name):
            raise fail(
                f"PipelineData name {name!r} is invalid: use letters, digits and underscores only"
            )
        if output_mode not in ("mount", "upload"):
            raise fail(f"PipelineData output_mode must be 'mount' or 'upload', not {output_mode!r}")
        self._init_output(
            output_name or name,
            _datastore_name(datastore) if datastore else None,
            None,
            output_mode,
        )
        self._data_name = name
        self._overwrite = bool(output_overwrite)

    def as_dataset(self):
        return self

    def as_download(self, input_name=None, path_on_compute=None, overwrite=None):
        return _OutputConsumption(self, input_name, "download", path_on_compute=path_on_compute)

    def as_mount(self, input_name=None):
        return _OutputConsumption(self, input_name, "mount")

    def as_input(self, input_name=None):
        return _OutputConsumption(self, input_name, "mount")

    def parse_delimited_files(self, *a, separator=",", header=True, **k):
        return OutputTabularDatasetConfig(self, separator, header)

    def create_input_binding(
        self, input_name=None, mode=None, path_on_compute=None, overwrite=None
    ):
        return _OutputConsumption(
            self, input_name, mode or "mount", path_on_compute=path_on_compute
        )

    def __repr__(self) -> str:
        return f"PipelineData(name={self.name!r})"
