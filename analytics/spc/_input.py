"""Input coercion and validation shared by the charts (not public API).

Missing values: every entry point takes ``nan_policy``:

* ``"raise"`` (default): any NaN or infinite value raises :class:`MissingValueError`, naming where.
* ``"omit"``: the affected subgroup (a whole row of subgroup data, one observation of individual data,
  one count/size pair of attribute data) is dropped from the estimation and marked as dropped in the
  result; results keep the input's length with NaN at dropped positions, so indices stay aligned with
  the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InsufficientDataError, MissingValueError, SpcError, SubgroupSizeError

NanPolicy = Literal["raise", "omit"]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Fewest subgroups (or observations for individuals) from which Phase I limits are estimated.
#: This is the arithmetic minimum; Montgomery recommends 20-25 subgroups for trustworthy limits.
MIN_SUBGROUPS = 2
#: Fewest individual observations for an I-MR chart (two moving ranges).
MIN_INDIVIDUALS = 3


def check_k(k: float) -> float:
    """A positive, finite limit width (in sigmas)."""
    if not (k > 0 and np.isfinite(k)):
        raise SpcError(f"k (the limit width in sigmas) must be a positive number, got {k!r}")
    return float(k)


def check_policy(nan_policy: str) -> NanPolicy:
    if nan_policy == "raise":
        return "raise"
    if nan_policy == "omit":
        return "omit"
    raise SpcError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")


def _as_float(data: ArrayLike, what: str) -> FloatArray:
    try:
        return np.asarray(data, dtype=np.float64)
    except ValueError as exc:  # ragged lists, strings
        if "inhomogeneous" in str(exc) or "sequence" in str(exc):
            raise SubgroupSizeError(
                f"{what}: subgroups have different sizes; these charts need equal subgroup sizes. "
                "Pad missing measurements with NaN and pass nan_policy='omit' to drop those subgroups, "
                "or chart subgroup means with the I-MR chart"
            ) from exc
        raise SpcError(f"{what}: data must be numeric ({exc})") from exc
    except TypeError as exc:
        raise SpcError(f"{what}: data must be numeric ({exc})") from exc


def _first_bad(bad: BoolArray) -> str:
    where = np.argwhere(bad)[0]
    return ", ".join(str(int(i)) for i in where)


def subgroups(data: ArrayLike, chart: str, nan_policy: str) -> tuple[FloatArray, tuple[int, ...]]:
    """A 2-D (subgroups x measurements) float array with size >= 2, and the dropped row indices."""
    policy = check_policy(nan_policy)
    arr = _as_float(data, chart)
    if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1):
        raise SubgroupSizeError(
            f"{chart} needs subgroups of at least 2 measurements (a 2-D array: one row per subgroup); "
            "for individual measurements (subgroup size 1) use the I-MR chart (fit_imr)"
        )
    if arr.ndim != 2:
        raise SpcError(f"{chart}: expected a 2-D array (one row per subgroup), got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    dropped: tuple[int, ...] = ()
    if bad.any():
        if policy == "raise":
            raise MissingValueError(
                f"{chart}: missing or non-finite value at subgroup {_first_bad(bad).replace(', ', ', position ')} "
                "(0-based); remove or correct it, or pass nan_policy='omit' to drop the affected subgroups"
            )
        rows = bad.any(axis=1)
        arr = arr.copy()
        arr[rows, :] = np.nan
        dropped = tuple(int(i) for i in np.flatnonzero(rows))
    return arr, dropped


def individuals(data: ArrayLike, chart: str, nan_policy: str) -> tuple[FloatArray, tuple[int, ...]]:
    """A 1-D float array of individual observations and the dropped indices."""
    policy = check_policy(nan_policy)
    arr = _as_float(data, chart)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise SpcError(
            f"{chart}: expected a 1-D array of individual observations, got shape {arr.shape}; "
            "for subgroups use the X-bar/R or X-bar/S chart"
        )
    bad = ~np.isfinite(arr)
    dropped: tuple[int, ...] = ()
    if bad.any():
        if policy == "raise":
            raise MissingValueError(
                f"{chart}: missing or non-finite value at index {_first_bad(bad)} (0-based); remove or correct "
                "it, or pass nan_policy='omit' to drop it"
            )
        arr = np.where(bad, np.nan, arr)
        dropped = tuple(int(i) for i in np.flatnonzero(bad))
    return arr, dropped


def counts_and_sizes(
    counts: ArrayLike,
    sizes: ArrayLike | float | None,
    chart: str,
    nan_policy: str,
    *,
    sizes_required: bool,
    bounded_by_size: bool,
) -> tuple[FloatArray, FloatArray | None, tuple[int, ...]]:
    """Non-negative counts (and positive sizes, broadcast to the counts) with dropped indices."""
    policy = check_policy(nan_policy)
    c = _as_float(counts, chart)
    if c.ndim != 1:
        raise SpcError(f"{chart}: counts must be a 1-D array (one count per subgroup), got shape {c.shape}")
    n: FloatArray | None = None
    if sizes is None:
        if sizes_required:
            raise SpcError(f"{chart}: sample sizes are required (one per subgroup, or one number for all)")
    else:
        n = _as_float(sizes, chart)
        if n.ndim == 0:
            n = np.full(c.shape, float(n))
        if n.shape != c.shape:
            raise SpcError(f"{chart}: {c.size} counts but {n.size} sample sizes; give one size per subgroup")
    bad = ~np.isfinite(c) if n is None else ~(np.isfinite(c) & np.isfinite(n))
    dropped: tuple[int, ...] = ()
    if bad.any():
        if policy == "raise":
            raise MissingValueError(
                f"{chart}: missing or non-finite count or size at index {_first_bad(bad)} (0-based); correct it, "
                "or pass nan_policy='omit' to drop that subgroup"
            )
        c = np.where(bad, np.nan, c)
        if n is not None:
            n = np.where(bad, np.nan, n)
        dropped = tuple(int(i) for i in np.flatnonzero(bad))
    ok = ~bad
    if (c[ok] < 0).any():
        raise SpcError(f"{chart}: counts must be >= 0 (index {_first_bad(ok & (c < 0))})")
    if n is not None:
        if (n[ok] <= 0).any():
            raise SpcError(f"{chart}: sample sizes must be > 0 (index {_first_bad(ok & (n <= 0))})")
        if bounded_by_size and (c[ok] > n[ok]).any():
            raise SpcError(
                f"{chart}: more nonconforming units than inspected at index {_first_bad(ok & (c > n))}; "
                "for defects (several per unit) use the c or u chart"
            )
    return c, n, dropped


def require_count(count: int, minimum: int, chart: str, what: str = "subgroups") -> None:
    if count < minimum:
        raise InsufficientDataError(
            f"{chart}: {count} usable {what}, at least {minimum} needed to estimate limits; "
            f"collect more data (20-25 {what} are recommended for Phase I)"
        )


def dropped_union(*groups: Sequence[int]) -> tuple[int, ...]:
    return tuple(sorted({int(i) for g in groups for i in g}))
