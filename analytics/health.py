"""Health index and remaining useful life from the anomaly score trend.

Health index (HI) = 1 / (1 + score): 1.0 is textbook-normal, 0.5 is the alarm limit, towards 0 is worse.
Remaining useful life: a straight line through the last ``horizon`` HI values, extrapolated to the failure
level; ``None`` when health is not falling (no degradation trend, so no finite estimate is honest).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["health_index", "remaining_life"]

Array = np.ndarray[Any, np.dtype[np.float64]]


def health_index(score: Array) -> Array:
    """Map normalised anomaly scores (alarm at 1) to a health index in (0, 1]."""
    return np.asarray(1.0 / (1.0 + np.maximum(np.asarray(score, dtype=np.float64), 0.0)), dtype=np.float64)


def remaining_life(hi: Array, failure_level: float = 0.5, horizon: int = 20) -> float | None:
    """Cycles (or windows) until the HI trend crosses ``failure_level``; 0 if already below, None if no decline."""
    recent = np.asarray(hi, dtype=np.float64)[-horizon:]
    if recent.size == 0:
        return None
    if recent[-1] <= failure_level:
        return 0.0
    if recent.size < 3:
        return None
    t = np.arange(recent.size, dtype=np.float64)
    slope, intercept = np.polyfit(t, recent, 1)
    if slope >= 0:
        return None
    now = intercept + slope * t[-1]
    return float(max(0.0, (failure_level - now) / slope))
