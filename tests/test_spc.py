"""Statistical process control: constants, charts, run rules, capability, the piston-ring golden values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from analytics.spc import (
    RULES,
    ChartLimits,
    ChartPair,
    InsufficientDataError,
    LimitsFormatError,
    MissingValueError,
    SpcError,
    SpecificationError,
    SubgroupSizeError,
    ZeroSigmaError,
    apply,
    capability,
    check,
    factors,
    fit_c,
    fit_cusum,
    fit_ewma,
    fit_imr,
    fit_np,
    fit_p,
    fit_u,
    fit_xbar_r,
    fit_xbar_s,
    violations,
)

SPC_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "spc"


@pytest.fixture(scope="module")
def pistonrings() -> np.ndarray:
    path = SPC_DATA / "pistonrings.csv"
    if not path.is_file():
        pytest.skip(f"piston-ring data not found at {path} (the team's ../shared/datasets folder is absent)")
    from analytics.evaluation.spc import load_pistonrings

    return load_pistonrings(SPC_DATA)


# --------------------------------------------------------------------------------------------------
# Golden values (README of the datasets): X-bar/R on subgroups 1-25, Phase II 26-40, spec 74 +/- 0.05
# --------------------------------------------------------------------------------------------------


def test_pistonrings_golden_values(pistonrings: np.ndarray) -> None:
    from analytics.evaluation.spc import evaluate

    result = evaluate(SPC_DATA)
    json.dumps(result, allow_nan=False)  # JSON-ready
    x, r, cap = result["xbar"], result["r"], result["capability"]
    assert x["centre"] == 74.00118
    assert round(x["sigma"], 6) == 0.009785
    assert (x["lcl"], x["ucl"]) == (73.98804, 74.01431)
    assert (x["lcl_2sigma"], x["ucl_2sigma"]) == (73.99242, 74.00993)
    assert r["ucl"] == 0.04811
    assert r["lcl"] == 0.0
    assert result["phase2_out_of_control"] == [37, 38, 39]
    assert (round(cap["cp"], 2), round(cap["cpk"], 2)) == (1.70, 1.66)
    assert cap["pp"] is not None and cap["ppk"] is not None
    assert cap["ppk"] < cap["pp"] < cap["cp"]
    assert result["matches_golden"] is True


def test_pistonrings_exact_constants_agree_to_rounding(pistonrings: np.ndarray) -> None:
    """With the exact (integrated) constants the limits move by < 2e-5 (printed A2 and D4 are rounded)."""
    pair = fit_xbar_r(pistonrings[:25])
    assert pair.location.centre == pytest.approx(74.00118, abs=5e-6)
    assert pair.location.process_sigma == pytest.approx(0.009785, abs=5e-7)
    assert pair.location.lcl == pytest.approx(73.98804, abs=1e-5)
    assert pair.location.ucl == pytest.approx(74.01431, abs=1e-5)
    assert pair.dispersion.ucl == pytest.approx(0.04811, abs=2e-5)
    xbar, _r = apply(pair, pistonrings[25:])
    assert [26 + i for i in xbar.out_of_control] == [37, 38, 39]


def test_rbar_is_mean_of_subgroup_ranges(pistonrings: np.ndarray) -> None:
    """Not the range of all the data (the mistake of a known Grafana SPC plugin)."""
    phase1 = pistonrings[:25]
    pair = fit_xbar_r(phase1)
    ranges = phase1.max(axis=1) - phase1.min(axis=1)
    assert pair.dispersion.centre == pytest.approx(ranges.mean(), rel=1e-12)
    assert pair.dispersion.centre < np.ptp(phase1) / 2
    assert pair.location.process_sigma == pytest.approx(ranges.mean() / 2.325929, rel=1e-6)


# --------------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------------

# Printed tables (Montgomery, Introduction to SQC, Appendix VI), n = 2..25.
PUBLISHED: dict[str, list[float]] = {
    "d2": [1.128, 1.693, 2.059, 2.326, 2.534, 2.704, 2.847, 2.970, 3.078, 3.173, 3.258, 3.336, 3.407,
           3.472, 3.532, 3.588, 3.640, 3.689, 3.735, 3.778, 3.819, 3.858, 3.895, 3.931],
    "d3": [0.853, 0.888, 0.880, 0.864, 0.848, 0.833, 0.820, 0.808, 0.797, 0.787, 0.778, 0.770, 0.763,
           0.756, 0.750, 0.744, 0.739, 0.734, 0.729, 0.724, 0.720, 0.716, 0.712, 0.708],
    "c4": [0.7979, 0.8862, 0.9213, 0.9400, 0.9515, 0.9594, 0.9650, 0.9693, 0.9727, 0.9754, 0.9776, 0.9794,
           0.9810, 0.9823, 0.9835, 0.9845, 0.9854, 0.9862, 0.9869, 0.9876, 0.9882, 0.9887, 0.9892, 0.9896],
    "A2": [1.880, 1.023, 0.729, 0.577, 0.483, 0.419, 0.373, 0.337, 0.308, 0.285, 0.266, 0.249, 0.235,
           0.223, 0.212, 0.203, 0.194, 0.187, 0.180, 0.173, 0.167, 0.162, 0.157, 0.153],
    "A3": [2.659, 1.954, 1.628, 1.427, 1.287, 1.182, 1.099, 1.032, 0.975, 0.927, 0.886, 0.850, 0.817,
           0.789, 0.763, 0.739, 0.718, 0.698, 0.680, 0.663, 0.647, 0.633, 0.619, 0.606],
    "B3": [0, 0, 0, 0, 0.030, 0.118, 0.185, 0.239, 0.284, 0.321, 0.354, 0.382, 0.406,
           0.428, 0.448, 0.466, 0.482, 0.497, 0.510, 0.523, 0.534, 0.545, 0.555, 0.565],
    "B4": [3.267, 2.568, 2.266, 2.089, 1.970, 1.882, 1.815, 1.761, 1.716, 1.679, 1.646, 1.618, 1.594,
           1.572, 1.552, 1.534, 1.518, 1.503, 1.490, 1.477, 1.466, 1.455, 1.445, 1.435],
    "D3": [0, 0, 0, 0, 0, 0.076, 0.136, 0.184, 0.223, 0.256, 0.283, 0.307, 0.328,
           0.347, 0.363, 0.378, 0.391, 0.403, 0.415, 0.425, 0.434, 0.443, 0.451, 0.459],
    "D4": [3.267, 2.574, 2.282, 2.114, 2.004, 1.924, 1.864, 1.816, 1.777, 1.744, 1.717, 1.693, 1.672,
           1.653, 1.637, 1.622, 1.608, 1.597, 1.585, 1.575, 1.566, 1.557, 1.548, 1.541],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_constants_match_published_tables(name: str) -> None:
    """Computed from the definitions; within one unit of the printed last decimal (some printed entries
    were derived from already-rounded d2/d3, e.g. D4 for n = 3: printed 2.574, exact 2.57459)."""
    unit = 1e-4 if name == "c4" else 1e-3
    for n, printed in zip(range(2, 26), PUBLISHED[name], strict=True):
        exact = getattr(factors(n), name)
        assert abs(exact - printed) <= unit + 1e-12, (name, n, exact, printed)
        assert abs(exact - printed) <= unit / 2 + 1e-12 or name in {"d3", "D3", "D4"}, (name, n, exact, printed)


def test_table_mode_reproduces_printed_values() -> None:
    for name in ("d2", "c4", "A2", "A3", "B3", "B4"):
        for n, printed in zip(range(2, 26), PUBLISHED[name], strict=True):
            assert getattr(factors(n, "table"), name) == pytest.approx(printed, abs=1e-12), (name, n)
    f5 = factors(5, "table")
    assert (f5.d2, f5.d3, f5.A2, f5.D3, f5.D4) == (2.326, 0.864, 0.577, 0.0, 2.114)


def test_constants_closed_forms() -> None:
    f2 = factors(2)
    assert f2.d2 == pytest.approx(2 / math.sqrt(math.pi), abs=1e-12)
    assert f2.d3 == pytest.approx(math.sqrt(2 - 4 / math.pi), abs=1e-12)
    assert f2.c4 == pytest.approx(math.sqrt(2 / math.pi), abs=1e-15)
    assert factors(3).c4 == pytest.approx(math.sqrt(math.pi) / 2, abs=1e-15)
    f5 = factors(5)
    assert pytest.approx(3 / (f5.d2 * math.sqrt(5))) == f5.A2
    assert pytest.approx(1 + 3 * f5.d3 / f5.d2) == f5.D4
    # Large n (beyond the tables) still works and d2 grows slowly.
    assert 4.0 < factors(30).d2 < factors(50).d2 < 5.0
    with pytest.raises(SubgroupSizeError, match="I-MR"):
        factors(1)


def test_d2_d3_agree_with_simulation() -> None:
    rng = np.random.default_rng(7)
    ranges = np.ptp(rng.standard_normal((200_000, 7)), axis=1)
    assert ranges.mean() == pytest.approx(factors(7).d2, abs=0.01)
    assert ranges.std() == pytest.approx(factors(7).d3, abs=0.01)


# --------------------------------------------------------------------------------------------------
# Run rules: each on a hand-made series where exactly it fires (within its rule set)
# --------------------------------------------------------------------------------------------------

UNIT = ChartLimits.symmetric(0.0, 1.0)  # centre 0, sigma 1: values are in sigmas

SERIES_WE1 = [0.5, -0.5, 0.5, -0.5, 3.5, -0.5, 0.5]
SERIES_2OF3 = [0.5, -0.5, 2.5, 0.5, 2.5, -0.5, 0.5]
SERIES_4OF5 = [-0.5, 1.5, 1.5, 0.5, 1.5, 1.5, -0.5]
SERIES_8SIDE = [-0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, -0.5]
SERIES_9SIDE = [-0.5, 0.5, 0.2, 0.5, 0.2, 0.5, 0.2, 0.5, 0.2, 0.5, -0.5]
SERIES_TREND = [-0.5, 0.5, -0.6, -0.4, -0.2, -0.1, 0.2, 0.4, -0.3]
SERIES_ALTERNATE = [1.5, -0.5] * 7
SERIES_STRATIFY = [1.5, 0.5, 0.2, -0.3, -0.6, 0.4, 0.1, -0.2, 0.3, 0.6, -0.5, -0.1, 0.2, 0.7, -0.4, 0.1]
SERIES_MIXTURE = [0.5, 1.5, -1.5, 1.5, -1.5, 1.5, -1.5, 1.5, -1.5, 0.5]


@pytest.mark.parametrize(
    ("series", "rule_id", "where"),
    [
        (SERIES_WE1, "WE1", [4]),
        (SERIES_2OF3, "WE2", [4]),
        (SERIES_4OF5, "WE3", [5]),
        (SERIES_8SIDE, "WE4", [8]),
        (SERIES_WE1, "N1", [4]),
        (SERIES_9SIDE, "N2", [9]),
        (SERIES_TREND, "N3", [7]),
        (SERIES_ALTERNATE, "N4", [13]),
        (SERIES_2OF3, "N5", [4]),
        (SERIES_4OF5, "N6", [5]),
        (SERIES_STRATIFY, "N7", [15]),
        (SERIES_MIXTURE, "N8", [8]),
    ],
)
def test_each_rule_fires_alone(series: list[float], rule_id: str, where: list[int]) -> None:
    ruleset = "we" if rule_id.startswith("WE") else "nelson"
    fired = {rid: idx.tolist() for rid, idx in check(series, UNIT, ruleset).items() if idx.size}
    assert fired == {rule_id: where}
    assert RULES[rule_id](series, UNIT).tolist() == where
    found = violations(series, UNIT, rules=ruleset)
    assert [(v.rule_id, list(v.indices)) for v in found] == [(rule_id, where)]
    assert found[0].name == RULES[rule_id].name and found[0].name


def test_rule_catalogue() -> None:
    assert [r for r in RULES if r.startswith("WE")] == ["WE1", "WE2", "WE3", "WE4"]
    assert [r for r in RULES if r.startswith("N")] == [f"N{i}" for i in range(1, 9)]
    assert all(rule.name for rule in RULES.values())
    assert [v.rule_id for v in violations(SERIES_8SIDE, UNIT, rules=["we4", "N2"])] == ["WE4"]
    with pytest.raises(SpcError, match="unknown rule"):
        violations(SERIES_8SIDE, UNIT, rules="N9")


def test_rules_fire_at_every_point_of_a_long_run_and_skip_missing_values() -> None:
    series = [-0.5] + [0.5] * 11
    assert RULES["N2"](series, UNIT).tolist() == [9, 10, 11]
    with_gap = [*SERIES_8SIDE[:4], math.nan, *SERIES_8SIDE[4:]]
    assert RULES["WE4"](with_gap, UNIT).tolist() == [9]
    assert RULES["WE1"]([0.0, 3.0, -3.0, 3.01], UNIT).tolist() == [3]  # on the limit is not beyond


def test_rules_refuse_time_weighted_charts() -> None:
    limits = fit_ewma(target=0.0, sigma=1.0)
    with pytest.raises(SpcError, match="correlated"):
        violations([0.0, 1.0], limits)


# --------------------------------------------------------------------------------------------------
# EWMA and CUSUM
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shifted() -> tuple[np.ndarray, np.ndarray]:
    """Reference data estimate mu0 and sigma; the monitored series wobbles by +/- 0.5 sigma around the
    mean and shifts by +1.5 sigma at index 30 (deterministic, so no chance false alarm before it)."""
    reference = np.random.default_rng(2024).normal(10.0, 1.0, 200)
    wobble = 0.5 * (-1.0) ** np.arange(60)
    monitored = np.where(np.arange(60) < 30, 10.0, 11.5) + wobble
    return reference, monitored


def test_ewma_detects_shift_after_it(shifted: tuple[np.ndarray, np.ndarray]) -> None:
    reference, monitored = shifted
    limits = fit_ewma(reference, lam=0.2, L=3.0)
    result = apply(limits, monitored)
    assert result.out_of_control, "EWMA missed a 1.5-sigma shift"
    assert 30 <= result.out_of_control[0] < 40
    # exact time-varying limits: sigma_1 = lambda * sigma_x, widening monotonically to the steady state
    sigma_x = limits.process_sigma
    assert sigma_x is not None
    assert result.sigma[0] == pytest.approx(0.2 * sigma_x)
    assert np.all(np.diff(result.sigma) > 0)
    assert result.sigma[-1] == pytest.approx(limits.sigma, rel=1e-6)
    assert result.bounds.ucl[0] == pytest.approx(limits.centre + 3 * 0.2 * sigma_x)
    z = limits.centre
    for i in range(3):
        z = 0.2 * monitored[i] + 0.8 * z
        assert result.values[i] == pytest.approx(z)


def test_cusum_detects_shift_after_it(shifted: tuple[np.ndarray, np.ndarray]) -> None:
    reference, monitored = shifted
    limits = fit_cusum(reference, k=0.5, h=5.0)
    result = apply(limits, monitored)
    assert result.out_of_control, "CUSUM missed a 1.5-sigma shift"
    first = result.out_of_control[0]
    assert 30 <= first < 40
    assert result.extra["shifted_mean"][first] == pytest.approx(11.5, abs=0.6)
    assert limits.ucl == pytest.approx(5.0 * limits.sigma) and limits.lcl == -limits.ucl


def test_cusum_hand_computed() -> None:
    limits = fit_cusum(target=0.0, sigma=1.0, k=0.5, h=4.0)
    result = apply(limits, [0.0, 1.0, 2.0, 1.0, 0.0, -3.0, -2.0])
    assert result.values.tolist() == [0.0, 0.5, 2.0, 2.5, 2.0, 0.0, 0.0]  # C+
    assert result.extra["c_minus"].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, 2.5, 4.0]
    assert result.out_of_control == ()  # C- = 4.0 is not > H = 4
    assert apply(limits, [0.0, 1.0, 2.0, 1.0, 0.0, -3.0, -2.5]).out_of_control == (6,)


# --------------------------------------------------------------------------------------------------
# Attributes charts with variable sizes (hand-computed limits)
# --------------------------------------------------------------------------------------------------


def test_p_chart_variable_sizes() -> None:
    defectives, sizes = [20, 45, 30, 80], [500, 1000, 800, 2000]
    limits = fit_p(defectives, sizes)
    assert limits.centre == pytest.approx(175 / 4300)
    result = apply(limits, defectives, sizes)
    assert result.values.tolist() == pytest.approx([0.04, 0.045, 0.0375, 0.04])
    assert result.bounds.lcl.tolist() == pytest.approx([0.014188, 0.021953, 0.019740, 0.027443], abs=1e-6)
    assert result.bounds.ucl.tolist() == pytest.approx([0.067207, 0.059443, 0.061655, 0.053952], abs=1e-6)
    assert result.out_of_control == ()
    # Phase II with other sizes: each subgroup gets its own limits
    later = apply(limits, [2, 60], [50, 1000])
    assert later.bounds.lcl[0] == 0.0  # clipped at zero for the small sample
    assert later.out_of_control == (1,)


def test_u_chart_variable_sizes() -> None:
    counts, units = [30, 70, 40, 100], [20, 50, 25, 40]
    limits = fit_u(counts, units)
    assert limits.centre == pytest.approx(240 / 135)
    result = apply(limits, counts, units)
    assert result.bounds.lcl.tolist() == pytest.approx([0.883351, 1.212092, 0.977778, 1.145322], abs=1e-6)
    assert result.bounds.ucl.tolist() == pytest.approx([2.672205, 2.343463, 2.577778, 2.410233], abs=1e-6)
    assert result.out_of_control == (3,)  # 100 / 40 = 2.5 > 2.410
    assert result.violations("we")[0].rule_id == "WE1"


def test_np_and_c_charts() -> None:
    np_limits = fit_np([4, 6, 5, 5], 100)
    assert np_limits.centre == pytest.approx(5.0)
    assert np_limits.ucl == pytest.approx(5 + 3 * math.sqrt(100 * 0.05 * 0.95))
    assert np_limits.lcl == 0.0
    c_limits = fit_c([8, 12, 9, 11])
    assert (c_limits.centre, c_limits.ucl) == (10.0, pytest.approx(10 + 3 * math.sqrt(10)))
    assert c_limits.lcl == pytest.approx(10 - 3 * math.sqrt(10))
    assert apply(c_limits, [10, 25]).out_of_control == (1,)
    with pytest.raises(SpcError, match="p chart"):
        fit_np([4, 6], [100, 120])
    with pytest.raises(SpcError, match="more nonconforming units than inspected"):
        fit_p([4, 60], [100, 50])


# --------------------------------------------------------------------------------------------------
# Variables charts, Phase I/II, JSON
# --------------------------------------------------------------------------------------------------


def test_imr_and_xbar_s_hand_computed() -> None:
    pair = fit_imr([1.0, 3.0, 2.0, 4.0, 3.0])
    sigma = 1.5 / (2 / math.sqrt(math.pi))
    assert pair.location.centre == pytest.approx(2.6)
    assert pair.location.ucl == pytest.approx(2.6 + 3 * sigma)
    assert pair.dispersion.centre == pytest.approx(1.5)
    assert pair.dispersion.ucl == pytest.approx(1.5 * (1 + 3 * factors(2).d3 / factors(2).d2))
    i_chart, mr_chart = apply(pair, [2.0, 9.0])
    assert i_chart.out_of_control == (1,) and math.isnan(mr_chart.values[0])

    data = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 1.5, 2.0]])
    xs = fit_xbar_s(data)
    sbar = float(np.mean(data.std(axis=1, ddof=1)))
    assert xs.dispersion.centre == pytest.approx(sbar)
    assert xs.location.process_sigma == pytest.approx(sbar / factors(3).c4)
    assert xs.location.ucl == pytest.approx(data.mean() + factors(3).A3 * sbar)
    assert xs.dispersion.ucl == pytest.approx(factors(3).B4 * sbar)


def test_phase1_iteration_is_opt_in() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(50.0, 1.0, (25, 4))
    data[7] += 6.0  # an assignable cause
    plain = fit_xbar_r(data)
    assert plain.location.excluded == ()
    iterated = fit_xbar_r(data, iterate=True)
    assert 7 in iterated.location.excluded
    assert iterated.location.reference_count == 25 - len(iterated.location.excluded)
    keep = np.setdiff1d(np.arange(25), iterated.location.excluded)
    again = fit_xbar_r(data[keep])
    assert iterated.location.centre == pytest.approx(again.location.centre)
    assert iterated.location.ucl == pytest.approx(again.location.ucl)


def test_frozen_limits_round_trip_through_json() -> None:
    rng = np.random.default_rng(5)
    data = rng.normal(10.0, 0.2, (20, 5))
    data[3, 1] = np.nan
    pair = fit_xbar_r(data, iterate=True, nan_policy="omit")
    assert pair.location.dropped == (3,)
    text = pair.to_json()
    json.loads(text)
    reloaded = ChartPair.from_json(text)
    assert reloaded == pair
    assert reloaded.location.to_json() == pair.location.to_json()
    new = rng.normal(10.1, 0.2, (10, 5))
    a, b = apply(pair, new), apply(reloaded, new)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.values, y.values) and x.out_of_control == y.out_of_control
    others = [
        fit_p([3, 4, 5], [100, 120, 90]),
        fit_u([3, 4, 5], [1.0, 1.5, 2.0]),
        fit_ewma(rng.normal(0, 1, 30), lam=0.1, L=2.7),
        fit_cusum(rng.normal(0, 1, 30), k=0.5, h=4.0),
        fit_imr(rng.normal(0, 1, 30)).dispersion,
    ]
    for limits in others:
        assert ChartLimits.from_json(limits.to_json()) == limits
        assert ChartLimits.from_dict(json.loads(json.dumps(limits.to_dict()))) == limits


def test_stored_limits_are_validated() -> None:
    good = ChartLimits.symmetric(1.0, 0.5).to_dict()
    with pytest.raises(LimitsFormatError, match="schema"):
        ChartLimits.from_dict({**good, "schema": "other/1"})
    with pytest.raises(LimitsFormatError, match="sigma"):
        ChartLimits.from_dict({k: v for k, v in good.items() if k != "sigma"})
    with pytest.raises(LimitsFormatError, match="finite number"):
        ChartLimits.from_dict({**good, "ucl": "high"})
    with pytest.raises(LimitsFormatError, match="unknown field"):
        ChartLimits.from_dict({**good, "colour": "red"})
    with pytest.raises(LimitsFormatError, match="invalid JSON"):
        ChartLimits.from_json("{")


def test_result_to_dict_is_json_ready() -> None:
    pair = fit_imr([1.0, 3.0, 2.0, 4.0, 3.0])
    _i, mr = apply(pair, [2.0, math.nan, 3.0], nan_policy="omit")
    out = mr.to_dict(rules="nelson")
    text = json.dumps(out, allow_nan=False)
    assert out["values"][0] is None and out["dropped"] == [1]
    assert out["violations"] == [] and "limits" in json.loads(text)


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------


def test_missing_values_raise_or_are_dropped() -> None:
    data = np.arange(30, dtype=float).reshape(10, 3) % 7
    data[4, 2] = np.nan
    with pytest.raises(MissingValueError, match="nan_policy='omit'"):
        fit_xbar_r(data)
    pair = fit_xbar_r(data, nan_policy="omit")
    assert pair.location.dropped == (4,) and pair.location.reference_count == 9
    without = fit_xbar_r(np.delete(data, 4, axis=0))
    assert pair.location.centre == pytest.approx(without.location.centre, rel=1e-15)
    assert pair.location.ucl == pytest.approx(without.location.ucl, rel=1e-15)
    assert pair.dispersion.ucl == pytest.approx(without.dispersion.ucl, rel=1e-15)
    xbar, _r = apply(pair, data, nan_policy="omit")
    assert math.isnan(xbar.values[4]) and xbar.dropped == (4,)
    with pytest.raises(MissingValueError):
        apply(pair, data)
    with pytest.raises(MissingValueError):
        fit_p([1, np.nan], [10, 10])


def test_subgroup_size_one_points_to_imr() -> None:
    with pytest.raises(SubgroupSizeError, match="I-MR"):
        fit_xbar_r([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(SubgroupSizeError, match="I-MR"):
        fit_xbar_r([[1.0], [2.0], [3.0]])
    with pytest.raises(SubgroupSizeError, match="I-MR"):
        fit_xbar_s(np.ones((5, 1)))
    with pytest.raises(SubgroupSizeError, match=r"same size|different sizes"):
        fit_xbar_r([[1.0, 2.0], [1.0, 2.0, 3.0]])


def test_constant_data_is_zero_sigma() -> None:
    with pytest.raises(ZeroSigmaError, match="gauge resolution"):
        fit_xbar_r(np.full((10, 5), 3.0))
    with pytest.raises(ZeroSigmaError):
        fit_imr([2.0] * 10)
    with pytest.raises(ZeroSigmaError, match="no nonconforming"):
        fit_p([0, 0, 0], [50, 50, 50])
    with pytest.raises(ZeroSigmaError):
        fit_c([0, 0, 0])
    with pytest.raises(ZeroSigmaError):
        capability(np.full((10, 5), 3.0), lsl=2.0, usl=4.0)


def test_too_few_subgroups() -> None:
    with pytest.raises(InsufficientDataError, match="at least 2"):
        fit_xbar_r([[1.0, 2.0, 3.0]])
    with pytest.raises(InsufficientDataError, match="at least 3"):
        fit_imr([1.0, 2.0])
    with pytest.raises(InsufficientDataError):
        fit_u([3], [2.0])
    with pytest.raises(SpcError, match="size 5"):
        apply(fit_xbar_r(np.random.default_rng(0).normal(size=(10, 5))), np.ones((3, 4)))
    assert issubclass(SpcError, ValueError)


def test_capability() -> None:
    rng = np.random.default_rng(11)
    data = rng.normal(10.0, 1.0, (30, 5))
    cap = capability(data, lsl=4.0, usl=17.0, sigma_within=1.0)
    mean = data.mean()
    assert cap.cp == pytest.approx(13 / 6)
    assert cap.cpk == pytest.approx(min(17 - mean, mean - 4) / 3)
    assert cap.pp == pytest.approx(13 / (6 * data.std(ddof=1)))
    upper_only = capability(data, usl=17.0)
    assert upper_only.cp is None and upper_only.pp is None and upper_only.cpl is None
    assert upper_only.cpk == upper_only.cpu
    ranges = data.max(axis=1) - data.min(axis=1)
    assert upper_only.sigma_within == pytest.approx(ranges.mean() / factors(5).d2)
    by_sd = capability(data, lsl=4.0, within="sd")
    assert by_sd.cpk == by_sd.cpl and by_sd.cp is None
    assert by_sd.sigma_within == pytest.approx(data.std(axis=1, ddof=1).mean() / factors(5).c4)
    individuals = capability(data[:, 0], lsl=4.0, usl=17.0)
    assert individuals.within_method == "MRbar/d2"
    with pytest.raises(SpecificationError):
        capability(data)
    with pytest.raises(SpecificationError):
        capability(data, lsl=5.0, usl=5.0)
