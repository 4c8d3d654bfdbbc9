"""Time-weighted charts: EWMA and tabular CUSUM (Montgomery ch. 9).

Both watch a series of observations x_i: individual values (subgroup size 1) or subgroup means. The
in-control mean mu0 (``target``) and sigma come from a reference range (mean; MR-bar / d2 for
individuals, R-bar / d2 for subgroups, whose means then have sigma / sqrt n) or are given.

EWMA: z_i = lambda x_i + (1 - lambda) z_{i-1}, z_0 = mu0, with the exact time-varying limits
``mu0 -/+ L sigma sqrt(lambda / (2 - lambda) * (1 - (1 - lambda)^(2 i)))``; they widen towards the
steady-state limits stored in :class:`ChartLimits`. Defaults lambda = 0.2, L = 3 (Montgomery's table
9.11 suggests lambda 0.05-0.25 with L about 2.7-3).

CUSUM (tabular, k and h in sigma units): with K = k sigma and H = h sigma,
C+_i = max(0, x_i - (mu0 + K) + C+_{i-1}), C-_i = max(0, (mu0 - K) - x_i + C-_{i-1}), C+_0 = C-_0 = 0;
a signal is C+_i > H or C-_i > H. Defaults k = 0.5, h = 5 (in-control ARL about 465, detects a
1-sigma shift in about 10 points). The chart is drawn around 0 with C+ above and -C- below, so the
stored limits are -H and +H.

A missing observation (with ``nan_policy="omit"``) leaves the statistic unchanged at that point.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from . import _input
from ._input import FloatArray
from .constants import ConstantsMode, factors
from .errors import SpcError, ZeroSigmaError
from .limits import ChartLimits
from .variables import moving_ranges, subgroup_stats

__all__ = ["cusum_statistics", "ewma_statistics", "fit_cusum", "fit_ewma"]


def observations(data: ArrayLike, subgroup_size: float | None, chart: str, nan_policy: str) -> FloatArray:
    """The observations a time-weighted chart watches: individuals, or the means of subgroups."""
    arr = np.asarray(data, dtype=np.float64)
    size = 1 if subgroup_size is None else int(subgroup_size)
    if size > 1:
        sub, _dropped = _input.subgroups(arr, chart, nan_policy)
        if sub.shape[1] != size:
            raise SpcError(
                f"{chart}: the limits are for subgroups of size {size}, the data have size {sub.shape[1]}; "
                "fit new limits for this subgroup size"
            )
        means, _ranges, _sds = subgroup_stats(sub)
        return means
    x, _dropped = _input.individuals(arr, chart, nan_policy)
    return x


def _reference(
    reference: ArrayLike | None,
    target: float | None,
    sigma: float | None,
    subgroup_size: int,
    chart: str,
    constants: ConstantsMode,
    nan_policy: str,
) -> tuple[float, float, float, int, str, int]:
    """mu0, process sigma, sigma of the observations, subgroup size, method, reference count."""
    if sigma is not None and not (sigma > 0 and math.isfinite(sigma)):
        raise SpcError(f"{chart}: sigma must be a positive number, got {sigma!r}")
    if target is not None and not math.isfinite(target):
        raise SpcError(f"{chart}: target must be a finite number, got {target!r}")
    if reference is None:
        if target is None or sigma is None:
            raise SpcError(f"{chart}: give reference data, or both target (mu0) and sigma")
        n = int(subgroup_size)
        if n < 1:
            raise SpcError(f"{chart}: subgroup_size must be >= 1, got {subgroup_size!r}")
        return float(target), float(sigma), float(sigma) / math.sqrt(n), n, "given", 0
    arr = np.asarray(reference, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] > 1:
        data, _dropped = _input.subgroups(arr, chart, nan_policy)
        n = data.shape[1]
        means, ranges, _sds = subgroup_stats(data)
        ok = np.isfinite(means)
        _input.require_count(int(ok.sum()), _input.MIN_SUBGROUPS, chart)
        mu0 = float(means[ok].mean()) if target is None else float(target)
        if sigma is None:
            rbar = float(ranges[ok].mean())
            if rbar <= 0:
                raise ZeroSigmaError(f"{chart}: every subgroup is constant (R-bar = 0); give sigma explicitly")
            sigma = rbar / factors(n, constants).d2
            method = "Rbar/d2"
        else:
            method = "given sigma"
        return mu0, float(sigma), float(sigma) / math.sqrt(n), n, method, int(ok.sum())
    x, _dropped = _input.individuals(arr, chart, nan_policy)
    ok = np.isfinite(x)
    _input.require_count(int(ok.sum()), _input.MIN_INDIVIDUALS, chart, "observations")
    mu0 = float(x[ok].mean()) if target is None else float(target)
    if sigma is None:
        mr = moving_ranges(x)
        _input.require_count(int(np.isfinite(mr).sum()), 2, chart, "moving ranges (pairs of consecutive observations)")
        mrbar = float(np.nanmean(mr))
        if mrbar <= 0:
            raise ZeroSigmaError(f"{chart}: the reference data are constant (MR-bar = 0); give sigma explicitly")
        sigma = mrbar / factors(2, constants).d2
        method = "MRbar/d2"
    else:
        method = "given sigma"
    return mu0, float(sigma), float(sigma), 1, method, int(ok.sum())


def fit_ewma(
    reference: ArrayLike | None = None,
    *,
    lam: float = 0.2,
    L: float = 3.0,
    target: float | None = None,
    sigma: float | None = None,
    subgroup_size: int = 1,
    constants: ConstantsMode = "exact",
    nan_policy: str = "raise",
) -> ChartLimits:
    """EWMA limits. ``reference``: 1-D individuals or 2-D subgroups (or None with target and sigma).

    ``sigma`` is the process sigma of individual values; for subgroups the chart watches the means,
    whose sigma is sigma / sqrt(n). ``subgroup_size`` is only used when ``reference`` is None.
    """
    chart = "EWMA chart"
    if not 0.0 < lam <= 1.0:
        raise SpcError(f"{chart}: lambda must be in (0, 1], got {lam!r} (0.05-0.25 is usual)")
    L = _input.check_k(L)
    mu0, process, sigma_obs, n, method, count = _reference(
        reference, target, sigma, subgroup_size, chart, constants, nan_policy
    )
    return ChartLimits.build(
        "ewma",
        mu0,
        sigma_obs * math.sqrt(lam / (2.0 - lam)),
        L,
        n=float(n),
        process_sigma=process,
        target=mu0,
        ewma_lambda=float(lam),
        method=method,
        constants=constants,
        reference_count=count,
    )


def fit_cusum(
    reference: ArrayLike | None = None,
    *,
    k: float = 0.5,
    h: float = 5.0,
    target: float | None = None,
    sigma: float | None = None,
    subgroup_size: int = 1,
    constants: ConstantsMode = "exact",
    nan_policy: str = "raise",
) -> ChartLimits:
    """Tabular CUSUM parameters; ``k`` (reference value) and ``h`` (decision interval) in sigma units."""
    chart = "CUSUM chart"
    if not (k >= 0 and math.isfinite(k)):
        raise SpcError(f"{chart}: k must be >= 0 (half the shift to detect, in sigmas), got {k!r}")
    h = _input.check_k(h)
    mu0, process, sigma_obs, n, method, count = _reference(
        reference, target, sigma, subgroup_size, chart, constants, nan_policy
    )
    return ChartLimits.build(
        "cusum",
        0.0,
        sigma_obs,
        h,
        n=float(n),
        process_sigma=process,
        target=mu0,
        cusum_k=float(k),
        method=method,
        constants=constants,
        reference_count=count,
    )


def ewma_statistics(x: FloatArray, limits: ChartLimits) -> tuple[FloatArray, FloatArray]:
    """EWMA values and the sigma of each (exact, time-varying); NaN observations leave z unchanged."""
    lam = limits.ewma_lambda
    if lam is None or limits.target is None:
        raise SpcError("EWMA limits lack lambda or target; re-create them with fit_ewma")
    z = np.full(x.shape, np.nan)
    sig = np.full(x.shape, np.nan)
    prev = limits.target
    step = 0
    for i, value in enumerate(x.tolist()):
        if math.isfinite(value):
            step += 1
            prev = lam * value + (1.0 - lam) * prev
            z[i] = prev
            sig[i] = limits.sigma * math.sqrt(1.0 - (1.0 - lam) ** (2 * step))
    return z, sig


def cusum_statistics(x: FloatArray, limits: ChartLimits) -> dict[str, FloatArray]:
    """C+, C-, the run counters N+ and N- and the estimated shifted mean at each point."""
    if limits.cusum_k is None or limits.target is None:
        raise SpcError("CUSUM limits lack k or target; re-create them with fit_cusum")
    mu0 = limits.target
    big_k = limits.cusum_k * limits.sigma
    hi = np.full(x.shape, np.nan)
    lo = np.full(x.shape, np.nan)
    n_hi = np.full(x.shape, np.nan)
    n_lo = np.full(x.shape, np.nan)
    c_plus = c_minus = 0.0
    run_plus = run_minus = 0
    for i, value in enumerate(x.tolist()):
        if math.isfinite(value):
            c_plus = max(0.0, value - (mu0 + big_k) + c_plus)
            c_minus = max(0.0, (mu0 - big_k) - value + c_minus)
            run_plus = run_plus + 1 if c_plus > 0 else 0
            run_minus = run_minus + 1 if c_minus > 0 else 0
            hi[i], lo[i], n_hi[i], n_lo[i] = c_plus, c_minus, run_plus, run_minus
    with np.errstate(divide="ignore", invalid="ignore"):
        up = mu0 + big_k + hi / n_hi
        down = mu0 - big_k - lo / n_lo
    h = limits.ucl
    shift = np.where(hi > h, up, np.where(lo > h, down, np.nan))
    return {"c_plus": hi, "c_minus": lo, "n_plus": n_hi, "n_minus": n_lo, "shifted_mean": shift}
