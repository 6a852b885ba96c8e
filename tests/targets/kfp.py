"""KFP driver: compile with `mlpipe compile --target kfp`, then load the YAML with
`kfp.components.load_component_from_file` and call it under
`kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False))` in `.venvs/kfp`.

Each run is one `.venvs/kfp/bin/python` process (kfp's import costs ~2 s; there is no server or
database to set up, so nothing is shared across a session). The step environments the runtime
builds are cached in MLPIPE_CACHE_DIR like on every target.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import Driver, RunOutcome, child_env, python_of, run_cmd

# Runs inside .venvs/kfp: argv = YAML path, pipeline root, JSON of the pipeline arguments.
RUNNER = r"""
import json, sys
from kfp import components, local

path, root, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root)
pipeline = components.load_component_from_file(path)
try:
    pipeline(**arguments)
except RuntimeError as exc:  # kfp.local: "Pipeline ... finished with status FAILURE"
    print(f"kfp-driver: {exc}", file=sys.stderr)
    sys.exit(1)
"""

RUN_ID = re.compile(r"mlpipe: KFP run (\S+):")


def pipeline_files(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*.yaml") if not p.name.endswith(".deploy.yaml"))


class KfpDriver(Driver):
    name = "kfp"

    def run(self, pipeline, out, *, params=None, regenerate=False):
        self.compile(pipeline, out)
        from mlpipe.backends.kfp import parameter_input

        # KFP input names are the parameter names in identifier form (`learning-rate` -> ...).
        arguments = {parameter_input(k): v for k, v in (params or {}).items()}
        if regenerate:
            arguments["regenerate_outputs"] = True
        files = pipeline_files(out)
        assert len(files) == 1, f"expected one pipeline YAML in {out}, found {files}"
        proc = run_cmd(
            [
                python_of("kfp"),
                "-c",
                RUNNER,
                str(files[0]),
                str(out / "kfp_local_root"),
                json.dumps(arguments),
            ],
            env=child_env(),
            cwd=str(out),
        )
        log = proc.stdout + proc.stderr
        found = RUN_ID.search(log)
        return RunOutcome(
            ok=proc.returncode == 0, log=log, run_id=found.group(1) if found else None
        )


DRIVER = KfpDriver()
