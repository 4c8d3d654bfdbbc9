"""Steel plates faults (UCI 198): 7-class surface-defect classification, stratified 5-fold, shuffle, seed 0.

Inputs: the 27 geometric and luminosity columns; label: the one-hot fault columns folded into one class.
Model: the generic classifier (random forest, 500 trees, defaults; nothing tuned on this data).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from analytics.errors import DatasetError
from analytics.model import ClassifierConfig, TrainConfig
from analytics.table import Roles, Table, read_csv

from ._cv import out_of_fold

__all__ = ["CLASSES", "evaluate", "load_table"]

CLASSES = ["Pastry", "Z_Scratch", "K_Scatch", "Stains", "Dirtiness", "Bumps", "Other_Faults"]
_COLUMNS = [f"{c}_Fault" if c != "Other_Faults" else c for c in CLASSES]
CONFIG = TrainConfig(task="classify", classifier=ClassifierConfig(kind="random_forest", n_estimators=500, n_jobs=2))


def load_table(data_dir: Path) -> Table:
    path = Path(data_dir) / "SteelPlatesFaults_Clean.csv"
    if not path.is_file():
        raise DatasetError(f"{path} not found; pass ../shared/datasets/steel_plates")
    table = read_csv(path)
    onehot = np.column_stack([table[c] for c in _COLUMNS])
    if not np.all(onehot.sum(axis=1) == 1):
        raise DatasetError(f"{path}: each plate must have exactly one fault column set")
    out = {k: v for k, v in table.items() if k not in _COLUMNS}
    out["fault"] = np.array(CLASSES)[onehot.argmax(axis=1)]
    return out


def evaluate(data_dir: Path, progress: Callable[[str], None] | None = None, config: TrainConfig = CONFIG
             ) -> dict[str, Any]:
    """The pinned protocol; ``config`` only to make quick test runs."""
    table = load_table(data_dir)
    roles = Roles(signals=[k for k in table if k != "fault"], label="fault")
    pred, _proba, _classes = out_of_fold(table, roles, config, "stratified", progress, "steel")
    y = table["fault"]
    p = np.asarray(pred)
    return {
        "accuracy": round(float(np.mean(p == y)), 4),
        "macro_f1": round(float(f1_score(y, p, average="macro")), 4),
        "truth": y, "pred": p, "classes": CLASSES,
    }
