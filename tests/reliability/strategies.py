"""Hypothesis strategies and the case harness behind the property tests and benchmarks/fuzz.py.

A *case* is a small v1 pipeline drawn from the strategies below: a few `PythonScriptStep`s of one
echo script, each with drawn arguments (hostile text, extreme numbers, booleans, references to
drawn `PipelineParameter`s), a drawn description and experiment name. The harness

1. writes it as an unmodified v1 pipeline file (every value as a Python literal via `repr`),
2. captures it in-process with `mlpipe.capture.capture` and checks the IR: the drawn values are
   in it exactly, and it survives a JSON round trip,
3. computes, with the runtime's own argument path (`mlpipe.runtime.step`), the argv each step's
   script would receive, and compares it with the drawn values,
4. compiles it for a target in-process (`mlpipe.backends.base.compile_pipelines`) and asks a
   *loader* — a long-lived process in the target's venv running the orchestrator's own loader —
   to load the artifacts and report what they would hand the runtime (Airflow: the argv the DAG's
   task really builds; Prefect: the flow's parameters and bundle; KFP: the component inputs and the
   executors' embedded steps). From that the runtime's argument path gives the argv again.

What argv can carry: a NUL byte can never be in an argument (exec refuses it) and lone surrogates
(U+D800..U+DFFF) cannot be encoded as UTF-8, the encoding of the IR, the DAG file, the YAML. The
strategies leave both out of argument and parameter text; `test_properties.py` checks that they are
refused cleanly instead. Newlines are left out of string parameter defaults only (v1 refuses them).

Profiles (never loaded globally; tests take them through `profile()`): `mlpipe-ci` (the default:
`derandomize=True`, no example database, bounded examples) and `mlpipe-dev` (random, for local
exploration: `MLPIPE_HYPOTHESIS_PROFILE=mlpipe-dev`).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".venvs"
TARGETS = ("airflow", "prefect", "kfp")

# ------------------------------------------------------------------------------------ profiles

settings.register_profile(
    "mlpipe-ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=40,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
settings.register_profile(
    "mlpipe-dev",
    parent=settings.get_profile("mlpipe-ci"),
    derandomize=False,
    max_examples=200,
)
PROFILE = os.environ.get("MLPIPE_HYPOTHESIS_PROFILE", "mlpipe-ci")


def profile(slow: bool = False, **overrides) -> settings:
    """Settings of the selected profile (default `mlpipe-ci`), with per-test overrides.

    `slow`: each example costs real time (a compile and a loader round trip), so under
    `mlpipe-ci` a failure is reported as found, without shrinking (Hypothesis may spend up to
    five minutes shrinking); the failing case is in the message, and `mlpipe-dev` shrinks."""
    if slow and PROFILE == "mlpipe-ci":
        overrides.setdefault("phases", (Phase.explicit, Phase.reuse, Phase.generate))
    return settings(settings.get_profile(PROFILE), **overrides)


# ---------------------------------------------------------------------------------- strategies

# Pieces that a shell, a template engine (Jinja, Airflow, Prefect's prefect.yaml, KFP
# placeholders), YAML, Python source or a careless quoting layer would read as something else.
HOSTILE = (
    "'",
    '"',
    '"""',
    "'''",
    "\\",
    "\\n",
    "\\x00",
    "`",
    "`id`",
    "$",
    "$HOME",
    "${HOME}",
    "$(id)",
    "; echo pwned",
    "&& touch /tmp/mlpipe_prop_pwned",
    "|",
    ">",
    "<",
    "{{ ds }}",
    "{{ $HOME }}",
    "{{ prefect.variables.x }}",
    "{{ params.x }}",
    "{{",
    "}}",
    "{%",
    "%}",
    "{% raw %}",
    "{#",
    "#}",
    "{{$}}",
    "{{$.inputs.parameters['x']}}",
    "{{$.pipeline_job_uuid}}",
    "%s",
    "%(x)s",
    "{0}",
    "{}",
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\x0b",
    "\x0c",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\u200b",
    "\u202e",
    "\U0001f600",
    "é",
    "e\u0301",
    "日本",
    "--",
    "-c",
    "--flag=x",
    "-",
    " ",
    "#",
    "# comment",
    "*",
    "?",
    "~",
    "[a]",
    "!",
    "../",
    "/etc/passwd",
    ": ",
    "- ",
    "&anchor",
    "*alias",
    "!!python/object",
    "---",
    "...",
    "%YAML",
    "|-",
    ">-",
    "null",
    "None",
    "True",
    "yes",
    "off",
    ".inf",
    "NaN",
    "-0",
    "0x10",
    "1e3",
)

# Any character argv / UTF-8 can carry: no NUL, no lone surrogate.
_ARGV_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
# Text that never reaches argv (descriptions) may hold NUL too.
_ANY_CHARS = st.characters(exclude_categories=("Cs",))


def _hostile_text(chars, max_pieces: int = 5) -> st.SearchStrategy[str]:
    piece = st.one_of(st.sampled_from(HOSTILE), st.text(chars, max_size=12))
    return st.lists(piece, max_size=max_pieces).map("".join)


def argument_text() -> st.SearchStrategy[str]:
    """A string argument: any text argv can carry, hostile pieces mixed in."""
    return _hostile_text(_ARGV_CHARS)


def default_text() -> st.SearchStrategy[str]:
    """A string PipelineParameter default: like arguments, minus the newlines v1 refuses."""
    return argument_text().map(lambda s: s.replace("\n", "").replace("\r", ""))


MAX_SAFE_INT = 2**53 - 1  # what a JSON number / protobuf double holds exactly

EXTREME_INTS = (0, -1, 2**31, -(2**31) - 1, 2**53, 2**53 + 1, -(2**63), 2**64, 10**30, -(10**40))
EXTREME_FLOATS = (
    0.0,
    -0.0,
    0.1,
    2.0,
    -1e-7,
    1e16,
    1e22,
    123456789.125,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
)


def ints() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(-(10**40), 10**40), st.sampled_from(EXTREME_INTS))


def floats() -> st.SearchStrategy[float]:
    return st.one_of(
        st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(EXTREME_FLOATS)
    )


def scalars(text: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    return st.one_of(text, text, ints(), floats(), st.booleans())


def plain_names(prefix: str) -> st.SearchStrategy[str]:
    """Names every target keeps as they are (so two of them never collide after sanitising:
    `s` and `s_` both become task `s`, which a target rightly refuses)."""
    return st.from_regex(rf"{prefix}[a-z0-9]{{0,12}}", fullmatch=True)


def hostile_names() -> st.SearchStrategy[str]:
    """A step / parameter name: any non-blank text (no NUL: names are passed on command lines)."""
    return st.one_of(
        st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,20}", fullmatch=True),
        _hostile_text(_ARGV_CHARS, 4),
        st.text(_ARGV_CHARS, min_size=1, max_size=80),
        st.text(st.sampled_from("aA_-. 1"), min_size=60, max_size=300),
    ).filter(lambda s: bool(s.strip()))


def descriptions() -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), _hostile_text(_ANY_CHARS, 8))


def experiment_names(hostile: bool) -> st.SearchStrategy[str | None]:
    if not hostile:
        return st.one_of(st.none(), st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,30}", fullmatch=True))
    return st.one_of(st.none(), hostile_names())


# ------------------------------------------------------------------------------------ the case


@dataclass(frozen=True)
class Param:
    name: str
    default: object  # bool | int | float | str


@dataclass(frozen=True)
class Arg:
    literal: object = None
    param: int | None = None  # index into Case.params


@dataclass(frozen=True)
class StepSpec:
    name: str
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Case:
    steps: tuple[StepSpec, ...]
    params: tuple[Param, ...]
    description: str | None = None
    experiment: str | None = None
    hostile_names: bool = False

    def expected_args(self, step: StepSpec, overrides: dict | None = None) -> list[str]:
        """What the step's script must receive after its output folder: str() of every value."""
        values = {p.name: p.default for p in self.params}
        values.update(overrides or {})
        return [
            str(values[self.params[a.param].name]) if a.param is not None else str(a.literal)
            for a in step.args
        ]

    @property
    def portable(self) -> bool:
        """Every number fits every target exactly (a JSON / protobuf double holds |n| < 2**53)."""
        numbers = [p.default for p in self.params] + [
            a.literal for s in self.steps for a in s.args if a.param is None
        ]
        return all(
            abs(n) <= MAX_SAFE_INT
            for n in numbers
            if isinstance(n, int) and not isinstance(n, bool)
        )


@st.composite
def cases(draw, hostile_names_: bool = False, max_steps: int = 3, max_args: int = 6) -> Case:
    """A pipeline case. With `hostile_names_`, step / parameter / experiment names are hostile
    too (a target may then refuse the pipeline, cleanly); else they are plain identifiers."""
    n_params = draw(st.integers(0, 4))
    if hostile_names_:
        pnames = draw(st.lists(hostile_names(), min_size=n_params, max_size=n_params, unique=True))
        snames_st = hostile_names()
    else:
        pnames = draw(
            st.lists(plain_names("p"), min_size=n_params, max_size=n_params, unique=True).filter(
                lambda names: "regenerate_outputs" not in names
            )
        )
        snames_st = plain_names("s")
    params = tuple(Param(n, draw(scalars(default_text()))) for n in pnames)
    n_steps = draw(st.integers(1, max_steps))
    snames = draw(st.lists(snames_st, min_size=n_steps, max_size=n_steps, unique=True))
    arg = scalars(argument_text()).map(lambda v: Arg(literal=v))
    if params:
        arg = st.one_of(arg, st.integers(0, len(params) - 1).map(lambda i: Arg(param=i)))
    steps = tuple(StepSpec(name, tuple(draw(st.lists(arg, max_size=max_args)))) for name in snames)
    return Case(
        steps=steps,
        params=params,
        description=draw(descriptions()),
        experiment=draw(experiment_names(hostile_names_)),
        hostile_names=hostile_names_,
    )


def collect(strategy: st.SearchStrategy, n: int, seed_name: str) -> list:
    """`n` examples of `strategy`, the same on every run (an inner `@given` seeded by name)."""
    import zlib

    from hypothesis import given, seed

    found: list = []

    @seed(zlib.crc32(seed_name.encode()))
    @settings(
        settings.get_profile("mlpipe-ci"), max_examples=n, derandomize=False, phases=["generate"]
    )
    @given(strategy)
    def draw_one(value):
        found.append(value)

    draw_one()
    return found


# ----------------------------------------------------------------------------- writing a case

ECHO = '''\
"""Writes the arguments it received (after its output folder) and the experiment name."""
import json
import os
import sys

from azureml.core import Run

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
doc = {"argv": sys.argv[2:], "experiment": Run.get_context().experiment.name}
with open(os.path.join(out, "args.json"), "w", encoding="utf-8") as fh:
    json.dump(doc, fh, ensure_ascii=True)
'''


def output_name(j: int) -> str:
    return f"out_{j}"


def render_pipeline(case: Case) -> str:
    """The case as an unmodified v1 pipeline file; every value is written with repr."""
    lines = [
        "from azureml.core import Experiment, Workspace",
        "from azureml.data import OutputFileDatasetConfig",
        "from azureml.pipeline.core import Pipeline, PipelineParameter",
        "from azureml.pipeline.steps import PythonScriptStep",
        "",
        "ws = Workspace.from_config()",
    ]
    for i, p in enumerate(case.params):
        lines.append(f"param_{i} = PipelineParameter(name={p.name!r}, default_value={p.default!r})")
    for j, s in enumerate(case.steps):
        lines.append(f"{output_name(j)} = OutputFileDatasetConfig(name={output_name(j)!r})")
        args = [output_name(j)] + [
            f"param_{a.param}" if a.param is not None else repr(a.literal) for a in s.args
        ]
        lines.append(
            f"step_{j} = PythonScriptStep(name={s.name!r}, script_name='echo.py', "
            f"source_directory='src', arguments=[{', '.join(args)}])"
        )
    steps = ", ".join(f"step_{j}" for j in range(len(case.steps)))
    lines.append(
        f"pipeline = Pipeline(workspace=ws, steps=[{steps}], description={case.description!r})"
    )
    if case.experiment is not None:
        lines.append(f"Experiment(ws, {case.experiment!r}).submit(pipeline)")
    return "\n".join(lines) + "\n"


def write_case(case: Case, folder: Path) -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "echo.py").write_text(ECHO, encoding="utf-8")
    path = folder / "pipeline.py"
    path.write_text(render_pipeline(case), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------- checking


class CaseFailure(AssertionError):
    """A property does not hold; `kind` groups failures in the fuzz report."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"[{kind}] {detail}")
        self.kind = kind
        self.detail = detail


def exact(value) -> str:
    """A comparison key that tells -0.0 from 0.0, True from 1 and 1 from 1.0."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True, default=repr)


def first_difference(a, b, path: str = "") -> str | None:
    """Where two JSON documents first differ (types count: -0.0 is not 0.0), or None."""
    if type(a) is not type(b):
        return f"{path or '/'}: {a!r:.120} != {b!r:.120}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}/{key}: only in {'the first' if key in a else 'the second'}"
            found = first_difference(a[key], b[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if exact(a) == exact(b) else f"{path or '/'}: {a!r:.120} != {b!r:.120}"


def _typed(value) -> object:
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", repr(value)]
    return ["str", value]


def problems_are_clean(exc, n_lines: int) -> str | None:
    """None if an MlpipeError is what the CLI prints as `pipeline.py:LINE: message` lines."""
    from mlpipe.errors import MlpipeError

    if not isinstance(exc, MlpipeError):
        return f"{type(exc).__name__} instead of a clean error: {exc}"
    if not exc.problems:
        return "an MlpipeError without problems"
    for p in exc.problems:
        if not p.message or not p.message.strip():
            return f"a problem without a message: {p!r}"
        if not str(p.file).endswith("pipeline.py"):
            return f"problem not located in the pipeline file: {p}"
        if not isinstance(p.line, int) or not 1 <= p.line <= n_lines:
            return f"problem without a line of the pipeline file: {p}"
    return None


@dataclass
class Captured:
    case: Case
    path: Path
    pipeline: object  # PipelineIR
    ir: dict  # the IR as the runtime reads it (JSON round trip of model_dump)


def capture_case(case: Case, path: Path) -> Captured:
    """Capture the file in-process; check the IR holds the drawn values and round-trips."""
    from mlpipe.capture import capture
    from mlpipe.errors import MlpipeError
    from mlpipe.ir import PipelineIR

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            result = capture(str(path))
    except MlpipeError as exc:
        raise CaseFailure("capture-refused", "; ".join(map(str, exc.problems))) from None
    except Exception as exc:  # noqa: BLE001 - anything else is a capture bug
        raise CaseFailure("capture-crash", f"{type(exc).__name__}: {exc}") from None
    if len(result.pipelines) != 1:
        raise CaseFailure("capture-ir", f"{len(result.pipelines)} pipelines captured")
    p = result.pipelines[0]
    if [s.name for s in p.steps] != [s.name for s in case.steps]:
        raise CaseFailure("capture-ir", f"step names {[s.name for s in p.steps]!r}")
    if (p.description or None) != (case.description or None):
        raise CaseFailure("capture-ir", f"description {p.description!r}")
    got = {x.name: _typed(x.default) for x in p.parameters}
    used = {a.param for s in case.steps for a in s.args if a.param is not None}
    want = {x.name: _typed(x.default) for i, x in enumerate(case.params) if i in used}
    if got != want:
        raise CaseFailure("capture-ir", f"parameters {got!r} != {want!r}")
    for spec, step in zip(case.steps, p.steps, strict=True):
        lits = [_typed(a.value) for a in step.arguments if a.kind == "literal"]
        want_lits = [_typed(a.literal) for a in spec.args if a.param is None]
        if lits != want_lits:
            raise CaseFailure("capture-ir", f"step {spec.name!r} literals {lits!r}")
    try:
        text = p.model_dump_json()
        again = PipelineIR.model_validate_json(text)
    except Exception as exc:  # noqa: BLE001
        raise CaseFailure("ir-roundtrip", f"{type(exc).__name__}: {exc}") from None
    if exact(again.model_dump(mode="json")) != exact(p.model_dump(mode="json")):
        raise CaseFailure("ir-roundtrip", "the IR changed through its JSON")
    doc = json.loads(json.dumps(p.model_dump(mode="json"), ensure_ascii=False))
    return Captured(case, path, p, doc)


def runtime_argv(ir: dict, step: str, params: dict, experiment: str | None = None) -> list[str]:
    """The script arguments the runtime builds for `step` (after python, launcher, script)."""
    from mlpipe.runtime.step import RunContext, _Step

    ctx = RunContext(run_id="prop-run", params=params, experiment=experiment, cache_dir=_CACHE)
    st_ = _Step(ir, step, ctx, None)
    outputs = {o["name"]: "<OUT>" for o in st_.step.get("outputs") or []}
    argv = st_.build_argv("<PYTHON>", {}, outputs)
    return argv[3:]


_CACHE = os.path.join(tempfile.gettempdir(), "mlpipe-prop-cache")


def check_argv(case: Case, ir: dict, params: dict, where: str) -> None:
    """The runtime's argv for every step, from `ir` and the run's `params`, is the drawn one.

    `params` goes through JSON first, as orchestrators hand it to the runtime (--params-json)."""
    params = json.loads(json.dumps(params))
    for spec in case.steps:
        try:
            got = runtime_argv(ir, spec.name, params)
        except Exception as exc:  # noqa: BLE001
            raise CaseFailure(f"{where}-argv", f"step {spec.name!r}: {exc}") from None
        if any("\0" in a for a in got):
            raise CaseFailure(f"{where}-argv", f"step {spec.name!r}: a NUL in argv")
        want = ["<OUT>", *case.expected_args(spec)]
        if got != want:
            bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w]
            raise CaseFailure(
                f"{where}-argv",
                f"step {spec.name!r}: got {len(got)} args, want {len(want)}; first differences "
                f"(index, got, want): {bad[:3]!r}",
            )


# --------------------------------------------------------------------------------- compiling


_BACKENDS: dict = {}


def backend(target: str):
    """A fresh backend object of `target` (the class found once through the entry points)."""
    if target not in _BACKENDS:
        from importlib.metadata import entry_points

        found = {ep.name: ep for ep in entry_points(group="mlpipe.backends")}
        _BACKENDS[target] = found[target].load()
    return _BACKENDS[target]()


def compile_case(captured: Captured, target: str, out: Path) -> str | None:
    """Compile for `target` into `out`. Returns None, or the clean error the CLI would print
    (exit 2); an unclean failure is a CaseFailure."""
    from mlpipe.backends.base import compile_pipelines

    n_lines = len(captured.path.read_text(encoding="utf-8").splitlines())
    try:
        compile_pipelines(
            backend(target),
            [captured.pipeline],
            captured.path.parent,
            out,
            None,
            str(captured.path),
        )
    except Exception as exc:  # noqa: BLE001
        unclean = problems_are_clean(exc, n_lines)
        if unclean:
            raise CaseFailure(f"{target}-compile-crash", unclean) from None
        return "; ".join(map(str, exc.problems))
    return None


# ----------------------------------------------------------------------------------- loaders

# Each loader runs in the target's venv, reads one JSON request per line on stdin
# ({"dir": compile output folder}) and answers one JSON line. Anything the orchestrator prints
# goes to stderr (a log file), never into the answers.
_PROLOGUE = r"""
import faulthandler, json, os, signal, sys, traceback
faulthandler.register(signal.SIGUSR1, all_threads=True)  # a hung loader shows where it hangs
_answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr

def _forget(folder):
    for name, mod in list(sys.modules.items()):
        if (getattr(mod, "__file__", None) or "").startswith(folder):
            del sys.modules[name]

def _serve(handle):
    _answers.write(json.dumps({"ready": True}) + "\n")
    _answers.flush()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            ans = handle(req["dir"])
        except BaseException as exc:
            ans = {"error": "loader: " + "".join(traceback.format_exception(exc))[-3000:]}
        finally:
            _forget(req["dir"])
        ans["dir"] = req["dir"]
        _answers.write(json.dumps(ans, default=repr) + "\n")
        _answers.flush()
"""

AIRFLOW_LOADER = (
    _PROLOGUE
    + r"""
import subprocess
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization

class _Stop(Exception):
    pass

_seen = []

class _FakePopen:
    def __init__(self, args, *a, **kw):
        _seen.append({"argv": [str(x) for x in args], "cwd": str(kw.get("cwd") or "")})
        raise _Stop()

def _task_argv(task, dag, params):
    # Run the task's execute() with process creation replaced: what would it start?
    _seen.clear()
    real = subprocess.Popen
    subprocess.Popen = _FakePopen
    try:
        task.execute({"params": dict(params), "run_id": "prop-run", "dag": dag, "task": task})
    except _Stop:
        pass
    finally:
        subprocess.Popen = real
    return _seen[0] if _seen else None

def handle(folder):
    bag = DagBag(dag_folder=folder, safe_mode=True, load_op_links=False)
    out = {"errors": {str(k): str(v)[-3000:] for k, v in bag.import_errors.items()}, "dags": []}
    for dag in bag.dags.values():
        data = DagSerialization.to_dict(dag)
        back = DagSerialization.from_dict(json.loads(json.dumps(data)))
        params = dag.params.dump()
        entry = {
            "dag_id": dag.dag_id,
            "params": params,
            "params_serialized": back.params.dump(),
            "tasks": {},
        }
        for task in dag.tasks:
            entry["tasks"][task.task_id] = _task_argv(task, dag, params)
        out["dags"].append(entry)
    return out

_serve(handle)
"""
)

PREFECT_LOADER = (
    _PROLOGUE
    + r"""
import inspect, logging, subprocess
import yaml
import prefect
import prefect.runtime.flow_run as _flow_run
from prefect import Task
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema
from prefect.utilities.templating import find_placeholders

# Outside a flow run: a plain logger and a fixed run id, bound before any flow module loads.
prefect.get_run_logger = lambda *a, **k: logging.getLogger("mlpipe-loader")
_flow_run.get_id = lambda: "prop-run"

class _Stop(Exception):
    pass

_seen = []

class _FakePopen:
    def __init__(self, args, *a, **kw):
        _seen.append({"argv": [str(x) for x in args], "cwd": str(kw.get("cwd") or "")})
        raise _Stop()

class _Future:
    def result(self, *a, **k):
        return None
    def wait(self, *a, **k):
        return None

def _step_calls(flow, kwargs):
    # Call the flow function with task submission recorded, then each task function with
    # process creation replaced: what would each task start?
    tasks = [v for v in flow.fn.__globals__.values() if isinstance(v, Task)]
    calls = []
    for t in tasks:
        def submit(*args, _t=t, **kw):
            calls.append((_t, args, kw))
            return _Future()
        t.submit = submit
    flow.fn(**kwargs)
    out = []
    real = subprocess.Popen
    subprocess.Popen = _FakePopen
    try:
        for t, args, kw in calls:
            _seen.clear()
            kw = {k: v for k, v in kw.items() if k not in ("wait_for", "return_state")}
            try:
                t.fn(*args, **kw)
            except _Stop:
                pass
            out.append({"task": t.name, "call": _seen[0] if _seen else None})
    finally:
        subprocess.Popen = real
    return out

def handle(folder):
    with open(os.path.join(folder, "prefect.yaml"), encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    PrefectYamlModel.model_validate(doc)
    out = {"deployments": []}
    for dep in doc.get("deployments") or []:
        path, func = dep["entrypoint"].rsplit(":", 1)
        # As a worker loads it to run it: a module that does not import is an error here
        # (the default would quietly fall back to a placeholder flow parsed from the AST).
        flow = load_flow_from_entrypoint(
            os.path.join(folder, path) + ":" + func, use_placeholder_flow=False
        )
        parameter_schema(flow).model_dump(mode="json")
        params = dict(dep.get("parameters") or {})
        out["deployments"].append({
            "name": dep.get("name"),
            "flow": flow.name,
            "description": dep.get("description"),
            "placeholders": sorted(p.name for p in find_placeholders(dep)),
            "tasks": _step_calls(flow, params),
        })
    return out

_serve(handle)
"""
)

KFP_LOADER = (
    _PROLOGUE
    + r"""
import glob
from google.protobuf import json_format
from kfp import components
import mlpipe.backends.kfp_executor as _executor
import mlpipe.runtime.step as _runtime_step

class _Result:
    ok = True
    exit_code = 0

_seen = []

def _record(ir, step, ctx, on_output=None):
    _seen.append({"step": step, "ir": ir, "params": ctx.params, "experiment": ctx.experiment})
    return _Result()

# Where every executor ends: the runtime's run_step (and the summary's summarize).
_runtime_step.run_step = _record
_executor.summarize = lambda *a, **k: None

def _value(spec, defaults):
    if "componentInputParameter" in spec:
        return json.loads(json.dumps(defaults.get(spec["componentInputParameter"])))
    const = spec.get("runtimeValue", {}).get("constant")
    if isinstance(const, str) and "{{$" in const:
        return "prop-run"
    return const

def handle(folder):
    out = {"pipelines": []}
    files = sorted(f for f in glob.glob(os.path.join(folder, "*.yaml"))
                   if not f.endswith(".deploy.yaml"))
    for path in files:
        comp = components.load_component_from_file(path)
        defaults = {k: v.default for k, v in comp.component_spec.inputs.items()}
        spec = json_format.MessageToDict(comp.pipeline_spec)
        executors = spec["deploymentSpec"]["executors"]
        calls = []
        for task_name, task in sorted(spec["root"]["dag"]["tasks"].items()):
            component = spec["components"][task["componentRef"]["name"]]
            container = executors[component["executorLabel"]]["container"]
            module = container["command"][-1]
            args = container.get("args") or []
            function = args[args.index("--function_to_execute") + 1]
            namespace = {"__name__": "ephemeral_component"}
            exec(compile(module, "ephemeral_component.py", "exec"), namespace)
            kwargs = {k: _value(v, defaults)
                      for k, v in task.get("inputs", {}).get("parameters", {}).items()}
            _seen.clear()
            namespace[function](**kwargs)
            calls.append({"task": task_name, "run": _seen[0] if _seen else None})
        out["pipelines"].append({
            "file": os.path.basename(path),
            "name": comp.name,
            "description": comp.pipeline_spec.pipeline_info.description,
            "defaults": defaults,
            "tasks": calls,
        })
    return out

_serve(handle)
"""
)

LOADERS = {"airflow": AIRFLOW_LOADER, "prefect": PREFECT_LOADER, "kfp": KFP_LOADER}


class Loader:
    """One long-lived loader process for a target; restarted if it dies or hangs."""

    def __init__(self, target: str, timeout: float = 120.0):
        self.target = target
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.home = Path(tempfile.mkdtemp(prefix=f"mlpipe-loader-{target}-"))
        self.requests = 0
        self._pending: dict | None = None
        self._ready = False

    def _env(self) -> dict:
        env = dict(os.environ)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home / "airflow"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "PREFECT_HOME": str(self.home / "prefect"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONIOENCODING": "utf-8",
            }
        )
        return env

    def start(self, wait: bool = True) -> None:
        """Start the process (if it is not running); with `wait`, until it has loaded the
        orchestrator. Start several loaders with wait=False, then start() each: they boot at once."""
        if self.proc is not None and self.proc.poll() is None:
            if wait and not self._ready:
                self._wait_ready()
            return
        log = open(self.home / "loader.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [str(VENVS / self.target / "bin" / "python"), "-c", LOADERS[self.target]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=self._env(),
            cwd=str(self.home),
            start_new_session=True,
        )
        log.close()
        self._ready = False
        if wait:
            self._wait_ready()

    def _wait_ready(self) -> None:
        ready = self._read(600)
        if ready != {"ready": True}:
            raise RuntimeError(f"{self.target} loader did not start: {ready}\n{self.log_tail()}")
        self._ready = True

    def _read(self, timeout: float) -> dict | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        if not line:
            return None
        return json.loads(line)

    def send(self, folder: Path) -> None:
        """Ask for `folder` to be loaded; `receive` gives the answer (requests are answered in
        order, so several loaders can work at once)."""
        self.start()
        assert self.proc is not None and self.proc.stdin is not None
        self.requests += 1
        try:
            self.proc.stdin.write((json.dumps({"dir": str(folder)}) + "\n").encode())
            self.proc.stdin.flush()
            self._pending = None
        except BrokenPipeError:
            self._pending = {"error": f"{self.target} loader died:\n{self.log_tail()}"}
            self.stop()

    def receive(self, folder: Path | None = None) -> dict:
        """The next answer; with `folder`, it must be the answer for that folder."""
        if getattr(self, "_pending", None) is not None:
            answer, self._pending = self._pending, None
            return answer
        answer = self._read(self.timeout) if self.proc is not None else None
        if answer is None:
            if self.proc is not None and self.proc.poll() is None:
                with contextlib.suppress(OSError):
                    os.kill(self.proc.pid, signal.SIGUSR1)  # its stacks, into the log
                time.sleep(1)
            tail = self.log_tail()
            self.stop()
            return {"error": f"{self.target} loader hung or died:\n{tail}"}
        if folder is not None and answer.get("dir") != str(folder):
            raise RuntimeError(
                f"{self.target} loader answered for {answer.get('dir')}, not {folder}"
            )
        return answer

    def load(self, folder: Path) -> dict:
        self.send(folder)
        return self.receive(folder)

    def log_tail(self) -> str:
        try:
            return (self.home / "loader.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


# ------------------------------------------------------------------------ target-level checks


def _cli_call(captured: Captured, out: Path, where: str, label: str, call: dict | None):
    """Parse a runtime command line a task would start (`python -m mlpipe.runtime run-step ...`)
    with the runtime's own parser; returns (step name, IR, RunContext)."""
    from mlpipe.runtime.__main__ import _context, _parser

    if call is None:
        raise CaseFailure(f"{where}-task", f"{label} started no process")
    argv = call["argv"]
    if any("\0" in a for a in argv):
        raise CaseFailure(f"{where}-task", f"{label}: a NUL in its command line")
    try:
        i = argv.index("run-step")
        with contextlib.redirect_stderr(io.StringIO()):  # argparse prints its usage there
            args = _parser().parse_args(argv[i:])
    except (ValueError, SystemExit):
        raise CaseFailure(f"{where}-task", f"{label}: unexpected command {argv!r}") from None
    if not os.path.isabs(args.ir):
        args.ir = os.path.join(call["cwd"] or str(out), args.ir)
    args.pin_version = False  # a run-time effect (the run's version record), not the argument path
    try:
        ir, ctx = _context(args)
    except Exception as exc:  # noqa: BLE001
        raise CaseFailure(f"{where}-bundle", f"{label}: {exc}") from None
    expected = captured.ir
    if [s["name"] for s in ir.get("steps", [])] == [args.step]:
        # The runtime reads its step's slice of a bundle once the bundle is a few seconds old
        # (runtime/__main__.py _step_slice): the pipeline with only that step.
        expected = dict(expected, steps=[s for s in expected["steps"] if s["name"] == args.step])
    if exact(ir) != exact(expected):
        raise CaseFailure(
            f"{where}-bundle",
            f"{label}: the IR it reads differs from the capture at "
            f"{first_difference(expected, ir)}",
        )
    return args.step, ir, ctx


def _check_steps(captured: Captured, where: str, runs: dict) -> None:
    """`runs`: {step name: (ir, params)} as the target's tasks hand them to the runtime."""
    want = sorted(s.name for s in captured.case.steps)
    if sorted(runs) != want:
        raise CaseFailure(f"{where}-task", f"tasks run steps {sorted(runs)!r}, want {want!r}")
    for spec in captured.case.steps:
        ir, params = runs[spec.name]
        check_argv(Case((spec,), captured.case.params), ir, params, where)


def check_airflow(captured: Captured, out: Path, answer: dict) -> None:
    if answer.get("error") or answer.get("errors"):
        raise CaseFailure("airflow-load", str(answer.get("error") or answer.get("errors"))[:3000])
    dags = answer["dags"]
    if len(dags) != 1:
        raise CaseFailure("airflow-load", f"{len(dags)} DAGs loaded")
    dag = dags[0]
    if exact(dag["params"]) != exact(dag["params_serialized"]):
        raise CaseFailure("airflow-serialize", f"{dag['params']!r} != {dag['params_serialized']!r}")
    runs = {}
    for task_id, call in dag["tasks"].items():
        step, ir, ctx = _cli_call(captured, out, "airflow", f"task {task_id!r}", call)
        runs[step] = (ir, ctx.params)
    _check_steps(captured, "airflow", runs)


def check_prefect(captured: Captured, out: Path, answer: dict) -> None:
    if answer.get("error"):
        raise CaseFailure("prefect-load", answer["error"][:3000])
    deps = answer["deployments"]
    if not deps:
        raise CaseFailure("prefect-load", "prefect.yaml has no deployment")
    for dep in deps:
        if dep["placeholders"]:
            raise CaseFailure(
                "prefect-template",
                f"deployment {dep['name']!r}: `prefect deploy` would substitute "
                f"{dep['placeholders']!r}",
            )
    runs = {}
    for task in deps[0]["tasks"]:
        step, ir, ctx = _cli_call(captured, out, "prefect", f"task {task['task']!r}", task["call"])
        runs[step] = (ir, ctx.params)
    _check_steps(captured, "prefect", runs)


def check_kfp(captured: Captured, out: Path, answer: dict) -> None:
    if answer.get("error"):
        raise CaseFailure("kfp-load", answer["error"][:3000])
    pipes = answer["pipelines"]
    if len(pipes) != 1:
        raise CaseFailure("kfp-load", f"{len(pipes)} pipeline YAMLs loaded")
    pipe = pipes[0]
    if (pipe["description"] or None) != (captured.case.description or None):
        raise CaseFailure("kfp-description", f"{pipe['description']!r}")
    runs = {}
    for task in pipe["tasks"]:
        if task["run"] is not None:
            runs[task["run"]["step"]] = (task["run"]["ir"], task["run"]["params"])
    _check_steps(captured, "kfp", runs)


CHECKS = {"airflow": check_airflow, "prefect": check_prefect, "kfp": check_kfp}


@dataclass
class Outcome:
    """What one case did on one target: `ok`, `refused` (a clean compile error) or a failure."""

    target: str
    status: str
    detail: str = ""
    seconds: dict = field(default_factory=dict)


def run_target(captured: Captured, target: str, loader: Loader, out: Path) -> Outcome:
    """Compile for `target`, load with the target's loader, check the values. Raises CaseFailure
    for a broken property; returns `refused` for a clean compile error."""
    t0 = time.monotonic()
    refused = compile_case(captured, target, out)
    t1 = time.monotonic()
    if refused is not None:
        return Outcome(target, "refused", refused, {"compile": t1 - t0})
    answer = loader.load(out)
    t2 = time.monotonic()
    CHECKS[target](captured, out, answer)
    return Outcome(target, "ok", "", {"compile": t1 - t0, "load": t2 - t1})


def finite(value) -> bool:
    return not isinstance(value, float) or math.isfinite(value)
