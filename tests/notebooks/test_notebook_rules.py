"""Notebook front end rules: IPython magics, cell/line positions, errors, several pipelines."""

from __future__ import annotations

import json
import os

from conftest import HEADER, mlpipe, warnings_of, write_notebook
from mlpipe.ir import PipelineIR

STEP = "step = PythonScriptStep('s.py', source_directory='src')"
SUBMIT = "run = Experiment(ws, 'exp').submit(Pipeline(ws, [step]))"


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def fails(proc, prefix: str, *words: str) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    first = [ln for ln in proc.stderr.splitlines() if ln.startswith(prefix)]
    assert first, proc.stderr
    for word in words:
        assert word in first[0], first[0]
    return first[0]


# ------------------------------------------------------------------------------- %%writefile


def test_writefile_writes_relative_to_the_notebook_folder_with_variables(folder, tmp_path):
    write_notebook(
        folder / "nb.ipynb",
        [
            HEADER + "scripts = 'gen'\nimport os\nos.makedirs(scripts, exist_ok=True)",
            "%%writefile $scripts/train.py\nprint('train')",
            "%%writefile -a {scripts + '/train.py'}\nprint('more')",
            "%%writefile --append gen/train.py\nprint('last')",
            "%%writefile gen/conf.yml\nname: conf",
            "step = PythonScriptStep('train.py', source_directory=scripts)\n" + SUBMIT,
        ],
    )
    ok(mlpipe("validate", "nb.ipynb", cwd=tmp_path))  # run from the same folder...
    elsewhere = tmp_path.parent
    ok(mlpipe("validate", folder / "nb.ipynb", cwd=elsewhere))  # ...and from another one
    written = folder / "gen" / "train.py"
    # created by the first cell, appended by the next two: running capture again gives the same
    assert written.read_text() == "print('train')\nprint('more')\nprint('last')\n"
    conf = folder / "gen" / "conf.yml"
    mtime = conf.stat().st_mtime_ns
    ok(mlpipe("validate", "nb.ipynb", cwd=folder))
    assert written.read_text() == "print('train')\nprint('more')\nprint('last')\n"
    assert conf.stat().st_mtime_ns == mtime  # unchanged content is not rewritten


def test_writefile_append_is_not_repeated_by_later_captures(folder):
    (folder / "src" / "conda.yml").write_text("dependencies:\n")
    write_notebook(
        folder / "nb.ipynb",
        ["%%writefile -a src/conda.yml\n  - pandas", HEADER + STEP + "\n" + SUBMIT],
    )
    for _ in range(2):
        ok(mlpipe("validate", "nb.ipynb", cwd=folder))
    assert (folder / "src" / "conda.yml").read_text() == "dependencies:\n  - pandas\n"


def test_writefile_into_a_missing_folder_fails_at_its_cell(folder):
    write_notebook(
        folder / "nb.ipynb",
        [HEADER, ("md", "text"), "\n%%writefile nowhere/x.py\nprint(1)", STEP + "\n" + SUBMIT],
    )
    out = folder / "out"
    proc = mlpipe("compile", "nb.ipynb", "--target", "prefect", "-o", out, cwd=folder)
    fails(proc, "nb.ipynb:cell 3:line 2: ", "%%writefile nowhere/x.py", "cannot write")
    assert not out.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["nb.ipynb", "src"]


def test_writefile_then_an_error_writes_nothing_else(folder):
    write_notebook(
        folder / "nb.ipynb",
        [HEADER, "%%writefile src/made.py\nprint('made')", "1 / 0", STEP + "\n" + SUBMIT],
    )
    out = folder / "out"
    proc = mlpipe("compile", "nb.ipynb", "--target", "airflow", "-o", out, cwd=folder)
    fails(proc, "nb.ipynb:cell 3:line 1: ", "ZeroDivisionError")
    assert not out.exists() and not (folder / ".mlpipe").exists()
    assert sorted(p.name for p in (folder / "src").iterdir()) == ["made.py", "s.py"]


# ----------------------------------------------------------------- magics kept and skipped


def test_capture_and_time_cells_run_their_body(folder):
    write_notebook(
        folder / "nb.ipynb",
        [
            HEADER,
            "%%capture captured\nfirst = PythonScriptStep('s.py', name='first', "
            "source_directory='src')",
            "%%time\nsecond = PythonScriptStep('s.py', name='second', source_directory='src')",
            "%time third = PythonScriptStep('s.py', name='third', source_directory='src')",
            "print(captured.stdout)\n"
            "Experiment(ws, 'e').submit(Pipeline(ws, [first, second, third]))",
        ],
    )
    proc = ok(mlpipe("ir", "nb.ipynb", cwd=folder))
    assert [s["name"] for s in json.loads(proc.stdout)["steps"]] == ["first", "second", "third"]
    assert warnings_of(proc.stderr) == []


def test_line_magics_and_shell_lines_are_skipped_where_they_are(folder):
    write_notebook(
        folder / "nb.ipynb",
        [
            ("md", "# intro"),
            "%pip install scikit-learn\n%matplotlib inline\n" + HEADER,
            "!ls -la\nlisting = !ls\nsetting = %env\nif True:\n    !echo inside\n    x = 1\n"
            "text = '''\n!not a shell line\n%not a magic\n'''\nassert text.count('!not') == 1\n"
            "assert listing == [] and setting is None\nPipeline?",
            "%%bash\necho skipped\nexit 1",
            STEP + "\n" + SUBMIT,
        ],
    )
    proc = ok(mlpipe("validate", "nb.ipynb", cwd=folder))
    assert warnings_of(proc.stderr) == [
        "nb.ipynb:cell 2:line 1: warning: line magic skipped: %pip install scikit-learn",
        "nb.ipynb:cell 2:line 2: warning: line magic skipped: %matplotlib inline",
        "nb.ipynb:cell 3:line 1: warning: shell command skipped: !ls -la",
        "nb.ipynb:cell 3:line 2: warning: shell command skipped: !ls (listing is set to [])",
        "nb.ipynb:cell 3:line 3: warning: line magic skipped: %env (setting is set to None)",
        "nb.ipynb:cell 3:line 5: warning: shell command skipped: !echo inside",
        "nb.ipynb:cell 3:line 13: warning: help request skipped: Pipeline?",
        "nb.ipynb:cell 4:line 1: warning: %%bash cell skipped: mlpipe runs only the notebook's "
        "Python code while capturing",
    ]


def test_lines_keep_their_numbers_after_skipped_magics(folder):
    write_notebook(
        folder / "nb.ipynb",
        [HEADER, "%load_ext autoreload\n%autoreload 2\n!pip list\n\nint('four')"],
    )
    fails(
        mlpipe("validate", "nb.ipynb", cwd=folder),
        "nb.ipynb:cell 2:line 5: ",
        "ValueError",
        "invalid literal for int()",
    )


# ------------------------------------------------------------------------ errors in cells


def test_syntax_error_names_cell_and_line(folder):
    write_notebook(folder / "nb.ipynb", [("md", "x"), HEADER, "%pip install x\nif True\n    pass"])
    fails(mlpipe("ir", "nb.ipynb", cwd=folder), "nb.ipynb:cell 3:line 2: ", "syntax error")


def test_error_in_api_call_names_cell_and_line(folder):
    write_notebook(
        folder / "nb.ipynb",
        [HEADER, "\n\nPipelineParameter('n', [1, 2])"],
    )
    fails(mlpipe("validate", "nb.ipynb", cwd=folder), "nb.ipynb:cell 2:line 3: ", "not list")


def test_error_found_while_building_names_the_cell(folder):
    write_notebook(
        folder / "nb.ipynb",
        [
            HEADER,
            "bad = PythonScriptStep('missing.py', source_directory='src')",
            SUBMIT.replace("step", "bad"),
        ],
    )
    fails(mlpipe("validate", "nb.ipynb", cwd=folder), "nb.ipynb:cell 2:line 1: ", "missing.py")


def test_not_a_python_notebook_or_not_a_notebook(folder):
    write_notebook(folder / "r.ipynb", ["x <- 1"], language="R")
    fails(mlpipe("validate", "r.ipynb", cwd=folder), "r.ipynb: ", "R notebook")
    (folder / "broken.ipynb").write_text("{not json")
    fails(mlpipe("validate", "broken.ipynb", cwd=folder), "broken.ipynb: ", "not a Jupyter")


def test_notebook_in_a_subfolder_has_deterministic_origins(folder, tmp_path):
    nb = write_notebook(folder / "nb.ipynb", [HEADER, STEP, SUBMIT])
    proc = ok(mlpipe("ir", os.path.relpath(nb, tmp_path.parent), cwd=tmp_path.parent))
    p = PipelineIR.model_validate_json(proc.stdout)
    assert str(p.steps[0].origin) == "nb.ipynb:cell 2:line 1"
    assert p.steps[0].origin.file == "nb.ipynb:cell 2" and p.source_file == "nb.ipynb"


# --------------------------------------------------------------------- several pipelines


def test_two_pipelines_and_a_resubmission_with_parameters(folder):
    write_notebook(
        folder / "nb.ipynb",
        [
            HEADER + "n = PipelineParameter('n', 1)",
            "a = PythonScriptStep('s.py', name='a', arguments=[n], source_directory='src')\n"
            "b = PythonScriptStep('s.py', name='b', source_directory='src')",
            "train = Pipeline(ws, [a])\nreport = Pipeline(ws, [b])",
            "Experiment(ws, 'training').submit(train)\n"
            "Experiment(ws, 'training').submit(train, pipeline_parameters={'n': 5})",
            "report.publish(name='report-service')",
        ],
    )
    proc = ok(mlpipe("ir", "nb.ipynb", cwd=folder))
    listed = json.loads(proc.stdout)
    assert [p["name"] for p in listed] == ["training", "report-service"]
    train = PipelineIR.model_validate(listed[0])
    assert [s.pipeline_parameters for s in train.submissions] == [{}, {"n": 5}]
    chosen = ok(mlpipe("ir", "nb.ipynb:report-service", cwd=folder))
    assert PipelineIR.model_validate_json(chosen.stdout).steps[0].name == "b"
    out = folder / "out"
    ok(mlpipe("compile", "nb.ipynb", "--target", "prefect", "-o", out, cwd=folder))
    written = {p.name for p in out.iterdir()}
    assert any("training" in n for n in written) and any("report" in n for n in written)


# ------------------------------------------------------------------ after the last submit


def test_exception_after_submit_is_a_warning_and_later_cells_still_run(folder):
    write_notebook(
        folder / "nb.ipynb",
        [
            HEADER + STEP,
            "p = Pipeline(ws, [step])\npub = p.publish(name='svc')\n"
            "run = Experiment(ws, 'exp').submit(p)",
            "run.wait_for_completion()\nraise RuntimeError('the run failed')",
            "from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence\n"
            "Schedule.create(ws, name='daily', pipeline_id=pub.id, experiment_name='exp',\n"
            "                recurrence=ScheduleRecurrence(frequency='Day', interval=1))",
        ],
    )
    proc = ok(mlpipe("ir", "nb.ipynb", cwd=folder))
    assert warnings_of(proc.stderr) == [
        "nb.ipynb:cell 3:line 2: warning: ignored an error raised after the pipeline was "
        "submitted: RuntimeError: the run failed"
    ]
    assert [s.name for s in PipelineIR.model_validate_json(proc.stdout).schedules] == ["daily"]


def test_exception_before_submit_still_fails(folder):
    write_notebook(
        folder / "nb.ipynb",
        [HEADER + STEP, "raise RuntimeError('boom')", SUBMIT],
    )
    fails(mlpipe("validate", "nb.ipynb", cwd=folder), "nb.ipynb:cell 2:line 1: ", "boom")


def test_api_misuse_after_submit_still_fails(folder):
    write_notebook(
        folder / "nb.ipynb",
        [
            HEADER + STEP + "\n" + SUBMIT,
            "from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence\n"
            "Schedule.create(ws, name='s', pipeline_id='nope', experiment_name='e',\n"
            "                recurrence=ScheduleRecurrence(frequency='Day', interval=1))",
        ],
    )
    fails(mlpipe("validate", "nb.ipynb", cwd=folder), "nb.ipynb:cell 2:line 2: ", "nope")


def test_classes_mlpipe_does_not_know_only_warn_after_submit(folder):
    write_notebook(
        folder / "nb.ipynb",
        [
            HEADER + STEP + "\n" + SUBMIT,
            "from azureml.core.webservice import Webservice\nservice = Webservice(ws, 'best')",
            "from azureml.core.webservice import AciWebservice\n"
            "AciWebservice.deploy_configuration(cpu_cores=1)",
        ],
    )
    proc = ok(mlpipe("validate", "nb.ipynb", cwd=folder))
    assert warnings_of(proc.stderr) == [
        "nb.ipynb:cell 2:line 2: warning: ignored an error raised after the pipeline was "
        "submitted: Webservice is not supported yet; there is no mlpipe equivalent yet",
        "nb.ipynb:cell 3:line 2: warning: ignored an error raised after the pipeline was "
        "submitted: AttributeError: type object 'AciWebservice' has no attribute "
        "'deploy_configuration'",
    ]
