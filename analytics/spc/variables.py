"""Variables charts: X-bar/R, X-bar/S and I-MR (Phase I estimation and plotted statistics).

Limits are subgroup based (Montgomery ch. 6): sigma is estimated from the *within*-subgroup
variation, R-bar / d2 (the mean of the subgroup ranges, not the range of all data), S-bar / c4, or
MR-bar / d2(2) for individuals, and the limits are

* X-bar: x-double-bar -/+ A2 R-bar (= 3 sigma / sqrt n), or -/+ A3 S-bar;
* R: D3 R-bar, D4 R-bar; S: B3 S-bar, B4 S-bar;
* I: x-bar -/+ 3 MR-bar / d2; MR: 0, D4(2) MR-bar.

With ``k`` other than 3 the same sigmas are used with ``k`` in place of 3.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import ArrayLike

from . import _input
from ._input import BoolArray, FloatArray
from ._phase1 import estimate_limits
from .constants import ConstantsMode, factors
from .errors import ZeroSigmaError
from .limits import ChartLimits, ChartPair

__all__ = ["fit_imr", "fit_xbar_r", "fit_xbar_s", "moving_ranges", "subgroup_stats"]


def subgroup_stats(data: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Means, ranges and standard deviations (n - 1 divisor) of the rows (NaN rows give NaN)."""
    means = data.mean(axis=1)
    ranges = data.max(axis=1) - data.min(axis=1)
    sds = data.std(axis=1, ddof=1)
    return means, ranges, sds


def moving_ranges(x: FloatArray) -> FloatArray:
    """|x[i] - x[i-1]|, aligned with x (NaN at 0 and next to missing values)."""
    mr = np.full(x.shape, np.nan)
    mr[1:] = np.abs(np.diff(x))
    return mr


def _beyond(values: FloatArray, limits: ChartLimits) -> BoolArray:
    return (values > limits.ucl) | (values < limits.lcl)


def _zero_sigma(chart: str, what: str) -> ZeroSigmaError:
    return ZeroSigmaError(
        f"{chart}: {what} is 0 (every subgroup is constant), so sigma and the limits would be 0. Check the "
        "gauge resolution (values rounded too coarsely?) or that the right column was read; if the process "
        "is known, give its sigma with ChartLimits.symmetric(centre, sigma)"
    )


def _fit_xbar(
    subgroups: ArrayLike,
    spread: str,
    *,
    k: float,
    iterate: bool,
    max_iterations: int,
    constants: ConstantsMode,
    nan_policy: str,
) -> ChartPair:
    name = "X-bar/R chart" if spread == "r" else "X-bar/S chart"
    k = _input.check_k(k)
    data, dropped = _input.subgroups(subgroups, name, nan_policy)
    n = data.shape[1]
    f = factors(n, constants)
    means, ranges, sds = subgroup_stats(data)
    dispersion = ranges if spread == "r" else sds
    usable = np.isfinite(means)

    def estimate(mask: BoolArray) -> ChartPair:
        _input.require_count(int(mask.sum()), _input.MIN_SUBGROUPS, name)
        centre = float(means[mask].mean())
        dbar = float(dispersion[mask].mean())
        if dbar <= 0:
            raise _zero_sigma(name, "the mean subgroup range" if spread == "r" else "the mean subgroup sd")
        if spread == "r":
            sigma_x, sigma_d, process, method = f.A2 * dbar / 3, (f.D4 - 1) * dbar / 3, dbar / f.d2, "Rbar/d2"
        else:
            sigma_x, sigma_d, process, method = f.A3 * dbar / 3, (f.B4 - 1) * dbar / 3, dbar / f.c4, "Sbar/c4"
        meta = {
            "n": float(n),
            "process_sigma": process,
            "method": method,
            "constants": constants,
            "reference_count": int(mask.sum()),
            "dropped": dropped,
        }
        return ChartPair(
            ChartLimits.build("xbar", centre, sigma_x, k, **meta),
            ChartLimits.build(spread, dbar, sigma_d, k, **meta),
        )

    def beyond(pair: ChartPair, mask: BoolArray) -> BoolArray:
        return _beyond(means, pair.location) | _beyond(dispersion, pair.dispersion)

    pair, excluded = estimate_limits(usable, estimate, beyond, iterate=iterate, max_iterations=max_iterations)
    return ChartPair(replace(pair.location, excluded=excluded), replace(pair.dispersion, excluded=excluded))


def fit_xbar_r(
    subgroups: ArrayLike,
    *,
    k: float = 3.0,
    iterate: bool = False,
    max_iterations: int = 10,
    constants: ConstantsMode = "exact",
    nan_policy: str = "raise",
) -> ChartPair:
    """Phase I X-bar and R limits from reference subgroups (rows of a 2-D array, size >= 2).

    sigma = R-bar / d2 (mean of the subgroup ranges). ``iterate=True`` drops subgroups outside either
    chart's limits and re-estimates (at most ``max_iterations`` times); the dropped subgroups are listed
    in ``excluded``. ``constants="table"`` uses the printed 3-decimal factors (A2, D3, D4) as hand
    calculations do. Raises :class:`SubgroupSizeError` for size-1 data (use :func:`fit_imr`).
    """
    return _fit_xbar(
        subgroups,
        "r",
        k=k,
        iterate=iterate,
        max_iterations=max_iterations,
        constants=constants,
        nan_policy=nan_policy,
    )


def fit_xbar_s(
    subgroups: ArrayLike,
    *,
    k: float = 3.0,
    iterate: bool = False,
    max_iterations: int = 10,
    constants: ConstantsMode = "exact",
    nan_policy: str = "raise",
) -> ChartPair:
    """Phase I X-bar and S limits (sigma = S-bar / c4); preferred over X-bar/R for subgroups above ~10."""
    return _fit_xbar(
        subgroups,
        "s",
        k=k,
        iterate=iterate,
        max_iterations=max_iterations,
        constants=constants,
        nan_policy=nan_policy,
    )


def fit_imr(
    values: ArrayLike,
    *,
    k: float = 3.0,
    iterate: bool = False,
    max_iterations: int = 10,
    constants: ConstantsMode = "exact",
    nan_policy: str = "raise",
) -> ChartPair:
    """Phase I individuals and moving-range limits (sigma = MR-bar / d2(2), span-2 moving ranges).

    With ``nan_policy="omit"`` a missing observation is dropped and the moving ranges on either side of
    it are not formed (no range is taken across the gap). ``iterate=True`` drops observations outside
    the I limits or whose moving range is outside the MR limits.
    """
    name = "I-MR chart"
    k = _input.check_k(k)
    x, dropped = _input.individuals(values, name, nan_policy)
    f = factors(2, constants)
    usable = np.isfinite(x)

    def estimate(mask: BoolArray) -> ChartPair:
        _input.require_count(int(mask.sum()), _input.MIN_INDIVIDUALS, name, "observations")
        kept = np.where(mask, x, np.nan)
        mr = moving_ranges(kept)
        mr_ok = np.isfinite(mr)
        _input.require_count(int(mr_ok.sum()), 2, name, "moving ranges (pairs of consecutive observations)")
        mrbar = float(mr[mr_ok].mean())
        if mrbar <= 0:
            raise ZeroSigmaError(
                f"{name}: every moving range is 0 (constant data), so sigma and the limits would be 0. Check "
                "the gauge resolution or that the right signal was read; if the process sigma is known, use "
                "ChartLimits.symmetric(centre, sigma)"
            )
        sigma = mrbar / f.d2
        meta = {
            "n": 1.0,
            "process_sigma": sigma,
            "constants": constants,
            "reference_count": int(mask.sum()),
            "dropped": dropped,
        }
        return ChartPair(
            ChartLimits.build("i", float(x[mask].mean()), sigma, k, method="MRbar/d2", **meta),
            ChartLimits.build("mr", mrbar, (f.D4 - 1) * mrbar / 3, k, method="MRbar, span 2", **meta),
        )

    def beyond(pair: ChartPair, mask: BoolArray) -> BoolArray:
        mr = moving_ranges(np.where(mask, x, np.nan))
        return _beyond(x, pair.location) | _beyond(mr, pair.dispersion)

    pair, excluded = estimate_limits(usable, estimate, beyond, iterate=iterate, max_iterations=max_iterations)
    return ChartPair(replace(pair.location, excluded=excluded), replace(pair.dispersion, excluded=excluded))
