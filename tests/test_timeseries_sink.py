"""The history sink applies its retention rule: samples older than `retention_days` go, 0 keeps all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aas_models.timeseries.base import Quality, Sample, SeriesKey
from edge_agent.sinks.timeseries import TimeSeriesSink, TimeSeriesSinkConfig

KEY = SeriesKey("urn:x:sm", "OilTemperature.Value")


def _stored_after_writes(path: Path, retention_days: float) -> list[float]:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=200), now - timedelta(days=1)

    async def scenario() -> list[float]:
        sink = TimeSeriesSink(TimeSeriesSinkConfig(path=path, retention_days=retention_days))
        await sink.open()
        try:
            await sink.write([Sample(KEY, old, 40.0, Quality.GOOD, old),
                              Sample(KEY, recent, 41.0, Quality.GOOD, recent)])
            points = await sink.store.read(KEY)
            return [float(p.value) for p in points]  # type: ignore[arg-type]
        finally:
            await sink.close()

    return asyncio.run(scenario())


@pytest.mark.parametrize(("days", "kept"), [(90, [41.0]), (0, [40.0, 41.0])])
def test_retention(tmp_path: Path, days: float, kept: list[float]) -> None:
    assert _stored_after_writes(tmp_path / "ts.db", days) == kept
