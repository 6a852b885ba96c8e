"""Run a step script as `python script.py args...` would, with `mlpipe` and `azureml.*` importable.

Invoked by the runtime as `[python, launch.py, script, *args]` (or `launch.py -m module ...` /
`launch.py -c code ...` for command steps), so `sys.argv[1:]` is exactly the step's arguments and the
script runs as `__main__` with its real `__file__`. Works in any interpreter, including an environment
venv without mlpipe installed: `MLPIPE_PACKAGE_DIR` names the mlpipe package folder, served through a
meta-path finder; `azureml` and `azureml.*` are aliases of `mlpipe.azureml` and `mlpipe.azureml.*`
(the very same module objects). Standard library only.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import traceback
import types

ALIASES = {"azureml": "mlpipe.azureml"}


class _MlpipeFinder:
    """Serves the top-level package `mlpipe` from a folder (its submodules load from __path__)."""

    def __init__(self, package_dir: str):
        self.package_dir = package_dir

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "mlpipe":
            return None
        init = os.path.join(self.package_dir, "__init__.py")
        if not os.path.isfile(init):
            return None
        return importlib.util.spec_from_file_location(
            "mlpipe", init, submodule_search_locations=[self.package_dir]
        )


class _AliasLoader:
    def __init__(self, target: str):
        self.target = target
        self._real_spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._real_spec = getattr(module, "__spec__", None)
        if self.target == "mlpipe.azureml":
            _preseed_run()
        return module

    def exec_module(self, module):
        # The import system stamped the alias spec onto the module; give it back its own.
        if self._real_spec is not None:
            module.__spec__ = self._real_spec


class _AliasFinder:
    """`azureml.x.y` is `mlpipe.azureml.x.y`: importing either gives the same module object."""

    def __init__(self, aliases: dict[str, str]):
        self.aliases = aliases

    def find_spec(self, fullname, path=None, target=None):
        head, _, rest = fullname.partition(".")
        if head not in self.aliases:
            return None
        real = self.aliases[head] + ("." + rest if rest else "")
        try:
            if importlib.util.find_spec(real) is None:
                return None
        except (ImportError, ValueError):
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real), is_package=True)


def install_import_hooks(package_dir: str | None = None, aliases: dict[str, str] | None = None):
    """Make `mlpipe` (from package_dir) and the `azureml` aliases importable in this interpreter."""
    if package_dir:
        sys.meta_path.insert(0, _MlpipeFinder(package_dir))
    sys.meta_path.insert(0, _AliasFinder(aliases or ALIASES))


def _preseed_run() -> None:
    """Make `azureml.core.Run` resolvable without the authoring API (and so without pydantic).

    Called when a script first imports `azureml`.

    `mlpipe.azureml` may resolve names lazily through `mlpipe.api`, which needs the compiler's
    dependencies; a step environment has only the runtime. `Run` is the runtime's own class, so it is
    put in place up front; every other name still resolves through mlpipe.azureml.
    """
    try:
        from mlpipe.runtime.context import Run
    except Exception:
        return
    for name in ("mlpipe.azureml.core", "mlpipe.azureml.core.run"):
        try:
            module = importlib.import_module(name)
        except Exception:
            continue
        if "Run" not in module.__dict__:
            try:
                module.__dict__["Run"] = Run
            except Exception:
                pass


def _run_main_code(code, filename: str | None, loader=None) -> None:
    main = types.ModuleType("__main__")
    main.__dict__.update(
        {"__builtins__": builtins, "__file__": filename, "__cached__": None, "__loader__": loader}
    )
    if filename is None:
        del main.__file__
    main.__spec__ = None
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def _report(exc: BaseException) -> int:
    """Print the traceback without the launcher's own frames; return the exit status."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)
    return 1


def main(argv: list[str]) -> int:
    if not argv:
        print(
            "usage: launch.py SCRIPT [ARGS...] | -m MODULE [ARGS...] | -c CODE [ARGS...]",
            file=sys.stderr,
        )
        return 2
    install_import_hooks(os.environ.get("MLPIPE_PACKAGE_DIR"))
    try:
        if argv[0] == "-m" and len(argv) >= 2:
            import runpy

            sys.argv = [argv[1], *argv[2:]]
            sys.path[0] = os.getcwd()
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        elif argv[0] == "-c" and len(argv) >= 2:
            sys.argv = ["-c", *argv[2:]]
            sys.path[0] = ""
            _run_main_code(compile(argv[1], "<string>", "exec"), None)
        else:
            script = os.path.abspath(argv[0])
            sys.argv = [argv[0], *argv[1:]]
            sys.path[0] = os.path.dirname(script)
            if os.getcwd() != sys.path[0]:
                # The snapshot root (the working folder) is importable, as on Azure ML:
                # `from util.helper import x` in training/train.py finds <source_directory>/util.
                sys.path.insert(1, os.getcwd())
            with open(script, "rb") as fh:
                source = fh.read()
            code = compile(source, script, "exec")
            loader = importlib.machinery.SourceFileLoader("__main__", script)
            _run_main_code(code, script, loader)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - mirror the interpreter's top level
        return _report(exc)
    return 0


if __name__ == "__main__":
    _status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.exit(_status)
