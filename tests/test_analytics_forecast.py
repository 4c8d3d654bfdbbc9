"""Forecasting-residual detector (analytics.forecast, directly and through the generic API and CLI) and the
cycle-timing features, on small synthetic data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from analytics.anomaly import AnomalyConfig, fit_detector
from analytics.cli import analytics
from analytics.errors import DataError
from analytics.features import FeatureConfig, feature_names, matrix_features
from analytics.forecast import ForecastConfig, ForecastDetector, fit_forecast, trailing_mean
from analytics.model import TrainConfig, train
from analytics.persistence import load, save
from analytics.samples import SampleConfig
from analytics.table import Roles

Array = np.ndarray[Any, Any]


def pump(rows: int = 1000, fault_from: int = 700, seed: int = 0) -> Array:
    """A drifting temperature, a flow with its own noise, a pressure that follows the flow; the fault shifts the
    flow by three times its noise and breaks the pressure-flow relation (pressure stays put)."""
    rng = np.random.default_rng(seed)
    temp = 40 + np.cumsum(rng.normal(0.0, 0.05, rows))  # random walk: window limits would alarm on it
    flow = 30 + rng.normal(0.0, 1.0, rows)
    pressure = 2.0 + 0.05 * flow + rng.normal(0.0, 0.02, rows)
    flow[fault_from:] -= 3.0
    return np.column_stack([temp, flow, pressure])


def test_flags_a_level_and_relation_change_but_not_a_drifting_signal() -> None:
    x = pump()
    det = fit_forecast(x[:400], ForecastConfig(lags=3, window=10))
    score = det.score(x)
    assert (score[720:] > 1).mean() >= 0.9  # the fault alarms (after the window has filled)
    assert (score[400:700] > 1).mean() <= 0.1  # unseen normal rows, temperature still drifting, mostly do not


def test_scores_are_online() -> None:
    x = pump()
    det = fit_forecast(x[:400], ForecastConfig())
    full = det.score(x)
    assert np.allclose(det.score(x[:650]), full[:650])  # a row's score never depends on later rows
    assert np.allclose(trailing_mean(x[:50], 7), trailing_mean(x, 7)[:50])


def test_bad_training_rows_give_clear_errors() -> None:
    x = pump()
    with pytest.raises(DataError, match="too few"):
        fit_forecast(x[:30], ForecastConfig(lags=5, window=10))
    flat = x[:400].copy()
    flat[:, 2] = 1.0
    with pytest.raises(DataError, match="constant"):
        fit_forecast(flat, ForecastConfig())
    bad = x[:400].copy()
    bad[5, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        fit_forecast(bad, ForecastConfig())


def test_segment_steps_and_timing_features() -> None:
    cycle = np.array([[0.0, 0.0, 5.0, 5.0, 1.0, 1.0]])  # rise at step 1-2, drop at step 3-4, peak at 2, bottom at 0
    cfg = FeatureConfig(statistics=["mean"], segments=3, segment_diffs=True, timing=True)
    values = matrix_features({"p": cycle}, ["p"], cfg)[0]
    names = feature_names(["p"], cfg)
    assert len(names) == values.size
    got = dict(zip(names, values.tolist(), strict=True))
    assert got["p.segdiff0"] == 5.0 and got["p.segdiff1"] == -4.0
    assert got["p.t_max"] == pytest.approx(2 / 5) and got["p.t_min"] == 0.0
    assert got["p.t_rise"] == pytest.approx(1.5 / 5) and got["p.rise"] == 5.0
    assert got["p.t_drop"] == pytest.approx(3.5 / 5) and got["p.drop"] == -4.0


# --- the forecaster through the generic API (train / save / load / score, CLI) ---

SIGNALS = ["temp", "flow", "pressure"]


def pump_table(rows: int = 1000, fault_from: int = 700) -> dict[str, Array]:
    """The pump stream as a table; label 1 marks the faulty rows and a short abnormal stretch at rows 200-239."""
    x = pump(rows, fault_from)
    label = np.zeros(rows, dtype=int)
    label[fault_from:] = 1
    label[200:240] = 1
    x[200:240, 1] += 5.0  # an abnormal stretch inside the training range: labelled, so it must be left out
    return {"t": np.arange(rows, dtype=np.float64), **{s: x[:, j] for j, s in enumerate(SIGNALS)}, "state": label}


def _rows(table: dict[str, Array], stop: int) -> dict[str, Array]:
    return {k: v[:stop] for k, v in table.items()}


ROW_ROLES = Roles(signals=SIGNALS, time="t", label="state")
FORECAST = TrainConfig(task="anomaly", anomaly=AnomalyConfig(method="forecast", lags=3, score_window=10))


def test_forecast_through_train_flags_the_fault_and_reloads_identically(tmp_path: Path) -> None:
    table = pump_table()
    model = train(_rows(table, 500), ROW_ROLES, FORECAST, protocol="rows 0-499, normal rows only")
    assert isinstance(model.estimator, ForecastDetector) and model.features == SIGNALS
    res = model.score(table)
    assert res.alarm is not None and res.health is not None and res.ids == list(range(1000))
    assert res.alarm[720:].mean() >= 0.9  # the fault alarms
    assert res.alarm[500:700].mean() <= 0.1  # unseen normal rows (temperature still drifting) mostly do not
    assert any("warm-up" in f for f in res.flags)
    back = load(save(model, tmp_path / "pump.tem"))
    assert json.dumps(back.score(table).to_dict(), default=str) == json.dumps(res.to_dict(), default=str)
    assert back.config == model.config and back.config.anomaly.method == "forecast"
    # the labelled stretch 200-239 splits training into two stretches; without the label it would be learnt
    unlabelled = train(_rows(table, 500), Roles(signals=SIGNALS, time="t"), FORECAST)
    assert unlabelled.score(table).score[720:].mean() < res.score[720:].mean()  # type: ignore[index]


def test_forecast_bad_input_gives_clear_errors() -> None:
    table = pump_table()
    with pytest.raises(DataError, match=r"too few .* give at least"):
        train(_rows(table, 40), ROW_ROLES, FORECAST)
    nan = dict(table, flow=table["flow"].copy())
    nan["flow"][100] = np.nan
    with pytest.raises(DataError, match=r"NaN/inf in signals \['flow'\].*nan_policy='drop'"):
        train(_rows(nan, 500), ROW_ROLES, FORECAST)
    drop = FORECAST.model_copy(update={"samples": SampleConfig(nan_policy="drop")})
    model = train(_rows(nan, 500), ROW_ROLES, drop)  # the NaN row is skipped and ends a stretch
    res = model.score(nan)
    assert res.dropped == [100] and 100 not in res.ids and len(res.ids) == 999
    with pytest.raises(DataError, match="at least 4"):
        model.score(_rows(table, 3))
    stuck = np.where(table["state"][:500] == 1, 2.5, 2.0)  # moves only in the labelled abnormal rows
    with pytest.raises(DataError, match=r"\['pressure'\] are constant in the training rows"):
        train(dict(_rows(table, 500), pressure=stuck), ROW_ROLES, FORECAST)
    with pytest.raises(ValueError, match=r"samples\.window and samples\.step must be 1"):
        TrainConfig(task="anomaly", samples=SampleConfig(window=5), anomaly=AnomalyConfig(method="forecast"))
    with pytest.raises(DataError, match=r"remove roles\.cycle"):
        train(dict(table, c=np.repeat(np.arange(100), 10)), Roles(signals=SIGNALS, cycle="c"), FORECAST)
    with pytest.raises(ValueError, match="row streams"):
        fit_detector(np.zeros((20, 2)), AnomalyConfig(method="forecast"))


def test_cli_train_and_score_a_row_stream(tmp_path: Path) -> None:
    table = pump_table(800)
    cols = ["t", *SIGNALS, "state"]
    for name, part in (("train.csv", _rows(table, 500)), ("all.csv", table)):
        lines = [",".join(cols)] + [",".join(str(part[c][i]) for c in cols) for i in range(part["t"].size)]
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    out = runner.invoke(analytics, ["train", "--data", str(tmp_path / "train.csv"), "--task", "anomaly", "--signals",
                                    ",".join(SIGNALS), "--time", "t", "--label", "state", "--method", "forecast",
                                    "--lags", "3", "--out", str(tmp_path / "m.tem")])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["task"] == "anomaly" and json.loads(out.stdout)["features"] == 3
    scored = runner.invoke(analytics, ["score", "--model", str(tmp_path / "m.tem"), "--data",
                                       str(tmp_path / "all.csv")])
    assert scored.exit_code == 0, scored.output
    result = json.loads(scored.stdout)
    assert len(result["score"]) == 800 and np.mean(result["alarm"][720:]) >= 0.9
    few = runner.invoke(analytics, ["train", "--data", str(tmp_path / "train.csv"), "--task", "anomaly", "--signals",
                                    ",".join(SIGNALS), "--method", "forecast", "--window", "5", "--out",
                                    str(tmp_path / "x.tem")])
    assert few.exit_code != 0 and "samples.window and samples.step must be 1" in few.output
