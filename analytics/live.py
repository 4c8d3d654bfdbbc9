"""Live analytics on the twins: learn each asset's normal operation from its first cycles in the
time-series store, then score every new cycle and write the result into its ConditionMonitoring
submodel through the AAS API.

SMEs rarely have labelled failures, so the live model is trained on normal operation only: the
first ``train_cycles`` cycles after start are taken as healthy (start it on a machine in good
condition). A cycle is one stroke, from one change of the press's cycle counter to the next
(``cycle_signal``), or a fixed time slice where a machine has no counter. Per cycle it writes
HealthIndex, AnomalyScore (1 = the alarm limit, set from the ``far`` false-alarm target),
RemainingUsefulLife once health trends down, and the SPC state of one signal's cycle means on an
individuals chart whose Phase I limits are frozen from the training cycles, with the Western
Electric rules that fired (``spc_rules``). The twin server publishes every such change as an event
(SSE and MQTT); an alarm (score above the limit, or SPC out of control) is also logged. A bad cycle
is skipped and counted: the runner never stops for one.
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
from scipy.stats import t as student_t  # type: ignore[import-untyped]

from aas_models import ids
from aas_models.builders import operational_data
from aas_models.timeseries.base import TimeSeriesStore
from aas_models.twin import submodel_id_for

from .anomaly import AnomalyConfig
from .errors import AnalyticsError
from .features import FeatureConfig
from .model import Model, TrainConfig, train
from .persistence import save
from .runner import CycleReport, Runner, RunnerConfig, counter_changes, read_windows
from .samples import SampleConfig
from .spc import ChartLimits, SpcError, apply, fit_imr
from .table import Roles

log = logging.getLogger(__name__)

#: The hydraulic press's process signals the default live model watches.
PRESS_SIGNALS = ("HydraulicPressure", "PressForce", "OilTemperature", "MotorCurrent", "Vibration")
#: Per-cycle statistics of each signal the live model learns from.
STATISTICS = ("mean", "std", "max")
FEATURES_PER_SIGNAL = len(STATISTICS)
#: A stroke over this many times the training strokes' median length is a stop, not a cycle.
MAX_STROKE = 3.0
#: Cycle lengths (``cycle_seconds``) without a single change of the cycle counter before that is reported.
SILENT_COUNTER = 10
#: Cycle lengths read again for counter changes stored late.
RESCAN = 5


class LiveConfig(BaseModel):
    """What `twinedge analytics run` watches and where it writes."""

    model_config = ConfigDict(extra="forbid")

    api: str = "http://127.0.0.1:8081/api/v3.0"
    store: Path = Path("twinedge-data/timeseries.db")
    assets: list[str] = Field(min_length=1, description="asset ids (their twins follow docs/identifiers.md)")
    id_base: str = ids.DEFAULT_ID_BASE
    signals: list[str] = Field(default_factory=lambda: list(PRESS_SIGNALS), min_length=1)
    #: A cycle counter: each change starts a cycle (a stroke), so every cycle holds one whole stroke and its
    #: features do not depend on where a time slice happened to cut it. None: cycles are time slices of
    #: ``cycle_seconds``. On the simulated press (pump leak at half severity, per-cycle means in units of
    #: their healthy spread) strokes against 5 s slices: pressure 0.7 bar spread, shift -4.9 (slices: 39
    #: bar, -0.1); motor current 8.1 (0.7); vibration 9.7 (4.3).
    cycle_signal: str | None = "CycleCounter"
    #: Its cycle means go on the SPC chart: a signal whose mean over a cycle is stable in normal operation
    #: (with time slices, not one that follows the stroke, such as the pressure). The oil temperature
    #: warms for many minutes, which the run rules would rightly flag.
    spc_signal: str | None = "Vibration"
    #: Run rules that put the SPC state out of control. Cycle means of a slow process signal are
    #: autocorrelated, so the 4-of-5 and 8-in-a-row rules (WE3, WE4) fire on normal drift; the
    #: default keeps the rules that stay meaningful there.
    spc_rules: list[str] = Field(default_factory=lambda: ["WE1", "WE2"], min_length=1)
    #: Per signal, the smallest change that matters (its units): the anomaly model's features get no finer
    #: scale. Oil temperature wanders by tenths of a kelvin in healthy operation, more than a few minutes of
    #: training show; a cooler fault moves it by kelvins.
    tolerance: dict[str, NonNegativeFloat] = Field(default_factory=lambda: {"OilTemperature": 1.0})
    #: The smallest shift of the SPC signal's cycle mean that matters (its units; the default is for
    #: Vibration, mm/s): the control limits are never closer to the centre. A stroke's mean vibration wanders
    #: by 0.01 mm/s in healthy operation; a pump leak raises it by tenths.
    spc_tolerance: NonNegativeFloat = 0.05
    #: A time slice's length; with ``cycle_signal``, about one stroke: how long a report-on-change value is held
    #: and how often to look. A stroke longer than ``MAX_STROKE`` times the training strokes' median (the
    #: press stood still) is skipped, not scored.
    cycle_seconds: float = Field(default=10.0, gt=0)
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


def _key(config: LiveConfig, asset: str, signal: str) -> tuple[str, str]:
    """Where the agent stores a signal of the asset: (OperationalData's id, the element's idShortPath)."""
    submodel = submodel_id_for(asset, operational_data.ID_SHORT, id_base=config.id_base)
    return submodel, operational_data.value_path(signal)


def _series(config: LiveConfig, asset: str) -> dict[str, tuple[str, str]]:
    names = dict.fromkeys([*config.signals, *([config.spc_signal] if config.spc_signal else [])])
    return {s: _key(config, asset, s) for s in names}


def _floor(moment: dt.datetime, seconds: float) -> dt.datetime:
    stamp = moment.timestamp()
    return dt.datetime.fromtimestamp(stamp - stamp % seconds, dt.UTC)


class SpcWatch:
    """Cycle means of one signal on an individuals chart: Phase I from training, Phase II on every new cycle.

    Phase I is short (a few dozen cycles), so the limits are those for a *future* observation when centre and
    sigma are estimated: sigma is the larger of MR-bar/d2 and the sample standard deviation (cycle means of a
    wandering process are autocorrelated, and moving ranges then miss the slow part of the spread), and the
    zones are widened by t(1 - 0.00135, n - 1) * sqrt(1 + 1/n) / 3 (18 cycles: 1.2 times wider). A
    ``tolerance`` (the smallest change that matters, as for the anomaly model) keeps the limits at least that
    far from the centre. On 36 simulated healthy presses (18 training strokes, WE1 and WE2 on vibration
    means), textbook I-MR limits flagged 5.4 % of later strokes, these limits 1.25 %, and with a tolerance of
    0.05 mm/s none, while a pump leak still crosses them within a few strokes.
    """

    WINDOW = 50  # recent points the run rules look at

    def __init__(self, signal: str, training: Mapping[str, Any], rules: list[str], tolerance: float = 0.0) -> None:
        self.signal = signal
        self.rules = rules
        means = self._means(training)
        means = means[np.isfinite(means)]
        try:
            textbook = fit_imr(means).location
        except SpcError as exc:
            raise AnalyticsError(f"SPC on {signal}: {exc}") from None
        n = means.size
        widen = float(student_t.ppf(1 - 0.00135, n - 1)) * math.sqrt(1 + 1 / n) / 3.0
        sigma = max(max(textbook.sigma, float(means.std(ddof=1))) * widen, tolerance / 3.0)
        self.limits = ChartLimits.build("i", textbook.centre, sigma, 3.0, n=1.0, process_sigma=textbook.sigma,
                                        method=f"max(MRbar/d2, s) x {widen:.3g}: prediction limits",
                                        reference_count=n)
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
            individuals = apply(self.limits, np.asarray(self.points))
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
        self.counter_key = _key(config, asset, config.cycle_signal) if config.cycle_signal else None
        self.start = start
        #: Starts of the cycles not scored yet, as far as known (the last one has not ended).
        self.edges: list[dt.datetime] = []
        self.counted: float | None = None  # the cycle counter's last value
        self.scanned = start - dt.timedelta(seconds=config.cycle_seconds)  # counter read up to here
        self.longest: float | None = None  # seconds: a longer stroke is a stop, not a cycle
        self.runner: Runner | None = None
        self.spc: SpcWatch | None = None
        self.in_alarm = False

    async def _advance(self, horizon: dt.datetime) -> None:
        """Add the cycle starts known up to ``horizon``."""
        length = dt.timedelta(seconds=self.config.cycle_seconds)
        if self.counter_key is None:
            if not self.edges:
                self.edges.append(self.start)
            while self.edges[-1] + length <= horizon:
                self.edges.append(self.edges[-1] + length)
            return
        if horizon <= self.scanned:
            return
        since, last = self.scanned, self.counted
        if self.edges:
            # Counter samples may reach the store late (the agent forwards its buffer after an outage): read
            # again from the last stroke start known, so a change stored since the last look is not missed;
            # at most RESCAN cycle lengths back (a press that stands still would make that long).
            since, last = max(self.edges[-1], self.scanned - RESCAN * length), None
        changes, self.counted = await counter_changes(self.store, self.counter_key, since, horizon, last)
        self.scanned = horizon
        after = self.edges[-1] if self.edges else self.start - dt.timedelta(microseconds=1)
        self.edges += [c for c in changes if c > after]
        if not self.edges and horizon - self.start > SILENT_COUNTER * length:
            raise AnalyticsError(f"{self.asset}: {self.config.cycle_signal} has not changed since "
                                 f"{self.start.isoformat()}: is it bound, and is the machine running? (without a "
                                 "cycle counter, score time slices: --cycle-signal '')")

    def skip_first(self) -> None:
        """Learning failed on the cycles from the first: learn from later ones."""
        if self.edges:
            self.edges.pop(0)
        if self.edges:
            self.start = self.edges[0]
        elif self.counter_key is None:
            self.start += dt.timedelta(seconds=self.config.cycle_seconds)

    async def _train(self, stats: LiveStats) -> None:
        c = self.config
        edges = self.edges[:c.train_cycles + 1]
        table = await read_windows(self.store, self.series, edges, c.cycle_seconds)
        if not len(table["t"]):
            raise AnalyticsError(f"{self.asset}: no data for {', '.join(c.signals)} in the first "
                                 f"{c.train_cycles} cycles: is the agent writing {c.store}?")
        lengths = np.diff([e.timestamp() for e in edges])
        kind = (f"strokes (counted by {c.cycle_signal}, median {float(np.median(lengths)):.3g} s)"
                if self.counter_key is not None else f"cycles of {c.cycle_seconds:g} s")
        # In a worker thread: the demo runs the simulator and the agent on this event loop.
        model: Model = await asyncio.to_thread(
            train, table, Roles(signals=list(c.signals), cycle="cycle"),
            TrainConfig(task="anomaly", anomaly=AnomalyConfig(far=c.far, calibration="loo"), tolerance=c.tolerance,
                        samples=SampleConfig(nan_policy="drop",
                                             features=FeatureConfig(statistics=list(STATISTICS)))),
            protocol=f"live: first {c.train_cycles} {kind} from {edges[0].isoformat()}")
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
            self.spc = SpcWatch(c.spc_signal, table, c.spc_rules, c.spc_tolerance)
        if self.counter_key is not None:
            self.longest = MAX_STROKE * float(np.median(lengths))
        del self.edges[:c.train_cycles]  # the last training edge starts the first cycle to score
        stats.trained.append(self.asset)
        log.warning("analytics: %s trained on the first %d %s; scoring each new one", self.asset, c.train_cycles,
                    kind)

    async def poll(self, now: dt.datetime, stats: LiveStats) -> list[CycleReport]:
        """Train or score every cycle that has ended by `now` (less the lag for late samples)."""
        await self._advance(now - dt.timedelta(seconds=self.config.lag_seconds))
        reports: list[CycleReport] = []
        if self.runner is None:
            if len(self.edges) <= self.config.train_cycles:
                return reports
            await self._train(stats)
        assert self.runner is not None
        while len(self.edges) >= 2:
            start, end = self.edges[0], self.edges[1]
            seconds = (end - start).total_seconds()
            if self.longest is not None and seconds > self.longest:
                report = CycleReport(start, ok=False, error=f"cycle at {start.isoformat()} skipped: it lasted "
                                     f"{seconds:.3g} s, over {MAX_STROKE:g} times the training strokes' median "
                                     "(the press stood still)")
            else:
                spc = self.spc
                report = await self.runner.step(start, extra=spc.update if spc is not None else None, end=end)
            self.edges.pop(0)
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
                    watch.skip_first()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(1.0, config.cycle_seconds / 2))
    finally:
        for watch in watches:
            await watch.close()
    return stats
