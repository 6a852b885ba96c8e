"""Kubeflow Pipelines backend: one KFP v2 pipeline YAML per pipeline (`mlpipe compile --target kfp`).

The PipelineSpec is built with the official `kfp-pipeline-spec` protobuf classes (never through the
kfp DSL, and never as templated YAML) and written the way kfp's own compiler writes it: a comment
header, the PipelineSpec document, and the Kubernetes platform spec document (kfp-kubernetes format)
when a step needs node selectors, tolerations or image pull secrets.

Every step is a lightweight Python component (the command / args shape `@dsl.component` produces),
so the same YAML runs on a KFP cluster and under `kfp.local.SubprocessRunner`. Its module holds the
step's slice of the IR (and its source snapshot when small) as base64 and calls the mlpipe runtime
(`mlpipe.backends.kfp_executor.run_step` -> `mlpipe.runtime.run_step`), which decides reuse from the
mlpipe fingerprint; KFP's own cache is off for every task. A last task, `mlpipe-run-summary`, runs after
all steps (even failed ones) and writes the run record. See docs/kfp.md.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import re
import shlex
from dataclasses import dataclass, field
from string import Template
from zoneinfo import ZoneInfo

from ..errors import MlpipeError, Problem
from ..images import built_by_mlpipe, step_image
from ..ir import (
    Compute,
    Environment,
    Parameter,
    PipelineIR,
    Step,
)
from ..passes.parameters import resolve as resolve_parameters
from ..passes.placement import (
    kubernetes_problems,
    pod_placement,
    pod_resources,
)
from ..passes.schedules import Fires, resolve_recurrence
from ..runtime.irquery import step_parameter_names
from . import kfp_spec as spec
from .base import (
    APPROXIMATED,
    UNSUPPORTED,
    Artifact,
    Backend,
    CompileContext,
    file_stem,
    identifier,
    where,
)
from .kfp_executor import encode

DEFAULT_IMAGE = "python:3.11-slim"
RUN_ID_PLACEHOLDER = "{{$.pipeline_job_uuid}}"  # dsl.PIPELINE_JOB_ID_PLACEHOLDER
REGENERATE = "regenerate_outputs"
RUN_ID_INPUT = "mlpipe_run_id"
SUMMARY_TASK = "mlpipe-run-summary"
SUMMARY_FUNCTION = "mlpipe_run_summary"
# kfp's task / component names become parts of Kubernetes object names (63-character labels, with
# the `comp-` / `exec-` prefixes and Argo's suffixes around them).
TASK_NAME_MAX = 48
# Kubernetes keeps the Argo Workflow that KFP makes of a spec in etcd, whose objects are limited
# to about 1.5 MiB: warn well before a run would be refused.
SPEC_WARN_BYTES = 1024 * 1024
DEPLOY_SUFFIX = ".deploy.yaml"  # beside <pipeline>.yaml: kfp.Client upload arguments

# Source snapshots ride inside the executor module when small, else `mlpipe compile` stores them
# content-addressed in the default datastore (<datastore>/.mlpipe/snapshots/<hash>.tar.gz), where the
# runtime looks by default. Limits count the .tar.gz bytes: each snapshot at most SNAPSHOT_EMBED_MAX,
# and all embedded copies of one pipeline (a snapshot counts once per step using it) at most
# SNAPSHOT_EMBED_BUDGET, which keeps specs far below KFP's / Kubernetes' object size limits.
SNAPSHOT_EMBED_MAX = 32 * 1024
SNAPSHOT_EMBED_BUDGET = 256 * 1024
# One executor module is one argv element (`printf "%s" "$0"`): Linux caps those at 128 KiB.
MODULE_MAX_CHARS = 120_000

# The container command of every executor: kfp's lightweight-component shape. The first script runs
# only in a KFP pod (KFP sets KFP_POD_NAME there): it installs what the image lacks, like kfp's
# `packages_to_install`, and tells the runtime to use that Python. Under kfp.local nothing is
# installed: the runtime builds the environment's venv itself, cached, as the local runner does.
_INSTALL = (
    "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location"
)
PREFIX_HEAD = (
    "set -e\n"
    'if [ -n "${KFP_POD_NAME:-}" ]; then\n'
    "  python3 -c 'import kfp.dsl' 2>/dev/null ||"
    f" {_INSTALL} 'kfp=={spec.KFP_SDK_VERSION}' --no-deps\n"
)
PREFIX_TAIL = '  export MLPIPE_USE_CURRENT_PYTHON=1\nfi\nexec "$0" "$@"\n'
BUILT_PREFIX = 'set -e\nif [ -n "${KFP_POD_NAME:-}" ]; then\n' + PREFIX_TAIL
LAUNCH = (
    "program_path=$(mktemp -d)\n"
    'printf "%s" "$0" > "$program_path/ephemeral_component.py"\n'
    "_KFP_RUNTIME=true python3 -m kfp.dsl.executor_main"
    ' --component_module_path "$program_path/ephemeral_component.py" "$@"\n'
)

TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}

# The module of one lightweight Python component (kfp.dsl.executor_main loads it and calls the
# function). Only identifiers and base64 text go into it, never a name, argument or other text of the
# user's pipeline, so nothing in it can be read as code or as a KFP placeholder. (string.Template, not
# Jinja2: importing Jinja2 alone costs a tenth of a second, for five substitutions.)
STEP_MODULE = Template(
    """\
# mlpipe: one step of pipeline $pipeline, run by the mlpipe runtime (generated; do not edit).
# STEP: the step's IR (JSON, zlib, base64). SNAPSHOT: its source folder (.tar.gz, base64), or ""
# when it lives in <default datastore>/.mlpipe/snapshots.
STEP = "$payload"
SNAPSHOT = "$snapshot"


def $function(
    mlpipe_run_id: str,
    regenerate_outputs: bool,
$parameters) -> None:
    from mlpipe.backends.kfp_executor import run_step

    run_step(
        STEP,
        SNAPSHOT,
        mlpipe_run_id,
        regenerate_outputs,
        $values,
    )
"""
)
SUMMARY_MODULE = Template(
    """\
# mlpipe: the run summary of pipeline $pipeline (generated; do not edit). Runs after every step,
# even failed ones: writes the run record and a `skipped` record for each step that never ran.
# RUN: the steps in order, with their upstream steps (JSON, zlib, base64).
RUN = "$payload"


def $function(
    mlpipe_run_id: str,
    regenerate_outputs: bool,
$parameters) -> None:
    from mlpipe.backends.kfp_executor import summarize

    summarize(
        RUN,
        mlpipe_run_id,
        regenerate_outputs,
        $values,
    )
"""
)


def _module(template: Template, function: str, inputs: list[tuple[str, str]], **fields) -> str:
    """Fill a module template; `inputs` are (identifier, KFP type) pairs."""
    parameters = "".join(f"    {n}: {spec.PYTHON_ANNOTATIONS[t]},\n" for n, t in inputs)
    if inputs:
        values = "{\n" + "".join(f'            "{n}": {n},\n' for n, _ in inputs) + "        }"
    else:
        values = "{}"
    return template.substitute(function=function, parameters=parameters, values=values, **fields)


# ---------------------------------------------------------------------------------------- names


def k8s_name(text: str, max_len: int = TASK_NAME_MAX) -> str:
    """A DNS-label-like name, as kfp derives task / component names: lowercase [a-z0-9-]."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "step"
    if len(out) > max_len:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        out = f"{out[: max_len - 9].rstrip('-')}-{digest}"
    return out


def python_name(text: str) -> str:
    out = identifier(text, max_len=60).lower()
    return f"{out}_" if keyword.iskeyword(out) else out


def parameter_input(name: str) -> str:
    """A pipeline parameter's KFP input name: the IR name when it is a Python identifier."""
    out = identifier(name, max_len=KfpBackend.name_limits["parameter"])
    return f"{out}_" if keyword.iskeyword(out) else out


def pipeline_name(pipeline: PipelineIR) -> str:
    return k8s_name(pipeline.name, max_len=KfpBackend.name_limits["pipeline"])


def task_names(pipeline: PipelineIR) -> dict[str, str]:
    """Step name -> task name; names that clash after sanitising get a short hash of the original."""
    wanted = {s.name: k8s_name(s.name) for s in pipeline.steps}
    clashes: dict[str, int] = {}
    for base in wanted.values():
        clashes[base] = clashes.get(base, 0) + 1
    # kfp's loader reads a file whose executors include `exec-<pipeline name>` as that single
    # component, not as the pipeline: the pipeline's name is as taken as the summary task's.
    reserved = KfpBackend.reserved_names["step"] | {pipeline_name(pipeline)}
    for name in reserved:
        clashes[name] = clashes.get(name, 0) + 1
    out: dict[str, str] = {}
    taken = set(reserved)
    for s in pipeline.steps:
        base = wanted[s.name]
        name = base
        if clashes[base] > 1:
            digest = hashlib.sha256(s.name.encode("utf-8")).hexdigest()[:6]
            name = f"{base[: TASK_NAME_MAX - 7].rstrip('-')}-{digest}"
        n = 2
        while name in taken:
            name = f"{base[: TASK_NAME_MAX - 4]}-{n}"
            n += 1
        taken.add(name)
        out[s.name] = name
    return out


# ---------------------------------------------------------------------------------- parameters


def parameter_default(p: Parameter):
    """The KFP default of a parameter, in a form the runtime's coercion reads back exactly."""
    return kfp_value(p.type, p.default)


def kfp_value(ptype: str, value):
    """A parameter value (typed by passes/parameters.py) as a KFP input holds it. DataPath /
    dataset values become the text the runtime parses back to the same value:
    `<datastore>/<path>`, a URL, or the dataset's JSON."""
    if isinstance(value, str | bool | int | float):
        return value
    dumped = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    if isinstance(dumped, dict) and dumped.get("kind") == "datapath":
        return f"{dumped['datastore']}/{dumped['path']}"
    if isinstance(dumped, dict) and dumped.get("kind") == "url":
        return dumped["url"]
    return json.dumps(dumped, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _set_value(value_msg, value) -> None:
    if isinstance(value, bool):
        value_msg.bool_value = value
    elif isinstance(value, int | float):
        value_msg.number_value = value
    else:
        value_msg.string_value = str(value)


# ------------------------------------------------------------------------------------- the plan


@dataclass
class _StepPlan:
    step: Step
    task: str
    function: str
    inputs: list[tuple[str, str]]  # (input name, KFP parameter type)
    parameters: dict[str, str]  # input name -> pipeline parameter name
    image: str
    packages: list[str] | None  # None: an image `mlpipe images` built has them all
    compute: Compute | None
    upstream: list[str]
    snapshot: str = ""  # base64 .tar.gz when embedded
    platform: dict = field(default_factory=dict)
    doc: dict = field(default_factory=dict)  # the step's JSON form (its slice of the IR)


class KfpBackend(Backend):
    name = "kfp"
    # local: no platform spec (kfp.local, or a cluster that reaches the datastores itself);
    # kubernetes: the kfp-kubernetes platform spec with mlpipe.yaml's placement (docs/kfp.md)
    profiles = ("local", "kubernetes")
    default_profile = "local"
    # The YAML is self-contained: each executor carries its step's IR (and small snapshots).
    uses_bundle = False
    # One robfig/cron expression per recurring run; no storage events
    features = {"exact_recurrence": APPROXIMATED, "datastore_trigger": UNSUPPORTED}
    # IR parameter type -> KFP ParameterType. DataPath / dataset parameters travel as text the
    # runtime parses: `<datastore>/<path>`, a URL, or the dataset's JSON.
    param_types = {
        "string": "STRING",
        "int": "NUMBER_INTEGER",
        "float": "NUMBER_DOUBLE",
        "bool": "BOOLEAN",
        "datapath": "STRING",
        "dataset": "STRING",
    }
    reserved_names = {
        # Every KFP pipeline mlpipe writes has these run-time inputs.
        "parameter": frozenset({REGENERATE, RUN_ID_INPUT}),
        # kfp's loader reads a file whose executors include `exec-<pipeline name>` as that single
        # component, not as the pipeline: the pipeline's own name is taken too (task_names).
        "step": frozenset({SUMMARY_TASK}),
    }
    name_limits = {"step": TASK_NAME_MAX, "pipeline": 128, "parameter": 100}
    # Parameter values travel with every run through the KFP API server and ML Metadata: long
    # text belongs in a file (a Dataset), not a parameter.
    param_value_max = 10_000
    # KFP keeps numbers as doubles (protobuf Value.number_value).
    param_int_max = 2**53

    def target_names(self, pipeline: PipelineIR) -> dict[str, dict[str, str]]:
        return {
            "parameter": {p.name: parameter_input(p.name) for p in pipeline.parameters},
            "step": task_names(pipeline),
            "pipeline": {pipeline.name: pipeline_name(pipeline)},
        }

    # ------------------------------------------------------------------------------- checks
    def check(self, pipeline: PipelineIR, profile: str) -> list[Problem]:
        problems: list[Problem] = []

        def report(origin, message: str) -> None:
            file, line = where(pipeline, origin)
            problems.append(Problem(file, line, message))

        for env in pipeline.environments:
            for req in env.pip_packages:
                if "{{" in req or any(not c.isprintable() for c in req):
                    report(
                        env.origin,
                        f"environment {env.name!r}: pip requirement {req!r} cannot be installed "
                        "on KFP (no control characters or '{{' allowed)",
                    )
        if profile == "kubernetes":
            problems.extend(kubernetes_problems(pipeline))
            problems.extend(_per_run_placement(pipeline))
        placements = [(None, pipeline.kubernetes)] + [(c, c.kubernetes) for c in pipeline.computes]
        for compute, placement in placements:
            at = compute.origin if compute else pipeline.origin
            label = f"compute {compute.name!r}" if compute else "kubernetes"
            for tol in placement.tolerations:
                bad = sorted(set(tol) - TOLERATION_KEYS)
                if bad:
                    report(
                        at,
                        f"{label}: toleration keys {', '.join(bad)} are not Kubernetes toleration "
                        f"fields ({', '.join(sorted(TOLERATION_KEYS))})",
                    )
                seconds = tol.get("tolerationSeconds")
                if seconds is not None and not str(seconds).strip().lstrip("-").isdigit():
                    report(at, f"{label}: tolerationSeconds must be an integer, got {seconds!r}")
        return problems

    def verify_code(self) -> str | None:
        return VERIFY_CODE

    # ------------------------------------------------------------------------------ render
    def render(self, pipeline: PipelineIR, ctx: CompileContext) -> list[Artifact]:
        self.report_renames(pipeline, ctx)
        stem = file_stem(pipeline.name)
        if stem.endswith(".deploy"):
            # `nightly.deploy.yaml` would read as pipeline nightly's deploy document.
            stem = stem.removesuffix(".deploy") + "_deploy"
        plans = self._plan(pipeline, ctx)
        pipeline_spec, deployment, platform_spec = self._build(
            pipeline, plans, ctx.profile, _ir_doc(pipeline, ctx)
        )
        # PipelineSpec.deployment_spec is a Struct: kfp converts the typed deployment config into
        # it. Serialising the typed message directly gives the same document without the detour.
        documents = [_to_dict(pipeline_spec)]
        documents[0]["deploymentSpec"] = _to_dict(deployment)
        if platform_spec is not None:
            documents.append(_to_dict(platform_spec))
        header = _header(pipeline, plans, documents[0])
        artifacts = [Artifact(f"{stem}.yaml", spec.dump_yaml(documents, header))]
        size = len(artifacts[0].content)
        if size > SPEC_WARN_BYTES:
            ctx.warn(
                pipeline.origin,
                f"{stem}.yaml is {size / 2**20:.1f} MiB ({len(pipeline.steps)} steps): KFP runs it "
                f"as an Argo Workflow stored in etcd, whose objects are limited to about 1.5 MiB, "
                f"and this warning starts at {SPEC_WARN_BYTES / 2**20:.0f} MiB; split the pipeline "
                "or shorten its arguments",
            )
        for sched in pipeline.schedules:  # the deploy document formats them
            self.schedule_fires(ctx, sched)
        deploy = _deploy_document(pipeline, f"{stem}.yaml")
        if deploy is not None:
            artifacts.append(Artifact(f"{stem}{DEPLOY_SUFFIX}", deploy))
        return artifacts

    # ------------------------------------------------------------------------- the plan
    def _plan(self, pipeline: PipelineIR, ctx: CompileContext) -> list[_StepPlan]:
        tasks = task_names(pipeline)
        deps = pipeline.dependencies()
        envs = {e.key: e for e in pipeline.environments}
        computes = {c.name: c for c in pipeline.computes}
        params = {p.name: p for p in pipeline.parameters}
        embedded = _embedded_snapshots(pipeline, ctx)
        # The others go to the datastore, once the whole compile succeeded.
        ctx.deferred_writes.append(lambda: _store_large_snapshots(pipeline, ctx, embedded))
        for env in pipeline.environments:
            if env.dockerfile and not env.docker_image and not pipeline.kubernetes.default_image:
                ctx.warn(
                    env.origin,
                    f"environment {env.name!r} is built from a Dockerfile, which KFP cannot build; "
                    f"its steps use {DEFAULT_IMAGE} with the environment's pip packages. Build and "
                    "push the image and use Environment.from_docker_image(...), or set "
                    "kubernetes: {default_image: ...} in mlpipe.yaml",
                )
        if ctx.profile == "kubernetes":
            _warn_unset_placement(pipeline, ctx)
        plans = []
        steps = {s.name: s for s in pipeline.steps}
        # The JSON form compile_pipelines dumped once (the hash): no second dump per step.
        docs = {d["name"]: d for d in _ir_doc(pipeline, ctx)["steps"]}
        for name in pipeline.topological_order():
            step = steps[name]
            env = envs.get(step.environment) if step.environment else None
            compute = computes.get(step.compute) if step.compute else None
            used = [p for p in step_parameter_names(docs[name]) if p in params]
            inputs = [(parameter_input(p), self.param_types[params[p].type]) for p in used]
            plans.append(
                _StepPlan(
                    step=step,
                    task=tasks[name],
                    function=python_name(name),
                    inputs=inputs,
                    parameters={parameter_input(p): p for p in used},
                    image=step_image(ctx, pipeline, step, "kfp", _image(pipeline, env)),
                    packages=None if built_by_mlpipe(pipeline, step) else _packages(env),
                    compute=compute,
                    upstream=sorted(tasks[u] for u in deps[name] if u in tasks),
                    snapshot=embedded.get(step.snapshot.hash, ""),
                    platform=_platform_config(pipeline, compute)
                    if ctx.profile == "kubernetes"
                    else {},
                    doc=docs[name],
                )
            )
        return plans

    # ---------------------------------------------------------------------------- building
    def _build(self, pipeline: PipelineIR, plans: list[_StepPlan], profile: str, doc: dict):
        pb = spec.pb2()
        ps = pb.PipelineSpec()
        ps.pipeline_info.name = pipeline_name(pipeline)
        ps.pipeline_info.display_name = pipeline.name
        if pipeline.description:
            ps.pipeline_info.description = pipeline.description
        ps.sdk_version = f"kfp-{spec.KFP_SDK_VERSION}"
        ps.schema_version = spec.SCHEMA_VERSION
        self._add_root_inputs(pb, ps, pipeline)

        deployment = pb.PipelineDeploymentConfig()
        platform: dict[str, dict] = {}
        ir_base = _ir_base(doc)
        snapshot_of: dict = {}
        experiment = _experiment(pipeline)
        for plan in plans:
            ir_slice = _ir_slice(doc, ir_base, plan, snapshot_of)
            self._add_step(pipeline, ps, deployment, plan, experiment, ir_slice)
            if plan.platform:
                platform[f"exec-{plan.task}"] = plan.platform

        self._add_summary(pipeline, ps, deployment, plans, experiment, ir_base)
        if profile == "kubernetes":  # the summary writes the run record to the datastores too
            summary = _platform_config(pipeline, None)
            if summary:
                platform[f"exec-{SUMMARY_TASK}"] = summary
        platform_spec = None
        if platform:
            platform_spec = pb.PlatformSpec()
            executors = platform_spec.platforms["kubernetes"].deployment_spec.executors
            for label in sorted(platform):
                executors[label].update(platform[label])
        return ps, deployment, platform_spec

    def _add_root_inputs(self, pb, ps, pipeline: PipelineIR) -> None:
        """The pipeline's parameters (optional, with their defaults) plus the regenerate flag."""
        root_inputs = ps.root.input_definitions.parameters
        for p in self.parameters(pipeline).declared:
            item = root_inputs[parameter_input(p.name)]
            item.parameter_type = self.param_types[p.type]
            _set_value(item.default_value, kfp_value(p.type, p.default))
            item.is_optional = True
        item = root_inputs[REGENERATE]
        item.parameter_type = pb.ParameterType.BOOLEAN
        item.default_value.bool_value = False
        item.is_optional = True

    def _add_step(self, pipeline, ps, deployment, plan: _StepPlan, experiment, ir_slice) -> None:
        """One step's task and executor: the runtime launcher around its embedded definition."""
        payload = encode(
            {
                "step": plan.step.name,
                "experiment": experiment,
                "inputs": plan.parameters,
                "ir": ir_slice,
            }
        )
        module = _module(
            STEP_MODULE,
            plan.function,
            plan.inputs,
            pipeline=ps.pipeline_info.name,
            payload=payload,
            snapshot=plan.snapshot,
        )
        if len(module) > MODULE_MAX_CHARS:
            file, line = where(pipeline, plan.step.origin)
            raise MlpipeError(
                Problem(
                    file,
                    line,
                    f"step {plan.step.name!r} is too large for a KFP executor "
                    f"({len(module)} characters of embedded definition, limit "
                    f"{MODULE_MAX_CHARS}): shorten its arguments or dataset lists",
                )
            )
        self._add_executor(
            ps,
            deployment,
            ps.root.dag,
            task=plan.task,
            display=plan.step.name,
            inputs=plan.inputs,
            image=plan.image,
            command=["sh", "-c", _prefix(plan.packages), "sh", "-ec", LAUNCH, module],
            function=plan.function,
            upstream=plan.upstream,
            retries=plan.step.retries,
        )
        if plan.compute is not None:
            container = deployment.executors[f"exec-{plan.task}"].container
            spec.set_resources(container.resources, pod_resources(plan.compute))

    def pipeline_spec(self, pipeline: PipelineIR, ctx: CompileContext):
        """The complete protobuf PipelineSpec and PlatformSpec (None without Kubernetes settings),
        as the YAML holds them: `deployment_spec` filled the way kfp fills it."""
        pipeline_spec, deployment, platform_spec = self._build(
            pipeline, self._plan(pipeline, ctx), ctx.profile, _ir_doc(pipeline, ctx)
        )
        pipeline_spec.deployment_spec.update(_to_dict(deployment))
        return pipeline_spec, platform_spec

    def _add_executor(
        self,
        ps,
        deployment,
        dag,
        *,
        task: str,
        display: str,
        inputs: list[tuple[str, str]],
        image: str,
        command: list[str],
        function: str,
        upstream: list[str],
        retries: int = 0,
        after_all: bool = False,
    ) -> None:
        pb = spec.pb2()
        component, executor = f"comp-{task}", f"exec-{task}"
        comp = ps.components[component]
        comp.executor_label = executor
        params = comp.input_definitions.parameters
        params[RUN_ID_INPUT].parameter_type = pb.ParameterType.STRING
        params[REGENERATE].parameter_type = pb.ParameterType.BOOLEAN
        for name, kind in inputs:
            params[name].parameter_type = kind

        container = deployment.executors[executor].container
        container.image = image
        container.command.extend(command)
        container.args.extend(["--executor_input", "{{$}}", "--function_to_execute", function])

        t = dag.tasks[task]
        t.task_info.name = display
        t.component_ref.name = component
        t.dependent_tasks.extend(upstream)
        # Reuse is mlpipe's decision (fingerprints of code, arguments, environment and data
        # content): KFP's cache, keyed on unchanged URIs, could hand back stale outputs.
        t.caching_options.enable_cache = False
        t.caching_options.SetInParent()
        t_inputs = t.inputs.parameters
        t_inputs[RUN_ID_INPUT].runtime_value.constant.string_value = RUN_ID_PLACEHOLDER
        t_inputs[REGENERATE].component_input_parameter = REGENERATE
        for name, _ in inputs:
            t_inputs[name].component_input_parameter = name
        if retries:
            t.retry_policy.max_retry_count = retries
        if after_all:
            t.trigger_policy.strategy = (
                pb.PipelineTaskSpec.TriggerPolicy.TriggerStrategy.ALL_UPSTREAM_TASKS_COMPLETED
            )

    def _add_summary(self, pipeline, ps, deployment, plans, experiment, ir_base) -> None:
        inputs = [(parameter_input(p.name), self.param_types[p.type]) for p in pipeline.parameters]
        payload = encode(
            {
                "experiment": experiment,
                "inputs": {parameter_input(p.name): p.name for p in pipeline.parameters},
                "order": [plan.step.name for plan in plans],
                "upstream": {
                    name: sorted(ups) for name, ups in sorted(pipeline.dependencies().items())
                },
                "ir": ir_base,
            }
        )
        module = _module(
            SUMMARY_MODULE,
            SUMMARY_FUNCTION,
            inputs,
            pipeline=ps.pipeline_info.name,
            payload=payload,
        )
        # The summary runs mlpipe's image of steps without an Environment when one is built.
        built = built_by_mlpipe(pipeline, None)
        default_image = pipeline.kubernetes.default_image or DEFAULT_IMAGE
        self._add_executor(
            ps,
            deployment,
            ps.root.dag,
            task=SUMMARY_TASK,
            display=SUMMARY_TASK,
            inputs=inputs,
            image=step_image(None, pipeline, None, "kfp", default_image),
            command=["sh", "-c", _prefix(None if built else []), "sh", "-ec", LAUNCH, module],
            function=SUMMARY_FUNCTION,
            upstream=sorted(plan.task for plan in plans),
            after_all=True,
        )


# ------------------------------------------------------------------------------------- helpers


def _to_dict(message) -> dict:
    from google.protobuf import json_format

    return json_format.MessageToDict(message)


def _prefix(packages: list[str] | None) -> str:
    """The pod's start-up script; None for an image `mlpipe images` built: it installs nothing."""
    if packages is None:
        return BUILT_PREFIX
    install = ""
    if packages:
        install = f"  {_INSTALL} " + " ".join(shlex.quote(p) for p in packages) + "\n"
    return PREFIX_HEAD + install + PREFIX_TAIL


def _image(pipeline: PipelineIR, env: Environment | None) -> str:
    """The user's own image first, then the workspace default, then the curated mapping."""
    if env is not None and env.docker_image and not env.curated:
        return env.docker_image
    if pipeline.kubernetes.default_image:
        return pipeline.kubernetes.default_image
    if env is not None and env.docker_image:
        return env.docker_image
    return DEFAULT_IMAGE


def _packages(env: Environment | None) -> list[str]:
    if env is None or env.user_managed:
        return []
    from mlpipe.runtime.envs import installable_packages

    return installable_packages({"pip_packages": env.pip_packages})


def _experiment(pipeline: PipelineIR) -> str | None:
    return pipeline.submissions[-1].experiment if pipeline.submissions else None


def _ir_doc(pipeline: PipelineIR, ctx: CompileContext) -> dict:
    """The pipeline's JSON form: compile_pipelines' dump, or a fresh one (a context built by hand)."""
    if not ctx.ir_doc:
        ctx.ir_doc = pipeline.model_dump(mode="json")
    return ctx.ir_doc


def _ir_base(ir: dict) -> dict:
    """What every slice shares: the pipeline's identity and its datastores (`ir`: its JSON form)."""
    keys = ("schema_version", "name", "source_file", "default_datastore", "workspace", "datastores")
    return {key: ir[key] for key in keys}


def _ir_slice(ir: dict, base: dict, plan: _StepPlan, cache: dict) -> dict:
    """The IR one step needs (a valid PipelineIR): itself, its parameters, environment, compute.
    `ir` is the pipeline's JSON form; the slice shares its dicts (only ever read)."""
    step = plan.step
    used = set(plan.parameters.values())  # the step's parameters (step_parameter_names)
    doc = dict(base)
    if "parameters" not in cache:
        cache["parameters"] = {p["name"]: p for p in ir["parameters"]}
    doc["parameters"] = [v for k, v in cache["parameters"].items() if k in used]
    doc["steps"] = [plan.doc]
    if step.environment:
        key = ("env", step.environment)
        if key not in cache:
            cache[key] = [e for e in ir["environments"] if e["key"] == step.environment]
        doc["environments"] = cache[key]
    if step.compute:
        key = ("compute", step.compute)
        if key not in cache:
            cache[key] = [c for c in ir["computes"] if c["name"] == step.compute]
        doc["computes"] = cache[key]
    return doc


def _store_large_snapshots(pipeline: PipelineIR, ctx: CompileContext, embedded: dict) -> None:
    """Write the snapshots that are not embedded to <default datastore>/.mlpipe/snapshots."""
    missing = sorted({s.snapshot.hash for s in pipeline.steps} - set(embedded))
    if not missing:
        return
    from mlpipe.runtime import store
    from mlpipe.runtime.state import Datastores, State

    doc = {
        "default_datastore": pipeline.default_datastore,
        "datastores": [d.model_dump(mode="json") for d in pipeline.datastores],
    }
    try:
        root = State(Datastores(doc)).snapshots()
        for digest in missing:
            target = store.join(root, f"{digest}.tar.gz")
            if not store.exists(target):
                store.write_bytes_atomic(target, ctx.snapshot_bytes[digest])
    except Exception as exc:
        raise MlpipeError(
            Problem(
                pipeline.source_file,
                None,
                f"could not store the source snapshots in the default datastore "
                f"{pipeline.default_datastore!r} ({exc}); KFP pods read them from there",
            )
        ) from None


def _embedded_snapshots(pipeline: PipelineIR, ctx: CompileContext) -> dict[str, str]:
    """Snapshot hash -> base64 for the snapshots embedded in their executors (see the limits)."""
    import base64

    uses: dict[str, int] = {}
    for s in pipeline.steps:
        uses[s.snapshot.hash] = uses.get(s.snapshot.hash, 0) + 1
    candidates = sorted(
        (len(ctx.snapshot_bytes[h]) * n, h)
        for h, n in uses.items()
        if len(ctx.snapshot_bytes[h]) <= SNAPSHOT_EMBED_MAX
    )
    out: dict[str, str] = {}
    total = 0
    for cost, digest in candidates:
        if total + cost > SNAPSHOT_EMBED_BUDGET:
            break
        total += cost
        out[digest] = base64.b64encode(ctx.snapshot_bytes[digest]).decode("ascii")
    return out


def _platform_config(pipeline: PipelineIR, compute: Compute | None) -> dict:
    """The kfp-kubernetes executor config (KubernetesExecutorConfig JSON, as kfp-kubernetes'
    own functions write it) for one step: passes/placement.py's pod fields."""
    place = pod_placement(pipeline, compute)
    spec_, container = place["spec"], place["container"]
    out: dict = {}
    if "nodeSelector" in spec_:
        out["nodeSelector"] = {"labels": spec_["nodeSelector"]}
    if "tolerations" in spec_:
        out["tolerations"] = [
            {**t, "tolerationSeconds": str(t["tolerationSeconds"])}
            if "tolerationSeconds" in t
            else t
            for t in spec_["tolerations"]
        ]
    if "imagePullSecrets" in spec_:
        out["imagePullSecret"] = [
            {"secretName": s["name"], "secretNameParameter": _constant(s["name"])}
            for s in spec_["imagePullSecrets"]
        ]
    if place["metadata"]:
        out["podMetadata"] = place["metadata"]
    if "securityContext" in container:  # int64 fields are strings in protobuf JSON
        out["securityContext"] = {
            k: v if isinstance(v, bool) else str(v) for k, v in container["securityContext"].items()
        }
    if "volumeMounts" in container:
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec_["volumes"]}
        out["pvcMount"] = [
            {
                "constant": claims[m["name"]],
                "pvcNameParameter": _constant(claims[m["name"]]),
                **{k: v for k, v in m.items() if k != "name"},
            }
            for m in container["volumeMounts"]
        ]
    out.update(_env_from_keys(container.get("env", [])))
    return out


def _constant(value: str) -> dict:
    return {"runtimeValue": {"constant": value}}


def _env_from_keys(env: list[dict]) -> dict:
    """secretAsEnv / configMapAsEnv: one entry per secret / config map, its keys in order."""
    out: dict = {}
    kinds = (
        ("secretKeyRef", "secretAsEnv", "secretName", "secretKey"),
        ("configMapKeyRef", "configMapAsEnv", "configMapName", "configMapKey"),
    )
    for ref, field_, name_field, key_field in kinds:
        groups: dict[str, list] = {}
        for item in env:
            if ref in item["valueFrom"]:
                source = item["valueFrom"][ref]
                pair = {key_field: source["key"], "envVar": item["name"]}
                groups.setdefault(source["name"], []).append(pair)
        if groups:
            out[field_] = [
                {name_field: name, f"{name_field}Parameter": _constant(name), "keyToEnv": pairs}
                for name, pairs in groups.items()
            ]
    return out


def _per_run_placement(pipeline: PipelineIR) -> list[Problem]:
    """KFP runs a whole pipeline in one namespace with one service account (create_run's
    arguments): a compute that asks for others cannot be honoured, and is no silent drop."""
    problems = []
    for compute in pipeline.computes:
        for field_ in ("namespace", "service_account"):
            own = getattr(compute.kubernetes, field_)
            if own and own != getattr(pipeline.kubernetes, field_):
                problems.append(
                    Problem(
                        *where(pipeline, compute.origin),
                        f"compute {compute.name!r}: {field_} {own!r} cannot be set per step on "
                        f"KFP (a run has one {field_}): set it in mlpipe.yaml's workspace-level "
                        "kubernetes: section, or compile for Airflow / Prefect",
                    )
                )
    return problems


def _warn_unset_placement(pipeline: PipelineIR, ctx: CompileContext) -> None:
    """What KFP's kubernetes platform spec has no field for: a warning per compute, never silent."""
    used = {s.compute for s in pipeline.steps}
    owners = [(None, pipeline.kubernetes)]
    owners += [(c, c.kubernetes) for c in pipeline.computes if c.name in used]
    for compute, own in owners:
        missing = [key for key in ("priority_class", "pod_security_context") if getattr(own, key)]
        if missing:
            label = f"compute {compute.name!r}" if compute else "kubernetes"
            ctx.warn(
                compute.origin if compute else pipeline.origin,
                f"{label}: KFP's kubernetes platform spec has no field for "
                f"{' and '.join(missing)}; its pods run without (set a namespace default, e.g. a "
                "PriorityClass with globalDefault or a Pod Security admission policy)",
            )


def _header(pipeline: PipelineIR, plans: list[_StepPlan], doc: dict) -> str:
    """kfp's comment header (name, description, inputs), then what each task runs, as docs."""
    lines = ["# PIPELINE DEFINITION", f"# Name: {doc['pipelineInfo']['name']}"]
    if pipeline.description:
        text = spec.comment_text(pipeline.description)
        lines.append("# Description: " + "\n#              ".join(text))
    inputs = doc["root"]["inputDefinitions"]["parameters"]
    lines.append("# Inputs:")
    for name in sorted(inputs):
        item = inputs[name]
        default = item.get("defaultValue")
        if isinstance(default, str):
            default = f"'{default}'"
        kind = spec.COMMENT_TYPES[item["parameterType"]]
        lines.append("".join(spec.comment_text(f"#    {name}: {kind} [Default: {default}]")))
    lines.append(
        "# Generated by mlpipe from "
        + "".join(spec.comment_text(f"{pipeline.source_file} (pipeline {pipeline.name!r})"))
        + ": recompile instead of editing."
    )
    lines.append("# Tasks (upstream tasks in brackets):")
    for plan in plans:
        where = f" on {plan.compute.name}" if plan.compute else ""
        ups = f" [{', '.join(plan.upstream)}]" if plan.upstream else ""
        text = f"#    {plan.task}: step {plan.step.name!r}{where}, image {plan.image}{ups}"
        lines.append("".join(spec.comment_text(text)))
    lines.append(f"#    {SUMMARY_TASK}: writes the run record after every step")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ schedules


def kfp_trigger(fires: Fires) -> dict:
    """create_recurring_run arguments for a resolved recurrence (passes/schedules.py): KFP's
    ScheduledWorkflow controller reads cron with robfig/cron, six fields with seconds first, and
    a leading `TZ=<zone>` evaluates it in that zone (else in the controller's zone, UTC)."""
    cron = "0 " + fires.cron
    if fires.zone != "UTC":
        cron = f"TZ={fires.zone} {cron}"
    out = {"cron_expression": cron}
    if fires.start is not None:
        out["start_time"] = fires.start.replace(tzinfo=ZoneInfo(fires.zone)).isoformat()
    return out


def _deploy_document(pipeline: PipelineIR, package: str) -> bytes | None:
    """`<pipeline>.deploy.yaml`: keyword arguments for kfp.Client's upload_pipeline (from
    pipeline.publish), create_run_from_pipeline_package (from Experiment.submit) and
    create_recurring_run (from Schedule.create). See docs/kfp.md."""
    if not (pipeline.publications or pipeline.schedules or pipeline.submissions):
        return None
    resolved = resolve_parameters(pipeline)  # overrides typed once (passes/parameters.py)
    types = {p.name: p.type for p in resolved.declared}

    def params(values: dict) -> dict:
        return {parameter_input(k): kfp_value(types[k], v) for k, v in sorted(values.items())}

    doc: dict = {"pipeline_package_path": package}
    ns = pipeline.kubernetes.namespace
    if ns:
        doc["namespace"] = ns
    account = pipeline.kubernetes.service_account
    if pipeline.publications:
        doc["upload_pipeline"] = [
            {
                k: v
                for k, v in (
                    ("pipeline_name", pub.name),
                    ("description", pub.description),
                    ("pipeline_version_name", pub.version),
                )
                if v is not None
            }
            for pub in pipeline.publications
        ]
    if pipeline.submissions:
        doc["create_run_from_pipeline_package"] = [
            _run_arguments(sub, params(values), account)
            for sub, values in zip(pipeline.submissions, resolved.submissions, strict=True)
        ]
    recurring = [
        _recurring_run(pipeline, sch, params(values), account)
        for sch, values in zip(pipeline.schedules, resolved.schedules, strict=True)
    ]
    if recurring:
        doc["create_recurring_run"] = [
            {k: v for k, v in item.items() if v is not None} for item in recurring
        ]
    header = (
        "# kfp.Client() calls that deploy the pipeline package next to this file, generated by\n"
        "# mlpipe from publish / submit / Schedule.create (see docs/kfp.md). `notes` and\n"
        "# `unsupported` explain where KFP cannot express the Azure ML original exactly.\n"
    )
    return spec.dump_yaml([doc], header)


def _run_arguments(sub, arguments: dict, account: str | None) -> dict:
    """create_run_from_pipeline_package's arguments for one Experiment.submit."""
    run = {
        "experiment_name": sub.experiment,
        "arguments": arguments,
        "enable_caching": False,
    }
    if sub.regenerate_outputs:
        run["arguments"][REGENERATE] = True
    if account:
        run["service_account"] = account
    return run


def _recurring_run(pipeline: PipelineIR, sch, arguments: dict, account: str | None) -> dict:
    """create_recurring_run's arguments for one Schedule.create (what KFP cannot do: noted)."""
    item: dict = {
        "job_name": sch.name,
        "description": sch.description,
        "experiment_name": sch.experiment_name or _experiment(pipeline) or pipeline.name,
        "params": arguments,
        "enable_caching": False,
        "max_concurrency": 1,
        "no_catchup": True,
        "enabled": sch.active,
    }
    if account:
        item["service_account"] = account
    if sch.recurrence is not None:
        fires = resolve_recurrence(sch.recurrence)
        item.update(kfp_trigger(fires))
        if fires.approximation:
            item["notes"] = [fires.approximation]
    else:
        trig = sch.datastore_trigger
        item["unsupported"] = (
            f"a datastore-change trigger (datastore {trig.datastore!r}, path "
            f"{trig.path_on_datastore!r}) has no KFP equivalent: trigger runs from your "
            "storage events instead"
            if trig
            else "no recurrence"
        )
    return item


# Run by `mlpipe verify DIR --target kfp` in an interpreter with kfp: kfp's own component loader.
VERIFY_CODE = """
import json, sys
from pathlib import Path
from kfp import components
problems = []
for path in sorted(Path(sys.argv[1]).glob("*.yaml")):
    if path.name.endswith(".deploy.yaml"):
        continue
    try:
        components.load_component_from_file(str(path))
    except Exception as exc:
        problems.append({"file": str(path), "message": "kfp cannot load it: " + repr(exc)[-1500:]})
print(json.dumps(problems))
"""
