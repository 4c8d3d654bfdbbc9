"""SKAB v0.9 outlier detection under the pinned protocol.

Protocol: each of the 34 runs in ``valve1/``, ``valve2/``, ``other/``: rows 1-400 train a model on that run,
the remaining rows are scored; point-wise ``anomaly`` labels pooled over all test points; F1 = TP / (TP +
(FP + FN) / 2), FAR and MAR in %.

Method (generic API, no SKAB-specific code in the model): every run gets its own detector trained on its
rows 1-400 (standardised on them) that scores the rest online (trailing windows may reach back into the
training rows). Which detector, and where its alarm limit sits, is decided by **nested leave-one-run-out**,
so no run's labels ever influence its own predictions:

- a grid of 120 configurations fixed before the first run (``GRID``): trailing-window mean of each signal
  over ``w`` rows (w in 1, 5, 10, 20, 30) x detector (``zmax``, ``pca`` T²/Q, ``mcd``) x drifting-signal
  exclusion (off / on) x online score smoothing (none, trailing median of 10 or 30 scores = a k-of-n
  persistence rule, EWMA with lambda 0.1);
- for the held-out run, each configuration's limit is the 90 % quantile of its scores on the normal
  (``anomaly`` = 0) test points of the *other* 33 runs: a false-alarm target of 10 %, fixed in advance;
- the configuration with the best pooled F1 on the other 33 runs (at that limit) scores the held-out run.

A label-free figure is computed beside it (``label_free``): window-10 means, drift exclusion, ``zmax``, limit
from a 10 % false-alarm target on the separate ``anomaly-free/`` recording only (no labels used at all).
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal as sps  # type: ignore[import-untyped]

from analytics.anomaly import AnomalyConfig, Method
from analytics.errors import DatasetError
from analytics.features import FeatureConfig
from analytics.model import TrainConfig, train
from analytics.samples import SampleConfig
from analytics.table import Roles, Table, read_csv

from ._metrics import skab_metrics

__all__ = ["GRID", "evaluate", "load_runs", "nested_loro", "post_process"]

SIGNALS = ["Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure", "Temperature", "Thermocouple",
           "Voltage", "Volume Flow RateRMS"]
TRAIN_ROWS = 400
FAR_TARGET = 0.10  # fixed in advance, below the goal's 13.5 %
WINDOWS = (1, 5, 10, 20, 30)
METHODS: tuple[Method, ...] = ("zmax", "pca", "mcd")
POST = ("none", "median10", "median30", "ewma0.1")  # online smoothing / persistence of the score series
GRID: list[tuple[int, Method, bool, str]] = list(itertools.product(WINDOWS, METHODS, (False, True), POST))
CALIBRATION_RUN = 1150  # rows per pseudo-run cut from anomaly-free (about the median SKAB run length)

Array = np.ndarray[Any, Any]


def _base(data_dir: Path) -> Path:
    root = Path(data_dir)
    return root / "data" if (root / "data").is_dir() else root


def load_runs(data_dir: Path) -> list[tuple[str, Table]]:
    """The 34 labelled runs, in a stable order (folder, then run number)."""
    base = _base(data_dir)
    files = [f for sub in ("valve1", "valve2", "other") for f in sorted((base / sub).glob("*.csv"),
                                                                          key=lambda p: int(p.stem))]
    if not files:
        raise DatasetError(f"{data_dir}: no SKAB runs (expected data/valve1/*.csv ...); pass ../shared/datasets/skab")
    return [(f"{f.parent.name}/{f.stem}", read_csv(f, delimiter=";")) for f in files]


def _config(window: int, method: Method, drift: bool, limit: float | None = None) -> TrainConfig:
    return TrainConfig(
        task="anomaly",
        samples=SampleConfig(window=window, features=FeatureConfig(statistics=["mean"])),
        anomaly=AnomalyConfig(method=method, far=0.01, limit=limit),
        exclude_drifting=drift,
    )


def _slice(table: Table, rows: slice) -> Table:
    return {k: v[rows] for k, v in table.items()}


def post_process(score: Array, kind: str) -> Array:
    """Online smoothing of a score series: each value uses only the scores up to it (trailing)."""
    if kind == "none":
        return score
    if kind.startswith("median"):
        m = int(kind[6:])
        padded = np.concatenate([np.full(m - 1, np.nan), score])
        return np.asarray(np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, m), axis=1))
    lam = float(kind[4:])  # "ewma<lambda>": y[i] = lam * x[i] + (1 - lam) * y[i-1], y[-1] = x[0]
    out, _ = sps.lfilter([lam], [1.0, lam - 1.0], score, zi=[(1.0 - lam) * score[0]])
    return np.asarray(out)


def _full_scores(run: Table, config: TrainConfig) -> tuple[Array, Array]:
    """(row ids, scores) of every window of a run, from a detector trained on its rows before TRAIN_ROWS."""
    with warnings.catch_warnings():  # MCD on quantised signals (flow rate in whole l/min) warns; limits still hold
        warnings.simplefilter("ignore", RuntimeWarning)
        model = train(_slice(run, slice(0, TRAIN_ROWS)), Roles(signals=SIGNALS), config)
    res = model.score({k: v for k, v in run.items() if k in SIGNALS})
    assert res.score is not None
    return np.asarray(res.ids), np.asarray(res.score)


def _scores(run: Table, config: TrainConfig, post: str = "none") -> Array:
    """Scores of rows TRAIN_ROWS.. of a run (smoothed online with ``post``)."""
    ids, score = _full_scores(run, config)
    return post_process(score, post)[ids >= TRAIN_ROWS]


def nested_loro(scores: dict[int, list[Array]], truths: list[Array]) -> tuple[list[Array], list[int], list[float]]:
    """Nested leave-one-run-out: per held-out run, limit and configuration from the other runs only.
    ``scores[c][r]``: configuration c's scores on run r's test rows. Returns predictions, chosen config, limit.
    Limit = (1 - FAR_TARGET) quantile of the other runs' normal-point scores; config = best pooled F1 there."""
    n = len(truths)
    run_of = np.concatenate([np.full(t.size, j) for j, t in enumerate(truths)])
    truth = np.concatenate(truths).astype(bool)
    best = [(-1.0, -1, 0.0)] * n  # (F1 on the other runs, config, limit) per held-out run
    for c, sc in scores.items():
        allsc = np.concatenate(sc)
        for r in range(n):
            lim = float(np.quantile(allsc[(run_of != r) & ~truth], 1.0 - FAR_TARGET))
            alarm = (allsc > lim) & (run_of != r)
            tp = int((alarm & truth).sum())
            fp = int((alarm & ~truth).sum())
            fn = int((~alarm & truth & (run_of != r)).sum())
            f1 = tp / (tp + (fp + fn) / 2) if tp + fp + fn else 0.0
            if f1 > best[r][0]:
                best[r] = (f1, c, lim)
    preds = [scores[c][r] > lim for r, (_f, c, lim) in enumerate(best)]
    return preds, [c for _f, c, _l in best], [lim for _f, _c, lim in best]


def calibrate_label_free(data_dir: Path, config: TrainConfig) -> float:
    """Score limit giving FAR_TARGET on the anomaly-free recording (pseudo-runs of the protocol's shape)."""
    free = read_csv(_base(data_dir) / "anomaly-free" / "anomaly-free.csv", delimiter=";")
    n = len(free[SIGNALS[0]])
    held = [_scores(_slice(free, slice(a, a + CALIBRATION_RUN)), config)
            for a in range(0, n - CALIBRATION_RUN + 1, CALIBRATION_RUN)]
    return float(np.quantile(np.concatenate(held), 1.0 - FAR_TARGET))


def evaluate(data_dir: Path, progress: Callable[[str], None] | None = None,
             grid: list[tuple[int, Method, bool, str]] | None = None) -> dict[str, Any]:
    """Run the pinned protocol; returns the metrics plus per-run details for reports. ``grid`` replaces GRID
    (quick tests); ``chosen`` counts how often the inner loop picked each configuration."""
    grid = GRID if grid is None else grid
    runs = load_runs(data_dir)
    truths = [run["anomaly"][TRAIN_ROWS:].astype(int) for _, run in runs]
    scores: dict[int, list[Array]] = {}
    detectors = list(dict.fromkeys(g[:3] for g in grid))
    for d, (w, method, drift) in enumerate(detectors):
        full = [_full_scores(run, _config(w, method, drift)) for _, run in runs]
        for c, g in enumerate(grid):
            if g[:3] == (w, method, drift):
                scores[c] = [post_process(sc, g[3])[ids >= TRAIN_ROWS] for ids, sc in full]
        if progress:
            progress(f"skab: detector {d + 1}/{len(detectors)} (window {w}, {method}, drift exclusion {drift})")
    preds, chosen, limits = nested_loro(scores, truths)
    metrics = skab_metrics(np.concatenate(preds), np.concatenate(truths))
    picks = Counter(chosen)
    if progress:
        progress("skab: configurations chosen by nested leave-one-run-out: " + ", ".join(
            f"{grid[c]} x{k}" for c, k in picks.most_common()))
    free_cfg = _config(10, "zmax", True, limit=1.0)  # limit 1: raw max |z|, comparable across runs
    free_lim = calibrate_label_free(data_dir, free_cfg)
    free_scores = [_scores(run, free_cfg) for _, run in runs]
    label_free = skab_metrics(np.concatenate([s > free_lim for s in free_scores]), np.concatenate(truths))
    details = [{"run": name, "score": scores[c][r] / lim, "truth": truths[r], "config": grid[c]}
               for r, ((name, _), c, lim) in enumerate(zip(runs, chosen, limits, strict=True))]
    if progress:
        progress(f"skab: label-free (anomaly-free calibration, |z| limit {free_lim:.2f}): {label_free}")
    return {**metrics, "label_free": label_free, "chosen": {str(grid[c]): k for c, k in picks.items()},
            "runs": details}
