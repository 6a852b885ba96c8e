"""The resolve pass's schedules: what v1 refuses is refused on every target, the same way."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from mlpipe.ir import Recurrence
from mlpipe.passes.schedules import check_recurrence, iana_zone, resolve_recurrence, time_zone
from tests.targets import MLPIPE, child_env

BAD = textwrap.dedent("""\
    from azureml.core import Workspace
    from azureml.pipeline.core import Pipeline
    from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence
    from azureml.pipeline.steps import PythonScriptStep

    ws = Workspace.from_config()
    step = PythonScriptStep(name="s", script_name="s.py", source_directory="src")
    pipeline = Pipeline(workspace=ws, steps=[step])
    published = pipeline.publish(name="p")
    both = ScheduleRecurrence(frequency="Day", interval=1, hours=[8], time_of_day="09:30")
    Schedule.create(ws, name="both", pipeline_id=published.id, experiment_name="e", recurrence=both)
    start = ScheduleRecurrence(frequency="Day", interval=1, start_time="31/01/2026 09:30")
    Schedule.create(ws, name="start", pipeline_id=published.id, experiment_name="e", recurrence=start)
    days = ScheduleRecurrence(frequency="Week", interval=1, week_days=["Mon"])
    Schedule.create(ws, name="days", pipeline_id=published.id, experiment_name="e", recurrence=days)
    """)


def test_what_v1_refuses_is_refused_on_every_target(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "s.py").write_text("print(1)\n")
    (tmp_path / "pipeline.py").write_text(BAD)
    errors = {}
    for target in ("airflow", "prefect", "kfp"):
        cmd = [MLPIPE, "compile", "pipeline.py", "--target", target, "-o", f"out-{target}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=child_env())
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert not (tmp_path / f"out-{target}").exists()
        errors[target] = proc.stderr
    assert errors["airflow"] == errors["prefect"] == errors["kfp"]
    text = errors["kfp"]
    assert "pipeline.py:11: schedule 'both': give either time_of_day or hours/minutes" in text
    assert "pipeline.py:13: schedule 'start': start_time '31/01/2026 09:30' is not" in text
    assert "pipeline.py:15: schedule 'days': week_days ['Mon'] are not v1 week days" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(frequency="Hour", interval=1, minutes=[15]), "only go with frequency Day or Week"),
        (dict(frequency="Day", interval=1, minutes=[15], time_of_day="09:30"), "not both"),
        (dict(frequency="Day", interval=1, time_of_day="9.30"), "must be hh:mm"),
        (dict(frequency="Month", interval=1, week_days=["Monday"]), "only go with frequency Week"),
        (dict(frequency="Day", interval=1, start_time="2026-01-31T09:30:00Z"), "UTC offset"),
        (dict(frequency="Day", interval=1, time_zone="Mars Standard Time"), "unknown time zone"),
        (dict(frequency="Day", interval=1, hours=[24]), "between 0 and 23"),
    ],
)
def test_v1_rules(kwargs, message):
    (problem,) = check_recurrence(Recurrence(**kwargs))
    assert message in problem


@pytest.mark.parametrize(
    ("kwargs", "cron", "approximated"),
    [
        (dict(frequency="Minute", interval=15), "*/15 * * * *", False),
        (
            dict(frequency="Minute", interval=15, start_time="2026-01-01T10:05:00"),
            "5,20,35,50 * * * *",
            False,
        ),
        (dict(frequency="Minute", interval=7), "*/7 * * * *", True),
        (dict(frequency="Hour", interval=1, start_time="2026-01-01T12:55:00"), "55 * * * *", False),
        (
            dict(frequency="Hour", interval=6, start_time="2026-01-01T02:20:00"),
            "20 2,8,14,20 * * *",
            False,
        ),
        (
            dict(frequency="Day", interval=1, hours=[8], start_time="2026-01-01T10:20:00"),
            "20 8 * * *",
            False,
        ),
        (dict(frequency="Day", interval=1, minutes=[15]), "15 0 * * *", False),
        (dict(frequency="Day", interval=2), "0 0 */2 * *", True),
        (
            dict(frequency="Week", interval=1, start_time="2026-01-07T08:00:00"),
            "0 8 * * WED",
            False,
        ),
        (
            dict(
                frequency="Week",
                interval=2,
                week_days=["Friday", "Monday"],
                hours=[6],
                minutes=[30],
            ),
            "30 6 * * MON,FRI",
            True,
        ),
        (
            dict(frequency="Month", interval=1, start_time="2026-01-15T02:00:00"),
            "0 2 15 * *",
            False,
        ),
        (
            dict(frequency="Month", interval=3, start_time="2026-02-15T02:00:00"),
            "0 2 15 2,5,8,11 *",
            False,
        ),
        (dict(frequency="Month", interval=5), "0 0 1 */5 *", True),
    ],
)
def test_recurrences_resolve_to_one_cron(kwargs, cron, approximated):
    fires = resolve_recurrence(Recurrence(**kwargs))
    assert fires.cron == cron
    assert bool(fires.approximation) == approximated
    assert (fires.rrule is not None) == ("start_time" in kwargs)


@pytest.mark.parametrize(
    ("v1", "iana"),
    [
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("pacific standard time", "America/Los_Angeles"),
        (" Hawaiian Standard Time ", "Pacific/Honolulu"),
        ("Asia/Tokyo", "Asia/Tokyo"),
    ],
)
def test_windows_zone_names_become_iana_names_on_every_target(v1, iana):
    assert iana_zone(v1) == iana
    assert time_zone(v1) == iana
