"""The v1 time zone names every backend translates the same way."""

import pytest

from mlpipe.passes.schedules import iana_zone, time_zone


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
