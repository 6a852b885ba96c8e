"""Building the IR from the authoring API's objects: one Pipeline object -> PipelineIR.

capture.py runs the user's file; what it leaves in the session (pipelines, steps, datasets...) is
turned into the IR here, with every problem at the user's line. `Pipeline.validate()` and the
pipeline's step closure use the same builder, so this module imports the step classes but never the
Pipeline class (api/pipeline.py imports this module).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from . import ir
from . import snapshot as snapshots
from .api import _session
from .api.data import (
    AbstractDataset,
    DataPath,
    DataPathComputeBinding,
    DataReference,
    DatasetConsumptionConfig,
    OutputFileDatasetConfig,
    OutputTabularDatasetConfig,
    PipelineData,
    PipelineParameter,
    _Output,
    _OutputConsumption,
)
from .api.environment import Environment, curated_entry, pip_requirements
from .api.steps import _Step, compute_name
from .api.workspace import ComputeTarget, _materialise_declared
from .errors import Problem, UserError

if TYPE_CHECKING:
    from .api.pipeline import Pipeline

_REPORTED = "\0reported"  # an input whose problem was already reported
_NAME_CLEAN = re.compile(r"[^A-Za-z0-9_.-]+")


def pipeline_problems(pipeline) -> list[Problem]:
    """Problems of one Pipeline object (v1's `Pipeline.validate()`)."""
    sess = _session.current()
    builder = Builder(sess, pipeline, "pipeline", sess.pipeline_dir / "pipeline.py")
    result = builder.build()
    problems = list(builder.problems)
    if result is not None and not problems:
        from .passes.validate import validate

        problems.extend(validate(result, sess))
    return problems


def pipeline_steps(pipeline) -> list:
    """The steps a Pipeline object runs (its listed steps plus the closure), in creation order."""
    sess = _session.current()
    return Builder(sess, pipeline, "pipeline", sess.pipeline_dir / "pipeline.py").steps()


def _scalar_ok(value) -> bool:
    return isinstance(value, bool | int | float | str)


class Builder:
    """Turns one Pipeline object into PipelineIR, collecting problems at the user's lines."""

    def __init__(self, sess, pipeline: Pipeline, name: str, path: Path):
        self.sess = sess
        self.p = pipeline
        self.name = name
        self.path = path
        self.problems: list[Problem] = []
        self.params: dict[str, ir.Parameter] = {}
        self.param_objs: dict[str, PipelineParameter] = {}
        self.computes: dict[str, ir.Compute] = {}
        self.environments: dict[str, ir.Environment] = {}
        self._snapshot_cache: dict[str, ir.Snapshot] = getattr(sess, "snapshot_cache", None) or {}
        sess.snapshot_cache = self._snapshot_cache
        # A loop creating thousands of steps with one bad path gives one error, not thousands.
        self._bad_paths: set[tuple] = set()
        # (cwd, source_directory, script_name) -> what source_directory() found: steps made in a
        # loop share one folder, and resolving it costs ~50 us a step (realpath, stats).
        self._source_dirs: dict[tuple, tuple[str, ir.Snapshot]] = {}

    # ---- helpers
    def problem(self, origin: ir.Origin | None, message: str) -> None:
        file = (
            self.sess.displays.get(origin.file, origin.file)
            if origin
            else next(iter(self.sess.displays.values()))
        )
        self.problems.append(Problem(file, origin.line if origin else None, message))

    def default_datastore(self) -> str:
        return self.p._default_datastore or "workspaceblobstore"

    # ---- graph
    def _producers(self) -> dict[int, list[_Step]]:
        producers: dict[int, list[_Step]] = {}
        known = getattr(self.p, "_known_steps", len(self.sess.steps))
        for step in self.sess.steps[:known]:
            for obj in self._declared_outputs(step):
                producers.setdefault(obj._uid, [])
                if step not in producers[obj._uid]:
                    producers[obj._uid].append(step)
        return producers

    @staticmethod
    def _declared_outputs(step: _Step) -> list[_Output]:
        outs = [o for o in step._outputs if isinstance(o, _Output)]
        for a in step._arguments:
            if isinstance(a, OutputFileDatasetConfig) and all(a._uid != o._uid for o in outs):
                outs.append(a)
        return outs

    @staticmethod
    def _consumed_uids(step: _Step) -> list[int]:
        uids = []
        for item in [*step._inputs, *step._arguments, *step._params.values()]:
            if isinstance(item, _OutputConsumption | OutputTabularDatasetConfig):
                uids.append(item._uid)
            elif isinstance(item, PipelineData) and item in step._inputs:
                uids.append(item._uid)
        return uids

    def steps(self) -> list[_Step]:
        chosen = list(self.p._flat)
        if self.p._resolve_closure:
            producers = self._producers()
            seen = set(map(id, chosen))
            queue = list(chosen)
            while queue:
                step = queue.pop()
                more = list(self.p._run_after_of(step))
                for uid in self._consumed_uids(step):
                    more.extend(producers.get(uid, [])[:1])
                for extra in more:
                    if id(extra) not in seen:
                        seen.add(id(extra))
                        chosen.append(extra)
                        queue.append(extra)
        return sorted(chosen, key=lambda s: s._seq)

    # ---- main
    def build(self) -> ir.PipelineIR | None:
        steps = self.steps()
        in_pipeline = set(map(id, steps))
        producers = self._producers()
        # (uid) -> (producer step name, output name), for steps in this pipeline
        self.output_names: dict[int, tuple[str, str]] = {}
        for step in steps:
            for i, obj in enumerate(self._declared_outputs(step)):
                out_name = obj.name or f"output_{i}"
                if obj._uid in self.output_names:
                    other = self.output_names[obj._uid][0]
                    self.problem(
                        step.origin,
                        f"output {out_name!r} is produced by both step {other!r} "
                        f"and step {step.name!r}: each output needs one producer",
                    )
                    continue
                self.output_names[obj._uid] = (step.name, out_name)
        ir_steps = []
        for step in steps:
            built = self.build_step(step, producers, in_pipeline)
            if built is not None:
                ir_steps.append(built)
        by_name = {s.name: s for s in ir_steps}
        for a, b in self.p._order_edges:
            s = by_name.get(b.name)
            if s is not None and a.name not in s.run_after and a.name != b.name:
                s.run_after.append(a.name)
        cfg = self.sess.config
        datastores = []
        for n, u in sorted(cfg.datastores.items()):
            kind, origin = self.sess.registered_datastores.get(n, (None, None))
            if kind is None:
                kind = "local" if u.startswith("/") else u.split("://")[0]
            datastores.append(ir.Datastore(name=n, url=u, type=kind, origin=origin))
        if self.problems:
            return None
        pub_desc = next((pub.description for pub in self.p._publications if pub.description), None)
        try:
            return ir.PipelineIR(
                name=self.name,
                description=self.p.description or pub_desc,
                source_file=self.path.name,
                default_datastore=self.default_datastore(),
                workspace=cfg.name,
                parameters=sorted(self.params.values(), key=lambda x: x.name),
                steps=ir_steps,
                datastores=datastores,
                computes=sorted(self.computes.values(), key=lambda c: c.name),
                environments=sorted(self.environments.values(), key=lambda e: e.key),
                schedules=_unique_schedules([s._ir for s in self.p._schedules]),
                submissions=list(self.p._submissions),
                publications=[pub._ir for pub in self.p._publications],
                uploads=list(self.sess.uploads),
                registrations=list(self.sess.registrations),
                continue_on_step_failure=self.p._continue_on_step_failure
                or any(s.continue_on_step_failure for s in self.p._submissions),
                origin=self.p.origin,
                kubernetes=ir.KubernetesPlacement(**_placement(cfg.kubernetes)),
                images=ir.ImageSettings(**cfg.images) if cfg.images else None,
            )
        except Exception as exc:  # pydantic validation of user-provided values
            self.problem(self.p.origin, f"cannot represent this pipeline: {exc}")
            return None

    # ---- one step
    def build_step(self, step: _Step, producers, in_pipeline) -> ir.Step | None:
        parts = _StepParts(self, step, producers, in_pipeline)
        parts.collect_outputs()
        parts.collect_inputs()
        arguments = parts.arguments(step._arguments, "arguments")
        command = None
        if step._command is not None:
            command = parts.arguments(step._command, "command")
        params = parts.params()
        rc = step._runconfig
        compute = self.build_compute(step, rc)
        environment = self.build_environment(step, rc)
        src = self.source_directory(step)
        if src is None:
            return None
        rel_src, snap = src
        try:
            return ir.Step(
                name=step.name,
                kind="command" if step._command is not None else "python_script",
                script=step.script_name,
                command=command,
                source_directory=rel_src,
                snapshot=snap,
                arguments=arguments,
                inputs=parts.inputs,
                outputs=parts.outputs,
                params=params,
                env_vars={
                    str(k): str(v) for k, v in (rc.environment_variables if rc else {}).items()
                },
                compute=compute,
                environment=environment,
                allow_reuse=step.allow_reuse,
                version=step._version,
                run_after=[s.name for s in self.p._run_after_of(step)],
                node_count=int(getattr(rc, "node_count", 1) or 1) if rc else 1,
                max_run_duration_seconds=getattr(rc, "max_run_duration_seconds", None)
                if rc
                else None,
                origin=step.origin,
            )
        except Exception as exc:
            self.problem(step.origin, f"step {step.name!r} cannot be represented: {exc}")
            return None

    def build_output(self, step, obj: _Output, name: str) -> ir.StepOutput:
        store = obj._datastore or self.default_datastore()
        if isinstance(obj, PipelineData):
            dest = f"azureml/{{run-id}}/{_path_part(step.name)}/{{output-name}}"
        else:
            dest = obj._path if obj._path else "dataset/{run-id}/{output-name}"
        return ir.StepOutput(
            name=name,
            kind=obj._kind,
            datastore=store,
            destination=dest.lstrip("/"),
            mode=obj._mode,
            register_as=obj._register,
            register_description=obj._register_description,
            source_globs=obj._source_globs,
            overwrite=obj._overwrite,
        )

    def output_input(
        self, step, output: _Output, name, mode, path_on_compute, tabular, producers, in_pipeline
    ) -> ir.StepInput | None:
        found = self.output_names.get(output._uid)
        if found is None:
            label = output.name or "OutputFileDatasetConfig"
            outside = [s for s in producers.get(output._uid, []) if id(s) not in in_pipeline]
            if outside:
                self.problem(
                    step.origin,
                    f"step {step.name!r} consumes {label!r}, produced by step "
                    f"{outside[0].name!r} which is not in the pipeline: add it to "
                    "steps=[...] or keep resolve_closure=True",
                )
            else:
                self.problem(
                    step.origin,
                    f"step {step.name!r} consumes {label!r} but no step produces it: "
                    "list it in the producing step's outputs= (or arguments)",
                )
            return None
        producer, out_name = found
        if producer == step.name:
            self.problem(step.origin, f"step {step.name!r} consumes its own output {out_name!r}")
            return None
        if mode not in ("mount", "download", "direct"):
            mode = "mount"
        source = ir.StepOutputSource(step=producer, output=out_name)
        inp = ir.StepInput(
            name=name or out_name, source=source, mode=mode, path_on_compute=path_on_compute
        )
        if tabular is not None:
            inp.mode = "direct"
            inp.tabular = ir.TabularFormat(separator=tabular[0], header=bool(tabular[1]))
        return inp

    def dataset_input(self, step, c: DatasetConsumptionConfig, index: int) -> ir.StepInput | None:
        ds = c.dataset
        if isinstance(ds, PipelineParameter):
            self.register_param(ds)
            source = ir.ParameterSource(parameter=ds.name)
            kind = ds.default_value._type
        else:
            source = ir.DatasetSource(dataset=ds._ir())
            kind = ds._type
        mode = c.mode
        if mode == "direct" and kind == "file":
            mode = "mount"  # a FileDataset consumed "direct" still reaches the script as a path
        name = c.name or (
            ds.name if isinstance(ds, AbstractDataset) and ds.name else f"input_{index}"
        )
        return ir.StepInput(name=name, source=source, mode=mode, path_on_compute=c.path_on_compute)

    # ---- parameters, compute, environment, sources
    def register_param(self, p: PipelineParameter) -> None:
        if p.type == "datapath":
            default = ir.DataPath(
                datastore=p.default_value.datastore_name, path=p.default_value.path_on_datastore
            )
        elif p.type == "dataset":
            default = p.default_value._ir()
        else:
            default = p.default_value
        param = ir.Parameter(name=p.name, type=p.type, default=default, origin=p.origin)
        existing = self.params.get(p.name)
        if existing is not None and existing.model_dump(exclude={"origin"}) != param.model_dump(
            exclude={"origin"}
        ):
            self.problem(
                p.origin,
                f"PipelineParameter {p.name!r} is defined twice with different defaults "
                f"(first at {existing.origin}): reuse one object or rename one",
            )
            return
        self.params.setdefault(p.name, param)

    def build_compute(self, step, rc) -> str | None:
        target = step._compute
        if target is None and rc is not None:
            target = rc.target
        try:
            name = compute_name(target)
        except UserError as exc:
            self.problem(step.origin, exc.message)
            return None
        if name is None or name == "local":
            return None
        _materialise_declared(self.sess)  # capture is over: the session is no longer current()
        obj = self.sess.computes.get(name)
        if obj is None and isinstance(target, ComputeTarget):
            obj = target
        if obj is None:
            self.problem(
                step.origin,
                f"unknown compute {name!r} for step {step.name!r}: declare it in "
                f"mlpipe.yaml under computes: (e.g. `{name}: {{vm_size: STANDARD_D2_V2, "
                "max_nodes: 2}`) or create it with ComputeTarget.create(...)",
            )
            return None
        if name not in self.computes:
            vm = self.sess.config.vm_sizes.get((obj.vm_size or "").upper())
            decl = self.sess.config.computes.get(name)
            placement = _placement(decl.placement if decl else {})
            self.computes[name] = ir.Compute(
                name=name,
                vm_size=obj.vm_size,
                vm_priority=obj.vm_priority or "dedicated",
                cpu=vm.cpu if vm else None,
                memory_gib=vm.memory_gib if vm else None,
                gpu_count=vm.gpus if vm else 0,
                gpu_type=vm.gpu_type if vm else None,
                min_nodes=obj.min_nodes,
                max_nodes=obj.max_nodes,
                kubernetes=ir.KubernetesPlacement(**placement),
                origin=obj.origin,
            )
        return name

    def build_environment(self, step, rc) -> str | None:
        env: Environment | None = getattr(rc, "environment", None) if rc is not None else None
        if env is None or env._is_trivial():
            return None
        conda, pip, python = env._packages()
        pip_packages, _notes = pip_requirements(conda, pip)
        image = env.docker.base_image
        if image in _default_images():
            image = None
        if env._curated and image is None:
            entry = curated_entry(env.name)
            image = entry["image"] if entry else None
        content = {
            "docker_image": image,
            "dockerfile": env.docker.base_dockerfile,
            "python": python,
            "pip": pip_packages,
            "user_managed": env.python.user_managed_dependencies,
            "env_vars": dict(sorted(env.environment_variables.items())),
        }
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        key = _NAME_CLEAN.sub("_", env.name)
        existing = self.environments.get(key)
        if existing is not None and existing.content_hash != digest:
            key = f"{key}-{digest[:8]}"
            existing = self.environments.get(key)
        if existing is None:
            self.environments[key] = ir.Environment(
                key=key,
                name=env.name,
                version=None if env.version is None else str(env.version),
                curated=env._curated,
                docker_image=image,
                dockerfile=env.docker.base_dockerfile,
                python_version=python,
                conda_packages=list(conda),
                pip_packages=pip_packages,
                user_managed=bool(env.python.user_managed_dependencies),
                env_vars={str(k): str(v) for k, v in env.environment_variables.items()},
                content_hash=digest,
                origin=env.origin,
            )
        return key

    def source_directory(self, step) -> tuple[str, ir.Snapshot] | None:
        raw = step._source_directory or self.p._default_source_directory or "."
        key = (step._cwd, str(raw), step.script_name)
        found = self._source_dirs.get(key)
        if found is None:
            found = self._find_source_directory(step, raw)
            if found is not None:  # a missing one is reported at each step's own line
                self._source_dirs[key] = found
        return found

    def _find_source_directory(self, step, raw) -> tuple[str, ir.Snapshot] | None:
        src = (step._cwd / os.path.expanduser(str(raw))).resolve()
        where = (step.origin.file, step.origin.line) if step.origin else None
        if not src.is_dir():
            if (where, src) not in self._bad_paths:
                self._bad_paths.add((where, src))
                self.problem(
                    step.origin,
                    f"source_directory {str(raw)!r} of step {step.name!r} does not exist "
                    f"(looked for {src}); fix the path",
                )
            return None
        if step.script_name is not None and not (src / step.script_name).is_file():
            script = src / step.script_name
            if (where, script) not in self._bad_paths:
                self._bad_paths.add((where, script))
                self.problem(
                    step.origin,
                    f"script {step.script_name!r} of step {step.name!r} is not in "
                    f"source_directory {str(raw)!r} (looked for {script}); "
                    "fix script_name or source_directory",
                )
            return None
        base = self.sess.pipeline_dir
        try:
            rel = src.relative_to(base).as_posix() or "."
        except ValueError:
            rel = str(src)
        key = str(src)
        if key not in self._snapshot_cache:
            info = snapshots.hash_directory(src)
            self._snapshot_cache[key] = ir.Snapshot(
                hash=info.hash, files=info.files, bytes=info.bytes
            )
        return rel, self._snapshot_cache[key]


class _StepParts:
    """The inputs, outputs, arguments and params of one step as the IR has them.

    Every data object a step mentions (in inputs=, arguments, a command, params) becomes one named
    input, whichever of those places mentions it first; `consume` picks how by the object's type
    (HANDLERS). Problems go to the builder, at the step's line.
    """

    # Type of a consumed object -> the method making it an input; the first match wins.
    HANDLERS = (
        (PipelineData, "_pipeline_data"),
        (_OutputConsumption, "_output_consumption"),
        (OutputTabularDatasetConfig, "_tabular_output"),
        (DatasetConsumptionConfig, "_dataset_consumption"),
        (AbstractDataset, "_dataset"),
        (DataReference, "_data_reference"),
        (DataPath, "_data_path"),
        (tuple, "_bound"),
    )

    def __init__(self, builder: Builder, step: _Step, producers, in_pipeline) -> None:
        self.b = builder
        self.step = step
        self.producers = producers
        self.in_pipeline = in_pipeline
        self.inputs: list[ir.StepInput] = []
        self.outputs: list[ir.StepOutput] = []
        self.input_keys: dict[object, str] = {}
        self.output_uids: dict[int, str] = {}

    # ---- outputs
    def collect_outputs(self) -> None:
        step, names = self.step, self.b.output_names
        for obj in self.b._declared_outputs(step):
            if obj._uid not in names or names[obj._uid][0] != step.name:
                continue
            out_name = names[obj._uid][1]
            if out_name in self.output_uids.values():
                self.b.problem(
                    step.origin,
                    f"step {step.name!r} has two outputs named {out_name!r}: "
                    "give them different names",
                )
                continue
            self.output_uids[obj._uid] = out_name
            self.outputs.append(self.b.build_output(step, obj, out_name))

    # ---- inputs
    def collect_inputs(self) -> None:
        step = self.step
        for obj in step._inputs:
            if isinstance(obj, _Output) and not isinstance(obj, PipelineData):
                self.b.problem(
                    step.origin,
                    f"step {step.name!r} lists output {obj.name or 'OutputFileDatasetConfig'!r} "
                    "in inputs=: consume it with .as_input()",
                )
                continue
            if self.consume(obj) is None and not (
                isinstance(obj, PipelineData) and obj._uid in self.output_uids
            ):
                self.b.problem(
                    step.origin,
                    f"step {step.name!r}: inputs= holds a {type(obj).__name__}, which "
                    "is not a dataset, DataReference, PipelineData or step output",
                )

    def add_input(self, key, make) -> str | None:
        """The input name of `key`, made by `make(index)` the first time it is seen."""
        if key in self.input_keys:
            return self.input_keys[key]
        made = make(len(self.inputs))
        if made is None:  # already reported: don't report the same object again
            self.input_keys[key] = _REPORTED
            return _REPORTED
        name = made.name
        existing = {x.name for x in self.inputs}
        if name in existing:
            k = 2
            while f"{name}_{k}" in existing:
                k += 1
            made.name = name = f"{name}_{k}"
        self.inputs.append(made)
        self.input_keys[key] = name
        return name

    def consume(self, obj) -> str | None:
        """Register `obj` as an input if it is one; return its input name."""
        for kind, handler in self.HANDLERS:
            if isinstance(obj, kind):
                return getattr(self, handler)(obj)
        return None

    def _step_output(self, output, name, mode, path_on_compute, tabular):
        return self.b.output_input(
            self.step,
            output,
            name,
            mode,
            path_on_compute,
            tabular,
            self.producers,
            self.in_pipeline,
        )

    def _pipeline_data(self, obj: PipelineData) -> str | None:
        if obj._uid in self.output_uids:
            return None
        return self.add_input(
            ("out", obj._uid, obj._data_name),
            lambda i: self._step_output(obj, obj._data_name, "mount", None, None),
        )

    def _output_consumption(self, obj: _OutputConsumption) -> str | None:
        return self.add_input(
            ("out", obj._uid, obj.name),
            lambda i: self._step_output(
                obj.output, obj.name, obj.mode, obj.path_on_compute, obj.tabular
            ),
        )

    def _tabular_output(self, obj: OutputTabularDatasetConfig) -> str | None:
        return self.consume(obj.as_input())

    def _dataset_consumption(self, obj: DatasetConsumptionConfig) -> str | None:
        return self.add_input(
            ("ds", id(obj.dataset), obj.name, obj.mode),
            lambda i: self.b.dataset_input(self.step, obj, i),
        )

    def _dataset(self, obj: AbstractDataset) -> str | None:
        mode = "direct" if obj._type == "tabular" else "mount"
        return self.consume(DatasetConsumptionConfig(None, obj, mode=mode))

    def _data_reference(self, obj: DataReference) -> str | None:
        return self.add_input(
            ("dr", obj.datastore_name, obj.path_on_datastore, obj.data_reference_name),
            lambda i: ir.StepInput(
                name=obj.data_reference_name or f"input_{i}",
                source=ir.DataPathSource(
                    path=ir.DataPath(datastore=obj.datastore_name, path=obj.path_on_datastore)
                ),
                mode=obj.mode if obj.mode in ("mount", "download") else "mount",
                path_on_compute=obj.path_on_compute,
                overwrite=bool(obj.overwrite),
            ),
        )

    def _data_path(self, obj: DataPath) -> str | None:
        return self.consume((obj, DataPathComputeBinding()))

    def _bound(self, obj: tuple) -> str | None:
        """`(DataPath or its PipelineParameter, DataPathComputeBinding)`."""
        if len(obj) != 2 or not isinstance(obj[1], DataPathComputeBinding):
            return None
        target, binding = obj
        if isinstance(target, PipelineParameter):
            self.b.register_param(target)
            key = ("pp", target.name, binding._mode)
            name, source = target.name, ir.ParameterSource(parameter=target.name)
        elif isinstance(target, DataPath):
            key = ("dp", target.datastore_name, target.path_on_datastore, binding._mode)
            name = target.name
            source = ir.DataPathSource(
                path=ir.DataPath(datastore=target.datastore_name, path=target.path_on_datastore)
            )
        else:
            return None
        return self.add_input(
            key,
            lambda i: ir.StepInput(
                name=name or f"input_{i}",
                source=source,
                mode=binding._mode,
                path_on_compute=binding.path_on_compute,
                overwrite=bool(binding.overwrite),
            ),
        )

    # ---- arguments and params
    def arguments(self, values, where: str) -> list:
        return [a for a in (self.argument(v, where) for v in values) if a is not None]

    def argument(self, value, where: str):
        if isinstance(value, PipelineParameter):
            self.b.register_param(value)
            return ir.ParameterArg(name=value.name)
        if isinstance(value, _Output):
            if value._uid in self.output_uids:
                return ir.OutputArg(name=self.output_uids[value._uid])
            if isinstance(value, PipelineData):
                return self._listed_pipeline_data(value, where)
        name = self.consume(value)
        if name is _REPORTED:
            return None
        if name is not None:
            return ir.InputArg(name=name)
        if _scalar_ok(value):
            return ir.LiteralArg(value=value)
        if value is None:
            return ir.LiteralArg(value="None")
        return ir.LiteralArg(value=str(value))

    def _listed_pipeline_data(self, value: PipelineData, where: str):
        """A PipelineData in arguments / command must also be in inputs= (or outputs=)."""
        key = ("out", value._uid, value._data_name)
        if self.input_keys.get(key) is _REPORTED:
            return None
        if key in self.input_keys:
            return ir.InputArg(name=self.input_keys[key])
        self.b.problem(
            self.step.origin,
            f"PipelineData {value.name!r} is in the {where} of step "
            f"{self.step.name!r} but not in its inputs= or outputs=: list it there too",
        )
        return None

    def params(self) -> dict[str, ir.LiteralArg | ir.ParameterArg]:
        params: dict[str, ir.LiteralArg | ir.ParameterArg] = {}
        for k, v in self.step._params.items():
            if isinstance(v, PipelineParameter):
                self.b.register_param(v)
                params[str(k)] = ir.ParameterArg(name=v.name)
            else:
                params[str(k)] = ir.LiteralArg(value=v if _scalar_ok(v) else str(v))
        return params


def _unique_schedules(schedules: list) -> list:
    """Copies of the schedules, a name used twice getting a `_2`, `_3`... suffix."""
    out = []
    taken: set[str] = set()
    for sched in schedules:
        name = sched.name
        k = 2
        while name in taken:
            name = f"{sched.name}_{k}"
            k += 1
        taken.add(name)
        out.append(sched.model_copy(update={"name": name}, deep=True))
    return out


def _placement(raw: dict) -> dict:
    # checked and normalised by workspace_config (the `kubernetes:` keys)
    return dict(raw or {})


def _default_images() -> set:
    from .api.environment import _DEFAULT_IMAGES

    return _DEFAULT_IMAGES | {None}


def _path_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "step"
