"""What a v1 `ScheduleRecurrence` means, worked out once for every target.

`resolve_recurrence` checks a recurrence the way azureml-pipeline-core 1.62 does (what v1 refuses
is refused here, with the reason) and normalises it into `Fires`: the wall-clock times it fires
at, in one IANA zone, as cron fields, plus an exact RFC 5545 rule when a start time anchors it.
Backends only format `Fires` (Airflow's CronTriggerTimetable, Prefect's cron / rrule, KFP's
six-field cron); where cron cannot say what v1 means, `approximation` says what differs and the
backend reports it as a compile warning (backends/base.py: one channel for all targets).

v1's meaning (ScheduleRecurrence docstring + validate(), and docs/architecture.md):
- `hours` x `minutes` (Day / Week only) or `time_of_day` "hh:mm" — never both; a part not given
  comes from `start_time`, else 0;
- Minute / Hour recurrences count from `start_time` (every hour at :55 when it starts at 12:55);
- Week runs on `week_days` (full English names), else on the start's week day;
- Month runs on the start's day of month and time of day (the 1st at 00:00 without a start);
- `start_time` is a wall-clock time `YYYY-MM-DDThh:mm:ss` in `time_zone` (UTC when none); v1
  refuses a start time that carries its own UTC offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..ir import Recurrence

# `ScheduleRecurrence(time_zone=...)` takes Windows zone names (v1's TimeZone enum values);
# orchestrators want IANA names.
WINDOWS_TIME_ZONES = {
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "Russian Standard Time": "Europe/Moscow",
    "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "Singapore Standard Time": "Asia/Singapore",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "Atlantic Standard Time": "America/Halifax",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "E. South America Standard Time": "America/Sao_Paulo",
}
_BY_LOWER_NAME = {name.lower(): zone for name, zone in WINDOWS_TIME_ZONES.items()}

# v1 accepts exactly these (validate(): case-sensitive); cron numbers Sunday 0.
WEEK_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
CRON_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
RRULE_DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")
_TIME_OF_DAY = re.compile(r"[0-9]{1,2}:[0-9]{2}$")
_START = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$")


def iana_zone(name: str) -> str:
    """The IANA name of a v1 time zone given in Windows' spelling (any case); others as given."""
    return _BY_LOWER_NAME.get(name.strip().lower(), name.strip())


def time_zone(name: str | None) -> str:
    """The IANA zone of a recurrence (UTC when none); ValueError for a zone nobody knows."""
    if not name:
        return "UTC"
    zone = iana_zone(str(name))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}: use a TimeZone member (e.g. TimeZone.WEuropeStandardTime)"
            " or an IANA name such as 'Europe/Berlin'"
        ) from exc
    return zone


@dataclass(frozen=True)
class Fires:
    """When a recurrence fires: cron fields (None = every value) in `zone`, wall clock."""

    zone: str
    start: datetime | None  # naive, in `zone`, seconds dropped
    minutes: tuple[int, ...] | None
    hours: tuple[int, ...] | None
    days: tuple[int, ...] | None  # days of month
    months: tuple[int, ...] | None
    week_days: tuple[int, ...] | None  # cron numbering, Sunday 0
    step_minutes: int = 0  # render minutes as */n (same times as the list, shorter)
    step_hours: int = 0
    step_days: int = 0
    step_months: int = 0
    approximation: str | None = None  # what the cron fields cannot say; None when exact
    rrule: str | None = None  # exact RFC 5545 rule (DTSTART + RRULE) when a start anchors it

    def cron_fields(self) -> list[str]:
        """minute hour day-of-month month day-of-week."""
        return [
            _field(self.minutes, self.step_minutes),
            _field(self.hours, self.step_hours),
            _field(self.days, self.step_days),
            _field(self.months, self.step_months),
            "*" if self.week_days is None else ",".join(CRON_DAYS[d] for d in self.week_days),
        ]

    @property
    def cron(self) -> str:
        """Five-field cron (Airflow, Prefect, croniter)."""
        return " ".join(self.cron_fields())


def _field(values: tuple[int, ...] | None, step: int) -> str:
    if values is None:
        return "*"
    if step:
        return f"*/{step}"
    return ",".join(str(v) for v in values)


def parse_start(text: str | None) -> datetime | None:
    """v1's start_time string (`YYYY-MM-DDThh:mm:ss`) as a naive datetime; ValueError else."""
    if text is None:
        return None
    value = text.strip()
    if _START.match(value):
        return datetime.fromisoformat(value).replace(second=0, microsecond=0)
    if re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$", value):
        raise ValueError(
            f"start_time {text!r} carries a UTC offset, which v1 refuses ('Can not specify tzinfo "
            "for start_time'): give the wall-clock time and time_zone= instead"
        )
    raise ValueError(
        f"start_time {text!r} is not v1's format YYYY-MM-DDThh:mm:ss (e.g. 2026-01-31T09:30:00) "
        "or a datetime"
    )


def check_recurrence(rec: Recurrence) -> list[str]:
    """What azureml-pipeline-core refuses in this recurrence (one message per rule broken)."""
    out = []
    if rec.interval < 1:
        out.append("interval must be an integer greater than 0")
    if rec.time_of_day is not None and (rec.hours or rec.minutes):
        out.append("give either time_of_day or hours/minutes, not both (v1 refuses both)")
    if rec.time_of_day is not None:
        out += _check_time_of_day(rec.time_of_day)
    times = rec.hours or rec.minutes or rec.time_of_day is not None
    if times and rec.frequency not in ("Day", "Week"):
        out.append(
            f"hours, minutes and time_of_day only go with frequency Day or Week, not "
            f"{rec.frequency} (v1 refuses them)"
        )
    if rec.week_days and rec.frequency != "Week":
        out.append(f"week_days only go with frequency Week, not {rec.frequency}")
    if any(not 0 <= h <= 23 for h in rec.hours):
        out.append(f"hours must be between 0 and 23, got {rec.hours}")
    if any(not 0 <= m <= 59 for m in rec.minutes):
        out.append(f"minutes must be between 0 and 59, got {rec.minutes}")
    bad = [d for d in rec.week_days if d not in WEEK_DAYS]
    if bad:
        out.append(
            f"week_days {bad} are not v1 week days: use full names ({', '.join(WEEK_DAYS[1:])}, "
            "Sunday)"
        )
    for check in (lambda: time_zone(rec.time_zone), lambda: parse_start(rec.start_time)):
        try:
            check()
        except ValueError as exc:
            out.append(str(exc))
    return out


def _check_time_of_day(text: str) -> list[str]:
    if not _TIME_OF_DAY.match(text):
        return [f"time_of_day {text!r} must be hh:mm (e.g. '09:30')"]
    hour, minute = (int(x) for x in text.split(":"))
    if hour > 23 or minute > 59:
        return [f"time_of_day {text!r}: hour 0-23 and minute 0-59"]
    return []


def resolve_recurrence(rec: Recurrence) -> Fires:
    """The times `rec` fires at (call check_recurrence first: this assumes a valid one)."""
    zone = time_zone(rec.time_zone)
    start = parse_start(rec.start_time)
    hours, minutes = list(rec.hours), list(rec.minutes)
    if rec.time_of_day is not None:
        hh, mm = rec.time_of_day.split(":")
        hours, minutes = [int(hh)], [int(mm)]
    at_hour = start.hour if start else 0
    at_minute = start.minute if start else 0
    hours = sorted(set(hours)) or [at_hour]
    minutes = sorted(set(minutes)) or [at_minute]
    return _BUILDERS[rec.frequency](rec.interval, zone, start, hours, minutes, rec.week_days)


def _cycle(first: int, step: int, size: int, base: int = 0) -> tuple[tuple[int, ...], bool]:
    """The values of one cycle of `size` (minutes of an hour, months of a year...) a recurrence
    every `step` units through `first` takes, and whether cron repeats them exactly from cycle to
    cycle (only when step divides size; else cron restarts the count at each cycle)."""
    if size % step:
        return tuple(range(first, base + size, step)), False
    return tuple(
        sorted({base + (first - base + k * step) % size for k in range(size // step)})
    ), True


def _rule(start: datetime | None, body: str) -> str | None:
    if start is None:
        return None
    return f"DTSTART:{start.strftime('%Y%m%dT%H%M%S')}\nRRULE:{body};BYSECOND=0"


def _minute(n, zone, start, hours, minutes, week_days) -> Fires:
    first = start.minute if start else 0
    values, exact = _cycle(first % n if n < 60 else first, n, 60)
    note = None if exact else f"every {n} minutes restarts at each full hour in cron"
    return Fires(
        zone,
        start,
        None if n == 1 else values,
        None,
        None,
        None,
        None,
        step_minutes=n if n > 1 and values == tuple(range(0, 60, n)) else 0,
        approximation=note,
        rrule=_rule(start, f"FREQ=MINUTELY;INTERVAL={n}"),
    )


def _hour(n, zone, start, hours, minutes, week_days) -> Fires:
    first = start.hour if start else 0
    values, exact = _cycle(first % n if n < 24 else first, n, 24)
    note = None if exact else f"every {n} hours restarts at midnight in cron"
    return Fires(
        zone,
        start,
        (minutes[0],),
        None if n == 1 else values,
        None,
        None,
        None,
        step_hours=n if n > 1 and values == tuple(range(0, 24, n)) else 0,
        approximation=note,
        rrule=_rule(start, f"FREQ=HOURLY;INTERVAL={n};BYMINUTE={minutes[0]}"),
    )


def _times(hours, minutes) -> str:
    return f"BYHOUR={','.join(map(str, hours))};BYMINUTE={','.join(map(str, minutes))}"


def _day(n, zone, start, hours, minutes, week_days) -> Fires:
    note = None
    if n > 1:
        note = f"every {n} days restarts on the 1st of each month in cron (day-of-month */{n})"
    return Fires(
        zone,
        start,
        tuple(minutes),
        tuple(hours),
        None if n == 1 else tuple(range(1, 32, n)),
        None,
        None,
        step_days=n if n > 1 else 0,
        approximation=note,
        rrule=_rule(start, f"FREQ=DAILY;INTERVAL={n};{_times(hours, minutes)}"),
    )


def _week(n, zone, start, hours, minutes, week_days) -> Fires:
    notes = []
    if week_days:
        days = sorted({WEEK_DAYS.index(d) for d in week_days})
    elif start is not None:
        days = [(start.weekday() + 1) % 7]
    else:
        days = [0]
        notes.append(
            "without week_days or start_time v1 runs on the week day the schedule is created; "
            "this runs on Sundays"
        )
    if n > 1:
        notes.append(f"every {n} weeks cannot be written in cron: this runs every week")
    byday = ",".join(RRULE_DAYS[d] for d in days)
    return Fires(
        zone,
        start,
        tuple(minutes),
        tuple(hours),
        None,
        None,
        tuple(days),
        approximation="; ".join(notes) or None,
        rrule=_rule(start, f"FREQ=WEEKLY;INTERVAL={n};BYDAY={byday};{_times(hours, minutes)}"),
    )


def _month(n, zone, start, hours, minutes, week_days) -> Fires:
    day = start.day if start else 1
    first = start.month if start else 1
    months, exact = _cycle(first, n, 12, base=1) if n > 1 else ((), True)
    note = None if exact else f"every {n} months restarts in January in cron"
    body = f"FREQ=MONTHLY;INTERVAL={n};BYMONTHDAY={day};{_times(hours[:1], minutes[:1])}"
    return Fires(
        zone,
        start,
        (minutes[0],),
        (hours[0],),
        (day,),
        months or None,
        None,
        step_months=n if n > 1 and months == tuple(range(1, 13, n)) else 0,
        approximation=note,
        rrule=_rule(start, body),
    )


_BUILDERS = {"Minute": _minute, "Hour": _hour, "Day": _day, "Week": _week, "Month": _month}
