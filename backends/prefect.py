"""The Prefect 3 backend: a flow file with one task per step, plus a `prefect.yaml` deployment.

What `mlpipe compile FILE --target prefect -o OUT [--profile local|kubernetes]` writes:

    OUT/<pipeline>_flow.py                        one @task per step, a @flow with typed parameters
    OUT/prefect.yaml                              deployments (+ schedules) for `prefect deploy --all`
    OUT/mlpipe-kubernetes-job-template.json       kubernetes profile: the work pool's base job template
    OUT/.mlpipe/...                               the IR bundle and source snapshots (shared base)

Every task runs its step through the mlpipe step runtime (`python -m mlpipe.runtime run-step`), so
data staging, reuse decisions and arguments are the runtime's, the same as on every other target.
The generated module imports only Prefect and the standard library. See docs/prefect.md.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import json
import keyword
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import yaml

from .. import images
from ..errors import MlpipeError, Problem
from ..ir import (
    Compute,
    DataPath,
    Dataset,
    KubernetesPlacement,
    PipelineIR,
    Step,
)
from ..passes.placement import (
    GPU_RESOURCE,
    kubernetes_problems,
    merged_placement,
    pod_placement,
    pod_resources,
)
from ..passes.schedules import Fires, resolve_recurrence
from .base import (
    APPROXIMATED,
    UNSUPPORTED,
    Artifact,
    Backend,
    CompileContext,
    identifier,
    unique_names,
    where,
)
from .pycode import LINE_LENGTH, py_literal, py_str, text_width

PREFECT_VERSION = images.PREFECT_VERSION

FLOW_TEMPLATE = "prefect_flow.py.j2"
YAML_TEMPLATE = "prefect_yaml.j2"
JOB_TEMPLATE = "prefect_kubernetes_job_template.json.j2"
JOB_TEMPLATE_FILE = "mlpipe-kubernetes-job-template.json"

# Work pools the deployments name (override with `prefect deploy --pool NAME`).
WORK_POOLS = {"local": "mlpipe-process", "kubernetes": "mlpipe-kubernetes"}
# Where the kubernetes profile's image holds the compiled folder (the deployments' pull step).
KUBERNETES_WORKDIR = "/opt/prefect/mlpipe"
# Used when neither mlpipe.yaml nor the environment names an image: it has Prefect, not mlpipe.
DEFAULT_IMAGE = f"prefecthq/prefect:{PREFECT_VERSION}-python3.11"
# Prefix of the task tags that carry a compute target's max_nodes as a Prefect concurrency limit.
COMPUTE_TAG = "mlpipe-compute"
# Deployment name of the step flow for steps without a compute target (kubernetes profile).
NO_COMPUTE = "no-compute"

# ------------------------------------------------------------------------- python literals


@dataclass
class Code:
    """A bracketed expression `head(items)` / `[items]` / `{items}` laid out the way ruff keeps
    it: on one line when it fits, else one item per line with a trailing comma."""

    head: str
    items: list  # str or Code (or (prefix, Code) pairs for `key=` / `"key": ` items)
    open: str = "("
    close: str = ")"
    force_explode: bool = False

    def flat(self) -> str:
        return self.head + self.open + ", ".join(_flat(i) for i in self.items) + self.close

    def render(self, indent: int, prefix: str = "", suffix: str = "") -> str:
        """Lines (joined) starting at column `indent` after `prefix`, followed by `suffix`."""
        flat = self.flat()
        line = " " * indent + prefix + flat + suffix
        if not self.force_explode and (not self.items or text_width(line) <= LINE_LENGTH):
            return line
        inner = indent + 4
        lines = [" " * indent + prefix + self.head + self.open]
        for item in self.items:
            lines.append(_render_item(item, inner) + ",")
        lines.append(" " * indent + self.close + suffix)
        return "\n".join(lines)


def _flat(item) -> str:
    if isinstance(item, Code):
        return item.flat()
    if isinstance(item, tuple):
        return item[0] + _flat(item[1])
    return item


def _render_item(item, indent: int) -> str:
    if isinstance(item, Code):
        return item.render(indent)
    if isinstance(item, tuple):
        prefix, value = item
        if isinstance(value, Code):
            return value.render(indent, prefix=prefix)
        return " " * indent + prefix + value
    return " " * indent + item


def dict_code(mapping: dict, head: str = "", force_explode: bool = False) -> Code:
    items = [(py_str(str(k)) + ": ", _value_code(v)) for k, v in mapping.items()]
    return Code(head, items, "{", "}", force_explode)


def _value_code(value):
    if isinstance(value, dict):
        return dict_code(value)
    if isinstance(value, list):
        return Code("", [_value_code(v) for v in value], "[", "]")
    return py_literal(value)


def docstring(text: str, indent: int) -> tuple[str, str]:
    """A docstring `ruff format` leaves alone, and the text `inspect.getdoc` will read from it."""
    lines = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        clean = "".join(ch if ch.isprintable() else " " for ch in raw).strip()
        clean = clean.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        lines.append(clean)
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        lines = ["(no description)"]
    if lines[0].startswith('"'):
        lines[0] = "\\" + lines[0]  # `""""x` would end the opening quotes early
    if len(lines) == 1 and lines[0].endswith('"') and not lines[0].endswith('\\"'):
        lines[0] = lines[0][:-1] + '\\"'  # `x""""` would close early
    pad = " " * indent
    if len(lines) == 1:
        code = f'{pad}"""{lines[0]}"""'
    else:
        body = "\n".join((pad + line) if line else "" for line in lines[1:])
        code = f'{pad}"""{lines[0]}\n{body}\n{pad}"""'
    # What Prefect will read: the literal as Python evaluates it, cleaned like inspect.getdoc.
    return code, inspect.cleandoc(ast.literal_eval(code.strip()))


def comment_text(text: str) -> str:
    """User text for a `#` comment: one line, printable."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


# ---------------------------------------------------------------------------------- model


@dataclass
class FlowParam:
    name: str  # the IR's name
    arg: str  # the Python argument
    annotation: str
    default: str  # Python literal

    @property
    def signature(self) -> str:
        return f"{self.arg}: {self.annotation} = {self.default}"


@dataclass
class StepModel:
    name: str
    func: str
    decorator: str
    docstring: str
    call: str  # the task body's return expression
    submit: str  # the statement in the flow body
    future: str


@dataclass
class PipelineModel:
    ir: PipelineIR
    profile: str
    module: str  # file name without .py
    flow_func: str
    flow_name: str
    params: list[FlowParam]
    steps: list[StepModel] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)
    step_flow_func: str = ""
    step_flow_name: str = ""
    step_flow_decorator: str = ""
    flow_decorator: str = ""
    flow_docstring: str = ""
    params_code: str = ""
    return_code: str = ""
    deployments: list[dict] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    experiment: str | None = None


def _placement(pipeline: PipelineIR, compute: Compute | None) -> KubernetesPlacement:
    """The compute target's Kubernetes placement over the workspace defaults (one rule:
    passes/placement.py)."""
    return merged_placement(pipeline, compute)


def step_image(pipeline: PipelineIR, step: Step) -> str:
    """A step's image in the kubernetes profile.

    Prefect's Kubernetes worker starts every job with `prefect flow-run execute`, so the image must
    hold Prefect, fsspec and the step's packages; the job pulls the compiled folder (prefect.yaml's
    pull step), which carries mlpipe's runtime. With `images: {registry}` in mlpipe.yaml that is
    the image `mlpipe images -t prefect` builds for the step's environment; an Environment's own
    image (`from_docker_image`, `docker.base_image`) is used as given; else the workspace image
    (mlpipe.yaml `kubernetes.default_image`, per compute or workspace-wide), and the runtime
    installs the environment's packages in the pod.
    """
    if images.built_by_mlpipe(pipeline, step):
        return images.image_spec(pipeline, images.environment_of(pipeline, step), "prefect").ref
    return fallback_image(pipeline, step)


def fallback_image(pipeline: PipelineIR, step: Step) -> str:
    """A step's image when mlpipe builds none for it (no registry, or the environment's own)."""
    own = _own_image(pipeline, step)
    return own or _placement(pipeline, _compute_of(pipeline, step)).default_image or DEFAULT_IMAGE


def _own_image(pipeline: PipelineIR, step: Step) -> str | None:
    """The image the step's Environment names itself (not a curated environment's stand-in)."""
    if step.environment:
        env = pipeline.environment(step.environment)
        if env.docker_image and not env.curated:
            return env.docker_image
    return None


def compute_image(pipeline: PipelineIR, compute: Compute | None) -> str:
    """The image of a deployment's jobs unless a step names its own: mlpipe's image of steps
    without an Environment (Prefect, fsspec, the runtime's packages) when a registry is set."""
    if pipeline.images is not None:
        return images.image_spec(pipeline, None, "prefect").ref
    return _placement(pipeline, compute).default_image or DEFAULT_IMAGE


def _compute_of(pipeline: PipelineIR, step: Step) -> Compute | None:
    if not step.compute:
        return None
    try:
        return pipeline.compute(step.compute)
    except KeyError:
        return None


def job_variables(pipeline: PipelineIR, compute: Compute | None) -> dict:
    """Work-pool job variables (see the base job template) for steps on `compute`: the placement
    of passes/placement.py in Kubernetes' field names, as the template puts them on the job."""
    placement = _placement(pipeline, compute)
    out: dict = {"image": compute_image(pipeline, compute)}
    if placement.namespace:
        out["namespace"] = placement.namespace
    pod = pod_resources(compute)
    if "cpu" in pod["requests"]:
        out["cpu_request"] = pod["requests"]["cpu"]
    if "memory" in pod["requests"]:
        out["memory_request"] = pod["requests"]["memory"]
    if "memory" in pod["limits"]:
        out["memory_limit"] = pod["limits"]["memory"]
    if GPU_RESOURCE in pod["limits"]:
        out["gpu_count"] = int(pod["limits"][GPU_RESOURCE])
    fields = pod_placement(pipeline, compute)
    for variable, (part, key) in JOB_VARIABLE_FIELDS.items():
        if key in fields[part]:
            out[variable] = fields[part][key]
    return out


# job variable -> where pod_placement puts it (the base job template puts it there again)
JOB_VARIABLE_FIELDS = {
    "service_account_name": ("spec", "serviceAccountName"),
    "priority_class_name": ("spec", "priorityClassName"),
    "node_selector": ("spec", "nodeSelector"),
    "tolerations": ("spec", "tolerations"),
    "image_pull_secrets": ("spec", "imagePullSecrets"),
    "pod_security_context": ("spec", "securityContext"),
    "volumes": ("spec", "volumes"),
    "security_context": ("container", "securityContext"),
    "volume_mounts": ("container", "volumeMounts"),
    # secret / config map keys: prefect-kubernetes keeps `valueFrom` items of a list `env`
    "env": ("container", "env"),
    # prefect-kubernetes puts the job's labels and annotations on its pod too
    "labels": ("metadata", "labels"),
    "annotations": ("metadata", "annotations"),
}


# ------------------------------------------------------------------------------ schedules


def schedule_entry(fires: Fires) -> dict:
    """A prefect.yaml schedule for a resolved recurrence (passes/schedules.py): its exact rule
    when a start time anchors it (Prefect's cron schedules have no start), else its cron."""
    if fires.rrule is not None:
        return {"rrule": fires.rrule, "timezone": fires.zone}
    return {"cron": fires.cron, "timezone": fires.zone}


# ------------------------------------------------------------------------------- backend


@lru_cache(maxsize=1)
def _jinja():
    import jinja2

    def loader(name):
        return resources.files("mlpipe.templates").joinpath(name).read_text(encoding="utf-8")

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(loader),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.filters["py"] = py_literal
    env.filters["comment"] = comment_text
    env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)
    env.filters["yaml"] = _yaml_block
    return env


def _yaml_block(value, indent: int = 0) -> str:
    text = yaml.safe_dump(
        value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096
    )
    pad = " " * indent
    return "\n".join((pad + line) if line else line for line in text.rstrip("\n").split("\n"))


class PrefectBackend(Backend):
    name = "prefect"
    profiles = ("local", "kubernetes")
    default_profile = "local"
    # rrule schedules say any anchored recurrence exactly; without a start time only cron is left
    features = {"exact_recurrence": APPROXIMATED, "datastore_trigger": UNSUPPORTED}
    uses_rrule = True
    ships_runtime = True
    # IR parameter type -> flow parameter annotation. Data parameters (DataPath / dataset) take a
    # `datastore/path`, a URL or a JSON object; None keeps the pipeline's default.
    param_types = {
        "int": "int",
        "float": "float",
        "bool": "bool",
        "string": "str",
        "datapath": "str | None",
        "dataset": "str | None",
    }
    reserved_names = {
        **Backend.reserved_names,
        # Names the generated module defines or imports: step functions never take them. A
        # function named `dict` or `str` would replace the builtin the module's own code calls.
        "step": frozenset(
            {
                *("BUNDLE", "COMPUTE_LIMITS", "EXPERIMENT", "HERE", "Completed", "Failed"),
                *("NO_CACHE", "ObjectNotFound", "Path", "State", "deque", "flow", "flow_run"),
                *("get_client", "get_run_logger", "json", "os", "params", "regenerate_outputs"),
                *("run_deployment", "subprocess", "sys", "task", "tempfile"),
                *dir(builtins),
            }
        ),
    }

    def target_names(self, pipeline: PipelineIR) -> dict[str, dict[str, str]]:
        return {"parameter": {p.name: _python_name(p.name) for p in pipeline.parameters}}

    # ------------------------------------------------------------------------------ check
    def check(self, pipeline: PipelineIR, profile: str) -> list[Problem]:
        problems: list[Problem] = []
        try:
            self._names(pipeline)
        except MlpipeError as exc:
            problems.extend(exc.problems)
        if profile == "kubernetes":
            problems.extend(kubernetes_problems(pipeline))
            problems.extend(_publish_problems(pipeline))
        if not problems:
            problems.extend(self._templated_text(pipeline, profile))
        return problems

    def _templated_text(self, pipeline: PipelineIR, profile: str) -> list[Problem]:
        """Text of prefect.yaml that `prefect deploy` would substitute (it fills {{ $VAR }},
        {{ prefect.variables.x }} and {{ name }} in every value of a deployment), so that the
        flow would not get it as written."""
        owners = [(s.pipeline_parameters, s.origin) for s in pipeline.schedules]
        if pipeline.submissions:
            sub = pipeline.submissions[-1]
            owners.append((sub.pipeline_parameters, sub.origin))
        problems = []
        for dep in self._model(pipeline, profile).deployments:
            for key, text in _texts(dep):
                found = prefect_placeholders(text)
                if not found or key[-1] == "description":  # a templated description is left out
                    continue
                origin = next(
                    (o for values, o in owners if text in map(_parameter_value, values.values())),
                    None,
                )
                problems.append(
                    Problem(
                        *where(pipeline, origin),
                        f"prefect.yaml: {'.'.join(map(str, key))} of deployment {dep['name']!r} "
                        f"holds {found[0]!r}, which `prefect deploy` would substitute; write the "
                        "value without '{{ }}', or pass it when the flow runs",
                    )
                )
        return problems

    def _names(self, pipeline: PipelineIR) -> tuple[dict[str, str], dict[str, str]]:
        """Python names of the parameters and of the step functions (collisions are errors)."""

        flow_func = _flow_func(pipeline)
        params = unique_names(
            [(p.name, p.origin) for p in pipeline.parameters] + [("regenerate_outputs", None)],
            _python_name,
            "pipeline parameter",
            pipeline,
        )
        # Inside the flow body a parameter would hide a task function of the same name.
        reserved = self.reserved_names["step"] | {flow_func, flow_func + "_step"}
        reserved |= set(params.values())

        def step_func(name: str) -> str:
            base = _python_name(name)
            return base + "_step" if base in reserved or base.startswith("_") else base

        steps = unique_names(
            [(s.name, s.origin) for s in pipeline.steps], step_func, "step", pipeline
        )
        return params, steps

    # ----------------------------------------------------------------------------- render
    def render(self, pipeline: PipelineIR, ctx: CompileContext) -> list[Artifact]:
        for sched in pipeline.schedules:  # prefect.yaml (render_shared) formats them
            self.schedule_fires(ctx, sched)
        model = self._model(pipeline, ctx.profile)
        if ctx.profile == "kubernetes":
            for step in pipeline.steps:  # warns about a step whose image may lack the runtime
                images.step_image(ctx, pipeline, step, "prefect", fallback_image(pipeline, step))
        flow_code = (
            _jinja()
            .get_template(FLOW_TEMPLATE)
            .render(
                m=model,
                bundle=py_str(ctx.bundle_path),
                runtime=py_str(ctx.runtime_dir),
                limits=dict_code(
                    model.limits, "COMPUTE_LIMITS = ", force_explode=bool(model.limits)
                ),
                docstring=docstring,
            )
        )
        return [Artifact(f"{model.module}.py", flow_code.encode("utf-8"))]

    def verify_code(self) -> str | None:
        return VERIFY_CODE

    def render_shared(self, pipelines: list[PipelineIR], profile: str) -> list[Artifact]:
        """One prefect.yaml with a deployment per pipeline (and the kubernetes job template)."""
        env = _jinja()
        models = [self._model(p, profile) for p in pipelines]
        project = _project(models[0].ir)
        prefect_yaml = env.get_template(YAML_TEMPLATE).render(
            project=project,
            models=models,
            profile=profile,
            prefect_version=PREFECT_VERSION,
            workdir=KUBERNETES_WORKDIR,
            pull=pull_steps(models[0].ir, project) if profile == "kubernetes" else [],
            published=profile == "kubernetes" and models[0].ir.images is not None,
            job_template=JOB_TEMPLATE_FILE,
            pool=WORK_POOLS[profile],
        )
        artifacts = [Artifact("prefect.yaml", prefect_yaml.encode("utf-8"))]
        if profile == "kubernetes":
            template = env.get_template(JOB_TEMPLATE).render(gpu_resource=GPU_RESOURCE)
            # Validate and normalise: the file is JSON for `prefect work-pool create`.
            doc = json.loads(template)
            text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
            artifacts.append(Artifact(JOB_TEMPLATE_FILE, text.encode("utf-8")))
        return artifacts

    def publish(self, pipelines, profile, out_dir, result) -> None:
        """Kubernetes profile with mlpipe's images: copy the compiled folder to where the jobs'
        pull step reads it (flows_location), content-addressed files first and the flow files
        last, so a job pulling meanwhile finds every file its flow file names."""
        if profile != "kubernetes" or pipelines[0].images is None:
            return
        from mlpipe.runtime import store

        project = _project(pipelines[0])
        dest = flows_location(pipelines[0], project)
        order = sorted(result.written, key=lambda rel: (not rel.startswith(".mlpipe/"), rel))
        try:
            for rel in order:
                target = store.join(dest, rel)
                data = (out_dir / rel).read_bytes()
                if rel.startswith(".mlpipe/") and store.exists(target):
                    continue  # content-addressed: the same name is the same bytes
                if store.read_bytes(target) != data:
                    store.write_bytes_atomic(target, data)
            for rel in result.removed:
                store.remove_tree(store.join(dest, rel))
        except Exception as exc:
            raise MlpipeError(
                Problem(
                    pipelines[0].source_file,
                    None,
                    f"could not publish the compiled folder to {dest} ({exc}); the Kubernetes jobs "
                    "pull it from there: compile where the default datastore is reachable "
                    "(docs/prefect.md#profile-kubernetes)",
                )
            ) from None

    def _model(self, pipeline: PipelineIR, profile: str) -> PipelineModel:
        param_names, step_funcs = self._names(pipeline)
        flow_func = _flow_func(pipeline)
        params = []
        for p in self.parameters(pipeline).declared:
            # A data parameter's default stays the pipeline's (None): its value is a dict.
            default = "None" if p.is_data else py_literal(p.default)
            params.append(FlowParam(p.name, param_names[p.name], self.param_types[p.type], default))
        model = PipelineModel(
            ir=pipeline,
            profile=profile,
            module=f"{flow_func}_flow",
            flow_func=flow_func,
            flow_name=pipeline.name,
            params=params,
            experiment=pipeline.submissions[-1].experiment if pipeline.submissions else None,
        )
        if profile == "kubernetes":
            model.step_flow_func = f"{flow_func}_step"
            model.step_flow_name = f"{pipeline.name}-step"
            model.step_flow_decorator = Code(
                "@flow", [("name=", py_str(model.step_flow_name))]
            ).render(0)
        description = pipeline.description or ""
        model.flow_docstring, read = docstring(description or f"mlpipe pipeline {pipeline.name}", 4)
        flow_options: list = [("name=", py_str(pipeline.name))]
        if description and read != description:
            # The docstring could not carry the text exactly: give Prefect the exact description.
            flow_options.append(("description=", py_str(description)))
        # (the decorator is completed below, once the compute limits are known)
        values = {p.name: p.arg for p in params}
        if values:
            items = [(py_str(k) + ": ", v) for k, v in values.items()]
            model.params_code = Code("", items, "{", "}", force_explode=True).render(4, "params = ")
        else:
            model.params_code = "    params = {}"

        deps = pipeline.dependencies()
        order = pipeline.topological_order()
        by_name = {s.name: s for s in pipeline.steps}
        futures = {name: f"{step_funcs[name]}_future" for name in order}
        rank = {name: i for i, name in enumerate(order)}  # upstream futures in flow order
        for name in order:
            step = by_name[name]
            model.steps.append(
                self._step_model(
                    pipeline, profile, step, step_funcs[name], futures, deps[name], rank
                )
            )
            compute = _compute_of(pipeline, step)
            if compute is not None:
                model.limits[_compute_tag(pipeline, compute)] = max(1, compute.max_nodes)
        model.limits = dict(sorted(model.limits.items()))
        if model.limits:
            flow_options.append(("on_running=", Code("", ["_ensure_concurrency_limits"], "[", "]")))
        model.flow_decorator = Code("@flow", flow_options).render(0)
        model.return_code = Code("", [s.future for s in model.steps], "[", "]").render(4, "return ")
        model.deployments = self._deployments(pipeline, profile, model)
        for sched in pipeline.schedules:
            if sched.datastore_trigger is not None:
                trig = sched.datastore_trigger
                model.comments.append(
                    f"schedule {comment_text(sched.name)!r}: the datastore trigger on "
                    f"{comment_text(trig.datastore)}/{comment_text(trig.path_on_datastore or '')} "
                    "has no Prefect deployment equivalent and is not deployed (see docs/prefect.md)"
                )
        return model

    def _step_model(
        self,
        pipeline: PipelineIR,
        profile: str,
        step: Step,
        func: str,
        futures: dict[str, str],
        upstream: set[str],
        rank: dict[str, int],
    ) -> StepModel:
        compute = _compute_of(pipeline, step)
        options: list = [("name=", py_str(step.name))]
        if compute is not None:
            options.append(("tags=", Code("", [py_str(_compute_tag(pipeline, compute))], "[", "]")))
        if step.retries:
            options.append(("retries=", str(step.retries)))
        options.append(("cache_policy=", "NO_CACHE"))
        decorator = Code("@task", options).render(0)

        what = f"`{step.script}`" if step.script else "a command"
        text = f"Step {step.name}: {what} from {step.source_directory}"
        text += f" on compute target {step.compute}." if step.compute else "."
        if step.max_run_duration_seconds:
            text += (
                f"\n\nmax_run_duration_seconds={step.max_run_duration_seconds}: the mlpipe "
                "runtime stops the script after that long (environment builds not counted)."
            )
        doc, _ = docstring(text, 4)

        if profile == "kubernetes":
            args: list = [py_str(step.name), "params", "regenerate_outputs"]
            deployment = f"{pipeline.name}-step/{_deployment_name(compute)}"
            args.append(("deployment=", py_str(deployment)))
            # Always named: a run's jobs use the images of the flow version the run started with,
            # whatever the deployment (redeployed meanwhile) says.
            args.append(("image=", py_str(step_image(pipeline, step))))
            call = Code("_run_step_job", args).render(4, prefix="return ")
        else:
            call = Code("_run_step", [py_str(step.name), "params", "regenerate_outputs"]).render(
                4, prefix="return "
            )

        future = futures[step.name]
        submit_args: list = ["params", "regenerate_outputs"]
        ups = [futures[u] for u in sorted(upstream, key=rank.__getitem__)]
        if ups:
            submit_args.append(("wait_for=", Code("", ups, "[", "]")))
        submit = Code(f"{func}.submit", submit_args).render(4, prefix=f"{future} = ")
        return StepModel(step.name, func, decorator, doc, call, submit, future)

    def _deployments(self, pipeline: PipelineIR, profile: str, model: PipelineModel) -> list[dict]:
        names = {p.name: p.arg for p in model.params}
        resolved = self.parameters(pipeline)
        parameters = {names[k]: _parameter_value(v) for k, v in resolved.submitted.items()}
        if pipeline.submissions and pipeline.submissions[-1].regenerate_outputs:
            parameters["regenerate_outputs"] = True
        version = pipeline.ir_hash()[:12]
        main: dict = {"name": pipeline.name, "version": version}
        description = pipeline.description or f"mlpipe pipeline {pipeline.name}"
        if not prefect_placeholders(description):
            # Else `prefect deploy` would fill it in (secrets from the environment included):
            # left out, the deployment takes the flow's own description, which it never templates.
            main["description"] = description
        main.update(
            {
                "entrypoint": f"{model.module}.py:{model.flow_func}",
                "tags": ["mlpipe"],
                "parameters": parameters,
            }
        )
        schedules = []
        for sched, values in zip(pipeline.schedules, resolved.schedules, strict=True):
            if sched.recurrence is None:
                continue
            entry = schedule_entry(resolve_recurrence(sched.recurrence))
            entry["slug"] = identifier(sched.name, allowed=r"A-Za-z0-9_-", lower=True)
            entry["active"] = sched.active
            sched_params = {names[k]: _parameter_value(v) for k, v in values.items()}
            if sched_params:
                entry["parameters"] = sched_params
            schedules.append(entry)
        if schedules:
            main["schedules"] = schedules
        pool: dict = {"name": WORK_POOLS[profile]}
        if profile == "kubernetes":
            # The pipeline flow only orchestrates: the workspace image, no resources of its own.
            pool["job_variables"] = job_variables(pipeline, None)
        main["work_pool"] = pool
        out = [main]
        if profile != "kubernetes":
            return out
        computes: list[Compute | None] = []
        for step in pipeline.steps:
            compute = _compute_of(pipeline, step)
            if all(_deployment_name(c) != _deployment_name(compute) for c in computes):
                computes.append(compute)
        for compute in computes:
            if compute is None:
                what = "steps without a compute target"
            else:
                what = f"steps on compute target {compute.name}"
                if compute.vm_size:
                    what += f" ({compute.vm_size})"
            out.append(
                {
                    "name": _deployment_name(compute),
                    "version": version,
                    "description": f"One Kubernetes job per step of {pipeline.name}: {what}.",
                    "entrypoint": f"{model.module}.py:{model.step_flow_func}",
                    "tags": ["mlpipe", "mlpipe-step"],
                    "work_pool": {
                        "name": WORK_POOLS[profile],
                        "job_variables": job_variables(pipeline, compute),
                    },
                }
            )
        return out


def _project(pipeline: PipelineIR) -> str:
    """prefect.yaml's project name: the folder's first pipeline."""
    return identifier(pipeline.name, allowed=r"A-Za-z0-9_-", lower=True)


def flows_location(pipeline: PipelineIR, project: str) -> str:
    """Where the kubernetes profile's jobs pull the compiled folder from when mlpipe builds the
    images: `<default datastore>/.mlpipe/flows/<project>`, which every job reaches already (it
    holds the run state), so the images hold no pipeline and their tags are known at compile."""
    from mlpipe.runtime import store
    from mlpipe.runtime.state import Datastores, State

    doc = {
        "default_datastore": pipeline.default_datastore,
        "datastores": [d.model_dump(mode="json") for d in pipeline.datastores],
    }
    return store.join(State(Datastores(doc)).root, "flows", project)


def _publish_problems(pipeline: PipelineIR) -> list[Problem]:
    """A local-path default datastore that does not exist here: publishing the folder would put
    it on this machine's disk, not on the jobs' volume (checked before anything is written)."""
    if pipeline.images is None:
        return []
    from mlpipe.runtime import store

    root = flows_location(pipeline, "x").rsplit("/.mlpipe/", 1)[0]
    if not store.is_local(root) or store.isdir(root):
        return []
    return [
        Problem(
            pipeline.source_file,
            None,
            f"the default datastore {root} does not exist on this machine: the Kubernetes jobs "
            "pull the compiled folder from it, so compile where its volume is mounted at that "
            "path (docs/prefect.md#profile-kubernetes)",
        )
    ]


def pull_steps(pipeline: PipelineIR, project: str) -> list[dict]:
    """prefect.yaml's pull steps (kubernetes profile), Prefect's own: with mlpipe's images the job
    reads the published folder in place (a local-path datastore is a volume mounted at its path)
    or copies it with fsspec from an object store into /tmp; else the folder is in the image."""
    steps = "prefect.deployments.steps"
    if pipeline.images is None:
        return [{f"{steps}.set_working_directory": {"directory": KUBERNETES_WORKDIR}}]
    from mlpipe.runtime import store

    location = flows_location(pipeline, project)
    if store.is_local(location):
        return [{f"{steps}.set_working_directory": {"directory": store.local_path(location)}}]
    return [
        {f"{steps}.set_working_directory": {"directory": "/tmp"}},
        {f"{steps}.pull_from_remote_storage": {"url": location}},
    ]


def _parameter_value(value):
    """A deployment / schedule parameter value (typed by passes/parameters.py): data paths given
    as objects become the JSON text the flow parameter takes."""
    if isinstance(value, DataPath | Dataset):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


# What `prefect deploy` reads as a placeholder ({{ name }}, {{ $VAR }}, {{ prefect.variables.x }}).
PREFECT_PLACEHOLDER = re.compile(r"\{\{\s*[\w.\-\[\]$]+\s*\}\}")


def prefect_placeholders(text: str) -> list[str]:
    return PREFECT_PLACEHOLDER.findall(text)


def _texts(value, key: tuple = ()):
    """(path, string) for every string in a deployment document."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _texts(v, (*key, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _texts(v, (*key, i))


def _flow_func(pipeline: PipelineIR) -> str:
    name = _python_name(pipeline.name)
    reserved = PrefectBackend.reserved_names["step"]
    return name + "_flow" if name in reserved or name.startswith("_") else name


def _python_name(name: str) -> str:
    text = identifier(name, lower=True)
    return text + "_" if keyword.iskeyword(text) or keyword.issoftkeyword(text) else text


def _compute_tag(pipeline: PipelineIR, compute: Compute) -> str:
    workspace = re.sub(r"[^A-Za-z0-9_.-]+", "-", pipeline.workspace or "local")
    return f"{COMPUTE_TAG}:{workspace}:{compute.name}"


def _deployment_name(compute: Compute | None) -> str:
    return compute.name if compute is not None else NO_COMPUTE


# Run by `mlpipe verify DIR --target prefect` in the Prefect interpreter: Prefect's own
# prefect.yaml loader, and every deployment's flow loaded from its entrypoint.
VERIFY_CODE = """
import io, json, os, sys
from pathlib import Path
out = sys.argv[1]
os.chdir(out)
problems = []
from rich.console import Console
from prefect.cli.deploy._config import _load_deploy_configs_and_actions
from prefect.flows import load_flow_from_entrypoint
buf = io.StringIO()
try:
    configs, _ = _load_deploy_configs_and_actions(Path("prefect.yaml"), console=Console(file=buf))
except Exception as exc:
    configs = []
    problems.append({"file": "prefect.yaml", "message": "Prefect cannot load it: " + str(exc)})
if buf.getvalue().strip():
    problems.append({"file": "prefect.yaml", "message": buf.getvalue().strip()[-1500:]})
for cfg in configs:
    try:
        load_flow_from_entrypoint(cfg["entrypoint"])
    except Exception as exc:
        problems.append({"file": cfg["entrypoint"].split(":")[0],
                         "message": "Prefect cannot load the flow: " + repr(exc)[-1500:]})
print(json.dumps(problems))
"""
