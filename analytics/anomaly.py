"""Anomaly detectors trained on normal operation only, each with a control limit from a false-alarm target.

Every detector maps a feature matrix to a *normalised* score: 1.0 is the control limit, so ``score > 1``
is an alarm whatever the detector. Limits come from theory where it is exact enough (PCA T² from the F
distribution, Q from Jackson-Mudholkar, robust distance from chi²) and from the empirical quantile of the
training scores otherwise (isolation forest). ``far`` is the target false-alarm rate per scored row.

- ``pca``: PCA on standardised features; T² in the retained space, Q (SPE) in the residual; score = max of
  both ratios to their limits. Components kept to explain ``variance`` of the training data.
- ``mcd``: robust Mahalanobis distance with the Minimum Covariance Determinant (outliers in the training data
  do not inflate the limits).
- ``iforest``: isolation forest; limit = training-score quantile.
- ``zmax``: largest absolute z-score over features (a multivariate Shewhart chart with Bonferroni limits);
  robust to drifting or collinear sensors because each feature stands alone.
- ``forecast``: for row streams (no cycle column, window 1): each signal predicted one row ahead from the last
  ``lags`` rows of all signals, score = trailing mean over ``score_window`` rows of the largest residual; fitted
  by :func:`analytics.forecast.fit_forecast` through :func:`analytics.model.train`, not by :func:`fit_detector`
  (it needs the rows in time order, not a feature matrix).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats  # type: ignore[import-untyped]
from sklearn.covariance import MinCovDet
from sklearn.ensemble import IsolationForest

from .errors import DataError

__all__ = ["AnomalyConfig", "Detector", "fit_detector"]

Array = np.ndarray[Any, np.dtype[np.float64]]
Method = Literal["pca", "mcd", "iforest", "zmax", "forecast"]


class AnomalyConfig(BaseModel):
    """Detector choice and its false-alarm target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method = "pca"
    far: float = Field(default=0.01, gt=0.0, lt=0.5, description="target false-alarm rate per scored row")
    variance: float = Field(default=0.9, gt=0.0, le=1.0,
                            description="pca: share of variance the retained components explain")
    limit: float | None = Field(default=None, gt=0.0,
                                description="override the limit (in the method's raw score units)")
    lags: int = Field(default=5, ge=1, description="forecast: rows of history (of every signal) the forecaster sees")
    score_window: int = Field(default=10, ge=1, description="forecast: trailing rows averaged in the residual score")
    seed: int = 0
    #: Floor each feature's scale at the resolution of its signal (see :func:`fit_detector`).
    resolution_floor: bool = True
    #: ``theory``: the limits above. ``loo``: also score each training row with a detector fitted on the others
    #: and widen the limit to the ``far`` quantile of a log-normal fitted to those scores. Theory assumes many
    #: rows; with a few dozen (a live model learnt in minutes) it is far too tight, and leave-one-out shows by
    #: how much. Never narrows the theoretical limit.
    calibration: Literal["theory", "loo"] = "theory"


class Detector:
    """A fitted detector: standardisation + method state + raw-score limit(s)."""

    def __init__(self, config: AnomalyConfig, mean: Array, scale: Array, keep: np.ndarray[Any, Any]) -> None:
        self.config = config
        self.mean = mean
        self.scale = scale
        self.keep = keep  # features that vary in the training data (constant ones carry no information)
        self.state: dict[str, Any] = {}

    def _z(self, x: Array) -> Array:
        return (x[:, self.keep] - self.mean) / self.scale

    def _score(self, x: Array) -> Array:
        z = self._z(np.asarray(x, dtype=np.float64))
        m = self.config.method
        st = self.state
        if m == "pca":
            p: Array = st["components"]
            t = z @ p.T
            t2 = ((t * t) / st["eigenvalues"]).sum(axis=1)
            resid = z - t @ p
            q = (resid * resid).sum(axis=1)
            out: Array = np.maximum(t2 / st["t2_limit"], q / st["q_limit"] if st["q_limit"] > 0 else 0.0)
            return out
        if m == "mcd":
            d = z - st["location"]
            d2 = np.einsum("ij,jk,ik->i", d, st["precision"], d)
            return np.asarray(d2 / st["limit"], dtype=np.float64)
        if m == "iforest":
            raw = -st["forest"].score_samples(z)
            return np.asarray(raw / st["limit"], dtype=np.float64)
        return np.asarray(np.abs(z).max(axis=1) / st["limit"], dtype=np.float64)

    def score(self, x: Array) -> Array:
        """Normalised anomaly score per row (alarm when > 1)."""
        return np.asarray(self._score(x) / self.state.get("widen", 1.0), dtype=np.float64)

    def contributions(self, x: Array) -> Array:
        """Per-feature share (of the kept features) of the squared standardised deviation; rows sum to 1."""
        z2 = self._z(np.asarray(x, dtype=np.float64)) ** 2
        tot = z2.sum(axis=1, keepdims=True)
        return np.asarray(z2 / np.where(tot > 0, tot, 1.0), dtype=np.float64)


def _q_limit(residual_eigs: Array, alpha: float) -> float:
    """Jackson-Mudholkar limit of the squared prediction error."""
    th1, th2, th3 = (float(np.sum(residual_eigs**k)) for k in (1, 2, 3))
    if th1 <= 0 or th2 <= 0:
        return 0.0
    h0 = 1.0 - 2.0 * th1 * th3 / (3.0 * th2 * th2)
    if h0 <= 0:
        return float(th1 * stats.chi2.ppf(1 - alpha, 1))
    ca = float(stats.norm.ppf(1 - alpha))
    inner = ca * np.sqrt(2 * th2 * h0 * h0) / th1 + 1 + th2 * h0 * (h0 - 1) / (th1 * th1)
    return float(th1 * inner ** (1.0 / h0))


def fit_detector(x: Array, config: AnomalyConfig, floor: Array | None = None) -> Detector:
    """Fit on normal rows only. Constant features are left out (listed in ``keep``); all constant is an error.

    ``floor`` (per feature, in its units) is the smallest scale a feature may get: a quantised signal (a Modbus
    register in 0.01 K steps) can sit on one level through a short training run, and its tiny spread would
    otherwise turn the first one-step change into a score in the thousands.
    """
    if config.method == "forecast":
        raise ValueError("method 'forecast' works on row streams in time order: train it with analytics.model.train "
                         "or analytics.forecast.fit_forecast")
    x = np.asarray(x, dtype=np.float64)
    if config.calibration == "loo" and config.limit is None:
        return _calibrated(x, config, floor)
    return _fit(x, config, floor)


def _fit(x: Array, config: AnomalyConfig, floor: Array | None) -> Detector:
    n, p = x.shape
    if n < max(10, p + 2):
        raise DataError(f"{n} normal rows for {p} features is too few to learn normal operation; give at least "
                        f"{max(10, p + 2)} rows (more cycles or fewer features)")
    if not np.isfinite(x).all():
        raise DataError("training features contain NaN or inf; clean or drop those rows first")
    mean = x.mean(axis=0)
    scale = x.std(axis=0, ddof=1)
    keep = scale > 1e-12 * np.maximum(1.0, np.abs(mean))
    if not keep.any():
        raise DataError("every feature is constant in the training data; the signals never moved: check the sensors")
    if floor is not None and config.resolution_floor:
        scale = np.maximum(scale, np.asarray(floor, dtype=np.float64))
    det = Detector(config, mean[keep], scale[keep], keep)
    z = det._z(x)
    p = int(keep.sum())
    alpha = config.far
    if config.method == "pca":
        _u, s, vt = np.linalg.svd(z, full_matrices=False)
        eig = s * s / (n - 1)
        share = np.cumsum(eig) / eig.sum()
        k = min(int(np.searchsorted(share, config.variance - 1e-12)) + 1, p)
        f = float(stats.f.ppf(1 - alpha, k, n - k)) if n > k else float("inf")
        det.state = {
            "components": vt[:k],
            "eigenvalues": eig[:k],
            "t2_limit": config.limit or k * (n - 1) * (n + 1) / (n * (n - k)) * f,
            "q_limit": config.limit or _q_limit(eig[k:], alpha),
        }
    elif config.method == "mcd":
        mcd = MinCovDet(random_state=config.seed).fit(z)
        det.state = {"location": mcd.location_, "precision": mcd.get_precision(),
                     "limit": config.limit or float(stats.chi2.ppf(1 - alpha, p))}
    elif config.method == "iforest":
        forest = IsolationForest(n_estimators=200, random_state=config.seed).fit(z)
        raw = -forest.score_samples(z)
        det.state = {"forest": forest, "limit": config.limit or float(np.quantile(raw, 1 - alpha))}
    else:
        det.state = {"limit": config.limit or float(stats.norm.ppf(1 - alpha / (2 * p)))}
    return det


#: Phase I trims at most this share of the training rows: more than that is not a few upsets but the data.
MAX_TRIMMED = 0.2


def _calibrated(x: Array, config: AnomalyConfig, floor: Array | None) -> Detector:
    """Leave-one-out calibration with a Phase I clean-up, as for a control chart: training rows whose held-out
    score is far beyond the others (a start-up transient, a stalled sensor) are left out and the detector is
    refitted; then the limit is widened to the ``far`` quantile of a log-normal fitted to the held-out scores."""
    inner = config.model_copy(update={"calibration": "theory"})
    z = float(stats.norm.ppf(1 - config.far))
    logs = np.log(_held_out(x, inner, floor))
    centre = float(np.median(logs))
    spread = 1.4826 * float(np.median(np.abs(logs - centre))) or float(logs.std(ddof=1))
    n, p = x.shape
    room = min(int(MAX_TRIMMED * n), n - 1 - max(10, p + 2))  # what is left must still allow leave-one-out
    order = np.argsort(logs)[::-1]
    cut = centre + float(stats.norm.ppf(1 - config.far / 10)) * spread  # gross upsets only, not the tail
    outliers = [int(i) for i in order[: max(room, 0)] if logs[i] > cut]
    if outliers:
        x = np.delete(x, outliers, axis=0)
        logs = np.log(_held_out(x, inner, floor))
    det = _fit(x, inner, floor)
    det.state["widen"] = max(1.0, float(np.exp(logs.mean() + z * logs.std(ddof=1))))
    det.state["trimmed_rows"] = sorted(outliers)
    return det


def _held_out(x: Array, config: AnomalyConfig, floor: Array | None) -> Array:
    try:
        scores = [_fit(np.delete(x, i, axis=0), config, floor).score(x[i:i + 1])[0] for i in range(x.shape[0])]
    except DataError as exc:
        raise DataError(f"leave-one-out calibration needs one row more than fitting: {exc}") from None
    return np.asarray(np.maximum(np.array(scores), 1e-12), dtype=np.float64)
