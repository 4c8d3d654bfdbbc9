"""Phase II: apply frozen limits to data, and the chart result a dashboard draws.

:func:`apply` takes limits from a ``fit_*`` function (or reloaded from JSON) and new data, computes the
plotted statistic and returns a :class:`ChartResult` with the per-point values, centre, sigma, control
and zone limits, the points beyond the limits and, on request, the run-rule violations. The result's
arrays have one entry per input subgroup (NaN where a subgroup was dropped as missing, and at index 0
of a moving-range chart), so indices line up with the input.

Data per chart kind: ``xbar``/``r``/``s``: 2-D subgroups of the fitted size; ``i``/``mr``: 1-D
individuals; ``p``/``np``: nonconforming counts and ``sizes`` (per subgroup for p; for np the fitted
size); ``c``: defect counts; ``u``: defect counts and ``sizes`` (inspection units per subgroup);
``ewma``/``cusum``: individuals, or subgroups of the fitted size (the chart watches their means).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike

from . import _input
from ._input import BoolArray, FloatArray
from .errors import SpcError
from .limits import Bounds, ChartLimits, ChartPair
from .rules import RuleViolation, violations
from .timeweighted import cusum_statistics, ewma_statistics, observations
from .variables import moving_ranges, subgroup_stats

__all__ = ["ChartResult", "apply"]


def _json_list(values: FloatArray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).tolist()]


@dataclass(frozen=True, eq=False)
class ChartResult:
    """One chart applied to data: what to plot and what is out of control.

    ``values``: the plotted statistic per subgroup (for CUSUM: C+; ``extra["lower"]`` holds -C-).
    ``sigma``, ``bounds``: per-point sigma of the statistic and centre/limits/zone lines (constant for
    most charts; per subgroup for p and u with varying sizes; time-varying for EWMA).
    ``out_of_control``: 0-based indices beyond the control limits (for CUSUM: C+ > H or C- > H).
    ``dropped``: indices dropped as missing (``nan_policy="omit"``).
    """

    limits: ChartLimits
    values: FloatArray
    sigma: FloatArray
    bounds: Bounds
    out_of_control: tuple[int, ...]
    dropped: tuple[int, ...] = ()
    sizes: FloatArray | None = None
    extra: dict[str, FloatArray] = field(default_factory=dict)

    @property
    def chart(self) -> str:
        return self.limits.chart

    def violations(self, rules: str | Sequence[str] = "nelson") -> list[RuleViolation]:
        """Western Electric (``"we"``) or Nelson (``"nelson"``) rule violations on this chart's points."""
        if self.chart in {"ewma", "cusum"}:
            raise SpcError(
                f"run rules do not apply to {self.chart.upper()} statistics (successive points are "
                "correlated); use result.out_of_control"
            )
        return violations(self.values, self.bounds, rules)

    def to_dict(self, rules: str | Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-ready dict (missing values as null); with ``rules``, the rule violations too."""
        b = self.bounds
        out: dict[str, Any] = {
            "chart": self.chart,
            "limits": self.limits.to_dict(),
            "values": _json_list(self.values),
            "sigma": _json_list(self.sigma),
            "centre": _json_list(b.centre),
            "lcl": _json_list(b.lcl),
            "ucl": _json_list(b.ucl),
            "lcl_1sigma": _json_list(b.lcl_1sigma),
            "ucl_1sigma": _json_list(b.ucl_1sigma),
            "lcl_2sigma": _json_list(b.lcl_2sigma),
            "ucl_2sigma": _json_list(b.ucl_2sigma),
            "out_of_control": list(self.out_of_control),
            "dropped": list(self.dropped),
            "sizes": None if self.sizes is None else _json_list(self.sizes),
            "extra": {key: _json_list(value) for key, value in self.extra.items()},
        }
        if rules is not None:
            out["violations"] = [v.to_dict() for v in self.violations(rules)]
        return out


def _full(bounds: Bounds, size: int) -> Bounds:
    def f(a: FloatArray) -> FloatArray:
        return np.array(np.broadcast_to(np.asarray(a, dtype=np.float64), (size,)))

    return Bounds(
        f(bounds.centre),
        f(bounds.lcl),
        f(bounds.ucl),
        f(bounds.lcl_1sigma),
        f(bounds.ucl_1sigma),
        f(bounds.lcl_2sigma),
        f(bounds.ucl_2sigma),
    )


def _result(
    limits: ChartLimits,
    values: FloatArray,
    dropped: tuple[int, ...],
    sizes: FloatArray | None = None,
    sigma: FloatArray | None = None,
    bounds: Bounds | None = None,
    extra: dict[str, FloatArray] | None = None,
    signal: BoolArray | None = None,
) -> ChartResult:
    m = values.size
    b = _full(bounds if bounds is not None else limits.bounds(sizes), m)
    sig = np.array(np.broadcast_to(limits.sigma if sigma is None else sigma, (m,)), dtype=np.float64)
    if sizes is not None and limits.chart in {"p", "u"}:
        sig = limits.sigma_at(sizes)
    if signal is None:
        with np.errstate(invalid="ignore"):
            signal = (values > b.ucl) | (values < b.lcl)
    return ChartResult(
        limits=limits,
        values=values,
        sigma=sig,
        bounds=b,
        out_of_control=tuple(int(i) for i in np.flatnonzero(signal)),
        dropped=dropped,
        sizes=sizes,
        extra=extra or {},
    )


def _subgroup_data(limits: ChartLimits, data: ArrayLike, nan_policy: str) -> tuple[FloatArray, tuple[int, ...]]:
    name = {"xbar": "X-bar chart", "r": "R chart", "s": "S chart"}[limits.chart]
    arr, dropped = _input.subgroups(data, name, nan_policy)
    if limits.n is not None and arr.shape[1] != int(limits.n):
        raise SpcError(
            f"{name}: the limits are for subgroups of size {int(limits.n)}, the data have size {arr.shape[1]}; "
            "fit new Phase I limits for this subgroup size"
        )
    return arr, dropped


def _apply_one(limits: ChartLimits, data: ArrayLike, sizes: ArrayLike | float | None, nan_policy: str) -> ChartResult:
    chart = limits.chart
    if chart in {"xbar", "r", "s"}:
        arr, dropped = _subgroup_data(limits, data, nan_policy)
        means, ranges, sds = subgroup_stats(arr)
        return _result(limits, {"xbar": means, "r": ranges, "s": sds}[chart], dropped)
    if chart in {"i", "mr"}:
        x, dropped = _input.individuals(data, "I-MR chart", nan_policy)
        return _result(limits, x if chart == "i" else moving_ranges(x), dropped)
    if chart in {"p", "u"}:
        counts, n, dropped = _input.counts_and_sizes(
            data, sizes, f"{chart} chart", nan_policy, sizes_required=True, bounded_by_size=chart == "p"
        )
        assert n is not None
        return _result(limits, counts / n, dropped, sizes=n)
    if chart == "np":
        if sizes is not None and np.any(np.asarray(sizes, dtype=np.float64) != limits.n):
            raise SpcError(f"np chart: the limits are for samples of {limits.n}; for other sizes use the p chart")
        counts, _n, dropped = _input.counts_and_sizes(
            data, limits.n, "np chart", nan_policy, sizes_required=True, bounded_by_size=True
        )
        return _result(limits, counts, dropped)
    if chart == "c":
        counts, _n, dropped = _input.counts_and_sizes(
            data, None, "c chart", nan_policy, sizes_required=False, bounded_by_size=False
        )
        return _result(limits, counts, dropped)
    if chart == "ewma":
        x = observations(data, limits.n, "EWMA chart", nan_policy)
        z, sig = ewma_statistics(x, limits)
        c = limits.centre
        bounds = Bounds(
            np.full(x.shape, c), c - limits.k * sig, c + limits.k * sig, c - sig, c + sig, c - 2 * sig, c + 2 * sig
        )
        dropped = tuple(int(i) for i in np.flatnonzero(~np.isfinite(x)))
        return _result(limits, z, dropped, sigma=sig, bounds=bounds, extra={"observations": x})
    if chart == "cusum":
        x = observations(data, limits.n, "CUSUM chart", nan_policy)
        stats = cusum_statistics(x, limits)
        with np.errstate(invalid="ignore"):
            signal = (stats["c_plus"] > limits.ucl) | (stats["c_minus"] > limits.ucl)
        return _result(
            limits,
            stats["c_plus"],
            tuple(int(i) for i in np.flatnonzero(~np.isfinite(x))),
            extra={"lower": -stats["c_minus"], **stats, "observations": x},
            signal=signal,
        )
    raise SpcError(f"unknown chart kind {chart!r}")  # pragma: no cover (ChartLimits validates kinds)


@overload
def apply(
    limits: ChartLimits, data: ArrayLike, sizes: ArrayLike | float | None = None, *, nan_policy: str = "raise"
) -> ChartResult: ...


@overload
def apply(
    limits: ChartPair, data: ArrayLike, sizes: ArrayLike | float | None = None, *, nan_policy: str = "raise"
) -> tuple[ChartResult, ChartResult]: ...


def apply(
    limits: ChartLimits | ChartPair,
    data: ArrayLike,
    sizes: ArrayLike | float | None = None,
    *,
    nan_policy: str = "raise",
) -> ChartResult | tuple[ChartResult, ChartResult]:
    """Apply frozen limits to data (Phase II, or the reference data themselves to inspect Phase I).

    A :class:`ChartPair` gives a (location, dispersion) pair of results. Missing values raise
    :class:`MissingValueError` unless ``nan_policy="omit"``.
    """
    if isinstance(limits, ChartPair):
        return (
            _apply_one(limits.location, data, sizes, nan_policy),
            _apply_one(limits.dispersion, data, sizes, nan_policy),
        )
    return _apply_one(limits, data, sizes, nan_policy)
