"""One meaning for a v1 schedule on every target, checked with each orchestrator's own code.

A pipeline with one schedule of each kind is compiled for Airflow, Prefect and KFP; the next fire
times are then computed from the generated artifacts by Airflow's timetable (what its scheduler
calls), Prefect's schedule objects (what `prefect deploy` builds from prefect.yaml) and, for KFP,
croniter: KFP's ScheduledWorkflow controller reads cron with Go's robfig/cron (seconds first, an
optional `TZ=<zone>` prefix) and kfp ships no evaluator of its own; for the fields mlpipe writes
(lists, `*/n`, day names; never day-of-month and day-of-week together) robfig's and croniter's
rules are the same. The expected times come from v1's meaning, computed here minute by minute.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.targets import MLPIPE, child_env, python_of

pytestmark = pytest.mark.integration

REF = datetime(2026, 3, 1, 0, 0, tzinfo=ZoneInfo("UTC"))  # fires after this; DST change inside
COUNT = 12

# name -> (ScheduleRecurrence keyword arguments, v1's meaning as a predicate on local wall time)
RECURRENCES = {
    "minute": (
        dict(frequency="Minute", interval=15, start_time="2026-03-02T10:05:00"),
        "UTC",
        lambda t: t.minute % 15 == 5,
    ),
    "hour": (
        dict(frequency="Hour", interval=1, start_time="2026-03-02T12:55:00", time_zone="UTC"),
        "UTC",
        lambda t: t.minute == 55,
    ),
    "day": (
        dict(frequency="Day", interval=1, hours=[18, 6], minutes=[30, 0]),
        "UTC",
        lambda t: t.hour in (6, 18) and t.minute in (0, 30),
    ),
    "week": (
        dict(
            frequency="Week",
            interval=1,
            week_days=["Thursday", "Monday"],
            time_of_day="07:45",
            start_time="2026-03-02T00:00:00",
            time_zone="W. Europe Standard Time",
        ),
        "Europe/Berlin",
        lambda t: t.weekday() in (0, 3) and (t.hour, t.minute) == (7, 45),
    ),
    "month": (
        dict(
            frequency="Month",
            interval=1,
            start_time="2026-01-15T09:30:00",
            time_zone="Tokyo Standard Time",
        ),
        "Asia/Tokyo",
        lambda t: (t.day, t.hour, t.minute) == (15, 9, 30),
    ),
}


def v1_fires(kwargs: dict, zone: str, rule) -> list[str]:
    """v1's fire times: every local minute matching the rule, from the start time on."""
    tz = ZoneInfo(zone)
    start = kwargs.get("start_time")
    first = max(REF, datetime.fromisoformat(start).replace(tzinfo=tz)) if start else REF
    out, t = [], first.astimezone(tz).replace(second=0, microsecond=0)
    while len(out) < COUNT:
        local = t.astimezone(tz)
        if rule(local) and t > REF:
            out.append(t.astimezone(ZoneInfo("UTC")).isoformat())
        t += timedelta(minutes=1)
    return out


def write_pipeline(folder: Path) -> Path:
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "s.py").write_text("print(1)\n")
    calls = "".join(
        f"Schedule.create(ws, name={name!r}, pipeline_id=published.id, experiment_name='e',\n"
        f"                recurrence=ScheduleRecurrence(**{kwargs!r}))\n"
        for name, (kwargs, _zone, _rule) in RECURRENCES.items()
    )
    source = textwrap.dedent("""\
        from azureml.core import Workspace
        from azureml.pipeline.core import Pipeline
        from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence
        from azureml.pipeline.steps import PythonScriptStep

        ws = Workspace.from_config()
        step = PythonScriptStep(name="s", script_name="s.py", source_directory="src")
        pipeline = Pipeline(workspace=ws, steps=[step])
        published = pipeline.publish(name="p")
        """)
    (folder / "pipeline.py").write_text(source + calls)
    # KFP pods run built images: with a registry there is no missing-runtime warning to ignore
    (folder / "mlpipe.yaml").write_text("images:\n  registry: registry.example/mlpipe\n")
    return folder / "pipeline.py"


AIRFLOW = """
import glob, importlib.util, json, sys
from datetime import datetime, timezone
from airflow.serialization.decoders import decode_timetable
from airflow.serialization.encoders import encode_timetable
from airflow.timetables.base import TimeRestriction
ref = datetime.fromisoformat(sys.argv[2])
out = {}
for path in sorted(glob.glob(sys.argv[1] + "/*.py")):
    spec = importlib.util.spec_from_file_location("dag_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    # the DAG file's timetable as the scheduler holds it (serialised, then decoded)
    timetable = decode_timetable(encode_timetable(dag.timetable))
    earliest = max(ref, dag.start_date) if dag.start_date else ref
    restriction = TimeRestriction(earliest=earliest, latest=None, catchup=True)
    last, times = None, []
    while len(times) < int(sys.argv[3]):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        last = info.data_interval
        if info.run_after > ref:
            times.append(info.run_after.in_timezone("UTC").isoformat())
    out[dag.dag_id.split("__")[-1] if "__" in dag.dag_id else "minute"] = times
print(json.dumps(out))
"""

PREFECT = """
import asyncio, json, sys, yaml
from datetime import datetime
from prefect.server.schemas.schedules import CronSchedule, RRuleSchedule
ref = datetime.fromisoformat(sys.argv[2])
doc = yaml.safe_load(open(sys.argv[1] + "/prefect.yaml"))
out = {}
for entry in doc["deployments"][0]["schedules"]:
    if "rrule" in entry:
        schedule = RRuleSchedule(rrule=entry["rrule"], timezone=entry["timezone"])
    else:
        schedule = CronSchedule(cron=entry["cron"], timezone=entry["timezone"])
    times = asyncio.run(schedule.get_dates(n=int(sys.argv[3]) + 1, start=ref))
    out[entry["slug"]] = [t.astimezone().isoformat() for t in times if t > ref][: int(sys.argv[3])]
print(json.dumps(out))
"""

KFP = """
import glob, json, sys, yaml
from datetime import datetime, timezone
from zoneinfo import ZoneInfo
from croniter import croniter
ref = datetime.fromisoformat(sys.argv[2])
(path,) = glob.glob(sys.argv[1] + "/*.deploy.yaml")
out = {}
for run in yaml.safe_load(open(path))["create_recurring_run"]:
    fields = run["cron_expression"].split()
    zone = "UTC"
    if fields[0].startswith("TZ="):
        zone = fields.pop(0)[3:]
    seconds, rest = fields[0], fields[1:]
    assert seconds == "0" and len(rest) == 5, fields
    tz = ZoneInfo(zone)
    start = max(ref, datetime.fromisoformat(run["start_time"])) if "start_time" in run else ref
    it = croniter(" ".join(rest), start.astimezone(tz) - __import__("datetime").timedelta(seconds=1))
    times = []
    while len(times) < int(sys.argv[3]):
        t = it.get_next(datetime)
        if t > ref:
            times.append(t.astimezone(timezone.utc).isoformat())
    out[run["job_name"]] = times
print(json.dumps(out))
"""


def fires_on(target: str, out: Path, code: str) -> dict:
    proc = subprocess.run(
        [python_of(target), "-c", code, str(out), REF.isoformat(), str(COUNT)],
        capture_output=True,
        text=True,
        env=child_env(AIRFLOW_HOME=str(out.parent / "airflow-home")),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_target_fires_when_v1_would(tmp_path):
    pipeline = write_pipeline(tmp_path / "p")
    expected = {
        name: v1_fires(kwargs, zone, rule) for name, (kwargs, zone, rule) in RECURRENCES.items()
    }
    for target, code in (("airflow", AIRFLOW), ("prefect", PREFECT), ("kfp", KFP)):
        out = tmp_path / target
        proc = subprocess.run(
            [MLPIPE, "compile", str(pipeline), "--target", target, "-o", str(out)],
            capture_output=True,
            text=True,
            env=child_env(),
        )
        assert proc.returncode == 0, proc.stderr
        assert "warning" not in proc.stderr, proc.stderr  # nothing here is approximated
        got = fires_on(target, out, code)
        for name in RECURRENCES:
            assert got[name] == expected[name], (target, name)
