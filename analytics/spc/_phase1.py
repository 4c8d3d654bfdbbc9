"""Phase I estimation loop shared by the charts (not public API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from .errors import InsufficientDataError

T = TypeVar("T")
BoolArray = NDArray[np.bool_]


def estimate_limits(
    usable: BoolArray,
    estimate: Callable[[BoolArray], T],
    beyond: Callable[[T, BoolArray], BoolArray],
    *,
    iterate: bool,
    max_iterations: int,
) -> tuple[T, tuple[int, ...]]:
    """Estimate limits from the usable subgroups; optionally drop out-of-control ones and re-estimate.

    ``beyond(limits, mask)`` marks the subgroups (among ``mask``) outside the control limits. With
    ``iterate`` the out-of-control subgroups are excluded and the limits re-estimated until none is
    left outside or ``max_iterations`` re-estimations have been made. Returns the limits and the
    0-based indices of the excluded subgroups.
    """
    mask = usable.copy()
    result = estimate(mask)
    if not iterate:
        return result, ()
    if max_iterations < 1:
        raise InsufficientDataError(f"max_iterations must be >= 1, got {max_iterations}")
    for _ in range(max_iterations):
        out = beyond(result, mask) & mask
        if not out.any():
            break
        mask = mask & ~out
        try:
            result = estimate(mask)
        except InsufficientDataError as exc:
            raise InsufficientDataError(
                f"{exc} (after excluding out-of-control subgroups "
                f"{', '.join(str(int(i)) for i in np.flatnonzero(usable & ~mask))}); the reference data are "
                "not in control: find and remove the assignable causes, or choose another reference range"
            ) from exc
    return result, tuple(int(i) for i in np.flatnonzero(usable & ~mask))
