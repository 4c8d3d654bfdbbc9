"""Detector limits that hold out of sample when training is short: the resolution floor of quantised
signals and leave-one-out calibration with a Phase I clean-up (what a live model learnt in minutes needs)."""

from __future__ import annotations

import numpy as np

from analytics.anomaly import AnomalyConfig, fit_detector
from analytics.model import TrainConfig, train
from analytics.samples import SampleConfig
from analytics.table import Roles


def _normal(rng: np.random.Generator, n: int, p: int) -> np.ndarray:  # type: ignore[type-arg]
    mix = np.random.default_rng(99).normal(size=(p, p)) * 0.5 + np.eye(p)  # correlated, as sensor features are
    return np.asarray(rng.normal(size=(n, p)) @ mix, dtype=np.float64)


def test_loo_calibration_holds_the_false_alarm_rate_where_theory_does_not() -> None:
    rng = np.random.default_rng(0)
    train_rows, later = _normal(rng, 20, 15), _normal(rng, 5000, 15)
    theory = fit_detector(train_rows, AnomalyConfig(far=0.01))
    loo = fit_detector(train_rows, AnomalyConfig(far=0.01, calibration="loo"))
    far_theory = float(np.mean(theory.score(later) > 1))
    far_loo = float(np.mean(loo.score(later) > 1))
    assert far_theory > 0.2  # 20 rows for 15 features: the textbook limits are far too tight
    assert far_loo < 0.03, far_loo
    assert loo.state["widen"] > 1 and loo.state["trimmed_rows"] == []
    shifted = later[:200] + 25.0  # a real fault still crosses the widened limit
    assert float(np.mean(loo.score(shifted) > 1)) > 0.9


def test_phase_one_trims_a_start_up_transient_from_training() -> None:
    rng = np.random.default_rng(1)
    train_rows = _normal(rng, 40, 6)
    train_rows[0] += 60.0  # the first cycle after start: the machine was not running yet
    clean = fit_detector(np.delete(train_rows, 0, axis=0), AnomalyConfig(far=0.01, calibration="loo"))
    det = fit_detector(train_rows, AnomalyConfig(far=0.01, calibration="loo"))
    assert det.state["trimmed_rows"] == [0]
    assert np.allclose(det.mean, clean.mean) and np.isclose(det.state["widen"], clean.state["widen"])
    untrimmed = fit_detector(train_rows, AnomalyConfig(far=0.01))
    assert untrimmed.scale.max() > 3 * det.scale.max()  # what the transient did to an uncleaned model


def test_quantised_signal_scale_is_floored_at_its_step() -> None:
    """A temperature in 0.01 K register steps that sat on one level for all but one training cycle: a
    later one-step change is one step, not thousands of training spreads."""
    rng = np.random.default_rng(2)
    cycles, per = 30, 10
    table: dict[str, np.ndarray] = {  # type: ignore[type-arg]
        "cycle": np.repeat(np.arange(cycles), per),
        "pressure": rng.normal(200, 5, cycles * per),
        "temperature": np.full(cycles * per, 44.53),
    }
    table["temperature"][per * 7 + 3] = 44.54  # one sample one step up in training
    roles = Roles(signals=["pressure", "temperature"], cycle="cycle")
    config = TrainConfig(task="anomaly", samples=SampleConfig(window=per))
    model = train(table, roles, config)
    probe = {"cycle": np.zeros(per, dtype=int), "pressure": rng.normal(200, 5, per),
             "temperature": np.full(per, 44.54)}  # the whole cycle one step up: healthy drift
    floored = float(model.score(probe).score[0])
    assert floored < 10
    unfloored = train(table, roles, config.model_copy(
        update={"anomaly": AnomalyConfig(resolution_floor=False)}))
    assert float(unfloored.score(probe).score[0]) > 50 * floored  # what the floor prevents

    tolerant = train(table, roles, config.model_copy(update={"tolerance": {"temperature": 1.0}}))
    hot = dict(probe, temperature=np.full(per, 48.0))  # a cooler fault: kelvins, not hundredths
    assert float(tolerant.score(probe).score[0]) < 10
    assert float(tolerant.score(hot).score[0]) > 10
