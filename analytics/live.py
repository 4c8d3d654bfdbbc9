"""Live analytics on the twins: learn each asset's normal operation from its first cycles in the
time-series store, then score every new cycle and write the result into its ConditionMonitoring
submodel through the AAS API.

SMEs rarely have labelled failures, so the live model is trained on normal operation only: the
first ``train_cycles`` cycles after start are taken as healthy (start it on a machine in good
condition). Per cycle it writes HealthIndex, AnomalyScore (1 = the alarm limit, set from the
``far`` false-alarm target), RemainingUsefulLife once health trends down, and the SPC state of one
signal's cycle means on an individuals chart whose Phase I limits are frozen from the training
cycles, with the Western Electric rules that fired (``spc_rules``). The twin server publishes every such change
as an event (SSE and MQTT); an alarm (score above the limit, or SPC out of control) is also logged.
A bad cycle is skipped and counted: the runner never stops for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, model_validator

from aas_models import ids
from aas_models.builders import operational_data
from aas_models.timeseries.base import TimeSeriesStore
from aas_models.twin import submodel_id_for

from .anomaly import AnomalyConfig
from .errors import AnalyticsError
from .features import FeatureConfig
from .model import Model, TrainConfig, train
from .persistence import save
from .runner import CycleReport, Runner, RunnerConfig, read_cycles
from .samples import SampleConfig
from .spc import ChartPair, SpcError, apply, fit_imr
from .table import Roles

log = logging.getLogger(__name__)

#: The hydraulic press's process signals the default live model watches.
PRESS_SIGNALS = ("HydraulicPressure", "PressForce", "OilTemperature", "MotorCurrent", "Vibration")
#: Per-cycle statistics of each signal the live model learns from.
STATISTICS = ("mean", "std", "max")
FEATURES_PER_SIGNAL = len(STATISTICS)


class LiveConfig(BaseModel):
    """What `twinedge analytics run` watches and where it writes."""

    model_config = ConfigDict(extra="forbid")

    api: str = "http://127.0.0.1:8081/api/v3.0"
    store: Path = Path("twinedge-data/timeseries.db")
    assets: list[str] = Field(min_length=1, description="asset ids (their twins follow docs/identifiers.md)")
    id_base: str = ids.DEFAULT_ID_BASE
    signals: list[str] = Field(default_factory=lambda: list(PRESS_SIGNALS), min_length=1)
    #: Its cycle means go on the SPC chart: a signal whose mean over a cycle is stable in normal operation.
    #: Cycles are time slices, not strokes, so a signal that follows the stroke is not: on the demo's
    #: 5 s slices of a 9.6 s stroke the pressure's means scatter by 65 bar (sigma from moving ranges),
    #: the vibration's by 0.16 mm/s, and a pump leak moves the vibration by 4.3 sigma. The oil
    #: temperature warms for many minutes, which the run rules would rightly flag.
    spc_signal: str | None = "Vibration"
    #: Run rules that put the SPC state out of control. Cycle means of a slow process signal are
    #: autocorrelated, so the 4-of-5 and 8-in-a-row rules (WE3, WE4) fire on normal drift; the
    #: default keeps the rules that stay meaningful there.
    spc_rules: list[str] = Field(default_factory=lambda: ["WE1", "WE2"], min_length=1)
    #: Per signal, the smallest change that matters (its units). Oil temperature wanders by tenths of a
    #: kelvin in healthy operation, more than a few minutes of training show; a cooler fault moves it by
    #: kelvins.
    tolerance: dict[str, NonNegativeFloat] = Field(default_factory=lambda: {"OilTemperature": 1.0})
    cycle_seconds: float = Field(default=5.0, gt=0)
    train_cycles: int = Field(default=24, ge=8)
    far: float = Field(default=0.002, gt=0, lt=0.5, description="false-alarm target per cycle")
    #: Seconds to wait after a cycle ends before scoring it (late samples).
    lag_seconds: float = Field(default=1.0, ge=0)
    token: str | None = None
    models_dir: Path | None = None

    @model_validator(mode="after")
    def _enough_cycles(self) -> LiveConfig:
        needed = FEATURES_PER_SIGNAL * len(self.signals) + 3  # + 1: the limit is calibrated leave-one-out
        if self.train_cycles < needed:
            raise ValueError(f"train_cycles {self.train_cycles} is too few to learn {len(self.signals)} signals "
                             f"({FEATURES_PER_SIGNAL} features each): give at least {needed}")
        return self


@dataclass
class LiveStats:
    scored: int = 0
    skipped: int = 0
    alarms: int = 0
    last_error: str = ""
    trained: list[str] = field(default_factory=list)


def _series(config: LiveConfig, asset: str) -> dict[str, tuple[str, str]]:
    sm = submodel_id_for(asset, operational_data.ID_SHORT, id_base=config.id_base)
    names = dict.fromkeys([*config.signals, *([config.spc_signal] if config.spc_signal else [])])
    return {s: (sm, operational_data.value_path(s)) for s in names}


def _floor(moment: dt.datetime, seconds: float) -> dt.datetime:
    stamp = moment.timestamp()
    return dt.datetime.fromtimestamp(stamp - stamp % seconds, dt.UTC)


class SpcWatch:
    """Cycle means of one signal on an I-MR chart: Phase I from training, Phase II on every new cycle."""

    WINDOW = 50  # recent points the run rules look at

    def __init__(self, signal: str, training: Mapping[str, Any], rules: list[str]) -> None:
        self.signal = signal
        self.rules = rules
        means = self._means(training)
        self.limits: ChartPair = fit_imr(means[np.isfinite(means)])
        self.points: list[float] = []

    @staticmethod
    def _cycle_mean(values: Any) -> float:
        x = np.asarray(values, dtype=np.float64)
        x = x[np.isfinite(x)]
        return float(x.mean()) if x.size else math.nan

    def _means(self, table: Mapping[str, Any]) -> np.ndarray[Any, Any]:
        cycles = np.asarray(table["cycle"])
        values = np.asarray(table[self.signal], dtype=np.float64)
        return np.array([self._cycle_mean(values[cycles == c]) for c in np.unique(cycles)])

    def update(self, table: Mapping[str, Any]) -> dict[str, Any]:
        mean = self._cycle_mean(table[self.signal])
        if not math.isfinite(mean):
            return {}
        self.points = [*self.points[-(self.WINDOW - 1):], mean]
        try:
            individuals, _ranges = apply(self.limits, np.asarray(self.points))
            last = len(self.points) - 1
            fired = sorted({v.rule_id for v in individuals.violations(self.rules) if last in v.indices})
        except SpcError as exc:
            raise AnalyticsError(f"SPC on {self.signal}: {exc}") from None
        return {"SpcState": "out-of-control" if fired else "in-control", "ViolatedRules": ",".join(fired)}


class AssetWatch:
    """One asset: learning until enough cycles are stored, then scoring each new cycle."""

    def __init__(self, config: LiveConfig, asset: str, store: TimeSeriesStore, start: dt.datetime) -> None:
        self.config = config
        self.asset = asset
        self.store = store
        self.series = _series(config, asset)
        self.start = start
        self.next = start + dt.timedelta(seconds=config.cycle_seconds * config.train_cycles)
        self.runner: Runner | None = None
        self.spc: SpcWatch | None = None
        self.in_alarm = False

    async def _train(self, stats: LiveStats) -> None:
        c = self.config
        table = await read_cycles(self.store, self.series, self.start, c.train_cycles, c.cycle_seconds)
        if not len(table["t"]):
            raise AnalyticsError(f"{self.asset}: no data for {', '.join(c.signals)} in the first "
                                 f"{c.train_cycles} cycles: is the agent writing {c.store}?")
        # In a worker thread: the demo runs the simulator and the agent on this event loop.
        model: Model = await asyncio.to_thread(
            train, table, Roles(signals=list(c.signals), cycle="cycle"),
            TrainConfig(task="anomaly", anomaly=AnomalyConfig(far=c.far, calibration="loo"), tolerance=c.tolerance,
                        samples=SampleConfig(nan_policy="drop",
                                             features=FeatureConfig(statistics=list(STATISTICS)))),
            protocol=f"live: first {c.train_cycles} cycles of {c.cycle_seconds:g} s from {self.start.isoformat()}")
        if c.models_dir is not None:
            try:
                c.models_dir.mkdir(parents=True, exist_ok=True)
                save(model, c.models_dir / f"{self.asset}.zip")
            except OSError as exc:  # keeping a copy is a convenience: scoring goes on without it
                log.warning("analytics: cannot save the model of %s in %s: %s", self.asset, c.models_dir, exc)
        cm = submodel_id_for(self.asset, "ConditionMonitoring", id_base=c.id_base)
        self.runner = Runner(model, self.store, RunnerConfig(api=c.api, submodel_id=cm, series=self.series,
                                                             cycle_seconds=c.cycle_seconds, token=c.token))
        if c.spc_signal is not None:
            self.spc = SpcWatch(c.spc_signal, table, c.spc_rules)
        stats.trained.append(self.asset)
        log.warning("analytics: %s trained on %d cycles; scoring every %g s", self.asset, c.train_cycles,
                    c.cycle_seconds)

    async def poll(self, now: dt.datetime, stats: LiveStats) -> list[CycleReport]:
        """Train or score every cycle that has ended by `now`."""
        lag = dt.timedelta(seconds=self.config.lag_seconds)
        length = dt.timedelta(seconds=self.config.cycle_seconds)
        reports: list[CycleReport] = []
        if self.runner is None:
            if now < self.next + lag:
                return reports
            await self._train(stats)
        assert self.runner is not None
        while self.next + length + lag <= now:
            spc = self.spc
            report = await self.runner.step(self.next, extra=spc.update if spc is not None else None)
            self.next += length
            reports.append(report)
            if not report.ok:
                stats.skipped += 1
                stats.last_error = report.error or ""
                continue
            stats.scored += 1
            alarm = float(report.written.get("AnomalyScore", 0)) > 1.0 or \
                report.written.get("SpcState") == "out-of-control"
            if alarm and not self.in_alarm:
                stats.alarms += 1
                log.warning("ALARM %s: anomaly score %s (limit 1), SPC %s %s", self.asset,
                            report.written.get("AnomalyScore"), report.written.get("SpcState", "-"),
                            report.written.get("ViolatedRules", ""))
            self.in_alarm = alarm
        return reports

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.close()


async def run_live(config: LiveConfig, store: TimeSeriesStore, stop: asyncio.Event,
                   stats: LiveStats | None = None, start: dt.datetime | None = None) -> LiveStats:
    """Watch every asset until `stop` is set; learning errors are retried each cycle, never fatal."""
    stats = stats if stats is not None else LiveStats()
    begin = _floor(start or dt.datetime.now(dt.UTC), config.cycle_seconds) + dt.timedelta(seconds=config.cycle_seconds)
    watches = [AssetWatch(config, asset, store, begin) for asset in config.assets]
    try:
        while not stop.is_set():
            now = dt.datetime.now(dt.UTC)
            for watch in watches:
                try:
                    await watch.poll(now, stats)
                except AnalyticsError as exc:
                    if str(exc) != stats.last_error:  # say it once, not every second
                        log.warning("analytics: %s", exc)
                    stats.last_error = str(exc)
                    watch.next += dt.timedelta(seconds=config.cycle_seconds)  # learn from later cycles
                    watch.start += dt.timedelta(seconds=config.cycle_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(1.0, config.cycle_seconds / 2))
    finally:
        for watch in watches:
            await watch.close()
    return stats
