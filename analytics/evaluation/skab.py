"""SKAB v0.9 outlier detection under the pinned protocol.

Protocol: each of the 34 runs in ``valve1/``, ``valve2/``, ``other/``: rows 1-400 train a model on that run,
the remaining rows are scored; point-wise ``anomaly`` labels pooled over all test points; F1 = TP / (TP +
(FP + FN) / 2), FAR and MAR in %.

Method (generic API, no SKAB-specific code in the model): trailing 10-row windows, feature = window mean of
each signal; signals drifting over the 400 training rows are excluded (their trend exceeds their residual
spread, so no stable limit exists: in practice the two temperatures); detector ``zmax`` (largest |z| over
signals). Alarm limit from a false-alarm target of 10 % per point, calibrated on the separate
``anomaly-free/`` recording (never on the 34 test runs): it is cut into runs of the same shape (400 training
rows + the rest), the same model is trained on each, and the limit is the 90 % quantile of its scores on the
held-out normal rows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from analytics.anomaly import AnomalyConfig
from analytics.errors import DatasetError
from analytics.features import FeatureConfig
from analytics.model import TrainConfig, train
from analytics.samples import SampleConfig
from analytics.table import Roles, Table, read_csv

from ._metrics import skab_metrics

__all__ = ["evaluate", "load_runs"]

SIGNALS = ["Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure", "Temperature", "Thermocouple",
           "Voltage", "Volume Flow RateRMS"]
TRAIN_ROWS = 400
WINDOW = 10
FAR_TARGET = 0.10
CALIBRATION_RUN = 1150  # rows per pseudo-run cut from anomaly-free (about the median SKAB run length)


def load_runs(data_dir: Path) -> list[tuple[str, Table]]:
    """The 34 labelled runs, in a stable order (folder, then run number)."""
    root = Path(data_dir)
    base = root / "data" if (root / "data").is_dir() else root
    files = [f for sub in ("valve1", "valve2", "other") for f in sorted((base / sub).glob("*.csv"),
                                                                          key=lambda p: int(p.stem))]
    if not files:
        raise DatasetError(f"{root}: no SKAB runs (expected data/valve1/*.csv ...); pass ../shared/datasets/skab")
    return [(f"{f.parent.name}/{f.stem}", read_csv(f, delimiter=";")) for f in files]


def _config(limit: float | None = None) -> TrainConfig:
    return TrainConfig(
        task="anomaly",
        samples=SampleConfig(window=WINDOW, features=FeatureConfig(statistics=["mean"])),
        anomaly=AnomalyConfig(method="zmax", far=FAR_TARGET, limit=limit),
        exclude_drifting=True,
    )


def _slice(table: Table, rows: slice) -> Table:
    return {k: v[rows] for k, v in table.items()}


def _scores(run: Table, config: TrainConfig) -> np.ndarray[Any, Any]:
    """Scores of rows TRAIN_ROWS.. (the windows ending there may reach back into the training rows: online)."""
    roles = Roles(signals=SIGNALS)
    model = train(_slice(run, slice(0, TRAIN_ROWS)), roles, config)
    res = model.score({k: v for k, v in run.items() if k in SIGNALS})
    assert res.score is not None
    ids = np.asarray(res.ids)
    return np.asarray(res.score[ids >= TRAIN_ROWS])


def calibrate(data_dir: Path) -> float:
    """Raw |z| limit giving FAR_TARGET on the anomaly-free recording (pseudo-runs of the protocol's shape)."""
    root = Path(data_dir)
    base = root / "data" if (root / "data").is_dir() else root
    free = read_csv(base / "anomaly-free" / "anomaly-free.csv", delimiter=";")
    n = len(free[SIGNALS[0]])
    unit = _config(limit=1.0)  # limit 1 -> normalised score = raw max |z|
    held = [_scores(_slice(free, slice(a, a + CALIBRATION_RUN)), unit)
            for a in range(0, n - CALIBRATION_RUN + 1, CALIBRATION_RUN)]
    return float(np.quantile(np.concatenate(held), 1.0 - FAR_TARGET))


def evaluate(data_dir: Path, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the pinned protocol; returns the metrics plus per-run details for reports."""
    runs = load_runs(data_dir)
    limit = calibrate(data_dir)
    if progress:
        progress(f"skab: limit |z| = {limit:.3f} from anomaly-free (target FAR {FAR_TARGET:.0%})")
    config = _config(limit=limit)
    preds, truths, details = [], [], []
    for i, (name, run) in enumerate(runs):
        score = _scores(run, config)
        truth = run["anomaly"][TRAIN_ROWS:].astype(int)
        preds.append(score > 1.0)
        truths.append(truth)
        details.append({"run": name, "score": score, "truth": truth})
        if progress:
            progress(f"skab: run {i + 1}/{len(runs)} {name}")
    metrics = skab_metrics(np.concatenate(preds), np.concatenate(truths))
    return {**metrics, "limit_abs_z": round(limit, 4), "runs": details}
