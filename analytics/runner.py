"""Live runner: score each completed cycle from the time-series store, write results into the twin.

Per step: read the cycle's samples of every model signal from the store (``aas_models.timeseries``), score it
with a loaded :class:`~analytics.model.Model`, and write HealthIndex, AnomalyScore, AnomalyThreshold,
FaultClass, FaultProbability, RemainingUsefulLife and Timestamp of the ConditionMonitoring submodel
(element names of ``aas_models.builders.condition_monitoring``) with ONE ``PATCH .../$value`` through the AAS
API. A cycle is a fixed-length time slice (``cycle_seconds``), or any window the caller gives, such as a
press stroke between two changes of its cycle counter (``counter_changes``): a stroke's features do not depend
on where in the stroke a time slice happened to start.

A bad cycle (no data, NaN, a sensor missing) never stops the runner: the step returns a report with the error
and writes nothing, so the twin keeps the last good result. HTTP errors are reported the same way.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aas_models.timeseries.base import SeriesKey, TimeSeriesStore

from .errors import AnalyticsError
from .health import remaining_life
from .model import Model

__all__ = ["CycleReport", "Runner", "RunnerConfig", "counter_changes", "read_cycles", "read_windows"]


class RunnerConfig(BaseModel):
    """Where the data is and where the results go."""

    model_config = ConfigDict(extra="forbid")

    api: str = Field(description="AAS API base, e.g. http://127.0.0.1:8081/api/v3.0")
    submodel_id: str = Field(description="id of the asset's ConditionMonitoring submodel")
    series: dict[str, tuple[str, str]] = Field(description="model signal -> (submodel id, idShortPath) in the store")
    cycle_seconds: float = Field(gt=0)
    token: str | None = None
    timeout_s: float = Field(default=5.0, gt=0)


@dataclass
class CycleReport:
    start: dt.datetime
    ok: bool
    written: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


async def read_cycles(store: TimeSeriesStore, series: dict[str, tuple[str, str]], start: dt.datetime,
                      cycles: int, cycle_seconds: float) -> dict[str, np.ndarray[Any, Any]]:
    """A cycle table of ``cycles`` consecutive time slices of ``cycle_seconds`` from ``start`` (see read_windows)."""
    edges = [start + dt.timedelta(seconds=cycle_seconds * k) for k in range(cycles + 1)]
    return await read_windows(store, series, edges, cycle_seconds)


async def read_windows(store: TimeSeriesStore, series: dict[str, tuple[str, str]], edges: Sequence[dt.datetime],
                       hold_seconds: float) -> dict[str, np.ndarray[Any, Any]]:
    """A cycle table (columns ``cycle``, ``t`` and one per signal) of the cycles ``[edges[k], edges[k+1])``:
    fixed time slices, or strokes between two changes of a cycle counter.

    Rows are the first signal's sample times; every other signal gets its latest value at or before that
    moment (signals of one device rarely share timestamps exactly, and report-on-change sources send a
    value only when it changes), held for at most ``hold_seconds``. Without such a value it is NaN (the model
    then rejects or drops the cycle as its nan_policy says). ``t`` is seconds since ``edges[0]``.
    """
    start, end = edges[0], edges[-1]
    # Look back as far as a value is held: a report-on-change signal may have its last value from before ``start``.
    since = start - dt.timedelta(seconds=hold_seconds)
    points = {s: await store.read(SeriesKey(sm, path), since, end, limit=100_000) for s, (sm, path) in series.items()}
    first = next(iter(series))
    times = np.array([p.time.timestamp() for p in points[first] if p.time >= start], dtype=np.float64)
    table: dict[str, np.ndarray[Any, Any]] = {}
    for s, pts in points.items():
        at = np.array([p.time.timestamp() for p in pts], dtype=np.float64)
        values = np.array([_num(p.value) for p in pts] or [math.nan], dtype=np.float64)
        index = np.searchsorted(at, times, side="right") - 1  # latest sample at or before each row
        if at.size:
            held = np.maximum(index, 0)
            fresh = (index >= 0) & (times - at[held] <= hold_seconds)  # never carry a value over a whole cycle
            table[s] = np.where(fresh, values[held], math.nan)
        else:
            table[s] = np.full(times.size, math.nan)
    table["t"] = times - start.timestamp()
    bounds = np.array([e.timestamp() for e in edges], dtype=np.float64)
    table["cycle"] = np.searchsorted(bounds, times, side="right").astype(int) - 1
    return table


async def counter_changes(store: TimeSeriesStore, key: tuple[str, str], since: dt.datetime, until: dt.datetime,
                          last: float | None = None) -> tuple[list[dt.datetime], float | None]:
    """Moments in ``[since, until)`` at which a cycle counter took a new value (a stroke starts there), and its
    last value. ``last`` is the value before ``since``, if known: without it the first value read only sets
    the baseline. A counter that steps back (a reset, a replaced PLC) starts a stroke too."""
    points = await store.read(SeriesKey(*key), since, until, limit=100_000)
    changes = []
    for point in points:
        value = _num(point.value)
        if not math.isfinite(value):
            continue
        if last is not None and value != last:
            changes.append(point.time)
        last = value
    return changes, last


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _b64(ident: str) -> str:
    return base64.urlsafe_b64encode(ident.encode()).decode().rstrip("=")


class Runner:
    """Holds the model, the store and an HTTP client; ``step`` scores one cycle and writes the twin."""

    def __init__(self, model: Model, store: TimeSeriesStore, config: RunnerConfig) -> None:
        if model.roles.cycle != "cycle":
            raise AnalyticsError("the runner scores cycles: train the model on read_cycles(...) tables "
                                 "(roles.cycle = 'cycle')")
        missing = [s for s in model.roles.signals if s not in config.series]
        if missing:
            raise AnalyticsError(f"runner config has no store series for model signals {missing}; add them to series")
        self.model = model
        self.store = store
        self.config = config
        headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        self.client = httpx.AsyncClient(timeout=config.timeout_s, headers=headers)
        self.health: list[float] = []

    async def close(self) -> None:
        await self.client.aclose()

    def _values(self, table: dict[str, Any], start: dt.datetime, seconds: float) -> dict[str, Any]:
        res = self.model.score({k: table[k] for k in ("cycle", *self.model.roles.signals)})
        if not res.ids:
            raise AnalyticsError(f"no usable cycle ({'; '.join(res.flags) or 'no samples'})")
        values: dict[str, Any] = {"Timestamp": start.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")}
        if res.score is not None and res.health is not None:
            self.health.append(float(res.health[-1]))
            life = remaining_life(np.asarray(self.health))
            values.update({
                "AnomalyScore": f"{float(res.score[-1]):.6g}",
                "AnomalyThreshold": "1",
                "HealthIndex": f"{float(res.health[-1]):.6g}",
            })
            if life is not None:
                hours = life * seconds / 3600.0  # cycles left, at the length of this one
                values["RemainingUsefulLife"] = f"{hours:.6g}"
        if res.label is not None and res.probability is not None:
            values["FaultClass"] = str(res.label[-1])
            values["FaultProbability"] = f"{float(res.probability[-1]):.6g}"
        return values

    async def step(self, start: dt.datetime,
                   extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                   end: dt.datetime | None = None) -> CycleReport:
        """Score the cycle ``[start, end)`` (default: one ``cycle_seconds`` slice); never raises for bad data or
        an unreachable server.

        ``extra(cycle_table)`` adds more ConditionMonitoring values (e.g. the SPC state) to the same write.
        """
        length = self.config.cycle_seconds
        end = end or start + dt.timedelta(seconds=length)
        try:
            table = await read_windows(self.store, self.config.series, [start, end], length)
            values = self._values(table, start, (end - start).total_seconds())
            if extra is not None:
                values.update(extra(table))
        except (AnalyticsError, ValueError) as exc:
            return CycleReport(start, ok=False, error=f"cycle at {start.isoformat()} skipped: {exc}")
        url = f"{self.config.api.rstrip('/')}/submodels/{_b64(self.config.submodel_id)}/$value"
        try:
            response = await self.client.patch(url, json=values)
        except httpx.HTTPError as exc:
            return CycleReport(start, ok=False, error=f"twin server unreachable: {exc}")
        if response.status_code >= 300:
            return CycleReport(start, ok=False, error=f"twin server answered {response.status_code}: "
                               f"{response.text[:300]}")
        return CycleReport(start, ok=True, written=values)
