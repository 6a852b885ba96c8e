"""ScriptRunConfig and distributed-job configurations (used through CommandStep(runconfig=...))."""

from __future__ import annotations

from ._session import fail
from .environment import RunConfiguration


class MpiConfiguration:
    def __init__(self, process_count_per_node=1, node_count=1):
        self.process_count_per_node = process_count_per_node
        self.node_count = node_count


class PyTorchConfiguration:
    def __init__(self, communication_backend="Nccl", process_count=None, node_count=1):
        self.communication_backend = communication_backend
        self.process_count = process_count
        self.node_count = node_count


class TensorflowConfiguration:
    def __init__(self, worker_count=1, parameter_server_count=1):
        self.worker_count = worker_count
        self.parameter_server_count = parameter_server_count


class ScriptRunConfig:
    def __init__(
        self,
        source_directory=".",
        script=None,
        arguments=None,
        run_config=None,
        _telemetry_values=None,
        compute_target=None,
        environment=None,
        distributed_job_config=None,
        resume_from=None,
        max_run_duration_seconds=None,
        command=None,
        docker_runtime_config=None,
    ):
        if script is None and not command:
            raise fail("ScriptRunConfig needs script= or command=")
        self.source_directory = source_directory
        self.script = script
        self.arguments = list(arguments or [])
        # A string command stays one item: CommandStep splits string items like a shell would.
        self.command = (
            list(command)
            if isinstance(command, list | tuple)
            else ([command] if isinstance(command, str) else None)
        )
        self.run_config = run_config or RunConfiguration()
        if environment is not None:
            self.run_config.environment = environment
        if compute_target is not None:
            self.run_config.target = compute_target
        if max_run_duration_seconds is not None:
            self.run_config.max_run_duration_seconds = max_run_duration_seconds
        self.compute_target = compute_target
        self.distributed_job_config = distributed_job_config
        if distributed_job_config is not None:
            self.run_config.node_count = getattr(distributed_job_config, "node_count", 1) or 1
