"""Forecasting-residual detector (analytics.forecast) and the cycle-timing features, on small synthetic data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from analytics.errors import DataError
from analytics.features import FeatureConfig, feature_names, matrix_features
from analytics.forecast import ForecastConfig, fit_forecast, trailing_mean

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
