"""The live runner against a real twin server (uvicorn) and a real embedded time-series store (SQLite)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from pathlib import Path

import httpx
import numpy as np

from aas_models.equipment import SPECS_DIR, load_spec
from aas_models.files import save
from aas_models.package import AasPackage
from aas_models.timeseries.base import Sample, SeriesKey
from aas_models.timeseries.sqlite import SqliteTimeSeries
from aas_models.twin import build_twin, submodel_id_for
from analytics.anomaly import AnomalyConfig
from analytics.features import FeatureConfig
from analytics.model import TrainConfig, train
from analytics.runner import CycleReport, Runner, RunnerConfig, read_cycles
from analytics.samples import SampleConfig
from analytics.table import Roles
from tests.server import run_server
from twin_server.config import ServerConfig

T0 = dt.datetime(2026, 1, 5, 6, 0, tzinfo=dt.UTC)
CYCLE_S = 20
TRAIN = 100
OPDATA = "urn:test:opdata"
SERIES = {"pressure": (OPDATA, "Pressure"), "vibration": (OPDATA, "Vibration")}


def _samples(cycle: int, fault: bool, rng: np.random.Generator, skip_vibration: bool = False) -> list[Sample]:
    out = []
    for k in range(CYCLE_S):
        t = T0 + dt.timedelta(seconds=cycle * CYCLE_S + k)
        p = 200 * np.sin(np.pi * k / CYCLE_S) - (40 if fault else 0) + rng.normal(0, 2)
        v = 1.0 + (1.5 if fault else 0.0) + rng.normal(0, 0.1)
        out.append(Sample(SeriesKey(*SERIES["pressure"]), t, float(p)))
        if not skip_vibration:
            out.append(Sample(SeriesKey(*SERIES["vibration"]), t, float(v)))
    return out


def test_runner_scores_cycles_into_condition_monitoring(tmp_path: Path) -> None:
    env = build_twin(load_spec(SPECS_DIR / "hydraulic-press.yaml"), "press-01")
    twin = tmp_path / "press-01.json"
    save(AasPackage(env), twin)
    cm_id = submodel_id_for("press-01", "ConditionMonitoring")
    rng = np.random.default_rng(0)

    async def scenario(api: str) -> list[tuple[bool, str | None, dict[str, object]]]:
        store = SqliteTimeSeries(tmp_path / "ts.db")
        await store.open()
        for c in range(TRAIN):  # healthy training cycles
            await store.write(_samples(c, False, rng))
        await store.write(_samples(TRAIN, False, rng))
        await store.write(_samples(TRAIN + 1, True, rng))
        for c in (TRAIN + 2, TRAIN + 3):  # vibration falls silent: held for one cycle, then missing
            await store.write(_samples(c, False, rng, skip_vibration=True))
        history = await read_cycles(store, SERIES, T0, TRAIN, CYCLE_S)
        model = train(history, Roles(signals=["pressure", "vibration"], cycle="cycle"),
                      TrainConfig(task="anomaly", anomaly=AnomalyConfig(far=0.001), samples=SampleConfig(
                          features=FeatureConfig(statistics=["mean", "std", "max"]))))
        runner = Runner(model, store, RunnerConfig(api=api, submodel_id=cm_id, series=SERIES, cycle_seconds=CYCLE_S))
        reports = []
        for c in range(TRAIN, TRAIN + 5):  # the last one has no data at all
            r = await runner.step(T0 + dt.timedelta(seconds=c * CYCLE_S))
            reports.append((r.ok, r.error, r.written))
        await runner.close()
        await store.close()
        return reports

    with run_server(ServerConfig(data_dir=tmp_path / "server", load=[twin])) as server:
        reports = asyncio.run(scenario(server.base))
        ident = base64.urlsafe_b64encode(cm_id.encode()).decode().rstrip("=")
        value = httpx.get(f"{server.base}/submodels/{ident}/$value", timeout=5).json()

    healthy, faulty, held, broken, empty = reports
    assert healthy[0] and faulty[0], (healthy, faulty)
    assert held[0], held  # report-on-change: the last value (from the cycle before) still stands
    assert float(str(healthy[2]["AnomalyScore"])) < 1.0 < float(str(faulty[2]["AnomalyScore"]))
    assert not broken[0] and "skipped" in str(broken[1])  # silent over a whole cycle: NaN, reported, goes on
    assert not empty[0] and "skipped" in str(empty[1])
    cm = value.get("ConditionMonitoring", value)
    assert float(cm["AnomalyScore"]) == float(str(held[2]["AnomalyScore"]))  # the last good cycle stays
    assert 0.0 < float(cm["HealthIndex"]) < 0.5
    assert cm["AnomalyThreshold"] == 1.0 or float(cm["AnomalyThreshold"]) == 1.0


def _strokes(rng: np.random.Generator, lengths: list[float], faulty_from: int,
             asset: str) -> tuple[list[Sample], list[dt.datetime]]:
    """A press whose pressure follows its stroke: strokes of the given lengths (s), 10 samples/s, the cycle
    counter stepping at each stroke start; a pump leak (pressure down, vibration up) from stroke `faulty_from`."""
    from analytics.live import LiveConfig, _key

    config = LiveConfig(assets=[asset], signals=["HydraulicPressure", "Vibration"], spc_signal=None)
    pressure, vibration, counter = (SeriesKey(*_key(config, asset, s))
                                    for s in ("HydraulicPressure", "Vibration", "CycleCounter"))
    out, start, starts = [], T0, []
    for n, length in enumerate(lengths):
        fault = n >= faulty_from
        starts.append(start)
        out.append(Sample(counter, start, 1000 + n))
        for k in range(int(length * 10)):
            t = start + dt.timedelta(seconds=k / 10)
            phase = min(1.0, k / 80)  # the stroke's shape; a long stroke is a press standing at the top
            p = 250 * np.sin(np.pi * phase) * (0.8 if fault else 1.0) + rng.normal(0, 2)
            out.append(Sample(pressure, t, float(p)))
            out.append(Sample(vibration, t, float(1.0 + (0.5 if fault else 0.0) + rng.normal(0, 0.05))))
        start += dt.timedelta(seconds=length)
    return out, starts


def test_live_cycles_are_strokes_counted_by_the_cycle_counter(tmp_path: Path) -> None:
    """Cycles start where the counter changes, whatever their length; a stroke far longer than the trained
    ones (the press stood still) is skipped with a reason, not scored; a fault stands out from the first
    faulty stroke on."""
    from analytics.live import AssetWatch, LiveConfig, LiveStats

    env = build_twin(load_spec(SPECS_DIR / "hydraulic-press.yaml"), "press-01")
    twin = tmp_path / "press-01.json"
    save(AasPackage(env), twin)
    rng = np.random.default_rng(3)
    lengths = [float(x) for x in rng.uniform(8.0, 12.0, 40)]
    lengths[30] = 120.0  # stopped at the top for two minutes
    samples, stroke_starts = _strokes(rng, lengths, faulty_from=34, asset="press-01")

    async def scenario(api: str) -> tuple[list[CycleReport], LiveStats]:
        store = SqliteTimeSeries(tmp_path / "ts.db")
        await store.open()
        await store.write(samples)
        config = LiveConfig(api=api, assets=["press-01"], signals=["HydraulicPressure", "Vibration"],
                            spc_signal="Vibration", cycle_seconds=10.0, train_cycles=20, lag_seconds=0)
        watch = AssetWatch(config, "press-01", store, T0 - dt.timedelta(seconds=5))
        stats = LiveStats()
        reports = await watch.poll(stroke_starts[-1] + dt.timedelta(seconds=60), stats)
        await watch.close()
        await store.close()
        return reports, stats

    with run_server(ServerConfig(data_dir=tmp_path / "server", load=[twin])) as server:
        reports, stats = asyncio.run(scenario(server.base))

    # Stroke 0 starts at the first counter value (no change seen before it), so training takes strokes 1-20
    # and scoring starts at stroke 21; the last stroke has not ended (no next change).
    starts = [r.start for r in reports]
    assert starts == stroke_starts[21:-1]
    by_stroke = dict(zip(range(21, len(lengths) - 1), reports, strict=True))
    stood = by_stroke[30]
    assert not stood.ok and "stood still" in str(stood.error)
    healthy = [float(r.written["AnomalyScore"]) for n, r in by_stroke.items() if n < 34 and n != 30]
    faulty = [float(r.written["AnomalyScore"]) for n, r in by_stroke.items() if n >= 34]
    assert max(healthy) < 1.0 < min(faulty), (healthy, faulty)
    assert stats.trained == ["press-01"] and stats.skipped == 1 and stats.scored == len(reports) - 1
    assert all(by_stroke[n].written["SpcState"] == "out-of-control" for n in range(34, len(lengths) - 1))


def test_spc_limits_of_a_short_phase_one_are_prediction_limits_and_respect_the_tolerance() -> None:
    """18 cycle means: the limits are wider than textbook I-MR (centre and sigma are estimates), never
    narrower than the sample spread, and never tighter than the tolerance; a shift past them is flagged."""
    from analytics.live import SpcWatch
    from analytics.spc import fit_imr

    means = np.random.default_rng(4).normal(1.0, 0.01, 18)
    training = {"cycle": np.repeat(np.arange(18), 5), "v": np.repeat(means, 5)}
    textbook = fit_imr(means).location
    watch = SpcWatch("v", training, ["WE1", "WE2"])
    assert watch.limits.centre == textbook.centre
    assert watch.limits.sigma >= 1.2 * max(textbook.sigma, float(means.std(ddof=1)))
    tolerant = SpcWatch("v", training, ["WE1", "WE2"], tolerance=0.3)
    assert tolerant.limits.ucl - tolerant.limits.centre >= 0.3 - 1e-12
    assert watch.update({"v": np.full(5, textbook.centre)})["SpcState"] == "in-control"
    shifted = watch.update({"v": np.full(5, textbook.centre + 10 * watch.limits.sigma)})
    assert shifted == {"SpcState": "out-of-control", "ViolatedRules": "WE1"}
    assert tolerant.update({"v": np.full(5, textbook.centre + 0.2)})["SpcState"] == "in-control"


def test_a_cycle_counter_that_never_changes_is_reported_not_waited_for_silently(tmp_path: Path) -> None:
    from analytics.errors import AnalyticsError
    from analytics.live import AssetWatch, LiveConfig, LiveStats, _key

    config = LiveConfig(assets=["press-01"], cycle_seconds=10.0, lag_seconds=0)
    counter = SeriesKey(*_key(config, "press-01", "CycleCounter"))
    samples = [s for s in _strokes(np.random.default_rng(5), [10.0] * 5, 99, "press-01")[0] if s.key != counter]

    async def scenario() -> tuple[list[CycleReport], str]:
        store = SqliteTimeSeries(tmp_path / "ts.db")
        await store.open()
        await store.write(samples)
        watch = AssetWatch(config, "press-01", store, T0)
        early = await watch.poll(T0 + dt.timedelta(seconds=50), LiveStats())  # not long yet: just waiting
        try:
            await watch.poll(T0 + dt.timedelta(seconds=500), LiveStats())
        except AnalyticsError as exc:
            message = str(exc)
        else:
            message = ""
        await store.close()
        return early, message

    early, message = asyncio.run(scenario())
    assert early == []
    assert "CycleCounter has not changed since" in message and "--cycle-signal ''" in message, message


def test_counter_changes_stored_late_still_start_strokes(tmp_path: Path) -> None:
    """The agent forwards its buffer after an outage, so counter samples can reach the store after the watch
    looked past their time: each look reads again from the last stroke start it knows."""
    from analytics.live import AssetWatch, LiveConfig, _key

    config = LiveConfig(assets=["press-01"], cycle_seconds=10.0, lag_seconds=0)
    counter = SeriesKey(*_key(config, "press-01", "CycleCounter"))
    starts = [T0 + dt.timedelta(seconds=10 * n) for n in range(10)]
    early = [Sample(counter, t, 1000 + n) for n, t in enumerate(starts[:6])]
    late = [Sample(counter, t, 1000 + n) for n, t in enumerate(starts) if n >= 6]

    async def scenario() -> tuple[list[dt.datetime], list[dt.datetime]]:
        store = SqliteTimeSeries(tmp_path / "ts.db")
        await store.open()
        await store.write(early)
        watch = AssetWatch(config, "press-01", store, T0 - dt.timedelta(seconds=5))
        await watch._advance(starts[8] + dt.timedelta(seconds=1))  # strokes 6-8 not stored yet
        before = list(watch.edges)
        await store.write(late)  # now they are, behind the watch's last look
        await watch._advance(starts[9] + dt.timedelta(seconds=5))
        await store.close()
        return before, list(watch.edges)

    before, after = asyncio.run(scenario())
    assert before == starts[1:6]  # the first value is the baseline, not a change
    assert after == starts[1:10]
