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
    """Cycles (or windows) until the HI trend crosses ``failure_level``; 0 if the trend is already below it,
    None without a clear decline.

    Uses the linear trend of the last ``horizon`` values, not the last value alone: one noisy cycle must
    not announce an end of life, and a flat, noisy health must not give a finite life (the slope has to be
    negative by more than twice its standard error).
    """
    recent = np.asarray(hi, dtype=np.float64)[-horizon:]
    recent = recent[np.isfinite(recent)]
    if recent.size < 3:  # too short for a trend: the last value is all there is
        return 0.0 if recent.size and recent[-1] <= failure_level else None
    t = np.arange(recent.size, dtype=np.float64)
    slope, intercept = np.polyfit(t, recent, 1)
    now = intercept + slope * t[-1]
    if now <= failure_level:
        return 0.0
    residual = recent - (intercept + slope * t)
    spread = float(np.sqrt((residual @ residual) / max(1, recent.size - 2)))
    stderr = spread / float(np.sqrt(((t - t.mean()) ** 2).sum()))
    if slope >= 0 or slope > -2.0 * stderr:
        return None
    return float(max(0.0, (failure_level - now) / slope))
