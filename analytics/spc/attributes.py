"""Attributes charts: p, np, c and u (Phase I estimation).

* p: fraction nonconforming p_i = d_i / n_i; centre p-bar = sum d / sum n (pooled); limits
  p-bar -/+ k sqrt(p-bar (1 - p-bar) / n_i), per subgroup when sizes vary, clipped to [0, 1].
* np: number nonconforming for a constant size n; n p-bar -/+ k sqrt(n p-bar (1 - p-bar)).
* c: defects per subgroup (constant inspection unit); c-bar -/+ k sqrt(c-bar).
* u: defects per unit u_i = c_i / n_i; u-bar = sum c / sum n; u-bar -/+ k sqrt(u-bar / n_i).

Lower limits below 0 are set to 0. The scalar limits stored for p and u are those at the average
reference size; :func:`analytics.spc.apply` computes each subgroup's own limits from its size.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from numpy.typing import ArrayLike

from . import _input
from ._input import BoolArray, FloatArray
from ._phase1 import estimate_limits
from .errors import SpcError, ZeroSigmaError
from .limits import ChartLimits

__all__ = ["fit_c", "fit_np", "fit_p", "fit_u"]


def _beyond_sized(values: FloatArray, limits: ChartLimits, sizes: FloatArray | None) -> BoolArray:
    b = limits.bounds(sizes)
    return (values > b.ucl) | (values < b.lcl)


def _finish(limits: ChartLimits, excluded: tuple[int, ...]) -> ChartLimits:
    return replace(limits, excluded=excluded)


def _no_variation(chart: str, what: str) -> ZeroSigmaError:
    return ZeroSigmaError(
        f"{chart}: {what}, so sigma and the limits would be 0. Use a longer reference period or larger "
        "samples so that some nonconformities are observed, or chart a continuous measurement instead"
    )


def fit_p(
    defectives: ArrayLike,
    sizes: ArrayLike | float,
    *,
    k: float = 3.0,
    iterate: bool = False,
    max_iterations: int = 10,
    nan_policy: str = "raise",
) -> ChartLimits:
    """Phase I p chart from nonconforming counts and sample sizes (sizes may vary per subgroup)."""
    name = "p chart"
    k = _input.check_k(k)
    d, n, dropped = _input.counts_and_sizes(
        defectives, sizes, name, nan_policy, sizes_required=True, bounded_by_size=True
    )
    assert n is not None
    p = d / n
    usable = np.isfinite(p)

    def estimate(mask: BoolArray) -> ChartLimits:
        _input.require_count(int(mask.sum()), _input.MIN_SUBGROUPS, name)
        pbar = float(d[mask].sum() / n[mask].sum())
        if pbar <= 0.0 or pbar >= 1.0:
            what = "no nonconforming units in the reference data" if pbar <= 0 else "every unit is nonconforming"
            raise _no_variation(name, f"{what} (p-bar = {pbar:g})")
        nbar = float(n[mask].mean())
        return ChartLimits.build(
            "p",
            pbar,
            math.sqrt(pbar * (1 - pbar) / nbar),
            k,
            n=nbar,
            method="pooled p-bar",
            reference_count=int(mask.sum()),
            dropped=dropped,
        )

    limits, excluded = estimate_limits(
        usable,
        estimate,
        lambda lim, _m: _beyond_sized(p, lim, n),
        iterate=iterate,
        max_iterations=max_iterations,
    )
    return _finish(limits, excluded)


def fit_np(
    defectives: ArrayLike,
    size: float,
    *,
    k: float = 3.0,
    iterate: bool = False,
    max_iterations: int = 10,
    nan_policy: str = "raise",
) -> ChartLimits:
    """Phase I np chart; ``size`` is the constant sample size (for varying sizes use :func:`fit_p`)."""
    name = "np chart"
    k = _input.check_k(k)
    sizes_arr = np.asarray(size, dtype=np.float64)
    if sizes_arr.ndim != 0:
        unique = np.unique(sizes_arr[np.isfinite(sizes_arr)])
        if unique.size != 1:
            raise SpcError(f"{name} needs one constant sample size; for varying sizes use the p chart (fit_p)")
        sizes_arr = unique[0]
    n_const = float(sizes_arr)
    d, _n, dropped = _input.counts_and_sizes(
        defectives, n_const, name, nan_policy, sizes_required=True, bounded_by_size=True
    )
    usable = np.isfinite(d)

    def estimate(mask: BoolArray) -> ChartLimits:
        _input.require_count(int(mask.sum()), _input.MIN_SUBGROUPS, name)
        pbar = float(d[mask].mean() / n_const)
        if pbar <= 0.0 or pbar >= 1.0:
            what = "no nonconforming units in the reference data" if pbar <= 0 else "every unit is nonconforming"
            raise _no_variation(name, f"{what} (p-bar = {pbar:g})")
        return ChartLimits.build(
            "np",
            n_const * pbar,
            math.sqrt(n_const * pbar * (1 - pbar)),
            k,
            n=n_const,
            method="n p-bar",
            reference_count=int(mask.sum()),
            dropped=dropped,
        )

    limits, excluded = estimate_limits(
        usable,
        estimate,
        lambda lim, _m: _beyond_sized(d, lim, None),
        iterate=iterate,
        max_iterations=max_iterations,
    )
    return _finish(limits, excluded)


def fit_c(
    counts: ArrayLike,
    *,
    k: float = 3.0,
    iterate: bool = False,
    max_iterations: int = 10,
    nan_policy: str = "raise",
) -> ChartLimits:
    """Phase I c chart from defect counts per (constant) inspection unit."""
    name = "c chart"
    k = _input.check_k(k)
    c, _n, dropped = _input.counts_and_sizes(
        counts, None, name, nan_policy, sizes_required=False, bounded_by_size=False
    )
    usable = np.isfinite(c)

    def estimate(mask: BoolArray) -> ChartLimits:
        _input.require_count(int(mask.sum()), _input.MIN_SUBGROUPS, name)
        cbar = float(c[mask].mean())
        if cbar <= 0.0:
            raise _no_variation(name, "no defects in the reference data (c-bar = 0)")
        return ChartLimits.build(
            "c", cbar, math.sqrt(cbar), k, method="c-bar", reference_count=int(mask.sum()), dropped=dropped
        )

    limits, excluded = estimate_limits(
        usable,
        estimate,
        lambda lim, _m: _beyond_sized(c, lim, None),
        iterate=iterate,
        max_iterations=max_iterations,
    )
    return _finish(limits, excluded)


def fit_u(
    counts: ArrayLike,
    sizes: ArrayLike | float,
    *,
    k: float = 3.0,
    iterate: bool = False,
    max_iterations: int = 10,
    nan_policy: str = "raise",
) -> ChartLimits:
    """Phase I u chart from defect counts and the number of inspection units per subgroup (may vary)."""
    name = "u chart"
    k = _input.check_k(k)
    c, n, dropped = _input.counts_and_sizes(counts, sizes, name, nan_policy, sizes_required=True, bounded_by_size=False)
    assert n is not None
    u = c / n
    usable = np.isfinite(u)

    def estimate(mask: BoolArray) -> ChartLimits:
        _input.require_count(int(mask.sum()), _input.MIN_SUBGROUPS, name)
        ubar = float(c[mask].sum() / n[mask].sum())
        if ubar <= 0.0:
            raise _no_variation(name, "no defects in the reference data (u-bar = 0)")
        nbar = float(n[mask].mean())
        return ChartLimits.build(
            "u",
            ubar,
            math.sqrt(ubar / nbar),
            k,
            n=nbar,
            method="pooled u-bar",
            reference_count=int(mask.sum()),
            dropped=dropped,
        )

    limits, excluded = estimate_limits(
        usable,
        estimate,
        lambda lim, _m: _beyond_sized(u, lim, n),
        iterate=iterate,
        max_iterations=max_iterations,
    )
    return _finish(limits, excluded)
