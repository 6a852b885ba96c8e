"""Workspace, datastores and compute targets, backed by mlpipe.yaml instead of Azure."""

from __future__ import annotations

from ._session import current, fail


class _Status:
    def __init__(self, state: str, extra: dict | None = None):
        self.state = state
        self._extra = extra or {}

    def serialize(self) -> dict:
        return {"provisioningState": self.state, **self._extra}

    def __repr__(self) -> str:
        return f"Status({self.state})"


class Workspace:
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
        cfg = current().config
        self.name = workspace_name or cfg.name
        self.subscription_id = subscription_id or "00000000-0000-0000-0000-000000000000"
        self.resource_group = resource_group or "mlpipe"
        self.location = _location or "local"
        self.sku = sku
        self.tags = tags or {}
        self._default_datastore = "workspaceblobstore"

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
        return {n: Datastore(self, n) for n in sorted(current().config.datastores)}

    @property
    def compute_targets(self) -> dict[str, ComputeTarget]:
        _materialise_declared()
        return dict(sorted(current().computes.items()))

    @property
    def environments(self) -> dict:
        return dict(sorted(current().environments.items()))

    @property
    def experiments(self) -> dict:
        from .pipeline import Experiment

        names = sorted({s.experiment for p in current().pipelines for s in p._submissions})
        return {n: Experiment(self, n) for n in names}

    def __repr__(self) -> str:
        return f"Workspace.create(name='{self.name}', subscription_id='{self.subscription_id}', resource_group='{self.resource_group}')"


# ----------------------------------------------------------------------------------- datastores


class Datastore:
    """A named datastore; its location comes from mlpipe.yaml (a folder or an fsspec URL)."""

    def __init__(self, workspace, name=None):
        if name is None:
            name = workspace.get_default_datastore().name if workspace else "workspaceblobstore"
        cfg = current().config
        if name not in cfg.datastores:
            raise fail(
                f"unknown datastore {name!r}: declare it in mlpipe.yaml under datastores: "
                f"(e.g. `{name}: ./data/{name}` or an s3:// / abfs:// URL)"
            )
        self.workspace = workspace
        self.name = name
        self.datastore_type = "AzureBlob" if name != "workspacefilestore" else "AzureFile"
        self.container_name = name
        self.account_name = "local"

    @staticmethod
    def get(workspace, datastore_name):
        return Datastore(workspace, datastore_name)

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

    def upload(self, src_dir, target_path=None, overwrite=False, show_progress=True):
        current().warn(
            f"datastore.upload() is not performed during capture; make sure {target_path or '.'!r} "
            f"exists in datastore {self.name!r} before running"
        )
        return self.path(target_path)

    def upload_files(
        self, files, relative_root=None, target_path=None, overwrite=False, show_progress=True
    ):
        return self.upload(None, target_path, overwrite, show_progress)

    def __eq__(self, other):
        return isinstance(other, Datastore) and other.name == self.name

    def __hash__(self):
        return hash(("datastore", self.name))

    def __repr__(self) -> str:
        return f"Datastore({self.name!r})"


# -------------------------------------------------------------------------------------- compute


class ComputeTargetException(Exception):
    pass


class ProvisioningConfiguration:
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


class ComputeTarget:
    """A compute target. Looking up an undeclared name raises ComputeTargetException, so the usual
    v1 `try: ComputeTarget(ws, name) except ComputeTargetException: create(...)` branch runs."""

    type = "AmlCompute"

    def __new__(cls, workspace=None, name=None):
        if name is None:
            return super().__new__(cls)
        _materialise_declared()
        found = current().computes.get(name)
        if found is None:
            raise ComputeTargetException(
                f"ComputeTargetNotFound: compute target {name!r} is not declared in mlpipe.yaml"
            )
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


def _materialise_declared() -> None:
    sess = current()
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
