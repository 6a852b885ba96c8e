"""Workspace, datastores and compute targets, backed by mlpipe.yaml instead of Azure."""

from __future__ import annotations

from ..errors import NotSupportedError
from . import _live
from ._session import current, fail
from ._v1 import V1Object, _uid
from .datastore import Datastore
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
    return Experiment(workspace, name)


class _Experiments(dict):
    def __init__(self, workspace, items):
        super().__init__(items)
        self._workspace = workspace

    def __missing__(self, name):
        return _experiment(self._workspace, name)


# ----------------------------------------------------------------------------------- datastores


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


# ------------------------------------------------------------------------------ experiments


class Experiment(V1Object):
    def __init__(
        self,
        workspace,
        name,
        _skip_name_validation=False,
        _id=None,
        _archived_time=None,
        _create_in_cloud=True,
        _experiment_dto=None,
        **kwargs,
    ):
        self.workspace = workspace
        self.name = name
        self.id = _uid("experiment", name)
        self.archived_time = None
        self.tags: dict = {}

    def submit(self, config, tags=None, **kwargs):
        # What submitting means is the submitted object's own (`_submit_from`): a draft submits
        # itself, an endpoint its version's pipeline, a published pipeline its pipeline.
        submit_from = getattr(type(config), "_submit_from", None)
        if submit_from is None:
            raise NotSupportedError(
                f"Experiment.submit({type(config).__name__}) is not supported: mlpipe captures "
                "pipelines (submit a Pipeline built from PythonScriptStep / CommandStep)",
                current().origin(),
            )
        return submit_from(config, self, kwargs)

    def get_runs(self, *args, **kwargs):
        runs = getattr(current(), "runs", [])
        return iter([r for r in reversed(runs) if r.experiment.name == self.name])

    def archive(self):
        return None

    def reactivate(self, new_name=None):
        return None

    def tag(self, key, value=None):
        self.tags[key] = value

    def get_docs_url(self):
        return "https://mlpipe.invalid/docs"

    @staticmethod
    def list(workspace, experiment_name=None, view_type=None, tags=None):
        found = list(workspace.experiments.values())
        if experiment_name is not None:
            found = [e for e in found if e.name == experiment_name]
        return found

    def __repr__(self) -> str:
        return f"Experiment(Name: {self.name}, Workspace: {getattr(self.workspace, 'name', None)})"
