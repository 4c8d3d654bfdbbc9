"""Forecasting-residual detector for row streams: each signal predicted one row ahead from lagged rows of all.

Why: window statistics compared with a short normal stretch raise false alarms on slowly drifting signals
(temperatures) and need wide limits; a forecaster learns that a drifting signal follows its own recent past,
while a steady signal (flow) is predicted from its normal level and its relation to the others, so a
relation or level change leaves a residual that persists. A ridge regression on ``lags`` standardised rows
of every signal predicts each signal's next value; the score of a row is the largest, over signals, trailing
mean (``window`` rows) of the absolute residual in units of that signal's training residual spread,
normalised so that 1.0 is the ``1 - far`` quantile of the training rows' scores (the same convention as
:mod:`analytics.anomaly`: ``score > 1`` is an alarm). A linear model, because 400 training rows are too few
for a neural forecaster (an MLP one scored worse on SKAB).

Scoring is online: a row's score uses only that row and earlier ones; the first ``lags`` rows of a scored
block have no full history and reuse the first row as history.

Through the generic API it is anomaly method ``forecast`` (``AnomalyConfig(method="forecast", lags,
score_window)``, ``twinedge analytics train --method forecast``): :func:`analytics.model.train` fits it on the
contiguous stretches of normal rows, so the model is saved, loaded and scored like the other detectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import BaseModel, ConfigDict, Field
from sklearn.linear_model import Ridge

from .errors import DataError

__all__ = ["ForecastConfig", "ForecastDetector", "fit_forecast", "trailing_mean"]

Array = np.ndarray[Any, np.dtype[np.float64]]


class ForecastConfig(BaseModel):
    """Lags of the forecaster, trailing window of the residual score, ridge penalty, false-alarm target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lags: int = Field(default=5, ge=1, description="rows of history (of every signal) the forecaster sees")
    window: int = Field(default=10, ge=1, description="trailing rows averaged in the residual score")
    alpha: float = Field(default=1.0, gt=0.0, description="ridge penalty on the standardised lagged rows")
    far: float = Field(default=0.01, gt=0.0, lt=0.5, description="limit = (1 - far) quantile of training scores")


def trailing_mean(x: Array, window: int) -> Array:
    """Mean of each column over the last ``window`` rows (fewer at the start); row i uses rows <= i only."""
    if window <= 1:
        return x
    c = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), x]), axis=0)
    i = np.arange(x.shape[0])
    start = np.maximum(0, i - window + 1)
    return np.asarray((c[i + 1] - c[start]) / (i + 1 - start)[:, None], dtype=np.float64)


def _lagged(z: Array, lags: int) -> Array:
    """Row i -> rows i-lags .. i-1 of ``z`` flattened (the first row repeated before the start)."""
    pad = np.vstack([np.repeat(z[:1], lags, axis=0), z])
    win = sliding_window_view(pad, lags, axis=0)[: z.shape[0]]  # (n, p, lags): rows i .. i+lags-1 of pad
    return np.asarray(win.reshape(z.shape[0], -1), dtype=np.float64)


class ForecastDetector:
    """A fitted forecaster with its standardisation, residual spreads and score limit."""

    def __init__(self, config: ForecastConfig, mean: Array, scale: Array, model: Ridge, spread: Array) -> None:
        self.config = config
        self.mean = mean
        self.scale = scale
        self.model = model
        self.spread = spread
        self.limit = 1.0

    def residuals(self, x: Array) -> Array:
        """One-step residuals of every signal in units of its training residual spread (rows x signals)."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        res = z - self.model.predict(_lagged(z, self.config.lags))
        return np.asarray(res / self.spread, dtype=np.float64)

    def score(self, x: Array) -> Array:
        """Normalised score per row of a contiguous block of rows (alarm when > 1)."""
        raw = trailing_mean(np.abs(self.residuals(x)), self.config.window).max(axis=1)
        return np.asarray(raw / self.limit, dtype=np.float64)


def fit_forecast(x: Array | Sequence[Array], config: ForecastConfig, names: Sequence[str] | None = None
                 ) -> ForecastDetector:
    """Fit on normal rows (rows x signals, time order): one contiguous block, or a list of contiguous blocks
    (stretches between gaps or abnormal rows; history never crosses from one to the next). Blocks with no
    more than ``lags + window`` rows give no full-history row and are left out. ``names`` label errors."""
    blocks = [np.asarray(b, dtype=np.float64) for b in (x if isinstance(x, (list, tuple)) else [x])]
    p = blocks[0].shape[1]
    label = list(names) if names is not None else [str(j) for j in range(p)]
    burn = config.lags + config.window
    if any(not np.isfinite(b).all() for b in blocks):
        raise DataError("training rows contain NaN or inf; clean or drop those rows first")
    used = [b for b in blocks if b.shape[0] > burn]
    n = sum(b.shape[0] for b in used)
    if n < max(4 * burn, p * config.lags + 10):
        where = "" if len(blocks) == 1 else f" in contiguous stretches of more than {burn} rows"
        raise DataError(f"{n} normal rows{where} are too few for {p} signals x {config.lags} lags and a window of "
                        f"{config.window}; give at least {max(4 * burn, p * config.lags + 10)} rows or fewer lags")
    allx = np.vstack(used)
    mean = allx.mean(axis=0)
    scale = allx.std(axis=0, ddof=1)
    flat = scale <= 1e-12 * np.maximum(1.0, np.abs(mean))
    if flat.any():
        raise DataError(f"signals {[label[j] for j in np.flatnonzero(flat)]} are constant in the training rows; "
                        "remove them")
    zs = [(b - mean) / scale for b in used]
    lagged = [_lagged(z, config.lags) for z in zs]
    model = Ridge(alpha=config.alpha).fit(np.vstack([g[config.lags:] for g in lagged]),
                                          np.vstack([z[config.lags:] for z in zs]))
    res = np.vstack([(z - model.predict(g))[config.lags:] for z, g in zip(zs, lagged, strict=True)])
    spread = res.std(axis=0, ddof=1)
    det = ForecastDetector(config, mean, scale, model, np.where(spread > 1e-12, spread, 1.0))
    det.limit = float(np.quantile(np.concatenate([det.score(b)[burn:] for b in used]), 1.0 - config.far))
    return det
