"""Readings handed on as batches (one time and quality for many signals): the same samples as one Reading
per signal, through mapping, buffer and store, from a real pymodbus server."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from aas_models.timeseries.base import Quality, SeriesKey
from aas_models.timeseries.sqlite import SampleColumns, SampleLists, from_micros, micros
from edge_agent.buffer import Buffer, BufferConfig
from edge_agent.connectors.base import Reading, ReadingBatch, Readings
from edge_agent.connectors.modbus import ModbusSourceConfig, create
from edge_agent.mapping import Binding, Mapper
from edge_agent.runtime import Agent, Pace
from edge_agent.sinks.timeseries import TimeSeriesSink, TimeSeriesSinkConfig
from tests.modbus_peers import (
    EXPECTED,
    STANDARD_TAGS,
    ModbusTestServer,
    modbus_tcp_server_fixture,  # noqa: F401  (fixture "modbus_tcp_server")
)

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
SIGNALS = ("plain", "band", "percent", "beat", "scaled", "text")


def bindings() -> list[Binding]:
    key = {s: SeriesKey("urn:sm:batch", f"Tags.{s}") for s in SIGNALS}
    return [Binding("plc", "plain", key["plain"]),
            Binding("plc", "band", key["band"], deadband=0.5),
            Binding("plc", "percent", key["percent"], deadband_percent=10),
            Binding("plc", "beat", key["beat"], heartbeat=2.0),
            Binding("plc", "scaled", key["scaled"], scale=0.1, offset=1.0, convert="bar->psi"),
            Binding("plc", "text", key["text"])]


def script() -> list[tuple[float, Quality, list[Any]]]:
    """Polls as (seconds after T0, quality, one value per signal of SIGNALS, then an unbound one)."""
    return [
        (0, Quality.GOOD, [1.0, 10.0, 100.0, 5.0, 20.0, "a", 1]),
        (1, Quality.GOOD, [1.0, 10.4, 105.0, 5.0, 20.0, "a", 2]),    # below both deadbands, no change
        (2, Quality.GOOD, [2.0, 10.6, 111.0, 5.0, 21.0, "b", 3]),    # changes beyond them; heartbeat 2 s
        (2, Quality.GOOD, [3.0, 20.0, 200.0, 6.0, 22.0, "c", 4]),    # same time again: nothing reported
        (1.5, Quality.GOOD, [4.0, 30.0, 300.0, 7.0, 23.0, "d", 5]),  # older than the last report
        (3, Quality.BAD, [9.0, 9.0, 9.0, 9.0, 9.0, "x", 6]),         # bad: reported once, without value
        (4, Quality.BAD, [8.0, 8.0, 8.0, 8.0, 8.0, "y", 7]),
        (5, Quality.UNCERTAIN, [2.0, 10.6, 111.0, 5.0, 21.0, "b", 8]),
        (6, Quality.GOOD, [2.0, 10.6, 111.0, 5.0, 21.0, "b", 9]),
        (9, Quality.GOOD, [2.0, 10.6, 111.0, 5.0, 21.0, "b", 10]),   # only the heartbeat reports
    ]


def as_batches(received_offset: float | None) -> list[Readings]:
    polls = []
    for seconds, quality, values in script():
        t = T0 + timedelta(seconds=seconds)
        received = None if received_offset is None else t + timedelta(seconds=received_offset)
        readings = Readings()
        readings.add((*SIGNALS[:3], ), values[:3], t, quality, received)  # one poll, two blocks
        readings.add((*SIGNALS[3:], "unbound"), values[3:], t, quality, received)
        polls.append(readings)
    return polls


def as_objects(received_offset: float | None) -> list[list[Reading]]:
    polls = []
    for seconds, quality, values in script():
        t = T0 + timedelta(seconds=seconds)
        received = t if received_offset is None else t + timedelta(seconds=received_offset)
        polls.append([Reading(s, v, t, quality, received) for s, v in zip((*SIGNALS, "unbound"), values,
                                                                          strict=True)])
    return polls


@pytest.mark.parametrize("received_offset", [None, 0.25])
def test_batches_map_exactly_as_one_reading_per_signal(received_offset: float | None) -> None:
    by_batch, by_object = Mapper(bindings()), Mapper(bindings())
    for batch, objects in zip(as_batches(received_offset), as_objects(received_offset), strict=True):
        got, want = by_batch.map("plc", batch), by_object.map("plc", objects)
        assert list(got) == list(want)
    assert by_batch.stats == by_object.stats
    assert by_batch.stats.samples > 0 and by_batch.stats.suppressed > 0 and by_batch.stats.unbound == 10
    # what the script says, per signal (values after transform; None while bad)
    mapper = Mapper(bindings())
    reported: dict[str, list[tuple[float, Quality, Any]]] = {s: [] for s in SIGNALS}
    for batch in as_batches(None):
        for sample in mapper.map("plc", batch):
            reported[sample.key.path.removeprefix("Tags.")].append(
                ((sample.time - T0).total_seconds(), sample.quality, sample.value))
    good, bad, uncertain = Quality.GOOD, Quality.BAD, Quality.UNCERTAIN
    assert reported["plain"] == [(0, good, 1.0), (2, good, 2.0), (3, bad, None), (5, uncertain, 2.0),
                                 (6, good, 2.0)]
    assert reported["band"] == [(0, good, 10.0), (2, good, 10.6), (3, bad, None), (5, uncertain, 10.6),
                                (6, good, 10.6)]
    assert reported["percent"] == [(0, good, 100.0), (2, good, 111.0), (3, bad, None), (5, uncertain, 111.0),
                                   (6, good, 111.0)]
    assert reported["beat"] == [(0, good, 5.0), (2, good, 5.0), (3, bad, None), (5, uncertain, 5.0),
                                (6, good, 5.0), (9, good, 5.0)]
    assert [v for _, _, v in reported["scaled"]] == pytest.approx(
        [(20.0 * 0.1 + 1.0) * 14.5037738, (21.0 * 0.1 + 1.0) * 14.5037738, None, (21.0 * 0.1 + 1.0) * 14.5037738,
         (21.0 * 0.1 + 1.0) * 14.5037738])
    assert reported["text"] == [(0, good, "a"), (2, good, "b"), (3, bad, None), (5, uncertain, "b"),
                                (6, good, "b")]


def test_microseconds_of_any_aware_time() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for moment in (T0, epoch, datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
                   datetime(1900, 2, 28, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=-5))),
                   datetime(2400, 1, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=9, minutes=30)))):
        assert micros(moment) == (moment - epoch) // timedelta(microseconds=1)
        assert from_micros(micros(moment)) == moment
    with pytest.raises(ValueError, match="timezone-aware"):
        micros(datetime(2026, 1, 1))


def test_readings_are_a_sequence_of_reading_objects() -> None:
    readings = Readings()
    readings.add(("a", "b"), (1.5, 2), T0)
    readings.append(Reading("c", "x", T0, Quality.UNCERTAIN, T0 + timedelta(seconds=1)))
    readings.add(("d",), (None,), T0, Quality.BAD, T0 + timedelta(seconds=2))
    assert len(readings) == 4
    assert list(readings) == [Reading("a", 1.5, T0, Quality.GOOD, T0), Reading("b", 2, T0, Quality.GOOD, T0),
                              Reading("c", "x", T0, Quality.UNCERTAIN, T0 + timedelta(seconds=1)),
                              Reading("d", None, T0, Quality.BAD, T0 + timedelta(seconds=2))]
    assert readings[1].signal == "b" and [r.signal for r in readings[2:]] == ["c", "d"]
    assert isinstance(readings.parts[0], ReadingBatch) and readings.parts[0].received is None
    with pytest.raises(ValueError, match="2 signals but 1 values"):
        readings.add(("a", "b"), (1.0,), T0)
    more = Readings()
    more.extend(readings)
    more.extend([Reading("e", 1.0, T0, Quality.GOOD, T0)])
    assert [r.signal for r in more] == ["a", "b", "c", "d", "e"]


def test_buffer_keeps_every_field_of_batched_samples(tmp_path: Path) -> None:
    """Source time = receive time (a device without timestamps) and all good: the buffer's and the store's
    quick paths; a second poll with its own receive time and a bad block: the general ones."""
    mapper = Mapper(bindings())
    buffer = Buffer(BufferConfig(path=tmp_path / "buffer.db"))
    buffer.open(["store"])
    try:
        polls = as_batches(None)[:3] + as_batches(0.25)[5:6]
        want = []
        for poll in polls:
            samples = mapper.map("plc", poll)
            assert isinstance(samples, SampleLists)
            want += list(samples)
            buffer.append(samples)
        batch = buffer.read("store", 1000)
        assert batch is not None and isinstance(batch.samples, SampleColumns)
        assert list(batch.samples) == want
    finally:
        buffer.close()


# -- a real device -----------------------------------------------------------------------------------

def modbus_source(server: ModbusTestServer) -> ModbusSourceConfig:
    return ModbusSourceConfig.model_validate({
        "type": "modbus", "name": "plc", "host": server.host, "port": server.port, "timeout": 1.0,
        "poll_interval": 0.05, "backoff": {"initial": 0.05, "maximum": 0.2}, "tags": list(STANDARD_TAGS)})


def test_modbus_polls_come_as_one_batch_per_block(modbus_tcp_server: ModbusTestServer) -> None:
    connector = create(modbus_source(modbus_tcp_server))
    emitted: list[Sequence[Reading]] = []

    async def run() -> None:
        done = asyncio.Event()

        async def emit(readings: Sequence[Reading]) -> None:
            emitted.append(readings)
            done.set()

        task = asyncio.create_task(connector.run(emit))
        try:
            await asyncio.wait_for(done.wait(), 10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    poll = emitted[0]
    assert isinstance(poll, Readings)
    assert [tuple(part.signals) for part in poll.parts if isinstance(part, ReadingBatch)] == [
        block.signals for block in connector.initial_plan]
    assert {r.signal: r.value for r in poll} == EXPECTED
    assert all(r.quality is Quality.GOOD and r.received == r.source_time for r in poll)


def test_modbus_batches_reach_the_store_with_quality_and_time(modbus_tcp_server: ModbusTestServer,
                                                              tmp_path: Path) -> None:
    """Device -> batches -> mapping -> durable buffer -> embedded store; then the device goes away and every
    signal is stored once more as BAD (no value) at a later time."""
    keys = {s: SeriesKey("urn:sm:plc", f"Tags.{s}") for s in EXPECTED}
    mapper = Mapper([Binding("plc", s, keys[s]) for s in EXPECTED])
    sink = TimeSeriesSink(TimeSeriesSinkConfig(path=tmp_path / "ts.db", retention_days=0))
    agent = Agent([create(modbus_source(modbus_tcp_server))], mapper,
                  Buffer(BufferConfig(path=tmp_path / "buffer.db")), [sink], pace=Pace(flush_interval=0.05))

    async def scenario() -> tuple[dict[str, list[Any]], int]:
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        try:
            for _ in range(200):  # until every signal has been stored at least once
                await asyncio.sleep(0.05)
                if sink.stats.written >= len(EXPECTED):
                    break
            modbus_tcp_server.stop()
            for _ in range(200):  # until the BAD report of every signal is stored too
                await asyncio.sleep(0.05)
                if agent.mapper.stats.samples - sink.stats.written == 0:
                    latest = [(await sink.store.read(key, limit=1))[-1] for key in keys.values()]
                    if all(point.quality is Quality.BAD for point in latest):
                        break
            return {s: await sink.store.read(keys[s]) for s in keys}, agent.buffer.dropped()
        finally:
            stop.set()
            await task
            modbus_tcp_server.start()

    points, dropped = asyncio.run(scenario())
    assert dropped == 0
    # a device without timestamps: each sample's receive time is its source time (stored as such)
    with contextlib.closing(sqlite3.connect(tmp_path / "ts.db")) as db:  # stored as "same as t": no column
        rows = db.execute("SELECT received FROM chunks UNION ALL SELECT received FROM pending").fetchall()
    assert rows and all(received is None for (received,) in rows)
    for signal, series in points.items():
        expected = EXPECTED[signal]
        if type(expected) is int and abs(expected) > 2**53:  # the store keeps numbers as float64
            expected = int(float(expected))
        assert (series[0].quality, series[0].value) == (Quality.GOOD, expected), signal
        assert type(series[0].value) is type(EXPECTED[signal]), signal
        assert (series[-1].quality, series[-1].value) == (Quality.BAD, None), signal
        assert series[-1].time > series[0].time, signal


@pytest.mark.parametrize("shape", ["floats received at source time", "floats received later", "integers",
                                   "mixed"])
def test_store_rows_many_per_statement_keep_their_order(tmp_path: Path, shape: str) -> None:
    """One write of 250 samples (statements of many rows, then the rest one by one): a (series, time) written
    again later in the same batch or in the next one wins, before the fold and after it."""
    from aas_models.timeseries.base import Sample
    from aas_models.timeseries.sqlite import SqliteTimeSeries

    keys = [SeriesKey("urn:sm:rows", f"s{k}") for k in range(3)]

    def value(i: int, round_: int) -> Any:
        if shape == "integers":
            return i * 10 + round_
        if shape == "mixed":
            return [float(i) + round_, i + round_, f"v{i}-{round_}", None][i % 4]
        return float(i) + 0.5 * round_

    def batch(round_: int) -> list[Sample]:
        out = []
        for i in range(250):
            t = T0 + timedelta(seconds=i % 120)  # times repeat within the batch: 0..119, 0..119, 0..9
            received = t if shape != "floats received later" else t + timedelta(milliseconds=i)
            quality = Quality.BAD if shape == "mixed" and i % 4 == 3 else Quality.GOOD
            out.append(Sample(keys[i % 3], t, value(i, round_), quality, received))
        return out

    def expected(batches: list[list[Sample]]) -> dict[SeriesKey, list[tuple[datetime, Any]]]:
        latest: dict[tuple[SeriesKey, datetime], Any] = {}
        for samples in batches:
            for s in samples:
                latest[(s.key, s.time)] = s.value
        return {key: sorted((t, v) for (k, t), v in latest.items() if k == key) for key in keys}

    async def run() -> None:
        store = SqliteTimeSeries(tmp_path / "ts.db")
        await store.open()
        await store.write(batch(0))
        want = expected([batch(0)])
        for key in keys:
            assert [(p.time, p.value) for p in await store.read(key)] == want[key]
        await store.write(batch(1)[:130])
        await store.close()  # folds
        reopened = SqliteTimeSeries(tmp_path / "ts.db")
        await reopened.open()
        want = expected([batch(0), batch(1)[:130]])
        for key in keys:
            assert [(p.time, p.value) for p in await reopened.read(key)] == want[key]
        await reopened.close()

    asyncio.run(run())


def test_repeated_plain_layouts_map_exactly_as_one_reading_per_signal() -> None:
    """A layout that comes again and again with only plain bindings (a Modbus block) is decided for the whole
    block at once: the same samples and counts as one Reading per signal, across every state change (first
    read, all/none/some changed, repeats and late reads, bad, uncertain, NaN and text values, a single
    reading of one of its signals, and a split block read over part of the same signals)."""
    import math
    import random

    signals = tuple(f"s{i}" for i in range(8))
    keys = {s: SeriesKey("urn:sm:block", f"Tags.{s}") for s in signals}

    def mapper() -> Mapper:
        return Mapper([Binding("plc", s, keys[s]) for s in signals])

    rng = random.Random(7)
    by_batch, by_object = mapper(), mapper()
    values: list[Any] = [float(i) for i in range(len(signals))]
    seconds = 0.0
    for step in range(3000):
        action = rng.random()
        seconds += rng.choice([1.0, 1.0, 1.0, 0.0, -0.5, -3.0]) if step else 0.0
        t = T0 + timedelta(seconds=seconds)
        quality = rng.choice([Quality.GOOD] * 8 + [Quality.BAD, Quality.UNCERTAIN])
        for i in range(len(signals)):
            roll = rng.random()
            if roll < 0.3:
                values[i] = rng.choice([float(rng.randint(0, 3)), math.nan, "on", "off", rng.randint(0, 2)])
        layout, part = signals, list(values)
        if action < 0.15:  # a split block: part of the same signals, as its own layout
            first = rng.randrange(len(signals) - 1)
            layout, part = signals[first:first + 3], part[first:first + 3]
        batch = Readings()
        if action > 0.93:  # one signal alone, as a connector reports a tag it could not read
            batch.append(Reading(rng.choice(signals), None, t, Quality.BAD, t))
        else:
            batch.add(layout, tuple(part), t, quality)
        objects = list(batch)
        got, want = list(by_batch.map("plc", batch)), list(by_object.map("plc", objects))
        assert [(s.key, s.time, s.quality, s.received) for s in got] == \
               [(s.key, s.time, s.quality, s.received) for s in want], step
        assert [repr(s.value) for s in got] == [repr(s.value) for s in want], step
    assert by_batch.stats == by_object.stats
    assert by_batch.stats.suppressed > 1000 and by_batch.stats.samples > 1000
    assert any(block is not None and block.live for block in by_batch._blocks.values())  # the quick path ran


def test_columns_read_back_from_the_buffer_are_arrays_that_buffer_and_store_take_as_they_are(
        tmp_path: Path) -> None:
    """The buffer reads its blobs back as numpy columns (shared times, own receive times, bad and text values);
    appended to another buffer and written to the store they give the same samples."""
    import numpy as np

    from aas_models.timeseries.sqlite import SqliteTimeSeries

    mapper = Mapper(bindings())
    first, second = (Buffer(BufferConfig(path=tmp_path / f"{name}.db")) for name in ("first", "second"))
    first.open(["next"])
    second.open(["store"])
    try:
        want = []
        for poll in as_batches(None)[:3] + as_batches(0.25)[5:]:
            samples = mapper.map("plc", poll)
            want += list(samples)
            first.append(samples)
        batch = first.read("next", 1000)
        assert batch is not None and isinstance(batch.samples, SampleColumns)
        assert isinstance(batch.samples.t, np.ndarray) and isinstance(batch.samples.num, np.ndarray)
        assert list(batch.samples) == want
        assert all(type(s.value) in (float, str, type(None)) for s in batch.samples)  # no numpy scalars
        second.append(batch.samples)
        again = second.read("store", 1000)
        assert again is not None and list(again.samples) == want

        async def store() -> dict[SeriesKey, list[tuple[datetime, Any, Quality]]]:
            ts = SqliteTimeSeries(tmp_path / "ts.db")
            await ts.open()
            await ts.write(again.samples)
            out = {key: [(p.time, p.value, p.quality) for p in await ts.read(key)] for key in {s.key for s in want}}
            await ts.close()
            return out

        stored = asyncio.run(store())
        latest: dict[tuple[SeriesKey, datetime], tuple[Any, Quality]] = {}
        for s in want:
            latest[(s.key, s.time)] = (s.value, s.quality)
        assert stored == {key: sorted((t, v, q) for (k, t), (v, q) in latest.items() if k == key) for key in stored}
    finally:
        first.close()
        second.close()
