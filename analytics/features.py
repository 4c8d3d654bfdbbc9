"""Per-cycle / per-window features: statistics, segment means, aligned profiles, band energies, envelope.

Every feature has a stable name ``<signal>.<feature>`` so a saved model can check that scoring computes
the same columns it was trained on. Inputs are lists of 1-D arrays (one per cycle, lengths may differ).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import signal as sps  # type: ignore[import-untyped]

from .errors import DataError

__all__ = ["STATISTICS", "TIMING", "FeatureConfig", "cycle_features", "feature_names", "in_signal_units",
           "matrix_features"]

Array = np.ndarray[Any, np.dtype[np.float64]]
TIMING = ("t_max", "t_min", "t_rise", "t_drop", "rise", "drop")
STATISTICS = ("mean", "std", "min", "max", "rms", "peak", "crest", "kurtosis", "skew", "slope")


class FeatureConfig(BaseModel):
    """Which features to compute. Defaults suit slow process signals (1 Hz to 100 Hz, cycles of seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statistics: list[str] = Field(default_factory=lambda: list(STATISTICS))
    segments: int = Field(default=0, ge=0, description="means of N equal parts of the cycle (cycle-aligned features)")
    segment_diffs: bool = Field(default=False, description="differences between consecutive segment means (the "
                                "step from one part of the cycle to the next; needs segments >= 2)")
    timing: bool = Field(default=False, description="when in the cycle (0..1) the signal peaks, bottoms, rises and "
                         "drops fastest, and the size of that rise and drop (transients that move in time)")
    profile_signals: list[str] = Field(default_factory=list, description="signals whose whole aligned profile "
                                       "(resampled to profile_points) and its differences become features")
    profile_points: int = Field(default=60, ge=2)
    bands: int = Field(default=0, ge=0, description="relative energies of N equal frequency bands (Welch)")
    envelope: bool = Field(default=False, description="mean/std/kurtosis of the Hilbert envelope (bearing-type faults)")
    min_length: int = Field(default=2, ge=1, description="shorter cycles/windows are rejected")


def _stats(x: Array, wanted: Sequence[str]) -> list[Array]:
    """Statistics along the last axis of ``x`` (n, length), one array of n values per statistic."""
    n = x.shape[1]
    mean = x.mean(axis=1)
    d = x - mean[:, None]
    var = (d * d).mean(axis=1)
    sd = np.sqrt(var)
    safe = np.where(var > 0, var, 1.0)
    skew = np.where(var > 0, (d**3).mean(axis=1) / safe**1.5, 0.0)
    kurt = np.where(var > 0, (d**4).mean(axis=1) / safe**2 - 3.0, 0.0)
    rms = np.sqrt((x * x).mean(axis=1))
    peak = np.abs(x).max(axis=1)
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    slope = d @ t / float(np.dot(t, t)) if n > 1 else np.zeros_like(mean)
    values = {
        "mean": mean, "std": sd, "min": x.min(axis=1), "max": x.max(axis=1), "rms": rms, "peak": peak,
        "crest": np.where(rms > 0, peak / np.where(rms > 0, rms, 1.0), 0.0), "kurtosis": kurt, "skew": skew,
        "slope": slope,
    }
    return [values[k] for k in wanted]


def _timing(x: Array) -> Array:
    """(n, 6): positions (0..1) of the maximum, minimum, steepest rise and steepest drop; size of both steps."""
    n = x.shape[1]
    d = np.diff(x, axis=1) if n > 1 else np.zeros((x.shape[0], 1))
    span = max(n - 1, 1)
    rise, drop = d.argmax(axis=1), d.argmin(axis=1)
    rows = np.arange(x.shape[0])
    return np.stack([x.argmax(axis=1) / span, x.argmin(axis=1) / span, (rise + 0.5) / span, (drop + 0.5) / span,
                     d[rows, rise], d[rows, drop]], axis=1)


def _resample(x: Array, points: int) -> Array:
    if x.shape[1] == points:
        return x
    grid = np.linspace(0.0, x.shape[1] - 1.0, points)
    src = np.arange(x.shape[1], dtype=np.float64)
    return np.vstack([np.interp(grid, src, row) for row in x])


def _bands(x: Array, bands: int) -> list[Array]:
    _, pxx = sps.welch(x - x.mean(axis=1, keepdims=True), nperseg=min(256, x.shape[1]), axis=1)
    edges = np.linspace(0, pxx.shape[1], bands + 1).astype(int)
    total = pxx.sum(axis=1)
    total = np.where(total > 0, total, 1.0)
    return [pxx[:, a:b].sum(axis=1) / total for a, b in itertools.pairwise(edges)]


def _envelope(x: Array) -> list[Array]:
    env = np.abs(sps.hilbert(x - x.mean(axis=1, keepdims=True), axis=1))
    mean, sd, _min, _max, kurt = _stats(env, ["mean", "std", "min", "max", "kurtosis"])
    return [mean, sd, kurt]


#: Feature kinds (the part after the signal in :func:`feature_names`) measured in the signal's own units.
_IN_SIGNAL_UNITS = re.compile(r"^(mean|std|min|max|rms|peak|seg\d+|segdiff\d+|p\d+|d\d+)$")


def in_signal_units(kind: str) -> bool:
    """Whether a feature of this kind has its signal's units (so it can be no finer than the signal's step)."""
    return _IN_SIGNAL_UNITS.match(kind) is not None


def feature_names(signals: Sequence[str], config: FeatureConfig) -> list[str]:
    """Names of the columns :func:`cycle_features` returns, in order."""
    names: list[str] = []
    for s in signals:
        names += [f"{s}.{k}" for k in config.statistics]
        names += [f"{s}.seg{i}" for i in range(config.segments)]
        if config.segment_diffs:
            names += [f"{s}.segdiff{i}" for i in range(max(config.segments - 1, 0))]
        if config.timing:
            names += [f"{s}.{k}" for k in TIMING]
        if s in config.profile_signals:
            names += [f"{s}.p{i}" for i in range(config.profile_points)]
            names += [f"{s}.d{i}" for i in range(config.profile_points - 1)]
        names += [f"{s}.band{i}" for i in range(config.bands)]
        if config.envelope:
            names += [f"{s}.env_mean", f"{s}.env_std", f"{s}.env_kurtosis"]
    return names


def _one(x: Array, name: str, config: FeatureConfig) -> list[Array]:
    """Feature blocks (n, k) of one signal, in :func:`feature_names` order."""
    out = [np.stack(_stats(x, config.statistics), axis=1)] if config.statistics else []
    if config.segments:
        parts = np.array_split(np.arange(x.shape[1]), config.segments)
        starts = np.array([p[0] if p.size else x.shape[1] - 1 for p in parts])
        counts = np.array([max(p.size, 1) for p in parts], dtype=np.float64)
        sums = np.add.reduceat(x, starts, axis=1)
        empty = np.array([p.size == 0 for p in parts])
        seg = sums / counts
        if empty.any():
            seg[:, empty] = x[:, -1:]
        out.append(seg)
        if config.segment_diffs:
            out.append(np.diff(seg, axis=1))
    if config.timing:
        out.append(_timing(x))
    if name in config.profile_signals:
        prof = _resample(x, config.profile_points)
        out += [prof, np.diff(prof, axis=1)]
    if config.bands:
        out.append(np.stack(_bands(x, config.bands), axis=1))
    if config.envelope:
        out.append(np.stack(_envelope(x), axis=1))
    return out


def matrix_features(data: dict[str, Array], signals: Sequence[str], config: FeatureConfig) -> Array:
    """Features of equal-length cycles/windows: ``data[signal]`` is an (n, length) matrix. Vectorised."""
    unknown = set(config.statistics) - set(STATISTICS)
    if unknown:
        raise DataError(f"unknown statistics {sorted(unknown)}; choose from {list(STATISTICS)}")
    blocks: list[Array] = []
    for s in signals:
        x = np.asarray(data[s], dtype=np.float64)
        if x.ndim != 2 or x.shape[1] < config.min_length:
            raise DataError(f"signal {s!r}: windows of {x.shape[-1]} samples are shorter than min_length "
                            f"{config.min_length}; use longer cycles/windows or lower min_length")
        blocks += _one(x, s, config)
    return np.hstack(blocks) if blocks else np.empty((0, 0))


def cycle_features(cycles: Sequence[dict[str, Array]], signals: Sequence[str], config: FeatureConfig) -> Array:
    """Feature matrix, one row per cycle: ``cycles[i][signal]`` is that cycle's samples (lengths may differ)."""
    rows = []
    for i, cyc in enumerate(cycles):
        try:
            rows.append(matrix_features({s: np.asarray(cyc[s], dtype=np.float64)[None, :] for s in signals},
                                        signals, config)[0])
        except DataError as exc:
            raise DataError(f"cycle {i}: {exc}") from exc
    return np.vstack(rows) if rows else np.empty((0, len(feature_names(signals, config))))
