"""Run a user's pipeline file with the authoring API and turn what it built into PipelineIR.

The file runs as `__main__` with its folder as the working directory, stdout diverted to stderr
(so `mlpipe ir` output stays clean), and `azureml.*` served by mlpipe. Every problem is reported at
the line of the user's file that caused it.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import importlib
import json
import linecache
import os
import re
import signal
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

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
    _Output,
    _OutputConsumption,
)
from .api.environment import Environment, curated_entry, pip_requirements
from .api.pipeline import Pipeline, PipelineParameter, _Step, compute_name
from .api.workspace import ComputeTarget, _materialise_declared
from .errors import MlpipeError, Problem, UserError

_REPORTED = "\0reported"  # an input whose problem was already reported


@dataclass
class CaptureResult:
    pipelines: list[ir.PipelineIR]
    warnings: list[Problem] = field(default_factory=list)


# ---------------------------------------------------------------------------------- running


def capture(
    target: str | None = None, *, module: str | None = None, timeout: float | None = None
) -> CaptureResult:
    """Capture FILE or FILE:NAME, or with `module=` MODULE[:NAME] as `python -m MODULE` would run
    it from the current directory. Raises MlpipeError with every problem found. `timeout`
    (seconds) stops a file that never finishes, naming the line it was executing.

    Problems and warnings in a notebook name their cell and line (`nb.ipynb:cell 3:line 5`)."""
    try:
        with _time_limit(timeout):
            result = _capture_module(module) if module is not None else _capture(target)
    except MlpipeError as exc:
        raise MlpipeError([p.folded() for p in exc.problems]) from None
    except _CaptureTimeout as exc:  # the limit came while mlpipe itself was working
        raise MlpipeError(
            Problem(
                target or f"-m {module}",
                None,
                f"capture did not finish within {exc.args[0]:g} s: raise --capture-timeout",
            )
        ) from None
    result.warnings = [w.folded() for w in result.warnings]
    return result


def _capture(target: str) -> CaptureResult:
    file_part, selector = split_target(target)
    path = Path(file_part)
    if not path.exists():
        raise MlpipeError(
            Problem(file_part, None, "no such file: check the path to your pipeline file")
        )
    if path.is_dir():
        raise MlpipeError(
            Problem(file_part, None, "is a folder: give the pipeline's .py or .ipynb file")
        )
    if path.suffix == ".ipynb":
        from .notebook import load_notebook

        program = load_notebook(path, file_part)
    else:
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MlpipeError(Problem(file_part, None, f"cannot read the file: {exc}")) from None
        program = Program(chunks=[Chunk(str(path.resolve()), source, path.name, file_part, 0)])
    _refuse_unsupported_steps(program)
    sess = run_program(path.resolve(), program)
    return _select(build_all(sess, path.resolve(), file_part), selector, file_part)


def _capture_module(spec: str) -> CaptureResult:
    cwd = Path.cwd()
    path, name, package, selector = resolve_module(spec, cwd)
    display = path.relative_to(cwd).as_posix()
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MlpipeError(Problem(display, None, f"cannot read the file: {exc}")) from None
    chunk = Chunk(str(path), source, display, display, 0)
    if package:
        chunk.action = lambda namespace: importlib.import_module(package)  # runs __init__.py
    program = Program(chunks=[chunk])
    program.globals = {"__package__": package, "__spec__": _module_spec(name, path)}
    _refuse_unsupported_steps(program)
    sess = run_program(path, program, workdir=cwd)
    return _select(build_all(sess, path, display), selector, display)


def resolve_module(spec: str, cwd: Path) -> tuple[Path, str, str | None, str | None]:
    """`MODULE[:NAME]` -> (file, module name, package, NAME), found in `cwd` as `python -m`
    finds it (sys.path[0] is the current directory; a package runs its `__main__.py`)."""
    name, _, selector = spec.partition(":")
    parts = name.split(".")
    if not name or not all(p.isidentifier() for p in parts):
        raise MlpipeError(
            Problem("-m", None, f"{name!r} is not a module name: write e.g. -m pkg.build_pipeline")
        )
    base = cwd.joinpath(*parts)
    if (base / "__main__.py").is_file():
        return (base / "__main__.py").resolve(), f"{name}.__main__", name, selector or None
    file = base.parent / f"{parts[-1]}.py"
    if file.is_file():
        return file.resolve(), name, ".".join(parts[:-1]) or None, selector or None
    raise MlpipeError(
        Problem(
            "-m",
            None,
            f"no module {name!r} in {cwd} (looked for {file}): run mlpipe from the folder you "
            "run `python -m` from, usually the project root",
        )
    )


def _module_spec(name: str, path: Path):
    import importlib.util

    return importlib.util.spec_from_file_location(name, path)


def _select(result: CaptureResult, selector: str | None, display: str) -> CaptureResult:
    if selector is None:
        return result
    chosen = [p for p in result.pipelines if p.name == selector]
    if not chosen:
        names = ", ".join(p.name for p in result.pipelines)
        raise MlpipeError(
            Problem(
                display, None, f"no pipeline named {selector!r} in this file; it builds: {names}"
            )
        )
    result.pipelines = chosen
    return result


class _CaptureTimeout(BaseException):
    """Raised in the user's code when the time limit is up (a BaseException: `except Exception`
    in the user's code must not swallow it)."""


@contextlib.contextmanager
def _time_limit(seconds: float | None):
    """SIGALRM interrupts the user's code wherever it is (a loop, a sleep, a blocking wait);
    only on the main thread of a POSIX process, elsewhere capture runs without a limit."""
    usable = (
        seconds
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise _CaptureTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _timeout_problem(sess, exc: _CaptureTimeout, chunk: Chunk) -> Problem:
    seconds = exc.args[0]
    chain = _call_chain(sess, exc)
    message = (
        f"capture did not finish within {seconds:g} s; it was executing this line (a loop that "
        "never ends, or a wait on a service?): make the pipeline file build the pipeline without "
        "waiting, or raise --capture-timeout" + _chain_text(sess, chain)
    )
    if not chain:
        return Problem(chunk.display, None, message)
    rel, line, _ = chain[-1]
    return Problem(sess.displays.get(rel, rel), line, message)


def split_target(target: str) -> tuple[str, str | None]:
    """`FILE:NAME` -> (FILE, NAME); a plain existing path is never split."""
    if os.path.exists(target) or ":" not in target:
        return target, None
    file_part, _, name = target.rpartition(":")
    if file_part and os.path.exists(file_part):
        return file_part, name
    return target, None


@dataclass
class Chunk:
    """A piece of user code: a whole .py file, or one notebook cell."""

    filename: str  # as compiled (what tracebacks show)
    source: str
    rel: str  # Origin.file: relative to the pipeline folder ("nb.ipynb:cell 3" for a cell)
    display: str  # what error messages show, e.g. "nb.ipynb:cell 3"
    line_offset: int
    # callable(namespace) run when the chunk runs, before its code (a notebook's %%writefile)
    action: object = None


@dataclass
class Program:
    chunks: list[Chunk]
    warnings: list[Problem] = field(default_factory=list)
    before_chunk: object = None  # callable(chunk), called before each chunk runs
    globals: dict = field(default_factory=dict)  # extra names the code sees (notebook builtins)


class _UserFailure(Exception):
    def __init__(self, problem: Problem, after_submit: bool = False):
        self.problem = problem
        self.after_submit = after_submit


def _refuse_unsupported_steps(program: Program) -> None:
    """Step types mlpipe cannot build fail before anything runs, each at the line building it."""
    from .api.unsupported import find_unsupported_steps, message

    found = find_unsupported_steps([c.source for c in program.chunks])
    if found:
        raise MlpipeError(
            [Problem(program.chunks[i].display, line, message(name)) for i, line, name in found]
        )


def run_program(path: Path, program: Program, workdir: Path | None = None) -> _session.Session:
    """Run the program as `__main__`: in the file's folder, or in `workdir` (`-m`)."""
    pipeline_dir = workdir or path.parent
    sess = _session.Session(pipeline_dir, {c.filename: c.rel for c in program.chunks})
    sess.displays = {c.rel: c.display for c in program.chunks}
    sess.program_warnings = list(program.warnings)
    compiled = []
    for chunk in program.chunks:
        try:
            compiled.append(
                (chunk, compile(chunk.source, chunk.filename, "exec", dont_inherit=True))
            )
        except SyntaxError as exc:
            raise MlpipeError(
                Problem(
                    chunk.display, exc.lineno, f"syntax error: {exc.msg}; fix the code at this line"
                )
            ) from None
        linecache.cache[chunk.filename] = (
            len(chunk.source),
            None,
            chunk.source.splitlines(keepends=True),
            chunk.filename,
        )
    import mlpipe.azureml  # noqa: F401  (installs the azureml.* import hook)

    from .api._network import caused_by_refusal, no_network

    cells = len(program.chunks) > 1
    saved_cwd = os.getcwd()
    saved_path = list(sys.path)
    saved_argv = list(sys.argv)
    saved_modules = set(sys.modules)
    saved_environ = dict(os.environ)  # a project's settings loader (.env) must not outlive it
    previous = _session.activate(sess)
    namespace = {"__name__": "__main__", "__file__": str(path), "__builtins__": builtins}
    namespace["help"] = _skipped_help(sess)
    namespace.update(program.globals)
    try:
        os.chdir(pipeline_dir)
        sys.path.insert(0, str(pipeline_dir))
        sys.argv = [str(path)]
        with contextlib.redirect_stdout(sys.stderr), no_network(sess):
            for chunk, code in compiled:
                if program.before_chunk is not None:
                    program.before_chunk(chunk)
                try:
                    if chunk.action is not None:
                        chunk.action(namespace)
                    exec(code, namespace)
                except _CaptureTimeout as exc:
                    raise _UserFailure(_timeout_problem(sess, exc, chunk)) from None
                except SystemExit as exc:
                    if exc.code not in (None, 0):
                        raise _UserFailure(_exit_problem(sess, exc, chunk)) from None
                    break
                except BaseException as exc:  # noqa: BLE001 - the user's code may raise anything
                    if isinstance(exc, KeyboardInterrupt | MlpipeError):
                        raise  # an MlpipeError already names its place (e.g. mlpipe.yaml:3)
                    problem = _problem_from_exception(sess, exc, chunk)
                    where = ir.Origin(file=_rel_of(sess, problem.file), line=problem.line or 1)
                    harmless = getattr(exc, "harmless_after_submit", False)
                    if isinstance(exc, UserError) and not harmless:
                        raise _UserFailure(problem) from None
                    refused = caused_by_refusal(sess, exc)
                    if refused and (cells or _everything_submitted(sess)):
                        # A download or REST call: offline, the rest of this cell cannot run;
                        # a notebook goes on with its next cell.
                        _note_skipped(sess, where, "cell" if cells else "file")
                        continue
                    if _everything_submitted(sess):
                        # Code after the last submit/publish (polling, REST calls, downloads)
                        # cannot change what was captured: note it and carry on.
                        sess.warn(
                            "ignored an error raised after the pipeline was submitted: "
                            + _exception_text(exc),
                            where,
                        )
                        continue
                    raise _UserFailure(problem) from None
    except _UserFailure as failure:
        raise MlpipeError(failure.problem) from None
    finally:
        _session.activate(previous)
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        sys.argv = saved_argv
        if os.environ != saved_environ:
            os.environ.clear()
            os.environ.update(saved_environ)
        for chunk in program.chunks:
            linecache.cache.pop(chunk.filename, None)
        for name in set(sys.modules) - saved_modules:
            if name.split(".")[0] in ("mlpipe", "azureml"):
                continue  # mlpipe's own modules (a project may hold mlpipe's checkout)
            mod_file = getattr(sys.modules.get(name), "__file__", None) or ""
            if mod_file.startswith(str(pipeline_dir)):
                del sys.modules[name]
    sess.namespace = namespace
    return sess


def _skipped_help(sess):
    """`help(obj)` in a pipeline file or notebook: documentation is not the pipeline, and the
    interactive form would wait for input forever."""

    def help(*args, **kwargs):  # noqa: A001 - stands in for the builtin
        what = ", ".join(getattr(a, "__name__", type(a).__name__) for a in args)
        sess.warn(f"help({what}) skipped: capture does not print documentation")

    return help


def _note_skipped(sess, where: ir.Origin, unit: str) -> None:
    note = f"the rest of this {unit} was not run"
    if sess.warnings and sess.warnings[-1][0] == where:
        origin, message = sess.warnings[-1]
        if message.startswith("network access refused"):
            sess.warnings[-1] = (origin, f"{message}; {note}")
            return
    sess.warn(f"{note}: it needs the network, which capture refuses", where)


def _exception_text(exc: BaseException) -> str:
    if isinstance(exc, UserError):
        return exc.message
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().replace("\n", " ")


def _rel_of(sess, display: str) -> str:
    for rel, disp in sess.displays.items():
        if disp == display:
            return rel
    return display


def _everything_submitted(sess) -> bool:
    return bool(sess.pipelines) and all(p._submissions or p._publications for p in sess.pipelines)


def _exit_problem(sess, exc: SystemExit, chunk: Chunk) -> Problem:
    """`sys.exit(1)` / `exit(1)`: where, and the error being handled then (v1 helpers often
    `print(e); exit(1)` in an `except`, which hides the cause)."""
    chain = _call_chain(sess, exc)
    message = f"the file called sys.exit({exc.code!r})"
    cause = exc.__context__
    if cause is not None and not isinstance(cause, SystemExit):
        inner = _problem_from_exception(sess, cause, chunk)
        message += f" while handling an error: {inner.message} (raised at {inner.where})"
    else:
        message += _chain_text(sess, chain)
    if not chain:
        return Problem(chunk.display, None, message)
    rel, line, _ = chain[-1]
    return Problem(sess.displays.get(rel, rel), line, message)


def _call_chain(sess, exc) -> list[tuple[str, int, str]]:
    """The traceback's frames in the user's project, outermost first: (file, line, function)."""
    tb = exc.__traceback__
    chain = []
    while tb is not None:
        code = tb.tb_frame.f_code
        rel = sess.project_file(code.co_filename)
        if rel is not None:
            chain.append((rel, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return chain


def _chain_text(sess, chain) -> str:
    """` (called from a.py:40 -> util/b.py:12 in get_compute)`, or "" for a single frame."""
    if len(chain) < 2:
        return ""
    parts = []
    for rel, line, func in chain:
        where = Problem(sess.displays.get(rel, rel), line, "").where
        parts.append(where if func == "<module>" else f"{where} in {func}()")
    return " (call chain: " + " -> ".join(parts) + ")"


def _problem_from_exception(sess, exc: BaseException, chunk: Chunk | None = None) -> Problem:
    fallback = chunk.display if chunk is not None else next(iter(sess.displays.values()))
    chain = _call_chain(sess, exc)
    innermost = ir.Origin(file=chain[-1][0], line=chain[-1][1]) if chain else None
    if isinstance(exc, UserError):
        origin = exc.origin
        if origin is None or (origin.file, origin.line) in {(f, n) for f, n, _ in chain}:
            origin = innermost  # the API's guess was the call site: the innermost line is better
        else:
            chain = []
        file = sess.displays.get(origin.file, origin.file) if origin else fallback
        return Problem(
            file, origin.line if origin else None, exc.message + _chain_text(sess, chain)
        )
    text = _exception_text(exc)
    file = sess.displays.get(innermost.file, innermost.file) if innermost else fallback
    return Problem(
        file,
        innermost.line if innermost else None,
        f"your code raised {text}; fix the code at this line" + _chain_text(sess, chain),
    )


def _innermost_origin(sess, exc) -> ir.Origin | None:
    chain = _call_chain(sess, exc)
    return ir.Origin(file=chain[-1][0], line=chain[-1][1]) if chain else None


# ------------------------------------------------------------------------------- IR building


def build_all(sess, path: Path, display: str) -> CaptureResult:
    warnings = list(getattr(sess, "program_warnings", []))
    if not sess.pipelines:
        raise MlpipeError(
            Problem(
                display,
                None,
                "the file builds no Pipeline: create one with Pipeline(workspace=ws, "
                "steps=[...]) (and usually submit it)",
            )
        )
    names = _pipeline_names(sess, path)
    problems: list[Problem] = []
    pipelines = []
    for pipeline, name in zip(sess.pipelines, names, strict=True):
        builder = _Builder(sess, pipeline, name, path)
        result = builder.build()
        problems.extend(builder.problems)
        if result is not None and not builder.problems:
            from .passes.validate import validate

            problems.extend(validate(result, sess))
            pipelines.append(result)
    for origin, message in sess.warnings:
        file = sess.displays.get(origin.file, origin.file) if origin else display
        warnings.append(Problem(file, origin.line if origin else None, message))
    if problems:
        raise MlpipeError(_dedupe(problems))
    return CaptureResult(pipelines=pipelines, warnings=_dedupe(warnings))


def pipeline_problems(pipeline) -> list[Problem]:
    """Problems of one Pipeline object (v1's `Pipeline.validate()`)."""
    sess = _session.current()
    builder = _Builder(sess, pipeline, "pipeline", sess.pipeline_dir / "pipeline.py")
    result = builder.build()
    problems = list(builder.problems)
    if result is not None and not problems:
        from .passes.validate import validate

        problems.extend(validate(result, sess))
    return problems


def _dedupe(items: list[Problem]) -> list[Problem]:
    seen = set()
    out = []
    for p in items:
        key = (p.file, p.line, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


_NAME_CLEAN = re.compile(r"[^A-Za-z0-9_.-]+")


# Publish / experiment names that change from one run to the next (timestamps, uuids) would make
# artifact names non-deterministic: they are used only when nothing steadier is available.
_VOLATILE = re.compile(
    r"\d{4}[-_./]?\d{2}[-_./]?\d{2}|\d{1,2}[-_./]\d{1,2}[-_./]\d{2,4}|\d{1,2}[-_:]\d{2}[-_:]\d{2}"
    r"|\d{9,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-"
)


def _pipeline_names(sess, path: Path) -> list[str]:
    """Unique, deterministic names: experiment / publish name, else variable name, else file stem."""
    variables: dict[int, str] = {}
    for var, value in getattr(sess, "namespace", {}).items():
        if isinstance(value, Pipeline) and id(value) not in variables and not var.startswith("_"):
            variables[id(value)] = var
    candidates = []
    for p in sess.pipelines:
        named = [sub.experiment for sub in p._submissions]
        named += [s._ir.experiment_name for s in p._schedules if s._ir.experiment_name]
        named += [pub._ir.endpoint for pub in p._publications if pub._ir.endpoint]
        named += [pub.name for pub in p._publications]
        steady = [x for x in named if not _VOLATILE.search(x)]
        volatile = [x for x in named if _VOLATILE.search(x)]
        c = steady + ([variables[id(p)]] if id(p) in variables else []) + [path.stem] + volatile
        cleaned = [_short_name(_NAME_CLEAN.sub("_", x).strip("_")) for x in c]
        candidates.append(list(dict.fromkeys(x for x in cleaned if x)) or [path.stem])
    if len(sess.pipelines) == 1:
        return [candidates[0][0]]
    taken: set[str] = set()
    names = []
    for i, c in enumerate(candidates):
        others = {x for j, cc in enumerate(candidates) if j != i for x in cc[:1]}
        chosen = next((x for x in c if x not in taken and x not in others), None)
        if chosen is None:
            base = c[0]
            k = 2
            while f"{base}_{k}" in taken:
                k += 1
            chosen = f"{base}_{k}"
        taken.add(chosen)
        names.append(chosen)
    return names


_NAME_MAX = 100


def _short_name(name: str) -> str:
    """Names become file names and orchestrator ids: a long one keeps its start and a hash of
    the whole (experiment names may have 256 characters; file names fail from about 230)."""
    if len(name) <= _NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _NAME_MAX - 9]}-{digest}"


def pipeline_steps(pipeline) -> list:
    """The steps a Pipeline object runs (its listed steps plus the closure), in creation order."""
    sess = _session.current()
    return _Builder(sess, pipeline, "pipeline", sess.pipeline_dir / "pipeline.py").steps()


def _scalar_ok(value) -> bool:
    return isinstance(value, bool | int | float | str)


class _Builder:
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
            )
        except Exception as exc:  # pydantic validation of user-provided values
            self.problem(self.p.origin, f"cannot represent this pipeline: {exc}")
            return None

    # ---- one step
    def build_step(self, step: _Step, producers, in_pipeline) -> ir.Step | None:
        inputs: list[ir.StepInput] = []
        outputs: list[ir.StepOutput] = []
        input_keys: dict[object, str] = {}
        output_uids: dict[int, str] = {}

        for _i, obj in enumerate(self._declared_outputs(step)):
            if obj._uid not in self.output_names or self.output_names[obj._uid][0] != step.name:
                continue
            out_name = self.output_names[obj._uid][1]
            if out_name in output_uids.values():
                self.problem(
                    step.origin,
                    f"step {step.name!r} has two outputs named {out_name!r}: "
                    "give them different names",
                )
                continue
            output_uids[obj._uid] = out_name
            outputs.append(self.build_output(step, obj, out_name))

        def add_input(key, make) -> str | None:
            if key in input_keys:
                return input_keys[key]
            made = make(len(inputs))
            if made is None:  # already reported: don't report the same object again
                input_keys[key] = _REPORTED
                return _REPORTED
            name = made.name
            existing = {x.name for x in inputs}
            if name in existing:
                k = 2
                while f"{name}_{k}" in existing:
                    k += 1
                made.name = name = f"{name}_{k}"
            inputs.append(made)
            input_keys[key] = name
            return name

        def consume(obj) -> str | None:
            """Register `obj` as an input if it is one; return its input name."""
            if isinstance(obj, PipelineData):
                if obj._uid in output_uids:
                    return None
                return add_input(
                    ("out", obj._uid, obj._data_name),
                    lambda i: self.output_input(
                        step, obj, obj._data_name, "mount", None, None, producers, in_pipeline
                    ),
                )
            if isinstance(obj, _OutputConsumption):
                return add_input(
                    ("out", obj._uid, obj.name),
                    lambda i: self.output_input(
                        step,
                        obj.output,
                        obj.name,
                        obj.mode,
                        obj.path_on_compute,
                        obj.tabular,
                        producers,
                        in_pipeline,
                    ),
                )
            if isinstance(obj, OutputTabularDatasetConfig):
                c = obj.as_input()
                return consume(c)
            if isinstance(obj, DatasetConsumptionConfig):
                return add_input(
                    ("ds", id(obj.dataset), obj.name, obj.mode),
                    lambda i: self.dataset_input(step, obj, i),
                )
            if isinstance(obj, AbstractDataset):
                mode = "direct" if obj._type == "tabular" else "mount"
                return consume(DatasetConsumptionConfig(None, obj, mode=mode))
            if isinstance(obj, DataReference):
                return add_input(
                    ("dr", obj.datastore_name, obj.path_on_datastore, obj.data_reference_name),
                    lambda i: ir.StepInput(
                        name=obj.data_reference_name or f"input_{i}",
                        source=ir.DataPathSource(
                            path=ir.DataPath(
                                datastore=obj.datastore_name, path=obj.path_on_datastore
                            )
                        ),
                        mode=obj.mode if obj.mode in ("mount", "download") else "mount",
                        path_on_compute=obj.path_on_compute,
                        overwrite=bool(obj.overwrite),
                    ),
                )
            if isinstance(obj, DataPath):
                return consume((obj, DataPathComputeBinding()))
            if (
                isinstance(obj, tuple)
                and len(obj) == 2
                and isinstance(obj[1], DataPathComputeBinding)
            ):
                target, binding = obj
                if isinstance(target, PipelineParameter):
                    self.register_param(target)
                    return add_input(
                        ("pp", target.name, binding._mode),
                        lambda i: ir.StepInput(
                            name=target.name,
                            source=ir.ParameterSource(parameter=target.name),
                            mode=binding._mode,
                            path_on_compute=binding.path_on_compute,
                            overwrite=bool(binding.overwrite),
                        ),
                    )
                if isinstance(target, DataPath):
                    return add_input(
                        ("dp", target.datastore_name, target.path_on_datastore, binding._mode),
                        lambda i: ir.StepInput(
                            name=target.name or f"input_{i}",
                            source=ir.DataPathSource(
                                path=ir.DataPath(
                                    datastore=target.datastore_name, path=target.path_on_datastore
                                )
                            ),
                            mode=binding._mode,
                            path_on_compute=binding.path_on_compute,
                            overwrite=bool(binding.overwrite),
                        ),
                    )
            return None

        for obj in step._inputs:
            if isinstance(obj, _Output) and not isinstance(obj, PipelineData):
                self.problem(
                    step.origin,
                    f"step {step.name!r} lists output {obj.name or 'OutputFileDatasetConfig'!r} "
                    "in inputs=: consume it with .as_input()",
                )
                continue
            if consume(obj) is None and not (
                isinstance(obj, PipelineData) and obj._uid in output_uids
            ):
                self.problem(
                    step.origin,
                    f"step {step.name!r}: inputs= holds a {type(obj).__name__}, which "
                    "is not a dataset, DataReference, PipelineData or step output",
                )

        def argument(value, where: str):
            if isinstance(value, PipelineParameter):
                self.register_param(value)
                return ir.ParameterArg(name=value.name)
            if isinstance(value, _Output):
                if value._uid in output_uids:
                    return ir.OutputArg(name=output_uids[value._uid])
                if isinstance(value, PipelineData):
                    key = ("out", value._uid, value._data_name)
                    if input_keys.get(key) is _REPORTED:
                        return None
                    if key in input_keys:
                        return ir.InputArg(name=input_keys[key])
                    self.problem(
                        step.origin,
                        f"PipelineData {value.name!r} is in the {where} of step "
                        f"{step.name!r} but not in its inputs= or outputs=: list it there too",
                    )
                    return None
            name = consume(value)
            if name is _REPORTED:
                return None
            if name is not None:
                return ir.InputArg(name=name)
            if _scalar_ok(value):
                return ir.LiteralArg(value=value)
            if value is None:
                return ir.LiteralArg(value="None")
            return ir.LiteralArg(value=str(value))

        arguments = [
            a for a in (argument(v, "arguments") for v in step._arguments) if a is not None
        ]
        command = None
        if step._command is not None:
            command = [a for a in (argument(v, "command") for v in step._command) if a is not None]
        params: dict[str, ir.LiteralArg | ir.ParameterArg] = {}
        for k, v in step._params.items():
            if isinstance(v, PipelineParameter):
                self.register_param(v)
                params[str(k)] = ir.ParameterArg(name=v.name)
            else:
                params[str(k)] = ir.LiteralArg(value=v if _scalar_ok(v) else str(v))

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
                inputs=inputs,
                outputs=outputs,
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
    allowed = {
        "namespace",
        "service_account",
        "node_selector",
        "tolerations",
        "image_pull_secrets",
        "default_image",
    }
    out = {k: v for k, v in (raw or {}).items() if k in allowed}
    if "node_selector" in out:
        out["node_selector"] = {str(k): str(v) for k, v in out["node_selector"].items()}
    if "tolerations" in out:
        out["tolerations"] = [{str(k): str(v) for k, v in t.items()} for t in out["tolerations"]]
    return out


def _default_images() -> set:
    from .api.environment import _DEFAULT_IMAGES

    return _DEFAULT_IMAGES | {None}


def _path_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "step"
