"""Samples, the store interface, and the query limits every backend shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

Value = float | int | str | bool | None


class Quality(StrEnum):
    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


@dataclass(frozen=True)
class SeriesKey:
    submodel_id: str
    path: str


@dataclass(frozen=True)
class Sample:
    """One value of one signal. `time` is the source timestamp (UTC, aware), the sample's identity:
    writing the same (key, time) twice keeps one sample, so re-sent batches never duplicate."""

    key: SeriesKey
    time: datetime
    value: Value
    quality: Quality = Quality.GOOD
    received: datetime | None = None


@dataclass(frozen=True)
class Point:
    """A sample as read back, or one bucket of a downsampled read (value = mean; min, max, count)."""

    time: datetime
    value: Value
    quality: Quality
    min: float | None = None
    max: float | None = None
    count: int = 1


class StoreError(Exception):
    """The store is unreachable or failed; the writer keeps its data and retries."""


#: Largest number of points one read returns.
MAX_POINTS = 100_000


class TimeSeriesStore(ABC):
    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect and create the schema if needed."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abstractmethod
    async def write(self, samples: Sequence[Sample]) -> None:
        """Store all samples or none (raises StoreError); idempotent per (key, time)."""

    @abstractmethod
    async def read(self, key: SeriesKey, start: datetime | None = None, end: datetime | None = None,
                   limit: int = 10_000, every: timedelta | None = None) -> list[Point]:
        """Points with start <= time < end, oldest first, at most `limit` (the newest ones if more
        match). With `every`, one point per bucket of that width: mean, min, max and count of the
        numeric good values, and the worst quality seen in the bucket."""

    @abstractmethod
    async def series(self) -> list[SeriesKey]: ...

    @abstractmethod
    async def delete_before(self, cutoff: datetime) -> int:
        """Retention: drop samples older than `cutoff`; returns how many."""
