"""Sink into the embedded time-series store (the default history; the twin server reads it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aas_models.timeseries.base import Sample, StoreError
from aas_models.timeseries.sqlite import SqliteTimeSeries
from edge_agent.sinks.base import Sink, SinkError


class TimeSeriesSinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["timeseries"] = "timeseries"
    name: str = "history"
    path: Path = Path("twinedge-data/timeseries.db")
    #: Samples older than this many days are deleted (0 keeps everything).
    retention_days: float = Field(default=90, ge=0)


class TimeSeriesSink(Sink):
    def __init__(self, config: TimeSeriesSinkConfig) -> None:
        super().__init__(config.name)
        self.config = config
        self.store = SqliteTimeSeries(config.path)

    async def open(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        await self.store.close()

    async def write(self, samples: Sequence[Sample]) -> None:
        try:
            await self.store.write(samples)
        except StoreError as exc:
            raise SinkError(str(exc)) from exc
