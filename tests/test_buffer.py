"""The durable buffer: per-sink positions, persistence, bounded size with a drop counter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from aas_models.timeseries.base import Quality, Sample, SeriesKey
from edge_agent.buffer import Buffer, BufferConfig

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
KEY = SeriesKey("urn:sm:op", "OilTemperature.Value")


def samples(n: int, start: int = 0) -> list[Sample]:
    return [Sample(KEY, T0 + timedelta(seconds=start + i), float(start + i), Quality.GOOD, T0) for i in range(n)]


def test_each_sink_has_its_own_position(tmp_path: Path) -> None:
    buffer = Buffer(BufferConfig(path=tmp_path / "b.db"))
    buffer.open(["twin", "history"])
    buffer.append(samples(10))
    batch = buffer.read("twin", 4)
    assert batch is not None and [s.value for s in batch.samples] == [0.0, 1.0, 2.0, 3.0]
    buffer.ack("twin", batch.last_seq)
    assert buffer.depth("twin") == 6 and buffer.depth("history") == 10
    assert buffer.compact() == 0  # history still needs everything
    history = buffer.read("history", 100)
    assert history is not None and history.samples == samples(10)
    buffer.ack("history", history.last_seq)
    assert buffer.compact() == 4


def test_survives_reopen_without_ack_loss_or_repeat(tmp_path: Path) -> None:
    buffer = Buffer(BufferConfig(path=tmp_path / "b.db"))
    buffer.open(["twin"])
    buffer.append(samples(5))
    first = buffer.read("twin", 2)
    assert first is not None
    buffer.ack("twin", first.last_seq)
    buffer.close()
    again = Buffer(BufferConfig(path=tmp_path / "b.db"))
    again.open(["twin"])
    rest = again.read("twin", 100)
    assert rest is not None and [s.value for s in rest.samples] == [2.0, 3.0, 4.0]


def test_bounded_size_drops_oldest_and_counts(tmp_path: Path) -> None:
    buffer = Buffer(BufferConfig(path=tmp_path / "b.db", max_samples=1000))
    buffer.open(["twin"])
    buffer.append(samples(1500))
    assert buffer.dropped() == 500
    batch = buffer.read("twin", 5000)
    assert batch is not None and len(batch.samples) == 1000 and batch.samples[0].value == 500.0


def test_removed_sinks_stop_holding_data(tmp_path: Path) -> None:
    buffer = Buffer(BufferConfig(path=tmp_path / "b.db"))
    buffer.open(["twin", "old"])
    buffer.append(samples(3))
    batch = buffer.read("twin", 10)
    assert batch is not None
    buffer.ack("twin", batch.last_seq)
    buffer.close()
    buffer.open(["twin"])
    assert buffer.compact() == 3
