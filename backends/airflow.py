"""The Airflow backend: one DAG file per pipeline, one task per step.

What it writes next to the bundle base.py writes (`.mlpipe/<pipeline>.json` + snapshots):

    <dag_id>.py            the DAG (templates/airflow_dag.py.j2): Airflow 3.x imports with 2.10
                           fallbacks, no mlpipe import at parse time
    <dag_id>.pools.json    one pool per compute target with max_nodes slots, for
                           `airflow pools import` (only when a step names a compute)

Every task runs its step through the step runtime, so staging, reuse and the run context are the
same as under `mlpipe run`:

- profile `local`: `MlpipeStep`, a small operator defined in the DAG file, runs
  `python -m mlpipe.runtime run-step ...` as a child process (argument list, no shell) and copies
  its stdout / stderr into the task log;
- profile `kubernetes`: `MlpipeStepPod`, a KubernetesPodOperator subclass, runs the same command in
  a pod with the compute's resources and placement.

Neither operator has template fields: step names and arguments never pass through Jinja. User text
that does appear in the DAG (names, defaults, the description) is written as escaped Python literals.
This module is a set of mapping tables and small helpers; the file layout is the template's.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import unicodedata
from dataclasses import dataclass, field
from importlib import resources

import jinja2

from ..errors import MlpipeError, Problem
from ..images import step_image
from ..ir import (
    PipelineIR,
    Schedule,
    Step,
)
from ..passes.placement import (
    compute_of,
    kubernetes_problems,
    merged_placement,
    pod_placement,
    pod_resources,
)
from ..passes.schedules import Fires, resolve_recurrence
from .base import (
    APPROXIMATED,
    BUNDLE_DIR,
    SUPPORTED,
    Artifact,
    Backend,
    CompileContext,
    file_stem,
    identifier,
    unique_names,
    where,
)
from .pycode import LINE_LENGTH, py_literal, py_str, text_width

TEMPLATE = "airflow_dag.py.j2"
DATASTORE_TRIGGER_TASK = "datastore_changed"
# The image a pod runs when neither the step's environment nor mlpipe.yaml names one.
FALLBACK_IMAGE = "python:3.11-slim"
# Airflow accepts ids of up to 250 characters (ID_LEN); the task_id is also the task's variable in
# the DAG file, kept short enough for readable lines. Names longer than these are shortened with a
# hash of the original (and warned about).
TASK_ID_MAX = 64
DAG_ID_MAX = 200
# What the DAG processor spends per task parsing and serialising a generated DAG (measured with
# benchmarks/run.py parse: about 2 ms), against its default dagbag_import_timeout of 30 s: warn
# when a DAG file needs a third of that on every scan.
PARSE_SECONDS_PER_TASK = 0.002
IMPORT_TIMEOUT_SECONDS = 30


# ------------------------------------------------------------------------- Python literals


def py_compact(value, indent: int, prefix: int = 0) -> str:
    """Like py_literal, but a flat dict or list that fits on its line stays on one line (ruff
    keeps it so: no magic trailing comma, within the line length)."""
    if (
        isinstance(value, dict)
        and value
        and all(not isinstance(v, dict | list) for v in value.values())
    ):
        inline = (
            "{" + ", ".join(f"{py_str(str(k))}: {py_literal(v)}" for k, v in value.items()) + "}"
        )
    elif isinstance(value, list) and value and all(not isinstance(v, dict | list) for v in value):
        inline = "[" + ", ".join(py_literal(v) for v in value) + "]"
    else:
        return py_literal(value, indent)
    if indent + prefix + text_width(inline) + 1 <= LINE_LENGTH:
        return inline
    return py_literal(value, indent)


def comment_safe(text: str) -> str:
    """A name for a `#` comment: its literal form (never a raw line break)."""
    return py_str(text)


# ------------------------------------------------------------------------------------ names


def dag_id(pipeline: PipelineIR) -> str:
    limit = AirflowBackend.name_limits["pipeline"]
    return identifier(pipeline.name, max_len=limit, allowed=r"A-Za-z0-9_.\-")


def task_id(step_name: str) -> str:
    """Lower-case Python identifier: it is both the task_id and the task's variable in the DAG."""
    # Accented letters keep their base letter ("é" -> "e"); other characters become "_".
    plain = "".join(
        ch for ch in unicodedata.normalize("NFKD", step_name) if not unicodedata.combining(ch)
    )
    if not any(ch.isascii() and ch.isalnum() for ch in plain):  # e.g. "日本": keep it unique
        plain = "step_" + hashlib.sha256(step_name.encode("utf-8")).hexdigest()[:8]
    text = identifier(plain, max_len=AirflowBackend.name_limits["step"], lower=True)
    if keyword.iskeyword(text) or keyword.issoftkeyword(text):
        text = f"{text}_step"
    elif text in AirflowBackend.reserved_names["step"]:
        text = f"{text}_step"
    return text


def task_ids(pipeline: PipelineIR) -> dict[str, str]:
    """{step name: task_id}; two steps that sanitise alike are an error naming both."""
    return unique_names([(s.name, s.origin) for s in pipeline.steps], task_id, "step", pipeline)


def pool_name(compute: str) -> str:
    return "mlpipe_" + identifier(compute, max_len=200, allowed=r"A-Za-z0-9_.\-")


# -------------------------------------------------------------------------------- schedules


@dataclass
class ScheduleCode:
    schedule: str = "None"
    start_date: str | None = None
    notes: list[str] = field(default_factory=list)
    uses_pendulum: bool = False
    uses_cron: bool = False
    watch: dict | None = None  # datastore trigger: {"datastore", "path"}
    paused: bool = False  # the schedule was disabled in the pipeline file


def dag_schedule(pipeline: PipelineIR) -> Schedule | None:
    """The schedule the DAG follows: the active one (a notebook often disables old schedules and
    creates a new one), else the last one, which then leaves the DAG paused."""
    active = [s for s in pipeline.schedules if s.active]
    if active:
        return active[0]
    return pipeline.schedules[-1] if pipeline.schedules else None


def schedule_code(pipeline: PipelineIR, fires: Fires | None = None) -> ScheduleCode:
    """The DAG's schedule arguments: the resolved recurrence's cron in its zone from its start
    (passes/schedules.py), or a polling cron plus a watch task for a datastore trigger."""
    sched = dag_schedule(pipeline)
    if sched is None:
        return ScheduleCode()
    out = ScheduleCode(paused=not sched.active)
    if sched.recurrence is not None:
        fires = fires or resolve_recurrence(sched.recurrence)
        tz = py_str(fires.zone)
        out.schedule = f"CronTriggerTimetable({py_str(fires.cron)}, timezone={tz})"
        out.uses_cron = True
        out.notes = [fires.approximation] if fires.approximation else []
        start = fires.start
        if start is not None:
            out.uses_pendulum = True
            parts = [start.year, start.month, start.day, start.hour, start.minute, start.second]
            out.start_date = f"pendulum.datetime({', '.join(str(a) for a in parts)}, tz={tz})"
        return out
    trig = sched.datastore_trigger
    every = max(1, trig.polling_interval_minutes)
    if every < 60:
        cron = "* * * * *" if every == 1 else f"*/{every} * * * *"
        if 60 % every:
            out.notes.append(f"polling every {every} minutes restarts at each full hour in cron")
    elif every % 60 == 0 and every < 24 * 60:
        cron = f"0 */{every // 60} * * *"
    else:
        cron = "0 * * * *"
        out.notes.append(f"polling every {every} minutes is approximated by polling every hour")
    out.schedule = f"CronTriggerTimetable({py_str(cron)}, timezone={py_str('UTC')})"
    out.uses_cron = True
    out.watch = {"datastore": trig.datastore, "path": trig.path_on_datastore or ""}
    return out


# ------------------------------------------------------------------------------- kubernetes


def image_of(pipeline: PipelineIR, step: Step) -> str:
    """The step's image: the user's own docker image > mlpipe.yaml `kubernetes.default_image`
    (per compute, then workspace-wide) > the image mlpipe maps a curated environment to > python."""
    env = None
    if step.environment:
        try:
            env = pipeline.environment(step.environment)
        except KeyError:
            env = None
    if env is not None and env.docker_image and not env.curated:
        return env.docker_image
    if step.compute:
        try:
            placement = pipeline.compute(step.compute).kubernetes
            if placement.default_image:
                return placement.default_image
        except KeyError:
            pass
    if pipeline.kubernetes.default_image:
        return pipeline.kubernetes.default_image
    if env is not None and env.docker_image:
        return env.docker_image
    return FALLBACK_IMAGE


def pod_templates(pipeline: PipelineIR) -> dict[str, dict]:
    """The pod template of each compute ("" = steps without one): the placement of
    passes/placement.py in Kubernetes' field names, which KubernetesPodOperator merges into the pod
    it builds (its container `base` gets the resources, security context, mounts and secret
    variables)."""
    out = {}
    for compute in [None, *pipeline.computes]:
        place = pod_placement(pipeline, compute)
        spec = dict(place["spec"])
        container = {"name": "base", **place["container"]}
        resources = {k: v for k, v in pod_resources(compute).items() if v}
        if resources:
            container["resources"] = resources
        spec["containers"] = [container]
        template = {"apiVersion": "v1", "kind": "Pod"}
        if place["metadata"]:
            template["metadata"] = place["metadata"]
        template["spec"] = spec
        out[compute.name if compute else ""] = template
    return out


def edge_code(up: str, downs: list[str]) -> str:
    """`up >> down`, `up >> [a, b]` when that fits on the line, else one downstream per line."""
    one = f"    {up} >> {downs[0]}" if len(downs) == 1 else f"    {up} >> [{', '.join(downs)}]"
    if len(one) <= LINE_LENGTH:
        return one
    return f"    {up} >> [\n" + "".join(f"        {d},\n" for d in downs) + "    ]"


# ---------------------------------------------------------------------------------- imports


def _isort_key(name: str) -> tuple[int, str]:
    """isort's member order (ruff's default): CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def imports_block(kube: bool, sched: ScheduleCode, watch: bool, timeout: bool) -> str:
    """The file's imports, sorted and grouped as `ruff check --select I` wants them."""
    # Steps start through mlpipe.runtime (imported when the task runs): only the datastore
    # trigger reads JSON here.
    stdlib = ["os", "sys"] + (["json"] if watch else [])
    stdlib_from = []
    if timeout:
        stdlib_from.append("from datetime import timedelta")
    third = []
    if sched.uses_pendulum:
        third.append("import pendulum")
    if kube:
        third.append(
            "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator"
        )

    sdk = ["DAG", "Param"] + ([] if kube else ["BaseOperator"])
    if sched.uses_cron:
        sdk.append("CronTriggerTimetable")
    errors = ["AirflowSkipException"] + (
        [] if kube else ["AirflowException", "AirflowFailException"]
    )
    errors = ", ".join(sorted(errors, key=_isort_key))
    v3 = []
    if watch:
        v3.append("from airflow.providers.standard.operators.python import ShortCircuitOperator")
    v3.append(f"from airflow.sdk import {', '.join(sorted(sdk, key=_isort_key))}")
    v3.append(f"from airflow.sdk.exceptions import {errors}")
    v2 = [f"from airflow.exceptions import {errors}"]
    if not kube:
        v2.append("from airflow.models.baseoperator import BaseOperator")
    v2 += ["from airflow.models.dag import DAG", "from airflow.models.param import Param"]
    if watch:
        v2.append("from airflow.operators.python import ShortCircuitOperator")
    if sched.uses_cron:
        v2.append("from airflow.timetables.trigger import CronTriggerTimetable")

    lines = ["from __future__ import annotations", ""]
    lines += [f"import {m}" for m in sorted(stdlib)] + sorted(stdlib_from)
    if third:
        lines += [""] + third
    lines += ["", "try:  # Airflow 3"] + [f"    {x}" for x in v3]
    lines += ["except ImportError:  # Airflow 2.10"] + [f"    {x}" for x in v2]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- backend


def _template() -> jinja2.Template:
    text = resources.files("mlpipe.templates").joinpath(TEMPLATE).read_text(encoding="utf-8")
    env = jinja2.Environment(
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    return env.from_string(text)


# In `.mlpipe/` of a dags folder: the shipped runtime's modules are not DAG files. One literal word
# means the same in both ignore syntaxes (glob: a name at any level; regexp: a path containing it).
AIRFLOWIGNORE = (
    "# Written by mlpipe: the step runtime shipped with the DAGs (runtime/<hash>/) is no DAG.\n"
    "runtime\n"
)


class AirflowBackend(Backend):
    name = "airflow"
    profiles = ("local", "kubernetes")
    default_profile = "local"
    # CronTriggerTimetable: cron in a zone from a start date; a datastore trigger polls on a cron
    features = {"exact_recurrence": APPROXIMATED, "datastore_trigger": SUPPORTED}
    ships_runtime = True
    # IR parameter type -> the JSON-schema type Airflow validates run-time values (`--conf`)
    # against. A DataPath / dataset default is a dict; a run may also give "<datastore>/<path>"
    # or a URL.
    param_types = {
        "string": "string",
        "int": "integer",
        "float": "number",
        "bool": "boolean",
        "datapath": ["object", "string"],
        "dataset": ["object", "string"],
    }
    reserved_names = {
        **Backend.reserved_names,
        # Lower-case names the DAG file itself uses at module level: a task variable (the
        # task_id) must not shadow them; Python keywords are avoided the same way.
        "step": frozenset(
            {
                *("dag", "json", "os", "pendulum", "signal", "subprocess", "sys", "tempfile"),
                *("threading", "timedelta", "k8s", "collections", "deque", "print", "open"),
                *("dict", "list", "str", "int", "bool", "type", "id", "runtime_args"),
                *("stage_version", "mlpipe_run_id", "use_shipped_runtime"),
                DATASTORE_TRIGGER_TASK,
                f"{DATASTORE_TRIGGER_TASK}_check",
            }
        ),
    }
    name_limits = {"step": TASK_ID_MAX, "pipeline": DAG_ID_MAX}

    def target_names(self, pipeline: PipelineIR) -> dict[str, dict[str, str]]:
        # Params keep the user's names (keys of the run's conf).
        return {
            "step": {s.name: task_id(s.name) for s in pipeline.steps},
            "pipeline": {pipeline.name: dag_id(pipeline)},
        }

    def render_shared(self, pipelines: list[PipelineIR], profile: str) -> list[Artifact]:
        return [Artifact(f"{BUNDLE_DIR}/.airflowignore", AIRFLOWIGNORE.encode())]

    # ------------------------------------------------------------------------------ checks
    def check(self, pipeline: PipelineIR, profile: str) -> list[Problem]:
        problems: list[Problem] = []
        try:
            task_ids(pipeline)
        except MlpipeError as exc:
            problems.extend(exc.problems)
        active = [s for s in pipeline.schedules if s.active]
        dag_ids = [dag_id(pipeline)] + [
            dag_id(pipeline.model_copy(update={"name": f"{pipeline.name}__{s.name}"}))
            for s in active[1:]
        ]
        if len(set(dag_ids)) != len(dag_ids):
            problems.append(
                Problem(
                    *where(pipeline, active[-1].origin),
                    f"schedules of pipeline {pipeline.name!r} need distinct names: "
                    "each extra schedule becomes its own DAG named after it",
                )
            )
        if profile == "kubernetes":
            problems.extend(kubernetes_problems(pipeline))
        return problems

    # ------------------------------------------------------------------------------ render
    def render(self, pipeline: PipelineIR, ctx: CompileContext) -> list[Artifact]:
        """One DAG per pipeline; a pipeline with several active schedules (v1 allows any number)
        gets one more DAG per further schedule, `<dag_id>__<schedule>`, running the same steps."""
        self.report_renames(pipeline, ctx)
        variants = [pipeline]
        for extra in [s for s in pipeline.schedules if s.active][1:]:
            variants.append(
                pipeline.model_copy(
                    update={"name": f"{pipeline.name}__{extra.name}", "schedules": [extra]}
                )
            )
        return [art for variant in variants for art in self._render_dag(variant, ctx)]

    def _render_dag(self, pipeline: PipelineIR, ctx: CompileContext) -> list[Artifact]:
        _warn_parse_time(pipeline, ctx)
        ids = task_ids(pipeline)
        did = dag_id(pipeline)
        schedule = dag_schedule(pipeline)
        fires = self.schedule_fires(ctx, schedule) if schedule is not None else None
        sched = schedule_code(pipeline, fires)
        kube = ctx.profile == "kubernetes"
        tasks, pools = _tasks(pipeline, ids, kube, ctx)
        edges, roots = _edges(pipeline, ids)
        description = pipeline.description or ""
        watch = None
        if sched.watch is not None:
            watch = {
                "datastore": py_str(sched.watch["datastore"]),
                "path": py_str(sched.watch["path"]),
                "task_id": py_str(DATASTORE_TRIGGER_TASK),
                "roots": roots,
            }
        uses_timedelta = any(t["timeout"] for t in tasks)
        source = _template().render(
            imports=imports_block(kube, sched, watch is not None, uses_timedelta),
            profile=ctx.profile,
            kube=kube,
            pipeline_name=py_str(pipeline.name),
            pipeline_name_comment=comment_safe(pipeline.name),
            source_file=comment_safe(pipeline.source_file),
            dag_id=py_str(did),
            display_name=py_str(pipeline.name) if pipeline.name != did else None,
            description=py_str(_first_line(description) or f"mlpipe pipeline {pipeline.name}"),
            doc_md=py_str(_doc_md(pipeline, ctx)),
            bundle_parts=[py_str(x) for x in ctx.bundle_path.split("/")],
            runtime_parts=[py_str(x) for x in ctx.runtime_dir.split("/")],
            ir_hash=py_str(ctx.ir_hash),
            experiment=_experiment_literal(pipeline, schedule),
            params=self._params(pipeline, schedule),
            param_names=[py_str(p.name) for p in pipeline.parameters],
            tasks=tasks,
            edges=edges,
            mapping=[(py_str(s.name), ids[s.name]) for s in pipeline.steps],
            schedule=sched,
            watch=watch,
            pod_templates=_pod_template_code(pipeline) if kube else [],
            regenerate_default=repr(
                bool(pipeline.submissions and pipeline.submissions[-1].regenerate_outputs)
            ),
        )
        stem = file_stem(did)
        artifacts = [Artifact(f"{stem}.py", source.encode("utf-8"))]
        if pools:
            body = json.dumps(dict(sorted(pools.items())), indent=2, sort_keys=True) + "\n"
            artifacts.append(Artifact(f"{stem}.pools.json", body.encode("utf-8")))
        return artifacts

    def _params(self, pipeline: PipelineIR, schedule: Schedule | None) -> list[dict]:
        """The DAG's Params: passes/parameters.py's defaults for this DAG's schedule, typed."""
        resolved = self.parameters(pipeline)
        index = None if schedule is None else pipeline.schedules.index(schedule)
        defaults = resolved.run_defaults(index)
        return [
            {
                "key": py_str(p.name),
                "default": py_compact(defaults[p.name], 12),
                "type": py_compact(self.param_types[p.type], 12, 5),
                "description": py_str(f"Pipeline parameter ({p.type})."),
            }
            for p in resolved.declared
        ]

    # ------------------------------------------------------------------------------ verify
    def verify_code(self) -> str | None:
        return VERIFY_CODE


def _warn_parse_time(pipeline: PipelineIR, ctx: CompileContext) -> None:
    parse = len(pipeline.steps) * PARSE_SECONDS_PER_TASK
    if parse > IMPORT_TIMEOUT_SECONDS / 3:
        ctx.warn(
            pipeline.origin,
            f"DAG {dag_id(pipeline)!r} has {len(pipeline.steps)} tasks: Airflow needs about "
            f"{parse:.0f} s to parse and serialise it on every scan of the dags folder, "
            f"against a default dagbag_import_timeout of {IMPORT_TIMEOUT_SECONDS} s; split "
            "the pipeline or raise [core] dagbag_import_timeout",
        )


def _tasks(pipeline: PipelineIR, ids: dict[str, str], kube: bool, ctx) -> tuple[list, dict]:
    """The template's task entries in topological order, and the pools of the compute targets."""
    pools: dict[str, dict] = {}
    tasks = []
    by_name = {s.name: s for s in pipeline.steps}
    for name in pipeline.topological_order():
        step = by_name[name]
        tid = ids[name]
        t = {
            "var": tid,
            "task_id": py_str(tid),
            "step": py_str(name),
            "display_name": py_str(name) if name != tid else None,
            "pool": None,
            "retries": step.retries if step.retries > 0 else None,
            "timeout": step.max_run_duration_seconds,
        }
        if step.compute:
            pool = pool_name(step.compute)
            t["pool"] = py_str(pool)
            try:
                slots = max(1, pipeline.compute(step.compute).max_nodes)
            except KeyError:
                slots = 1
            pools[pool] = {
                "description": f"mlpipe compute target {step.compute!r}: at most "
                f"{slots} step(s) at once (AmlCompute max_nodes)",
                "include_deferred": False,
                "slots": slots,
            }
        if kube:
            t.update(_pod_task(pipeline, step, ctx))
        tasks.append(t)
    return tasks, pools


def _pod_task(pipeline: PipelineIR, step: Step, ctx) -> dict:
    """A KubernetesPodOperator task's own arguments (the placement is its compute's template)."""
    compute = compute_of(pipeline, step)
    namespace = merged_placement(pipeline, compute).namespace
    env_vars = {}
    if step.environment:
        try:
            env_vars.update(pipeline.environment(step.environment).env_vars)
        except KeyError:
            pass
    env_vars.update(step.env_vars)
    env_vars["PYTHONUNBUFFERED"] = "1"
    env_vars["MLPIPE_RUNNER"] = "airflow"  # step records say which runner ran them
    return {
        "snapshot": py_str(step.snapshot.hash),
        "image": py_str(step_image(ctx, pipeline, step, "airflow", image_of(pipeline, step))),
        "namespace": py_str(namespace) if namespace else None,
        "pod_template": py_str(compute.name if compute else ""),
        "env_vars": py_compact(dict(sorted(env_vars.items())), 8, 9),
    }


def _pod_template_code(pipeline: PipelineIR) -> list[tuple[str, str]]:
    """(key literal, template literal) of the computes the steps use."""
    used = {s.compute or "" for s in pipeline.steps}
    used = {c if c in {x.name for x in pipeline.computes} else "" for c in used}
    templates = pod_templates(pipeline)
    return [(py_str(k), py_literal(templates[k], 4)) for k in sorted(used)]


def _edges(pipeline: PipelineIR, ids: dict[str, str]) -> tuple[list[str], list[str]]:
    """`up >> downs` lines in topological order, and the root tasks."""
    deps = pipeline.dependencies()
    order = pipeline.topological_order()
    downstream: dict[str, list[str]] = {name: [] for name in order}
    for d in order:  # each step's downstream steps, in topological order
        for up in deps[d]:
            if up in downstream:
                downstream[up].append(d)
    edges, roots = [], []
    for name in order:
        downs = downstream[name]
        if not deps[name]:
            roots.append(ids[name])
        if downs:
            edges.append(edge_code(ids[name], [ids[d] for d in downs]))
    return edges, roots


def _experiment_literal(pipeline: PipelineIR, schedule: Schedule | None) -> str:
    experiment = None
    if pipeline.submissions:
        experiment = pipeline.submissions[-1].experiment
    elif schedule is not None and schedule.experiment_name:
        experiment = schedule.experiment_name
    return py_str(experiment) if experiment is not None else "None"


def _doc_md(pipeline: PipelineIR, ctx: CompileContext) -> str:
    doc = f"# {pipeline.name}\n\n"
    if pipeline.description:
        doc += pipeline.description.rstrip() + "\n\n"
    return doc + (
        f"Compiled by mlpipe from `{pipeline.source_file}`. Each task runs one pipeline step "
        "through the mlpipe step runtime; a step whose earlier result is reused shows as "
        "*skipped* (its log says which run it was reused from).\n\n"
        # Changes with any step's code (the IR holds the snapshot hashes): a new DAG version.
        f"Pipeline version `{ctx.ir_hash[:16]}`."
    )


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


# Run by `mlpipe verify DIR --target airflow` in the Airflow interpreter: Airflow's own DagBag.
VERIFY_CODE = """
import inspect, json, os, sys
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
out = sys.argv[1]
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2.10
    from airflow.models.dagbag import DagBag
kwargs = {"dag_folder": out, "safe_mode": True}
if "include_examples" in inspect.signature(DagBag.__init__).parameters:
    kwargs["include_examples"] = False
bag = DagBag(**kwargs)
problems = [{"file": f, "message": "Airflow cannot import this DAG: " + str(e).strip()[-1500:]}
            for f, e in sorted(bag.import_errors.items())]
if not bag.dags and not problems:
    problems.append({"file": out, "message": "Airflow found no DAG here"})
print(json.dumps(problems))
"""
