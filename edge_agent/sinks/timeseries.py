"""Sink into the embedded time-series store (the default history; the twin server reads it)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aas_models.timeseries.base import Sample, StoreError
from aas_models.timeseries.sqlite import SqliteTimeSeries
from edge_agent.sinks.base import Sink, SinkError

log = logging.getLogger(__name__)
#: Seconds between two applications of the retention rule.
RETENTION_EVERY = 3600.0


class TimeSeriesSinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["timeseries"] = "timeseries"
    name: str = "history"
    path: Path = Path("twinedge-data/timeseries.db")
    #: Samples whose source time is more than this many days before now are deleted, checked at the
    #: first write and then hourly (0 keeps everything).
    retention_days: float = Field(default=90, ge=0)


class TimeSeriesSink(Sink):
    def __init__(self, config: TimeSeriesSinkConfig) -> None:
        super().__init__(config.name)
        self.config = config
        self.store = SqliteTimeSeries(config.path)
        self._next_retention = 0.0
        #: Samples deleted by the retention rule so far.
        self.expired = 0

    async def open(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        await self.store.close()

    async def write(self, samples: Sequence[Sample]) -> None:
        try:
            await self.store.write(samples)
            await self._retain()
        except StoreError as exc:
            raise SinkError(str(exc)) from exc

    async def _retain(self) -> None:
        if not self.config.retention_days or time.monotonic() < self._next_retention:
            return
        self._next_retention = time.monotonic() + RETENTION_EVERY
        cutoff = datetime.now(UTC) - timedelta(days=self.config.retention_days)
        deleted = await self.store.delete_before(cutoff)
        if deleted:
            self.expired += deleted
            log.info("history %s: deleted %d samples older than %s (retention_days %g)", self.config.path,
                     deleted, cutoff.isoformat(), self.config.retention_days)
