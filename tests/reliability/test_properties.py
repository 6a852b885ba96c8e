"""Property-based tests: any value a v1 pipeline can hold reaches the script byte-exact, and every
artifact loads in its orchestrator's own loader (or the target refuses the pipeline cleanly).

Three layers, over cases drawn by tests/reliability/strategies.py (fixed seed, profile `mlpipe-ci`):

(a) capture + the runtime's argument path, in-process, plus real runs by the local runner;
(b) compile for each target and load with the target's loader (a long-lived process in
    `.venvs/<target>`), then rebuild each step's argv from what the artifact hands the runtime;
(c) a handful of drawn values through each real orchestrator (integration), compared with what
    the echo script received.

benchmarks/fuzz.py runs (a) and (b) on 10,000 cases per target.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given

from tests.reliability import strategies as S
from tests.reliability.strategies import Arg, Case, Param, StepSpec, profile
from tests.targets import MLPIPE, child_env, driver

# ------------------------------------------------------------------------------------ fixtures

_LOADERS: dict[str, S.Loader] = {}


@pytest.fixture(scope="module")
def loaders():
    """One loader process per target for this module, started side by side on first use."""
    for target in S.TARGETS:
        _LOADERS.setdefault(target, S.Loader(target))
    yield _LOADERS
    for loader in _LOADERS.values():
        loader.close()
    _LOADERS.clear()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("props")


def _by_loader(targets=S.TARGETS):
    """Each target's loader tests on one xdist worker, so its loader process starts once."""
    return [pytest.param(t, marks=pytest.mark.xdist_group(f"loader-{t}")) for t in targets]


class _Counter:
    n = 0


def _case_dir(workdir: Path, label: str) -> Path:
    _Counter.n += 1
    return workdir / f"{label}-{_Counter.n}"


def _cleanup(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------- (a) capture and runtime


@profile(max_examples=150)
@given(case=S.cases())
def test_capture_keeps_every_value_and_the_runtime_passes_it_exactly(case, workdir):
    folder = _case_dir(workdir, "a")
    try:
        captured = S.capture_case(case, S.write_case(case, folder))
        S.check_argv(case, captured.ir, {}, "runtime")
    finally:
        _cleanup(folder)


@profile(max_examples=60)
@given(case=S.cases(hostile_names_=True))
def test_hostile_names_capture_and_reach_the_runtime(case, workdir):
    folder = _case_dir(workdir, "an")
    try:
        captured = S.capture_case(case, S.write_case(case, folder))
        S.check_argv(case, captured.ir, {}, "runtime")
    finally:
        _cleanup(folder)


@profile(slow=True, max_examples=12)
@given(case=S.cases(max_steps=2))
def test_local_runner_delivers_the_drawn_arguments(case, workdir):
    from rich.console import Console

    from mlpipe.local import run_pipeline

    folder = _case_dir(workdir, "run")
    try:
        captured = S.capture_case(case, S.write_case(case, folder))
        result = run_pipeline(
            captured.pipeline,
            folder,
            console=Console(file=io.StringIO(), width=200),
            max_parallel=1,
        )
        assert result.ok, result.statuses
        for j, spec in enumerate(case.steps):
            outputs = result.steps[spec.name].result.outputs
            doc = json.loads(Path(outputs[S.output_name(j)]["url"], "args.json").read_text())
            assert doc["argv"] == case.expected_args(spec)
            assert doc["experiment"] == (case.experiment or captured.pipeline.name)
    finally:
        _cleanup(folder)


def _write_raw(folder: Path, body: str) -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "echo.py").write_text(S.ECHO, encoding="utf-8")
    path = folder / "pipeline.py"
    path.write_text(
        "from azureml.core import Workspace\n"
        "from azureml.pipeline.core import Pipeline, PipelineParameter\n"
        "from azureml.pipeline.steps import PythonScriptStep\n"
        "ws = Workspace.from_config()\n" + body,
        encoding="utf-8",
    )
    return path


# What argv cannot carry: a NUL (exec refuses it) and lone surrogates (no UTF-8 encoding, so no
# IR JSON, DAG file or YAML either). Accepting them only moves the failure to run time, on every
# target; the contract for bad input is a `pipeline.py:LINE: message` at capture.
UNCARRIABLE = {
    "nul-in-argument": "s = PythonScriptStep(name='s', script_name='echo.py', "
    "source_directory='src', arguments=['a\\x00b'])\n",
    "nul-in-default": "p = PipelineParameter(name='p', default_value='a\\x00b')\n"
    "s = PythonScriptStep(name='s', script_name='echo.py', source_directory='src', "
    "arguments=[p])\n",
    "surrogate-in-argument": "s = PythonScriptStep(name='s', script_name='echo.py', "
    "source_directory='src', arguments=['\\udcff'])\n",
    "surrogate-in-default": "p = PipelineParameter(name='p', default_value='x\\ud800')\n"
    "s = PythonScriptStep(name='s', script_name='echo.py', source_directory='src', "
    "arguments=[p])\n",
    "surrogate-in-step-name": "s = PythonScriptStep(name='s\\udcff', script_name='echo.py', "
    "source_directory='src')\n",
}


@pytest.mark.parametrize("what", sorted(UNCARRIABLE))
def test_values_argv_cannot_carry_are_refused_at_capture(what, tmp_path):
    path = _write_raw(tmp_path, UNCARRIABLE[what] + "pipeline = Pipeline(ws, [s])\n")
    proc = subprocess.run(
        [MLPIPE, "ir", str(path)], capture_output=True, text=True, env=child_env(), timeout=120
    )
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-1500:])
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert re.search(r"pipeline\.py:[56]: ", proc.stderr), proc.stderr[-1500:]


# Non-finite floats: a literal argument must arrive as str(value) ('inf', 'nan'), like every other
# float; a parameter default that cannot be a run-time value (the runtime refuses non-finite
# overrides) must be a clean error. Neither may crash a compiler or produce a broken artifact.
NON_FINITE = {
    "literal-inf": ("arguments=[o, float('inf'), float('-inf'), float('nan')]", ""),
    "default-nan": (
        "arguments=[o, p]",
        "p = PipelineParameter(name='p', default_value=float('nan'))\n",
    ),
    "default-inf": (
        "arguments=[o, p]",
        "p = PipelineParameter(name='p', default_value=float('inf'))\n",
    ),
}


@pytest.mark.parametrize("target", _by_loader())
@pytest.mark.parametrize("what", sorted(NON_FINITE))
def test_non_finite_numbers_arrive_or_are_refused_cleanly(what, target, tmp_path, loaders):
    args, extra = NON_FINITE[what]
    body = (
        "from azureml.data import OutputFileDatasetConfig\n"
        + extra
        + "o = OutputFileDatasetConfig(name='out_0')\n"
        + f"s = PythonScriptStep(name='s', script_name='echo.py', source_directory='src', {args})\n"
        + "pipeline = Pipeline(ws, [s])\n"
    )
    path = _write_raw(tmp_path, body)
    from mlpipe.capture import capture
    from mlpipe.errors import MlpipeError

    try:
        pipeline = capture(str(path)).pipelines[0]
    except MlpipeError as exc:  # refused at capture: must be clean
        assert S.problems_are_clean(exc, 9) is None
        return
    if what == "literal-inf":
        case = Case(
            (StepSpec("s", (Arg(float("inf")), Arg(float("-inf")), Arg(float("nan")))),), ()
        )
    else:
        value = float("nan") if what == "default-nan" else float("inf")
        case = Case((StepSpec("s", (Arg(param=0),)),), (Param("p", value),))
    doc = json.loads(json.dumps(pipeline.model_dump(mode="json")))
    captured = S.Captured(case, path, pipeline, doc)
    outcome = S.run_target(captured, target, loaders[target], tmp_path / "out")
    assert outcome.status in ("ok", "refused"), outcome


# ------------------------------------------------------------------- (b) artifacts and loaders


def _through_target(case: Case, target: str, loaders, workdir: Path, allow_refusal: bool):
    folder = _case_dir(workdir, f"b-{target}")
    try:
        captured = S.capture_case(case, S.write_case(case, folder))
        outcome = S.run_target(captured, target, loaders[target], folder / "out")
        if outcome.status == "refused" and not allow_refusal:
            raise S.CaseFailure(f"{target}-refused", outcome.detail)
    finally:
        _cleanup(folder)


@pytest.mark.parametrize("target", _by_loader())
@profile(slow=True, max_examples=30)
@given(case=S.cases())
def test_artifact_loads_and_hands_the_runtime_the_exact_values(case, target, loaders, workdir):
    # Plain names: nothing for a target to refuse, except numbers it cannot hold exactly
    # (|int| > 2**53 on KFP), and those only as a clean error, never silently rounded.
    _through_target(case, target, loaders, workdir, allow_refusal=not case.portable)


@pytest.mark.parametrize("target", _by_loader())
@profile(slow=True, max_examples=30)
@given(case=S.cases(hostile_names_=True))
def test_hostile_names_load_or_are_refused_cleanly(case, target, loaders, workdir):
    _through_target(case, target, loaders, workdir, allow_refusal=True)


# A pipeline every target must refuse at compile time with `pipeline.py:LINE: message`, exit 2,
# nothing written: two steps whose names become the same task / function name.
COLLIDING = (
    "s1 = PythonScriptStep(name='prep data', script_name='echo.py', source_directory='src')\n"
    "s2 = PythonScriptStep(name='prep_data', script_name='echo.py', source_directory='src')\n"
    "pipeline = Pipeline(ws, [s1, s2])\n"
)


@pytest.mark.parametrize("target", ["airflow", "prefect"])
def test_a_name_the_target_cannot_take_is_a_clean_cli_error(target, tmp_path):
    path = _write_raw(tmp_path, COLLIDING)
    out = tmp_path / "out"
    proc = subprocess.run(
        [MLPIPE, "compile", str(path), "--target", target, "-o", str(out)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert lines and all(re.match(r"^(.*/)?pipeline\.py:[56]: ", x) for x in lines), proc.stderr
    assert "prep data" in proc.stderr and "prep_data" in proc.stderr
    assert not out.exists() or not any(out.iterdir())


# Minimal reproductions of what the properties found (each names the input, what happens, and
# what should happen instead).


def _one_case_on(target: str, case: Case, loaders, tmp_path: Path) -> S.Outcome:
    captured = S.capture_case(case, S.write_case(case, tmp_path))
    return S.run_target(captured, target, loaders[target], tmp_path / "out")


@pytest.mark.xdist_group("loader-kfp")
def test_kfp_keeps_integer_defaults_beyond_2_to_the_53_exact_or_refuses_them(loaders, tmp_path):
    # KFP holds numbers as protobuf doubles: a default of 10**30 reaches the script as
    # 1000000000000000019884624838656. Expected: the exact digits, or a clean compile error.
    case = Case((StepSpec("train", (Arg(param=0),)),), (Param("seed", 10**30),))
    assert _one_case_on("kfp", case, loaders, tmp_path).status in ("ok", "refused")


@pytest.mark.xdist_group("loader-kfp")
def test_kfp_keeps_the_sign_of_a_negative_zero_default_beside_a_zero(loaders, tmp_path):
    # The spec's YAML writer memoised scalars by value, and -0.0 == 0.0: the second default
    # was written as the first one's text (found by the fuzz run).
    case = Case((StepSpec("s", (Arg(param=0), Arg(param=1))),), (Param("v", 0.0), Param("w", -0.0)))
    assert _one_case_on("kfp", case, loaders, tmp_path).status == "ok"


@pytest.mark.xdist_group("loader-kfp")
def test_kfp_pipeline_named_like_one_of_its_steps_loads(loaders, tmp_path):
    # Experiment 'train' with a step 'train': the pipeline and the step's component are both
    # `comp-train` to kfp's loader, which then loads the step component instead of the pipeline
    # (and fails parsing its shell prefix as Python).
    case = Case((StepSpec("train", (Arg("x"),)),), (), experiment="train")
    assert _one_case_on("kfp", case, loaders, tmp_path).status == "ok"


@pytest.mark.xdist_group("loader-kfp")
def test_kfp_pipeline_file_cannot_be_mistaken_for_a_deploy_document(loaders, tmp_path):
    # Experiment 'nightly.deploy' compiles to nightly.deploy.yaml (+ nightly.deploy.deploy.yaml):
    # the pipeline's own YAML has the name of pipeline 'nightly''s deploy document, so tools
    # that skip `*.deploy.yaml` (tests/targets/kfp.py, this loader) find no pipeline at all.
    case = Case((StepSpec("s", (Arg("x"),)),), (), experiment="nightly.deploy")
    assert _one_case_on("kfp", case, loaders, tmp_path).status == "ok"


@pytest.mark.xdist_group("loader-prefect")
def test_prefect_parameter_named_like_a_step_keeps_the_step(loaders, tmp_path):
    # Parameter 'prep' and step 'prep': the flow argument `prep` shadows the task `prep` inside
    # the flow body, so the flow calls `.submit` on the parameter's value.
    case = Case((StepSpec("prep", (Arg(param=0),)),), (Param("prep", 3),))
    assert _one_case_on("prefect", case, loaders, tmp_path).status in ("ok", "refused")


@pytest.mark.xdist_group("loader-prefect")
def test_prefect_names_like_builtins_keep_the_builtins(loaders, tmp_path):
    # Experiment 'dict' made the flow function `dict`, step '__dict__' the task function `dict`:
    # the flow module's own `dict(os.environ, ...)` then called the flow (found by the fuzz run).
    case = Case((StepSpec("__dict__", (Arg("x"),)), StepSpec("str", ())), (), experiment="dict")
    assert _one_case_on("prefect", case, loaders, tmp_path).status == "ok"


@pytest.mark.xdist_group("loader-prefect")
def test_prefect_yaml_holds_no_text_prefect_deploy_would_template(loaders, tmp_path):
    # `prefect deploy` fills {{ $VAR }} / {{ prefect.variables.x }} / {{ name }} everywhere in a
    # deployment, description included: a description mentioning {{ $AWS_SECRET_ACCESS_KEY }}
    # would publish the deployer's secret. User text must reach prefect.yaml inert.
    case = Case((StepSpec("s", ()),), (), description="uses {{ $HOME }} and {{ ds }}")
    assert _one_case_on("prefect", case, loaders, tmp_path).status == "ok"


@pytest.mark.parametrize("target", _by_loader())
def test_a_long_experiment_name_compiles_or_is_refused_cleanly(target, loaders, tmp_path):
    # v1 experiment names may be 256 characters. From about 230 on, every target crashes with
    # OSError "File name too long" writing `.mlpipe/.<name>.json.mlpipe-tmp-<pid>` (base.py's
    # bundle) or `<name>.deploy.yaml` (KFP): a traceback instead of a file name it can write.
    case = Case((StepSpec("s", (Arg("x"),)),), (), experiment="e" * 250)
    assert _one_case_on(target, case, loaders, tmp_path).status in ("ok", "refused")


@pytest.mark.parametrize("target", _by_loader(["airflow", "prefect"]))
@pytest.mark.parametrize("name", ["--dry-run", "-x"])
def test_a_step_name_starting_with_a_dash_reaches_the_runtime(name, target, loaders, tmp_path):
    # The task starts `python -m mlpipe.runtime run-step ... --step <name>`: argparse reads a
    # name starting with '-' as an option ("argument --step: expected one argument"), so the
    # task fails at run time. Expected: `--step=<name>` (or a clean compile error).
    case = Case((StepSpec(name, (Arg("x"),)),), ())
    assert _one_case_on(target, case, loaders, tmp_path).status in ("ok", "refused")


# ------------------------------------------------------------- (c) real orchestrators


def _merged_case() -> Case:
    """Drawn cases (fixed seed, portable values) merged into one pipeline, plus one step that
    receives every hostile fragment: one real run per target covers them all."""

    def variety(case: Case) -> int:
        texts = [a.literal for s in case.steps for a in s.args if isinstance(a.literal, str)]
        texts += [p.default for p in case.params if isinstance(p.default, str)]
        used = sum(a.param is not None for s in case.steps for a in s.args)
        return len(set("".join(texts))) + 20 * used

    # The most varied case of each of four seeded draws of 40 (early draws tend to be small,
    # later ones of the same draw alike).
    drawn = []
    for k in range(4):
        found = [c for c in S.collect(S.cases(), 40, f"real_runs_{k}") if c.portable]
        drawn.append(max(found, key=variety))
    steps: list[StepSpec] = [StepSpec("hostile", tuple(Arg(x) for x in S.HOSTILE))]
    params: list[Param] = []
    description = None
    for case in drawn:
        if len(steps) >= 7:
            break
        if not any(s.args for s in case.steps):
            continue
        base = len(params)
        params += [Param(f"p{base + i}", p.default) for i, p in enumerate(case.params)]
        for s in case.steps:
            if len(steps) < 7:
                args = tuple(
                    Arg(param=a.param + base) if a.param is not None else a for a in s.args
                )
                steps.append(StepSpec(f"s{len(steps)}", args))
        if case.description and len(case.description) > len(description or ""):
            description = case.description
    # Parameters some step uses, each with one string parameter of hostile text for overrides.
    params.append(Param("text", 'say "cheese" & {{ params.x }} it\'s $(date) `id`'))
    steps.append(StepSpec("uses_text", (Arg(param=len(params) - 1), Arg("--"), Arg(param=0))))
    return Case(tuple(steps), tuple(params), description=description, experiment="prop_real")


OVERRIDE = {"text": "over\nridden {{ ds }} $HOME; echo pwned\t'\"\\ ünï ✓"}
PWNED = Path("/tmp/mlpipe_prop_pwned")


def _received(folder: Path, case: Case) -> dict[str, dict]:
    store = folder / ".mlpipe" / "datastores" / "workspaceblobstore" / "dataset"
    found = {}
    for j, spec in enumerate(case.steps):
        files = sorted(store.glob(f"*/{S.output_name(j)}/args.json"))
        assert len(files) == 1, (spec.name, files)
        found[spec.name] = json.loads(files[0].read_text(encoding="utf-8"))
    return found


def _real_targets():
    return [
        pytest.param(
            t,
            marks=[pytest.mark.xdist_group(t)]
            + ([] if t == "local" else [pytest.mark.integration]),
        )
        for t in ("local", *S.TARGETS)
    ]


@pytest.mark.parametrize("target", _real_targets())
def test_real_orchestrator_delivers_drawn_values_byte_exact(target, tmp_path):
    case = _merged_case()
    folder = tmp_path / "p"
    path = S.write_case(case, folder)
    if PWNED.exists():
        PWNED.unlink()
    outcome = driver(target).run(path, tmp_path / "out", params=OVERRIDE)
    assert outcome.ok, outcome.log[-4000:]
    received = _received(folder, case)
    for spec in case.steps:
        assert received[spec.name]["argv"] == case.expected_args(spec, OVERRIDE), spec.name
        assert received[spec.name]["experiment"] == case.experiment, spec.name
    assert not PWNED.exists()
