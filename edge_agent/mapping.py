"""Signal -> submodel element: the single place that knows which signal feeds which element.

Per binding: a linear transform (scale, offset, unit conversion), report-on-change with an absolute
or percent deadband, and a heartbeat (report at least every N seconds even without change).
Quality changes are always reported; a bad reading never carries an old good value.

The hot path is per reading: slots are found by plain strings, plain bindings (no deadband or
heartbeat) are decided without the deadband logic, and samples come out as lists per field
(`SampleLists`), since building a frozen Sample object per reading would cost more than all the rest.
Readings that come as batches (`Readings` of `ReadingBatch`: one time and quality for many signals) are
mapped without a Reading object per signal, with the same decisions per signal. A batch layout that
comes again and again (a Modbus block) whose bindings are all plain keeps its signals' state as one
`_Block` and is decided with C-level list operations: under half the cost of deciding slot by slot.

For a plain binding, a reading no newer than the last one taken (reported, or equal to it) is a repeat
or late and is dropped; a binding with a deadband or heartbeat compares with its last report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress, repeat
from operator import ne

from aas_models.timeseries.base import Quality, Sample, SeriesKey, Value
from aas_models.timeseries.sqlite import SampleLists
from edge_agent.connectors.base import Reading, ReadingBatch, Readings

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


@dataclass(eq=False, slots=True)
class _Slot:
    """A binding and what it last reported (`seen` is False until the first report)."""

    binding: Binding
    key: SeriesKey
    #: No scale, offset or conversion: the value passes unchanged (the common case, kept cheap).
    identity: bool
    #: No deadband and no heartbeat: report exactly the changes (the common case, decided inline).
    plain: bool
    seen: bool = False
    value: Value = None
    quality: Quality = Quality.GOOD
    time: datetime | None = None
    #: The block that holds this slot's state instead of the fields above, while it is live.
    block: _Block | None = None


@dataclass(eq=False, slots=True)
class _Block:
    """The state of a batch layout's slots, all plain and identity, kept as one quality and time and the
    last batch's values. Live once a batch left every slot in that state; a reading that reaches one of
    its slots another way (a single BAD reading, a split block) first writes the state back to the
    slots (`release`), and the next batch that leaves them uniform makes it live again."""

    slots: tuple[_Slot, ...]
    keys: tuple[SeriesKey, ...]
    live: bool = False
    values: Sequence[Value] = ()
    quality: Quality = Quality.GOOD
    time: datetime | None = None

    def adopt(self, values: Sequence[Value], quality: Quality, time: datetime) -> None:
        self.live, self.values, self.quality, self.time = True, values, quality, time
        for slot in self.slots:
            slot.block = self

    def release(self) -> None:
        self.live = False
        for slot, value in zip(self.slots, self.values, strict=True):
            slot.seen, slot.value, slot.quality, slot.time, slot.block = True, value, self.quality, self.time, None


#: What `Mapper._take` decides for a reading.
REPORT, SUPPRESSED, LATE = 0, 1, 2

#: Batch layouts remembered per mapper; beyond this, new layouts are decided slot by slot (a connector
#: that makes a new layout per read must not grow the cache without end).
MAX_LAYOUTS = 4096


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
        # Per source, per signal: one slot each (an element has exactly one feeding signal, so the
        # slot also holds the element's last report). Looked up by plain strings on the hot path.
        self._slots: dict[str, dict[str, _Slot]] = {}
        for binding in self._by_signal.values():
            identity = binding.scale == 1.0 and binding.offset == 0.0 and not binding.convert
            plain = binding.deadband is None and binding.deadband_percent is None and binding.heartbeat is None
            self._slots.setdefault(binding.source, {})[binding.signal] = _Slot(binding, binding.key, identity, plain)
        self._blocks: dict[tuple[str, tuple[str, ...]], _Block | None] = {}
        self.stats = MappingStats()

    def bindings(self) -> list[Binding]:
        return list(self._by_signal.values())

    def map(self, source: str, readings: Sequence[Reading]) -> SampleLists:
        """The samples to report, as lists per field (a Sequence of Samples to anyone who reads it)."""
        out = SampleLists()
        slots = self._slots.get(source, {})
        if isinstance(readings, Readings):
            single: list[Reading] = []
            for part in readings.parts:
                if isinstance(part, Reading):
                    single.append(part)
                    continue
                if single:
                    self._map_readings(source, slots, single, out)
                    single = []
                self._map_batch(source, slots, part, out)
            if single:
                self._map_readings(source, slots, single, out)
        else:
            self._map_readings(source, slots, readings, out)
        self.stats.readings += len(readings)
        self.stats.samples += len(out)
        return out

    def _map_readings(self, source: str, slots: dict[str, _Slot], readings: Iterable[Reading],
                      out: SampleLists) -> None:
        add_key, add_time, add_value = out.keys.append, out.times.append, out.values.append
        add_quality, add_received = out.qualities.append, out.received.append
        stats = self.stats
        bad = Quality.BAD
        take = self._take
        suppressed = 0
        for reading in readings:
            slot = slots.get(reading.signal)
            if slot is None:
                stats.unbound += 1
                stats.unbound_signals.add((source, reading.signal))
                continue
            if slot.block is not None:
                slot.block.release()
            quality = reading.quality
            if quality == bad:
                value: Value = None
            elif slot.identity:
                value = reading.value
            else:
                value = slot.binding.transform(reading.value)
            time = reading.source_time
            if take(slot, value, quality, time) != REPORT:
                suppressed += 1
                continue
            add_key(slot.key)
            add_time(time)
            add_value(value)
            add_quality(quality)
            add_received(reading.received)
        stats.suppressed += suppressed

    def _map_batch(self, source: str, slots: dict[str, _Slot], batch: ReadingBatch, out: SampleLists) -> None:
        """As `_map_readings`, for readings that share time, quality and receive time."""
        block = self._block(source, slots, batch.signals)
        if block is not None and block.live:
            self._map_block(block, batch, out)
            return
        stats = self.stats
        time, quality = batch.source_time, batch.quality
        is_bad = quality == Quality.BAD
        take = self._take
        keys, values = out.keys, out.values
        add_key, add_value = keys.append, values.append
        before = len(keys)
        suppressed = late = 0
        for signal, value in zip(batch.signals, batch.values, strict=True):
            slot = slots.get(signal)
            if slot is None:
                stats.unbound += 1
                stats.unbound_signals.add((source, signal))
                continue
            if slot.block is not None:
                slot.block.release()
            if is_bad:
                value = None
            elif not slot.identity:
                value = slot.binding.transform(value)
            outcome = take(slot, value, quality, time)
            if outcome != REPORT:
                if outcome == LATE:
                    late += 1
                else:
                    suppressed += 1
                continue
            add_key(slot.key)
            add_value(value)
        added = len(keys) - before
        if added:
            out.runs.append((time, added))
            out.times.extend(repeat(time, added))
            out.qualities.extend(repeat(quality, added))
            out.received.extend(repeat(time if batch.received is None else batch.received, added))
        stats.suppressed += suppressed + late
        if block is not None and not late:  # every slot now holds this batch's quality, time and value
            block.adopt((None,) * len(block.keys) if is_bad else tuple(batch.values), quality, time)

    def _block(self, source: str, slots: dict[str, _Slot], signals: Sequence[str]) -> _Block | None:
        """The block of a layout whose signals are all bound plainly; None for any other."""
        if type(signals) is not tuple:
            return None  # a list may change after the call: not a layout to remember
        layout = (source, signals)
        try:
            return self._blocks[layout]
        except KeyError:
            pass
        if len(self._blocks) >= MAX_LAYOUTS:
            return None
        found = [slots.get(signal) for signal in signals]
        block = None
        if len(set(signals)) == len(signals) and all(s is not None and s.plain and s.identity for s in found):
            members = tuple(s for s in found if s is not None)
            block = _Block(members, tuple(s.key for s in members))
        self._blocks[layout] = block
        return block

    def _map_block(self, block: _Block, batch: ReadingBatch, out: SampleLists) -> None:
        """`_map_batch`'s decisions for a live block, for all its slots at once."""
        stats = self.stats
        time, quality = batch.source_time, batch.quality
        keys: Iterable[SeriesKey] = block.keys
        n = len(block.keys)
        if quality != block.quality:  # reported, every one
            values = (None,) * n if quality == Quality.BAD else tuple(batch.values)
            reported: Iterable[Value] = values
            added = n
        elif time <= block.time:  # type: ignore[operator]
            stats.suppressed += n
            return
        elif quality == Quality.BAD:  # bad again: no value to compare
            block.time = time
            stats.suppressed += n
            return
        else:
            values = tuple(batch.values)
            changed = list(map(ne, values, block.values))
            added = sum(changed)
            if added == n:
                reported = values
            else:
                keys, reported = compress(keys, changed), compress(values, changed)
        block.values, block.quality, block.time = values, quality, time
        stats.suppressed += n - added
        if added:
            out.keys.extend(keys)
            out.values.extend(reported)
            out.runs.append((time, added))
            out.times.extend(repeat(time, added))
            out.qualities.extend(repeat(quality, added))
            out.received.extend(repeat(time if batch.received is None else batch.received, added))

    def due(self, now: datetime) -> list[Sample]:
        """Heartbeats: the last value again (stamped `now`) for every binding whose heartbeat has
        passed without a report, e.g. a subscription that only delivers changes."""
        out = []
        for slots in self._slots.values():
            for slot in slots.values():
                binding = slot.binding
                if binding.heartbeat is None or not slot.seen or slot.time is None:
                    continue
                if (now - slot.time).total_seconds() >= binding.heartbeat:
                    slot.time = now
                    out.append(Sample(binding.key, now, slot.value, slot.quality, now))
        self.stats.samples += len(out)
        return out

    def _take(self, slot: _Slot, value: Value, quality: Quality, time: datetime) -> int:
        """REPORT (recorded as the slot's last report), SUPPRESSED or LATE. A first report or a quality change
        is always reported; a plain binding reports any change (what _should_report decides for it,
        without the call) and takes the time of an equal value."""
        if slot.seen and quality == slot.quality:
            if time <= slot.time:  # type: ignore[operator]
                return LATE
            if slot.plain:
                if value == slot.value:
                    slot.time = time
                    return SUPPRESSED
            elif not self._should_report(slot, value, quality, time):
                return SUPPRESSED
        slot.seen, slot.value, slot.quality, slot.time = True, value, quality, time
        return REPORT

    @staticmethod
    def _should_report(slot: _Slot, value: Value, quality: Quality, time: datetime) -> bool:
        if not slot.seen or quality != slot.quality:
            return True
        assert slot.time is not None
        if time <= slot.time:
            return False  # a repeat or an out-of-order duplicate of what was reported
        binding = slot.binding
        if binding.heartbeat is not None and (time - slot.time).total_seconds() >= binding.heartbeat:
            return True
        if quality == Quality.BAD:
            return False
        last = slot.value
        if type(value) is float and type(last) is float:  # the common case first: no isinstance chain
            change = abs(value - last)
        else:
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            old_numeric = isinstance(last, int | float) and not isinstance(last, bool)
            if not (numeric and old_numeric):
                return value != last
            assert isinstance(value, int | float) and isinstance(last, int | float)
            change = abs(value - last)
        if binding.deadband is not None:
            return change > binding.deadband
        if binding.deadband_percent is not None:
            return change > abs(last) * binding.deadband_percent / 100
        return change != 0
