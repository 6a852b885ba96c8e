"""Test-only (on PYTHONPATH in the object-store tests): a step process runs as on a fresh machine.

When MLPIPE_TEST_FRESH_MACHINE names an existing folder, every `python -m mlpipe.runtime run-step`
(Airflow, Prefect) or KFP executor process gets a new folder there as its HOME, TMPDIR and
MLPIPE_CACHE_DIR before anything else is imported: nothing local is shared between steps.
"""

import os
import sys
import tempfile

_root = os.environ.get("MLPIPE_TEST_FRESH_MACHINE", "")
_argv = sys.argv[:2]
if (
    _root
    and os.path.isdir(_root)
    and (_argv == ["-m", "run-step"] or "--executor_input" in sys.argv)
):
    _machine = tempfile.mkdtemp(prefix="machine-", dir=_root)
    for _name, _var in (("home", "HOME"), ("tmp", "TMPDIR"), ("cache", "MLPIPE_CACHE_DIR")):
        os.makedirs(os.path.join(_machine, _name))
        os.environ[_var] = os.path.join(_machine, _name)
    tempfile.tempdir = None
