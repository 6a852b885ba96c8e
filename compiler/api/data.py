"""Datasets, datastore paths and step outputs, as the v1 SDK names them.

These objects only describe data; nothing is read or written during capture. Copies made by
`as_mount()`, `as_upload()`, `register_on_complete()`... share the `_uid` of the object they came
from, because v1 identifies outputs by name and producer rather than by Python object identity.
"""

from __future__ import annotations

import copy
import re

from ._session import current, fail
from .workspace import Datastore

_PIPELINE_DATA_NAME = re.compile(r"^\w+$")


def _new_uid() -> int:
    return current().next_seq()


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


def _dataset_paths(path) -> list:
    """Normalise the `path` argument of from_files / from_delimited_files."""
    from ..ir import DataPath as IrDataPath
    from ..ir import UrlPath

    items = path if isinstance(path, list) else [path]
    out = []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            out.append(
                IrDataPath(datastore=_datastore_name(item[0]), path=str(item[1]).lstrip("/"))
            )
        elif isinstance(item, DataPath):
            out.append(IrDataPath(datastore=item.datastore_name, path=item.path_on_datastore))
        elif isinstance(item, DataReference):
            out.append(IrDataPath(datastore=item.datastore_name, path=item.path_on_datastore))
        elif isinstance(item, str) and item:
            if "://" in item:
                out.append(UrlPath(url=item))
            else:
                # A bare path means the default datastore, like a path on `workspaceblobstore`.
                out.append(IrDataPath(datastore="workspaceblobstore", path=item.lstrip("/")))
        else:
            raise fail(
                "dataset path must be a URL, a (datastore, 'relative/path') tuple, a DataPath "
                f"or a list of them; got {type(item).__name__}"
            )
    if not out:
        raise fail("dataset needs at least one path")
    return out


class AbstractDataset:
    _type = "file"

    def __init__(self, paths, separator=",", header=True):
        self._paths = paths
        self._separator = separator
        self._header = header
        self.name = None
        self.version = None
        self.description = None
        self.tags = {}
        self.id = None
        self.origin = current().origin()

    def _ir(self):
        from ..ir import Dataset

        header = self._header
        if not isinstance(header, bool):
            header = str(header).lower() not in ("false", "no_headers", "0", "none")
        return Dataset(
            type=self._type,
            paths=list(self._paths),
            separator=self._separator,
            header=header,
            registered_name=self.name,
            registered_version=self.version,
        )

    def as_named_input(self, name):
        return DatasetConsumptionConfig(name, self, mode="direct")

    def as_mount(self, path_on_compute=None):
        return DatasetConsumptionConfig(None, self, mode="mount", path_on_compute=path_on_compute)

    def as_download(self, path_on_compute=None):
        return DatasetConsumptionConfig(
            None, self, mode="download", path_on_compute=path_on_compute
        )

    def register(self, workspace, name, description=None, tags=None, create_new_version=False):
        sess = current()
        other = copy.copy(self)
        other.name = name
        other.description = description
        other.tags = tags or {}
        prior = sess.datasets.get(name)
        other.version = (prior.version + 1) if prior is not None and create_new_version else 1
        other.id = f"{name}:{other.version}"
        sess.datasets[name] = other
        return other

    def _not_at_capture(self, what):
        raise fail(
            f"{what} reads the data, which mlpipe does not do while capturing a pipeline; "
            "read it inside a step script instead"
        )

    def to_pandas_dataframe(self, *a, **k):
        self._not_at_capture("to_pandas_dataframe()")

    def to_path(self, *a, **k):
        # Listing the files is only shown to the user (notebooks print it before building their
        # pipeline): warn and go on rather than stop the capture.
        current().warn(
            "to_path() lists the dataset's files, which mlpipe does not read while capturing: "
            "it returned an empty list here"
        )
        return []

    def download(self, *a, **k):
        self._not_at_capture("download()")

    def mount(self, *a, **k):
        self._not_at_capture("mount()")

    def take(self, count):
        return self

    def skip(self, count):
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._paths!r})"


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
    def from_parquet_files(path, *a, **k):
        raise fail(
            "Dataset.Tabular.from_parquet_files is not supported yet: use from_delimited_files, "
            "or Dataset.File.from_files and read the parquet files in the step script"
        )

    @staticmethod
    def from_json_lines_files(path, *a, **k):
        raise fail(
            "Dataset.Tabular.from_json_lines_files is not supported yet: use "
            "Dataset.File.from_files and read the files in the step script"
        )

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
        found = current().datasets.get(name)
        if found is None:
            raise fail(
                f"dataset {name!r} is not registered in this file: build it with "
                "Dataset.File.from_files(...) / Dataset.Tabular.from_delimited_files(...) "
                "and .register(ws, name) before using it"
            )
        return found

    @staticmethod
    def get_by_id(workspace, id):
        for ds in current().datasets.values():
            if ds.id == id:
                return ds
        raise fail(f"no dataset with id {id!r} was registered in this file")

    @staticmethod
    def get_all(workspace):
        return dict(current().datasets)


class DatasetConsumptionConfig:
    """A dataset bound to a step (`as_named_input`, `as_mount`, `as_download`)."""

    def __init__(self, name, dataset, mode="direct", path_on_compute=None):
        from .pipeline import PipelineParameter

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
