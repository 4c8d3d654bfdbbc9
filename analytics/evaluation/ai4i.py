"""AI4I 2020 predictive maintenance (binary ``Machine failure``) under the pinned protocol.

Protocol: stratified 5-fold CV, shuffle, seed 0, out-of-fold predictions pooled; inputs are Type and the five
process columns only (UDI, Product ID and the mode flags TWF/HDF/PWF/OSF/RNF leak the label and are dropped).

Features: the raw inputs plus physics derived from them and from the dataset's documentation of its failure
mechanisms (Matzka 2020): temperature difference, mechanical power = torque x speed, tool wear x torque
(overstrain) and its ratio to the per-type limit (L 11000, M 12000, H 13000 min Nm), and indicators of the
documented heat-dissipation (dT < 8.6 K and speed < 1380 rpm), power (< 3500 W or > 9000 W) and overstrain
conditions. All are functions of the inputs of the same row. Random forest, 500 trees, class = argmax
(probability threshold 0.5, not tuned).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from analytics.errors import DatasetError
from analytics.model import ClassifierConfig, TrainConfig
from analytics.table import Roles, Table, read_csv

from ._cv import out_of_fold
from ._metrics import binary_counts

__all__ = ["evaluate", "load_table", "physics_features"]

RAW = ["Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]", "Torque [Nm]", "Tool wear [min]"]
LEAKING = ["UDI", "Product ID", "TWF", "HDF", "PWF", "OSF", "RNF"]
STRAIN_LIMIT = {"L": 11000.0, "M": 12000.0, "H": 13000.0}
DERIVED = ["dT", "power", "strain", "strain_ratio", "hdf_zone", "pwf_zone", "osf_zone"]


def physics_features(table: Table) -> Table:
    """Add the derived columns (see module doc) to a copy of ``table``; unknown Type raises DatasetError."""
    out = dict(table)
    air, proc, rpm, torque, wear = (table[c].astype(np.float64) for c in RAW)
    types = table["Type"].astype(str)
    unknown = sorted(set(types.tolist()) - set(STRAIN_LIMIT))
    if unknown:
        raise DatasetError(f"unknown product Type {unknown}; AI4I types are {sorted(STRAIN_LIMIT)}")
    limit = np.array([STRAIN_LIMIT[t] for t in types])
    out["dT"] = proc - air
    out["power"] = torque * rpm * 2 * np.pi / 60
    out["strain"] = wear * torque
    out["strain_ratio"] = out["strain"] / limit
    out["hdf_zone"] = ((out["dT"] < 8.6) & (rpm < 1380)).astype(np.float64)
    out["pwf_zone"] = ((out["power"] < 3500) | (out["power"] > 9000)).astype(np.float64)
    out["osf_zone"] = (out["strain"] > limit).astype(np.float64)
    return out


def load_table(data_dir: Path) -> Table:
    path = Path(data_dir) / "ai4i2020.csv"
    if not path.is_file():
        raise DatasetError(f"{path} not found; pass ../shared/datasets/ai4i2020")
    table = read_csv(path)
    return {k: v for k, v in table.items() if k not in LEAKING}


ROLES = Roles(signals=RAW + DERIVED, categorical=["Type"], label="Machine failure")
CONFIG = TrainConfig(task="classify", classifier=ClassifierConfig(kind="random_forest", n_estimators=500, n_jobs=2))


def evaluate(data_dir: Path, progress: Callable[[str], None] | None = None, config: TrainConfig = CONFIG,
             rows: int | None = None) -> dict[str, Any]:
    """The pinned protocol; ``config`` and ``rows`` (first N rows) only to make quick test runs."""
    table = physics_features(load_table(data_dir))
    if rows is not None:
        table = {k: v[:rows] for k, v in table.items()}
    pred, proba, classes = out_of_fold(table, ROLES, config, "stratified", progress, "ai4i")
    y = table["Machine failure"].astype(int)
    p = np.asarray(pred).astype(int)
    tp, fp, fn, _tn = binary_counts(p, y)
    pos = proba[:, [float(c) for c in classes].index(1.0)]
    return {
        "f1": round(2 * tp / (2 * tp + fp + fn), 4),
        "precision": round(tp / (tp + fp) if tp + fp else 0.0, 4),
        "recall": round(tp / (tp + fn) if tp + fn else 0.0, 4),
        "roc_auc": round(float(roc_auc_score(y, pos)), 4),
        "truth": y, "pred": p, "classes": [0, 1],
    }
