"""The steps of a pipeline: `PythonScriptStep`, `CommandStep`, `StepSequence`."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from ._session import current, fail
from ._v1 import V1Object
from .data import _check_text
from .environment import RunConfiguration
from .workspace import ComputeTarget

# ----------------------------------------------------------------------------------------- steps


class _Step(V1Object):
    def __init__(
        self,
        name,
        *,
        script_name=None,
        command=None,
        arguments=None,
        compute_target=None,
        runconfig=None,
        inputs=None,
        outputs=None,
        params=None,
        source_directory=None,
        allow_reuse=True,
        version=None,
        hash_paths=None,
    ):
        sess = current()
        self._seq = sess.next_seq()
        self.origin = sess.origin()
        if not isinstance(name, str) or not name.strip():
            raise fail("a step needs a non-empty name (or a script_name to default it from)")
        self.name = name
        self.script_name = script_name
        self._command = command
        self._arguments = list(arguments or [])
        self._inputs = list(inputs or [])
        self._outputs = list(outputs or [])
        self._params = dict(params or {})
        self._runconfig = runconfig
        self._compute = compute_target
        self._source_directory = source_directory
        self.allow_reuse = bool(allow_reuse)
        self._version = None if version is None else str(version)
        self._run_after: list[_Step] = []
        self._cwd = Path(os.getcwd())
        sess.steps.append(self)
        if hash_paths:
            sess.warn("hash_paths is deprecated and ignored: the whole source_directory is hashed")
        for bad in (self._arguments, self._inputs, self._outputs):
            if not isinstance(bad, list):
                raise fail("arguments, inputs and outputs must be lists")
        _check_text(name, "step name")
        for value in [*self._arguments, *(command or [])]:
            _check_text(value, f"step {name!r}: argument")
        for key, value in self._params.items():
            _check_text(key, f"step {name!r}: params name")
            _check_text(value, f"step {name!r}: params value")
        if not isinstance(allow_reuse, bool):
            raise fail("allow_reuse must be True or False")

    def run_after(self, step):
        if not isinstance(step, _Step):
            raise fail(f"run_after() needs a step, got {type(step).__name__}")
        self._run_after.append(step)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class PythonScriptStep(_Step):
    def __init__(
        self,
        script_name,
        name=None,
        arguments=None,
        compute_target=None,
        runconfig=None,
        runconfig_pipeline_params=None,
        inputs=None,
        outputs=None,
        params=None,
        source_directory=None,
        allow_reuse=True,
        version=None,
        hash_paths=None,
    ):
        if not isinstance(script_name, str) or not script_name:
            raise fail(
                "PythonScriptStep needs script_name, the script to run inside source_directory"
            )
        super().__init__(
            name if name is not None else script_name,
            script_name=script_name,
            arguments=arguments,
            compute_target=compute_target,
            runconfig=runconfig,
            inputs=inputs,
            outputs=outputs,
            params=params,
            source_directory=source_directory,
            allow_reuse=allow_reuse,
            version=version,
            hash_paths=hash_paths,
        )
        if runconfig_pipeline_params:
            current().warn(
                "runconfig_pipeline_params is ignored: set the values on the RunConfiguration"
            )


class CommandStep(_Step):
    def __init__(
        self,
        command=None,
        name=None,
        compute_target=None,
        runconfig=None,
        runconfig_pipeline_params=None,
        inputs=None,
        outputs=None,
        params=None,
        source_directory=None,
        allow_reuse=True,
        version=None,
    ):
        from .run_config import ScriptRunConfig

        exact = False  # a script + arguments: the arguments reach the script as they are
        if isinstance(runconfig, ScriptRunConfig):
            src = runconfig
            if command is None:
                if src.command:
                    command = [*src.command, *src.arguments]
                else:
                    command = ["python", src.script, *src.arguments]
                    exact = True
            source_directory = source_directory or src.source_directory
            compute_target = compute_target or src.compute_target
            runconfig = src.run_config
        if command is None:
            raise fail("CommandStep needs a command (a string or a list)")
        if isinstance(command, tuple):
            command = list(command)
        if isinstance(command, str):
            command = [command]
        if not isinstance(command, list) or not command:
            raise fail("CommandStep command must be a non-empty string or list")
        if not exact:
            command = split_command(command)
        super().__init__(
            name if name is not None else "command_step",
            command=command,
            compute_target=compute_target,
            runconfig=runconfig,
            inputs=inputs,
            outputs=outputs,
            params=params,
            source_directory=source_directory,
            allow_reuse=allow_reuse,
            version=version,
        )


_SHELL_OPERATORS = {"&&", "||", "|", ";", ">", ">>", "<", "2>", "2>&1", "&", "|&"}


def split_command(command: list) -> list:
    """v1 joins a command list with spaces and hands it to a shell, so a string item such as
    'python train.py --epochs 30' holds several arguments: split string items like a POSIX shell
    would (an item naming an existing path is kept whole). Data and parameter items stay single
    arguments. mlpipe runs commands without a shell, so shell syntax is refused."""
    out: list = []
    for item in command:
        if not isinstance(item, str) or not any(c.isspace() for c in item):
            out.append(item)
            continue
        if os.path.exists(item):
            out.append(item)
            continue
        try:
            words = shlex.split(item)
        except ValueError as exc:
            raise fail(f"CommandStep command item {item!r} cannot be split: {exc}") from None
        bad = [w for w in words if w in _SHELL_OPERATORS or w.startswith(("$(", "`"))]
        if bad:
            raise fail(
                f"CommandStep command uses shell syntax ({bad[0]!r}); mlpipe runs commands "
                "without a shell: put the commands in a script and run that instead, e.g. "
                "command=['bash', 'run.sh']"
            )
        out.extend(words)
    return out


class StepSequence(V1Object):
    """Steps (or lists of steps) that run one after another."""

    def __init__(self, steps=None):
        if not steps:
            raise fail("StepSequence needs a list of steps")
        self._steps = list(steps)
        self.origin = current().origin()


def compute_name(compute) -> str | None:
    if compute is None:
        return None
    if isinstance(compute, ComputeTarget):
        return compute.name
    if isinstance(compute, str):
        return compute
    if isinstance(compute, tuple) and compute and isinstance(compute[0], str):
        return compute[0]
    raise fail(
        f"compute_target must be a ComputeTarget, a name or a (name, type) tuple; got "
        f"{type(compute).__name__}"
    )


def runconfig_of(step) -> RunConfiguration | None:
    return step._runconfig
