"""The embedded time-series store: idempotent writes, range and downsampled reads, retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aas_models.timeseries.base import Quality, Sample, SeriesKey
from aas_models.timeseries.sqlite import SqliteTimeSeries

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
KEY = SeriesKey("urn:twinedge:sm:press-01:OperationalData:1.0", "OilTemperature.Value")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


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
        values = [3, 2.5, True, "NG", None]
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
