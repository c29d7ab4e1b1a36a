"""Stay times (HL7 TS in local time, the letter deadline) and their configuration keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from router.config import engine_settings
from router.errors import ConfigError
from router.stays import END_OF_DAY, hl7_time, letter_due

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize("text, expected", [
    ("20240315100000", datetime(2024, 3, 15, 10, 0, tzinfo=PARIS)),
    ("202403151000", datetime(2024, 3, 15, 10, 0, tzinfo=PARIS)),
    ("20240315", datetime(2024, 3, 15, tzinfo=PARIS)),
    ("20240315100000.123+0000", datetime(2024, 3, 15, 10, 0, tzinfo=UTC)),
    ("20240715100000+0200", datetime(2024, 7, 15, 8, 0, tzinfo=UTC)),
])
def test_hl7_times_are_read_in_local_time_unless_they_carry_an_offset(text, expected):
    assert hl7_time(text, PARIS) == expected


@pytest.mark.parametrize("text", ["", "2024-03-15", "20241345", "garbage"])
def test_malformed_hl7_times_are_none(text):
    assert hl7_time(text, PARIS) is None


def test_end_of_day_is_the_local_end_of_the_discharge_day():
    # 23:30 UTC on 15 March is already 00:30 on the 16th in Paris
    assert letter_due(datetime(2024, 3, 15, 23, 30, tzinfo=UTC), END_OF_DAY, PARIS) == \
        datetime(2024, 3, 16, 23, 59, 59, tzinfo=PARIS)
    assert letter_due(datetime(2024, 7, 1, 10, 0, tzinfo=PARIS), END_OF_DAY, PARIS).utcoffset() == timedelta(hours=2)


def test_a_deadline_in_hours():
    left = datetime(2024, 3, 15, 10, 0, tzinfo=PARIS)
    assert letter_due(left, 36.0, PARIS) == left + timedelta(hours=36)


def test_configuration_defaults_and_values():
    default = engine_settings({}, {}, None)
    assert (default.letter_deadline, default.watchdog_interval, default.timezone) == \
        ("end_of_day", 60.0, "Europe/Paris")
    custom = engine_settings({"letter_deadline": 48, "watchdog_interval": 5, "timezone": "America/Cayenne"}, {}, None)
    assert (custom.letter_deadline, custom.watchdog_interval, custom.timezone) == (48.0, 5.0, "America/Cayenne")


@pytest.mark.parametrize("engine, key", [
    ({"letter_deadline": "tomorrow"}, "engine.letter_deadline"),
    ({"letter_deadline": 0}, "engine.letter_deadline"),
    ({"letter_deadline": True}, "engine.letter_deadline"),
    ({"watchdog_interval": 0}, "engine.watchdog_interval"),
    ({"timezone": "Europe/Nowhere"}, "engine.timezone"),
])
def test_bad_values_name_their_key(engine, key):
    with pytest.raises(ConfigError) as caught:
        engine_settings(engine, {}, None)
    assert key in str(caught.value)
