"""The embedded time-series store: idempotent writes, range and downsampled reads, retention, the fold of
`recent` into `samples`, and the columns the agent's buffer hands over."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import aas_models.timeseries.sqlite as sqlite_store
from aas_models.timeseries.base import Quality, Sample, SeriesKey, Value
from aas_models.timeseries.sqlite import FOLD_IDLE, FOLD_MIN_ROWS, SampleColumns, SqliteTimeSeries
from edge_agent.buffer import Buffer, BufferConfig

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
KEY = SeriesKey("urn:twinedge:sm:press-01:OperationalData:1.0", "OilTemperature.Value")


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def _open(path: Path) -> SqliteTimeSeries:
    store = SqliteTimeSeries(path)
    await store.open()
    return store


def samples(n: int, key: SeriesKey = KEY, start: datetime = T0) -> list[Sample]:
    return [Sample(key, start + timedelta(seconds=i), 40.0 + i) for i in range(n)]


def test_write_is_idempotent_and_reads_in_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _open(tmp_path / "ts.db")
        batch = samples(100)
        await store.write(batch)
        await store.write(batch[50:])  # a re-sent half batch
        points = await store.read(KEY)
        assert [p.value for p in points] == [40.0 + i for i in range(100)]
        assert [p.time for p in points] == [s.time for s in batch]
        await store.close()

    run(scenario())


def test_values_keep_their_type_and_quality(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _open(tmp_path / "ts.db")
        values: list[Value] = [3, 2.5, True, "NG", None]
        qualities = [Quality.GOOD, Quality.UNCERTAIN, Quality.GOOD, Quality.GOOD, Quality.BAD]
        await store.write([Sample(KEY, T0 + timedelta(seconds=i), v, q)
                           for i, (v, q) in enumerate(zip(values, qualities, strict=True))])
        points = await store.read(KEY)
        assert [p.value for p in points] == values
        assert [type(p.value) for p in points] == [int, float, bool, str, type(None)]
        assert [p.quality for p in points] == qualities
        await store.close()

    run(scenario())


def test_range_limit_and_downsampling(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _open(tmp_path / "ts.db")
        await store.write(samples(600))
        window = await store.read(KEY, T0 + timedelta(seconds=10), T0 + timedelta(seconds=20))
        assert [p.value for p in window] == [50.0 + i for i in range(10)]
        newest = await store.read(KEY, limit=5)
        assert [p.value for p in newest] == [635.0, 636.0, 637.0, 638.0, 639.0]
        minutes = await store.read(KEY, every=timedelta(minutes=1))
        assert len(minutes) == 10
        assert minutes[0].time == T0 and minutes[0].count == 60
        assert minutes[0].min == 40.0 and minutes[0].max == 99.0
        assert minutes[0].value == pytest.approx(sum(40.0 + i for i in range(60)) / 60)
        await store.close()

    run(scenario())


def test_bad_samples_do_not_skew_the_mean_but_mark_the_bucket(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _open(tmp_path / "ts.db")
        await store.write([Sample(KEY, T0, 10.0), Sample(KEY, T0 + timedelta(seconds=1), 1e9, Quality.BAD)])
        (bucket,) = await store.read(KEY, every=timedelta(minutes=1))
        assert bucket.value == 10.0 and bucket.quality == Quality.BAD and bucket.count == 2
        await store.close()

    run(scenario())


def test_a_second_connection_reads_what_the_first_wrote(tmp_path: Path) -> None:
    async def scenario() -> None:
        writer, reader = await _open(tmp_path / "ts.db"), await _open(tmp_path / "ts.db")
        assert await reader.read(KEY) == []
        await writer.write(samples(3))
        assert len(await reader.read(KEY)) == 3
        assert await reader.series() == [KEY]
        await writer.close()
        await reader.close()

    run(scenario())


def test_retention_and_naive_times(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _open(tmp_path / "ts.db")
        await store.write(samples(10))
        assert await store.delete_before(T0 + timedelta(seconds=4)) == 4
        assert len(await store.read(KEY)) == 6
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.write([Sample(KEY, datetime(2026, 1, 1), 1.0)])
        assert len(await store.read(KEY)) == 6
        await store.close()

    run(scenario())


def _table_counts(path: Path) -> tuple[int, int]:
    """(samples in chunks, samples in pending batches)."""
    with sqlite3.connect(path) as db:
        folded = db.execute("SELECT COALESCE(SUM(n), 0) FROM chunks").fetchone()[0]
        pending = db.execute("SELECT COALESCE(SUM(length(t) / 8), 0) FROM pending").fetchone()[0]
    db.close()
    return folded, pending


def test_rewrites_win_whether_folded_or_not(tmp_path: Path) -> None:
    """Writes land in `pending` and are folded into chunks later: reads see the latest write of each
    (series, time) either way, in raw and downsampled reads; a fold over stored chunks merges, one sample per
    time."""
    async def scenario() -> None:
        store = await _open(tmp_path / "ts.db")
        await store.write(samples(60))
        await store.close()  # folds
        assert _table_counts(tmp_path / "ts.db") == (60, 0)
        store = await _open(tmp_path / "ts.db")
        again = [Sample(KEY, T0 + timedelta(seconds=i), -1.0) for i in range(10)]
        await store.write(again)  # folded rows written again: pending only
        await store.write(again[:5] + [Sample(KEY, T0 + timedelta(seconds=i), -2.0) for i in range(5)])  # twice
        assert _table_counts(tmp_path / "ts.db") == (60, 20)
        points = await store.read(KEY)
        assert [p.value for p in points] == [-2.0] * 5 + [-1.0] * 5 + [40.0 + i for i in range(10, 60)]
        assert [p.value for p in await store.read(KEY, limit=3)] == [97.0, 98.0, 99.0]
        (minute,) = await store.read(KEY, every=timedelta(minutes=1))
        assert minute.count == 60 and minute.min == -2.0 and minute.max == 99.0
        assert await store.delete_before(T0 + timedelta(seconds=2)) == 2  # folds first: one sample per time
        await store.close()
        assert _table_counts(tmp_path / "ts.db") == (58, 0)
        store = await _open(tmp_path / "ts.db")
        assert [p.value for p in await store.read(KEY)][:4] == [-2.0] * 3 + [-1.0]
        await store.close()

    run(scenario())


def test_folds_by_itself_once_pending_is_large(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _open(tmp_path / "ts.db")
        keys = [SeriesKey("urn:sm", f"t{i}") for i in range(10)]
        batch = [Sample(key, T0 + timedelta(milliseconds=n), float(n)) for n in range(FOLD_MIN_ROWS // 10 + 1)
                 for key in keys]
        await store.write(batch)
        await store.read(keys[0], limit=1)  # waits for the fold the write started
        assert _table_counts(tmp_path / "ts.db") == (len(batch), 0)
        await store.close()

    run(scenario())


def test_writes_columns_as_the_buffer_reads_them_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        other = SeriesKey(KEY.submodel_id, "PartQuality")
        written = [Sample(KEY, T0, 1.5, Quality.GOOD, T0), Sample(other, T0, "OK", Quality.GOOD, None),
                   Sample(KEY, T0 + timedelta(seconds=1), None, Quality.BAD, T0), Sample(other, T0 + timedelta(
                       seconds=1), 7, Quality.UNCERTAIN, T0)]
        buffer = Buffer(BufferConfig(path=tmp_path / "buffer.db"))
        buffer.open(["history"])
        buffer.append(written[:1])  # plain: floats, all good
        buffer.append(written[1:])
        store = await _open(tmp_path / "ts.db")
        for _ in range(2):
            batch = buffer.read("history", 1)
            assert batch is not None and isinstance(batch.samples, SampleColumns)
            await store.write(batch.samples)
            buffer.ack("history", batch.last_seq)
        buffer.close()
        assert [(p.value, p.quality) for p in await store.read(KEY)] == [(1.5, Quality.GOOD), (None, Quality.BAD)]
        assert [(p.value, p.quality) for p in await store.read(other)] == [("OK", Quality.GOOD),
                                                                          (7, Quality.UNCERTAIN)]
        await store.close()

    run(scenario())



def test_a_pause_in_writes_folds_what_is_pending(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _open(tmp_path / "ts.db")
        await store.write(samples(5))
        assert _table_counts(tmp_path / "ts.db") == (0, 5)
        for _ in range(100):  # FOLD_IDLE after the last write; no timing is asserted, only the outcome
            await asyncio.sleep(FOLD_IDLE / 10)
            if _table_counts(tmp_path / "ts.db") == (5, 0):
                break
        assert _table_counts(tmp_path / "ts.db") == (5, 0)
        assert [p.value for p in await store.read(KEY)] == [40.0 + i for i in range(5)]
        await store.close()

    run(scenario())


@pytest.mark.parametrize("rows_at_once", [65_536, 2])
def test_a_file_of_the_earlier_row_per_sample_format_is_converted(tmp_path: Path, rows_at_once: int,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """One row per sample in `samples` (folded) and `recent` (not yet, later writes win): converted into chunks
    when opened, with values, types, qualities and receive times as they were, also a few rows at a time."""
    monkeypatch.setattr(sqlite_store, "CONVERT_ROWS", rows_at_once)
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript("""
            CREATE TABLE series (id INTEGER PRIMARY KEY, submodel_id TEXT NOT NULL, path TEXT NOT NULL,
                                 UNIQUE (submodel_id, path));
            CREATE TABLE samples (series INTEGER NOT NULL, t INTEGER NOT NULL, num REAL, text TEXT,
                                  quality INTEGER NOT NULL, received INTEGER, PRIMARY KEY (series, t)) WITHOUT ROWID;
            CREATE TABLE recent (series INTEGER NOT NULL, t INTEGER NOT NULL, num REAL, text TEXT,
                                 quality INTEGER NOT NULL, received INTEGER);""")
        db.execute("INSERT INTO series VALUES (1, ?, ?)", (KEY.submodel_id, KEY.path))
        t0 = int(T0.timestamp()) * 1_000_000
        db.executemany("INSERT INTO samples VALUES (1, ?, ?, NULL, 0, ?)",
                       [(t0 + i * 1_000_000, float(i), t0 + i * 1_000_000 + 5) for i in range(5)])
        db.executemany("INSERT INTO recent VALUES (1, ?, ?, ?, ?, NULL)",
                       [(t0 + 1_000_000, 7.0, "int", 1), (t0 + 5_000_000, None, "s:OK", 0),
                        (t0 + 6_000_000, None, None, 2)])
        db.commit()

    seen: list[tuple[object, Quality]] = []

    async def scenario() -> None:
        store = await _open(path)
        seen.extend((p.value, p.quality) for p in await store.read(KEY))
        await store.close()

    run(scenario())
    assert seen == [(0.0, Quality.GOOD), (7, Quality.UNCERTAIN), (2.0, Quality.GOOD), (3.0, Quality.GOOD),
                               (4.0, Quality.GOOD), ("OK", Quality.GOOD), (None, Quality.BAD)]
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"samples", "recent"}.isdisjoint(tables) and db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_newest_points_of_a_long_history_come_from_its_newest_chunks(tmp_path: Path) -> None:
    """Many folds make many chunks; a read with a limit (and an end inside a chunk) returns exactly the newest
    points of the range, with rewrites still pending winning, as a full read would."""
    async def scenario() -> None:
        for part in range(6):
            store = await _open(tmp_path / "ts.db")
            await store.write(samples(40, start=T0 + timedelta(seconds=40 * part)))
            await store.close()  # folds: one chunk per part
        store = await _open(tmp_path / "ts.db")
        await store.write([Sample(KEY, T0 + timedelta(seconds=200), -5.0)])  # pending, replaces one
        end = T0 + timedelta(seconds=205)
        everything = [(p.time, p.value) for p in await store.read(KEY, end=end, limit=100_000)]
        assert len(everything) == 205 and everything[200] == (T0 + timedelta(seconds=200), -5.0)
        for limit in (1, 5, 30, 90, 204):
            newest = [(p.time, p.value) for p in await store.read(KEY, end=end, limit=limit)]
            assert newest == everything[-limit:], limit
        middle = await store.read(KEY, start=T0 + timedelta(seconds=50), end=T0 + timedelta(seconds=60), limit=3)
        assert [p.time for p in middle] == [T0 + timedelta(seconds=s) for s in (57, 58, 59)]
        await store.close()

    run(scenario())


def test_a_cancelled_write_leaves_the_store_usable(tmp_path: Path) -> None:
    """A write's SQLite part runs in the store's thread; a write cancelled at any point (an agent stopping)
    stores its batch whole or not at all, and the next writes and reads work."""
    async def scenario() -> None:
        store = await _open(tmp_path / "ts.db")
        keys = [SeriesKey("urn:sm", f"c{i}") for i in range(50)]
        big = [Sample(key, T0 + timedelta(milliseconds=n), float(n)) for n in range(300) for key in keys]
        outcomes = set()
        for attempt in range(20):
            task = asyncio.create_task(store.write([Sample(s.key, s.time + timedelta(hours=attempt), s.value)
                                                    for s in big]))
            for _ in range(attempt % 4):
                await asyncio.sleep(0)
            task.cancel()
            outcome = (await asyncio.gather(task, return_exceptions=True))[0]
            outcomes.add(type(outcome).__name__)
            stored = await store.read(keys[0], start=T0 + timedelta(hours=attempt),
                                      end=T0 + timedelta(hours=attempt, seconds=1))
            assert len(stored) in (0, 300)  # whole or nothing
        await store.write(samples(10))
        assert [p.value for p in await store.read(KEY)] == [40.0 + i for i in range(10)]
        assert "CancelledError" in outcomes
        await store.close()
        reopened = await _open(tmp_path / "ts.db")
        assert len(await reopened.read(KEY)) == 10
        await reopened.close()

    run(scenario())


def _chunks_by_series(path: Path) -> dict[int, list[tuple[int, int, int, bytes]]]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT series, t0, t1, n, t FROM chunks ORDER BY series, t0").fetchall()
    db.close()
    out: dict[int, list[tuple[int, int, int, bytes]]] = {}
    for series, *rest in rows:
        out.setdefault(series, []).append(tuple(rest))  # type: ignore[arg-type]
    return out


def test_many_small_folds_are_compacted_into_big_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Folds of a few samples per series leave small chunks; once a series' new chunks hold COMPACT_SAMPLES they
    are joined into one, about COMPACT_BUDGET times the fold's samples after it (here one series). Every sample reads
    back as written (good floats joined as bytes; integers, booleans, qualities and receive times through the
    columns), chunks stay sorted and apart, and a rewrite over a joined chunk still wins."""
    monkeypatch.setattr(sqlite_store, "FOLD_ROWS_PER_SERIES", 10)
    monkeypatch.setattr(sqlite_store, "FOLD_MIN_ROWS", 1)
    monkeypatch.setattr(sqlite_store, "COMPACT_SAMPLES", 50)
    monkeypatch.setattr(sqlite_store, "COMPACT_BUDGET", 1)
    monkeypatch.setattr(sqlite_store, "COMPACT_BUSY_SHARE", float("inf"))  # back-to-back test writes look busy
    plain, flags, marked = (SeriesKey("urn:sm", name) for name in ("plain", "flags", "marked"))
    path = tmp_path / "ts.db"

    def batch(i: int) -> list[Sample]:
        t = T0 + timedelta(seconds=i)
        flag: Value = bool(i % 2) if i % 3 else i
        quality = Quality.UNCERTAIN if i % 7 == 0 else Quality.GOOD
        return [Sample(plain, t, 0.5 * i, Quality.GOOD, t), Sample(flags, t, flag),  # plain: as Modbus writes
                Sample(marked, t, float(i), quality, t + timedelta(milliseconds=3))]

    async def scenario() -> None:
        store = await _open(path)
        written = [batch(i) for i in range(300)]
        for samples_now in written:
            await store.write(samples_now)
        await store.close()
        chunks = _chunks_by_series(path)
        assert len(chunks) == 3
        for rows in chunks.values():
            assert len(rows) < 12  # 30 folds of 10 samples each, joined by the fifty
            assert max(n for _, _, n, _ in rows) >= 50
            for (t0, t1, n, t), after in zip(rows, [*rows[1:], None], strict=True):
                times = [int.from_bytes(t[k:k + 8], "little", signed=True) for k in range(0, len(t), 8)]
                assert len(times) == n and times[0] == t0 and times[-1] == t1 and times == sorted(set(times))
                assert after is None or after[0] > t1
        store = await _open(path)
        for k, key in enumerate((plain, flags, marked)):
            points = await store.read(key, limit=1000)
            assert [(p.time, p.value, type(p.value), p.quality) for p in points] == [
                (b[k].time, b[k].value, type(b[k].value), b[k].quality) for b in written]
        await store.write([Sample(plain, T0 + timedelta(seconds=i), -1.0) for i in range(20, 30)])
        await store.close()
        store = await _open(path)
        values = [p.value for p in await store.read(plain, limit=1000)]
        assert values == [0.5 * i for i in range(20)] + [-1.0] * 10 + [0.5 * i for i in range(30, 300)]
        await store.close()

    run(scenario())


def test_a_store_busy_with_its_stream_does_not_compact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compaction waits while folds take more than COMPACT_BUSY_SHARE of the time (writes wait for both)."""
    monkeypatch.setattr(sqlite_store, "FOLD_ROWS_PER_SERIES", 10)
    monkeypatch.setattr(sqlite_store, "FOLD_MIN_ROWS", 1)
    monkeypatch.setattr(sqlite_store, "COMPACT_SAMPLES", 20)
    path = tmp_path / "ts.db"

    async def scenario(share: float) -> int:
        monkeypatch.setattr(sqlite_store, "COMPACT_BUSY_SHARE", share)
        path.unlink(missing_ok=True)
        store = await _open(path)
        for i in range(200):
            moment = T0 + timedelta(seconds=i)
            await store.write([Sample(KEY, moment, float(i), Quality.GOOD, moment)])
        await store.close()
        return len(_chunks_by_series(path)[1])

    assert asyncio.run(scenario(0.0)) == 20  # never idle enough: a chunk per fold of 10
    assert asyncio.run(scenario(float("inf"))) == 10  # every two folds joined
