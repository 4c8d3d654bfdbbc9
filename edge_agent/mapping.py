"""Signal -> submodel element: the single place that knows which signal feeds which element.

Per binding: a linear transform (scale, offset, unit conversion), report-on-change with an absolute
or percent deadband, and a heartbeat (report at least every N seconds even without change).
Quality changes are always reported; a bad reading never carries an old good value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aas_models.timeseries.base import Quality, Sample, SeriesKey, Value
from edge_agent.connectors.base import Reading

#: Unit conversions as (factor, offset): to = from * factor + offset. Expression-free on purpose.
CONVERSIONS: dict[str, tuple[float, float]] = {
    "degF->degC": (5 / 9, -32 * 5 / 9),
    "degC->degF": (9 / 5, 32.0),
    "K->degC": (1.0, -273.15),
    "degC->K": (1.0, 273.15),
    "psi->bar": (0.0689475729, 0.0),
    "bar->psi": (14.5037738, 0.0),
    "kPa->bar": (0.01, 0.0),
    "MPa->bar": (10.0, 0.0),
    "Pa->bar": (1e-5, 0.0),
    "bar->MPa": (0.1, 0.0),
    "N->kN": (0.001, 0.0),
    "kgf->kN": (0.00980665, 0.0),
    "tf->kN": (9.80665, 0.0),
    "lbf->kN": (0.00444822162, 0.0),
    "in->mm": (25.4, 0.0),
    "m->mm": (1000.0, 0.0),
    "um->mm": (0.001, 0.0),
    "ms->s": (0.001, 0.0),
    "min->s": (60.0, 0.0),
    "in/s->mm/s": (25.4, 0.0),
    "m/s->mm/s": (1000.0, 0.0),
    "W->kW": (0.001, 0.0),
    "mA->A": (0.001, 0.0),
    "percent->ratio": (0.01, 0.0),
    "ratio->percent": (100.0, 0.0),
}


@dataclass(frozen=True)
class Binding:
    source: str
    signal: str
    key: SeriesKey
    scale: float = 1.0
    offset: float = 0.0
    convert: str | None = None
    deadband: float | None = None
    deadband_percent: float | None = None
    heartbeat: float | None = None

    def transform(self, value: Value) -> Value:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        result = value * self.scale + self.offset
        if self.convert:
            factor, shift = CONVERSIONS[self.convert]
            result = result * factor + shift
        if isinstance(value, int) and self.scale == 1.0 and self.offset == 0.0 and not self.convert:
            return value
        return float(result)


@dataclass
class _Last:
    value: Value
    quality: Quality
    time: datetime


@dataclass
class MappingStats:
    readings: int = 0
    samples: int = 0
    suppressed: int = 0
    unbound: int = 0
    unbound_signals: set[tuple[str, str]] = field(default_factory=set)


class Mapper:
    """Turns one source's readings into samples for the buffer. Not thread-safe: one event loop."""

    def __init__(self, bindings: Iterable[Binding]) -> None:
        self._by_signal: dict[tuple[str, str], Binding] = {}
        targets: dict[SeriesKey, Binding] = {}
        for binding in bindings:
            signal = (binding.source, binding.signal)
            if signal in self._by_signal:
                raise ValueError(f"signal {binding.signal!r} of source {binding.source!r} is bound twice")
            if binding.key in targets:
                other = targets[binding.key]
                raise ValueError(f"element {binding.key.path!r} of {binding.key.submodel_id!r} is fed by both "
                                 f"{other.source}/{other.signal} and {binding.source}/{binding.signal}; "
                                 "a value lives in exactly one element, fed by one signal")
            self._by_signal[signal] = binding
            targets[binding.key] = binding
        self._last: dict[SeriesKey, _Last] = {}
        self.stats = MappingStats()

    def bindings(self) -> list[Binding]:
        return list(self._by_signal.values())

    def map(self, source: str, readings: Sequence[Reading]) -> list[Sample]:
        out: list[Sample] = []
        stats = self.stats
        stats.readings += len(readings)
        for reading in readings:
            binding = self._by_signal.get((source, reading.signal))
            if binding is None:
                stats.unbound += 1
                stats.unbound_signals.add((source, reading.signal))
                continue
            value = binding.transform(reading.value) if reading.quality != Quality.BAD else None
            if not self._should_report(binding, value, reading.quality, reading.source_time):
                stats.suppressed += 1
                continue
            self._last[binding.key] = _Last(value, reading.quality, reading.source_time)
            out.append(Sample(binding.key, reading.source_time, value, reading.quality, reading.received))
        stats.samples += len(out)
        return out

    def due(self, now: datetime) -> list[Sample]:
        """Heartbeats: the last value again (stamped `now`) for every binding whose heartbeat has
        passed without a report, e.g. a subscription that only delivers changes."""
        out = []
        for binding in self._by_signal.values():
            last = self._last.get(binding.key)
            if binding.heartbeat is None or last is None:
                continue
            if (now - last.time).total_seconds() >= binding.heartbeat:
                self._last[binding.key] = _Last(last.value, last.quality, now)
                out.append(Sample(binding.key, now, last.value, last.quality, now))
        self.stats.samples += len(out)
        return out

    def _should_report(self, binding: Binding, value: Value, quality: Quality, time: datetime) -> bool:
        last = self._last.get(binding.key)
        if last is None or quality != last.quality:
            return True
        if time <= last.time:
            return False  # a repeat or an out-of-order duplicate of what was reported
        if binding.heartbeat is not None and (time - last.time).total_seconds() >= binding.heartbeat:
            return True
        if quality == Quality.BAD:
            return False
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        old_numeric = isinstance(last.value, int | float) and not isinstance(last.value, bool)
        if not (numeric and old_numeric):
            return value != last.value
        assert isinstance(value, int | float) and isinstance(last.value, int | float)
        change = abs(value - last.value)
        if binding.deadband is not None:
            return change > binding.deadband
        if binding.deadband_percent is not None:
            return change > abs(last.value) * binding.deadband_percent / 100
        return change != 0
