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
from .api import _session
from .api.pipeline import Pipeline
from .build import Builder
from .errors import MlpipeError, Problem, UserError
from .program import Chunk, Program


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
    compiled = _compile_chunks(program)
    import mlpipe.azureml  # noqa: F401  (installs the azureml.* import hook)

    from .api._network import no_network

    namespace = {"__name__": "__main__", "__file__": str(path), "__builtins__": builtins}
    namespace["help"] = _skipped_help(sess)
    namespace.update(program.globals)
    try:
        with _running_as_main(sess, path, pipeline_dir, program):
            with contextlib.redirect_stdout(sys.stderr), no_network(sess):
                for chunk, code in compiled:
                    if not _run_chunk(sess, program, chunk, code, namespace):
                        break
    except _UserFailure as failure:
        raise MlpipeError(failure.problem) from None
    sess.namespace = namespace
    return sess


def _compile_chunks(program: Program) -> list:
    """(chunk, code) for every chunk, each in linecache so tracebacks show its lines."""
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
    return compiled


@contextlib.contextmanager
def _running_as_main(sess, path: Path, pipeline_dir: Path, program: Program):
    """The process as `python path` sets it up (session, cwd, sys.path, argv), put back after:
    the user's own modules are forgotten, so the next capture imports them afresh."""
    saved_cwd = os.getcwd()
    saved_path = list(sys.path)
    saved_argv = list(sys.argv)
    saved_modules = set(sys.modules)
    saved_environ = dict(os.environ)  # a project's settings loader (.env) must not outlive it
    previous = _session.activate(sess)
    try:
        os.chdir(pipeline_dir)
        sys.path.insert(0, str(pipeline_dir))
        sys.argv = [str(path)]
        yield
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


def _run_chunk(sess, program: Program, chunk: Chunk, code, namespace: dict) -> bool:
    """Run one chunk (a file or a cell); False when the program exited (sys.exit(0))."""
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
        return False
    except BaseException as exc:  # noqa: BLE001 - the user's code may raise anything
        if isinstance(exc, KeyboardInterrupt | MlpipeError):
            raise  # an MlpipeError already names its place (e.g. mlpipe.yaml:3)
        _after_user_error(sess, exc, chunk, cells=len(program.chunks) > 1)
    return True


def _after_user_error(sess, exc: BaseException, chunk: Chunk, cells: bool) -> None:
    """An error the user's code raised: fail the capture, or note it and go on when it cannot
    change what was captured."""
    from .api._network import caused_by_refusal

    problem = _problem_from_exception(sess, exc, chunk)
    where = ir.Origin(file=_rel_of(sess, problem.file), line=problem.line or 1)
    harmless = getattr(exc, "harmless_after_submit", False)
    if isinstance(exc, UserError) and not harmless:
        raise _UserFailure(problem) from None
    if caused_by_refusal(sess, exc) and (cells or _everything_submitted(sess)):
        # A download or REST call: offline, the rest of this cell cannot run;
        # a notebook goes on with its next cell.
        _note_skipped(sess, where, "cell" if cells else "file")
        return
    if _everything_submitted(sess):
        # Code after the last submit/publish (polling, REST calls, downloads)
        # cannot change what was captured: note it and carry on.
        sess.warn(
            "ignored an error raised after the pipeline was submitted: " + _exception_text(exc),
            where,
        )
        return
    raise _UserFailure(problem) from None


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
        builder = Builder(sess, pipeline, name, path)
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
