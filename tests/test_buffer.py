"""The durable buffer: batches, per-sink positions, persistence, a bound in samples with a drop counter,
and the conversion of a format-1 file (one row per sample) written by earlier versions."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from aas_models.timeseries.base import Quality, Sample, SeriesKey
from edge_agent.buffer import FORMAT, Buffer, BufferConfig, BufferFileError

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
KEY = SeriesKey("urn:sm:op", "OilTemperature.Value")


def samples(n: int, start: int = 0) -> list[Sample]:
    return [Sample(KEY, T0 + timedelta(seconds=start + i), float(start + i), Quality.GOOD, T0) for i in range(n)]


def opened(path: Path, sinks: list[str], max_samples: int = 5_000_000) -> Buffer:
    buffer = Buffer(BufferConfig(path=path, max_samples=max_samples))
    buffer.open(sinks)
    return buffer


def test_each_sink_has_its_own_position(tmp_path: Path) -> None:
    buffer = opened(tmp_path / "b.db", ["twin", "history"])
    for start in range(0, 10, 2):
        buffer.append(samples(2, start))
    batch = buffer.read("twin", 4)
    assert batch is not None and [s.value for s in batch.samples] == [0.0, 1.0, 2.0, 3.0] and batch.last_seq == 4
    buffer.ack("twin", batch.last_seq)
    assert buffer.depth("twin") == 6 and buffer.depth("history") == 10
    assert buffer.compact() == 0  # history still needs everything
    history = buffer.read("history", 100)
    assert history is not None and list(history.samples) == samples(10)
    buffer.ack("history", history.last_seq)
    assert buffer.compact() == 4
    assert buffer.depth("twin") == 6 and buffer.depth("history") == 0


def test_reads_whole_batches_up_to_the_limit_and_at_least_one(tmp_path: Path) -> None:
    buffer = opened(tmp_path / "b.db", ["twin"])
    buffer.append(samples(3))
    buffer.append(samples(3, 3))
    buffer.append(samples(10, 6))
    first = buffer.read("twin", 5)  # the second batch would pass the limit
    assert first is not None and len(first.samples) == 3 and first.last_seq == 3
    buffer.ack("twin", first.last_seq)
    second = buffer.read("twin", 5)  # 3 + 10 > 5: just the one
    assert second is not None and len(second.samples) == 3
    buffer.ack("twin", second.last_seq)
    big = buffer.read("twin", 5)  # larger than the limit, but never split
    assert big is not None and [s.value for s in big.samples] == [float(i) for i in range(6, 16)]
    buffer.ack("twin", big.last_seq)
    assert buffer.read("twin", 5) is None and buffer.depth("twin") == 0


def test_values_come_back_as_appended(tmp_path: Path) -> None:
    buffer = opened(tmp_path / "b.db", ["twin"])
    other = SeriesKey("urn:sm:op", "PartQuality")
    plus2 = timezone(timedelta(hours=2))
    appended = [
        Sample(KEY, T0, 3, Quality.GOOD, T0),
        Sample(other, T0, True, Quality.UNCERTAIN, None),
        Sample(KEY, T0 + timedelta(seconds=1), "NG", Quality.GOOD, T0),
        Sample(other, T0 + timedelta(seconds=1), None, Quality.BAD, T0),
        Sample(KEY, (T0 + timedelta(seconds=2)).astimezone(plus2), -1.25e-9, Quality.GOOD, T0.astimezone(plus2)),
    ]
    buffer.append(appended)
    buffer.append([Sample(KEY, T0 + timedelta(seconds=3), float("nan"), Quality.GOOD, T0)])
    buffer.close()
    buffer = opened(tmp_path / "b.db", ["twin"])
    batch = buffer.read("twin", 100)
    assert batch is not None
    back = list(batch.samples)
    assert back[:5] == appended  # equal datetimes in another zone compare equal ...
    assert all(s.time.tzinfo is UTC for s in back)  # ... and come back in UTC
    assert [type(s.value) for s in back] == [int, bool, str, type(None), float, type(None)]  # NaN: no value
    assert back[1].received is None


def test_survives_reopen_without_ack_loss_or_repeat(tmp_path: Path) -> None:
    buffer = opened(tmp_path / "b.db", ["twin"])
    buffer.append(samples(2))
    buffer.append(samples(3, 2))
    first = buffer.read("twin", 2)
    assert first is not None
    buffer.ack("twin", first.last_seq)
    buffer.close()
    again = opened(tmp_path / "b.db", ["twin"])
    assert again.depth("twin") == 3
    rest = again.read("twin", 100)
    assert rest is not None and [s.value for s in rest.samples] == [2.0, 3.0, 4.0]
    again.ack("twin", rest.last_seq)
    again.compact()
    again.close()
    third = opened(tmp_path / "b.db", ["twin"])  # numbering goes on after everything was compacted
    third.append(samples(1, 5))
    batch = third.read("twin", 100)
    assert batch is not None and batch.last_seq == 6 and [s.value for s in batch.samples] == [5.0]


def test_bound_is_in_samples_drops_oldest_batches_and_counts(tmp_path: Path) -> None:
    buffer = opened(tmp_path / "b.db", ["twin"], max_samples=1000)
    for start in range(0, 1500, 100):
        buffer.append(samples(100, start))
    assert buffer.dropped() == 500 and buffer.depth("twin") == 1000
    batch = buffer.read("twin", 5000)
    assert batch is not None and len(batch.samples) == 1000 and batch.samples[0].value == 500.0
    buffer.ack("twin", batch.last_seq)
    buffer.append(samples(1500, 2000))  # one batch above the bound keeps its newest samples
    assert buffer.dropped() == 1000 and buffer.depth("twin") == 1000
    batch = buffer.read("twin", 5000)
    assert batch is not None and batch.samples[0].value == 2500.0


def test_bound_counts_only_what_some_sink_had_not_got(tmp_path: Path) -> None:
    buffer = opened(tmp_path / "b.db", ["twin", "history"], max_samples=1000)
    for start in range(0, 1000, 100):
        buffer.append(samples(100, start))
    for sink in ("twin", "history"):  # both have the first 300, not compacted yet
        buffer.ack(sink, 300)
    buffer.ack("twin", 1000)
    for start in range(1000, 1500, 100):
        buffer.append(samples(100, start))
    assert buffer.dropped() == 200  # 300 went without loss, 200 were lost for history
    assert buffer.depth("history") == 1000 and buffer.depth("twin") == 500
    batch = buffer.read("history", 5000)
    assert batch is not None and batch.samples[0].value == 500.0


def test_removed_sinks_stop_holding_data(tmp_path: Path) -> None:
    buffer = opened(tmp_path / "b.db", ["twin", "old"])
    buffer.append(samples(3))
    batch = buffer.read("twin", 10)
    assert batch is not None
    buffer.ack("twin", batch.last_seq)
    buffer.close()
    buffer.open(["twin"])
    assert buffer.compact() == 3


_FORMAT_1 = """
CREATE TABLE series (id INTEGER PRIMARY KEY, submodel_id TEXT NOT NULL, path TEXT NOT NULL,
                     UNIQUE (submodel_id, path));
CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, series INTEGER NOT NULL, t INTEGER NOT NULL, num REAL,
                    text TEXT, quality INTEGER NOT NULL, received INTEGER);
CREATE TABLE positions (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def test_format_1_file_is_converted_keeping_positions(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    t0 = int(T0.timestamp() * 1_000_000)
    with sqlite3.connect(path) as db:  # as the earlier agent left it: 2,500 rows, 7 already compacted
        db.executescript(_FORMAT_1)
        db.execute("INSERT INTO series VALUES (1, 'urn:sm:op', 'OilTemperature.Value'), (2, 'urn:sm:op', 'Count')")
        db.executemany("INSERT INTO queue VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(seq, 1, t0 + seq, float(seq), None, 0, t0) for seq in range(8, 2506)]
                       + [(2506, 2, t0, 5.0, "int", 0, None), (2507, 2, t0 + 1, None, None, 2, t0)])
        db.executemany("INSERT INTO positions VALUES (?, ?)", [("twin", 1500), ("history", 7)])
        db.execute("INSERT INTO counters VALUES ('dropped', 42)")
    db.close()
    buffer = opened(path, ["twin", "history"])
    assert buffer.dropped() == 42 and buffer.depth("twin") == 1007 and buffer.depth("history") == 2500
    twin = buffer.read("twin", 100_000)
    assert twin is not None and twin.last_seq == 2507
    assert [s.value for s in twin.samples][:2] == [1501.0, 1502.0]
    assert twin.samples[0].time == T0 + timedelta(microseconds=1501) and twin.samples[0].received == T0
    assert list(twin.samples)[-2:] == [Sample(SeriesKey("urn:sm:op", "Count"), T0, 5, Quality.GOOD, None),
                                       Sample(SeriesKey("urn:sm:op", "Count"), T0 + timedelta(microseconds=1),
                                              None, Quality.BAD, T0)]
    history = buffer.read("history", 1000)
    assert history is not None and history.samples[0].value == 8.0 and len(history.samples) <= 1000
    buffer.append(samples(1))
    assert buffer.depth("twin") == 1008
    buffer.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (FORMAT,)
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'queue'").fetchone() is None
    db.close()


def test_newer_format_is_refused_with_a_way_out(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 9")
    db.close()
    with pytest.raises(BufferFileError, match=r"format 9, newer.*move the file away"):
        opened(path, ["twin"])


def test_a_batch_of_one_time_keeps_it_once_and_format_2_rows_still_read(tmp_path: Path) -> None:
    """A poll's block (one source time, received at it) is stored with its time once and no receive times;
    full columns, as format 2 wrote them, still read back the same."""
    buffer = opened(tmp_path / "b.db", ["twin"])
    keys = [SeriesKey("urn:sm:op", f"Tag{i}.Value") for i in range(50)]
    block = [Sample(k, T0, float(i), Quality.GOOD, T0) for i, k in enumerate(keys)]
    later = [Sample(k, T0 + timedelta(seconds=1), float(i), Quality.GOOD, None) for i, k in enumerate(keys)]
    buffer.append(block)
    buffer.append(later)
    with sqlite3.connect(tmp_path / "b.db") as db:
        sizes = db.execute("SELECT length(t), length(received) FROM batches ORDER BY seq").fetchall()
    db.close()
    assert sizes == [(8, 0), (8, 8)]  # the shared time once; receive times: none kept, then "none" once
    batch = buffer.read("twin", 1000)
    assert batch is not None and list(batch.samples) == block + later
    buffer.close()
    with sqlite3.connect(tmp_path / "b.db") as db:  # as format 2 wrote the first batch: a time per sample
        (t,) = db.execute("SELECT t FROM batches ORDER BY seq LIMIT 1").fetchone()
        db.execute("UPDATE batches SET t = ?, received = ? WHERE seq = (SELECT MIN(seq) FROM batches)",
                   (t * 50, t * 50))
        db.execute("PRAGMA user_version = 2")
    db.close()
    buffer = opened(tmp_path / "b.db", ["twin"])
    batch = buffer.read("twin", 1000)
    assert batch is not None and list(batch.samples) == block + later
    buffer.close()


def test_a_poll_of_several_blocks_keeps_each_blocks_time_once(tmp_path: Path) -> None:
    """The mapper's output for a poll of three blocks (three times): stored as three (time, count) runs,
    read back sample for sample; the same samples as plain objects (no runs known) keep a time each."""
    from edge_agent.connectors.base import Readings
    from edge_agent.mapping import Binding, Mapper

    keys = {f"s{i}": SeriesKey("urn:sm:op", f"Tag{i}.Value") for i in range(30)}
    mapper = Mapper([Binding("plc", s, k) for s, k in keys.items()])
    poll = Readings()
    for b in range(3):
        names = tuple(f"s{i}" for i in range(10 * b, 10 * b + 10))
        poll.add(names, tuple(float(i) for i in range(10)), T0 + timedelta(milliseconds=b))
    mapped = mapper.map("plc", poll)
    assert mapped.runs and len(mapped.runs) == 3
    buffer = opened(tmp_path / "b.db", ["twin"])
    buffer.append(mapped)
    buffer.append(list(mapped))  # Sample objects: no runs
    with sqlite3.connect(tmp_path / "b.db") as db:
        sizes = db.execute("SELECT length(t), length(received) FROM batches ORDER BY seq").fetchall()
    db.close()
    assert sizes == [(8 + 3 * 12, 0), (30 * 8, 0)]
    batch = buffer.read("twin", 1000)
    assert batch is not None and list(batch.samples) == list(mapped) * 2
    assert [s.time for s in batch.samples][:30] == [T0 + timedelta(milliseconds=i // 10) for i in range(30)]
    buffer.close()
