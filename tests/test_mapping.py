"""Mapping: transforms, deadbands, heartbeat, quality, and the one-signal-one-element rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aas_models.timeseries.base import Quality, SeriesKey
from edge_agent.connectors.base import Reading
from edge_agent.mapping import Binding, Mapper

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
KEY = SeriesKey("urn:sm:op", "OilTemperature.Value")


def reading(value: object, seconds: float, quality: Quality = Quality.GOOD, signal: str = "temp") -> Reading:
    t = T0 + timedelta(seconds=seconds)
    return Reading(signal, value, t, quality, t)  # type: ignore[arg-type]


def values(mapper: Mapper, *readings: Reading) -> list[object]:
    return [s.value for s in mapper.map("plc", list(readings))]


def test_scale_offset_and_unit_conversion() -> None:
    mapper = Mapper([Binding("plc", "temp", KEY, scale=0.1, offset=0.0, convert="degF->degC")])
    (sample,) = mapper.map("plc", [reading(2120, 0)])
    assert sample.value == pytest.approx(100.0)
    assert sample.key == KEY and sample.time == T0


def test_integers_stay_integers_without_transform() -> None:
    mapper = Mapper([Binding("plc", "temp", KEY)])
    assert values(mapper, reading(7, 0)) == [7]
    assert type(values(mapper, reading(8, 1))[0]) is int


def test_absolute_deadband() -> None:
    mapper = Mapper([Binding("plc", "temp", KEY, deadband=0.5)])
    assert values(mapper, reading(40.0, 0), reading(40.3, 1), reading(40.6, 2), reading(40.2, 3)) == [40.0, 40.6]
    assert mapper.stats.suppressed == 2


def test_percent_deadband() -> None:
    mapper = Mapper([Binding("plc", "temp", KEY, deadband_percent=10)])
    assert values(mapper, reading(100.0, 0), reading(109.0, 1), reading(111.0, 2)) == [100.0, 111.0]


def test_heartbeat_reports_unchanged_values() -> None:
    mapper = Mapper([Binding("plc", "temp", KEY, deadband=5, heartbeat=10)])
    assert values(mapper, reading(1.0, 0), reading(1.0, 5), reading(1.0, 10), reading(1.0, 15)) == [1.0, 1.0]


def test_quality_changes_are_always_reported_and_bad_never_repeats_the_good_value() -> None:
    mapper = Mapper([Binding("plc", "temp", KEY, deadband=100)])
    samples = mapper.map("plc", [reading(50.0, 0), reading(50.0, 1, Quality.BAD), reading(50.0, 2, Quality.BAD),
                                 reading(50.0, 3)])
    assert [(s.value, s.quality) for s in samples] == [(50.0, Quality.GOOD), (None, Quality.BAD),
                                                      (50.0, Quality.GOOD)]


def test_text_values_report_on_change() -> None:
    mapper = Mapper([Binding("plc", "temp", KEY)])
    assert values(mapper, reading("OK", 0), reading("OK", 1), reading("NG", 2)) == ["OK", "NG"]


def test_unbound_signals_are_counted() -> None:
    mapper = Mapper([Binding("plc", "temp", KEY)])
    assert mapper.map("plc", [reading(1.0, 0, signal="other")]) == []
    assert mapper.stats.unbound_signals == {("plc", "other")}


def test_one_element_is_fed_by_one_signal() -> None:
    with pytest.raises(ValueError, match="fed by both"):
        Mapper([Binding("plc", "a", KEY), Binding("plc", "b", KEY)])
    with pytest.raises(ValueError, match="bound twice"):
        Mapper([Binding("plc", "a", KEY), Binding("plc", "a", SeriesKey("urn:sm:op", "Other.Value"))])


def test_heartbeat_without_readings_repeats_the_last_value() -> None:
    mapper = Mapper([Binding("plc", "temp", KEY, heartbeat=10), Binding("plc", "x", SeriesKey("s", "X.Value"))])
    mapper.map("plc", [reading(3.0, 0), reading(1.0, 0, signal="x")])
    assert mapper.due(T0 + timedelta(seconds=5)) == []
    (beat,) = mapper.due(T0 + timedelta(seconds=10))
    assert beat.value == 3.0 and beat.time == T0 + timedelta(seconds=10) and beat.key == KEY
    assert mapper.due(T0 + timedelta(seconds=15)) == []
