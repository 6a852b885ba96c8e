"""What v1 schedules say in Azure's terms, which each backend translates for its orchestrator."""

from __future__ import annotations

# `ScheduleRecurrence(time_zone=...)` takes Windows zone names (the ones v1 samples use, as Windows
# spells them); orchestrators want IANA names.
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


def iana_zone(name: str) -> str:
    """The IANA name of a v1 time zone given in Windows' spelling (any case); others as given."""
    return _BY_LOWER_NAME.get(name.strip().lower(), name)
