"""Cross-validation of the generic API: folds of a table, a model trained per fold, out-of-fold predictions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from analytics.model import TrainConfig, train
from analytics.table import Roles, Table

__all__ = ["out_of_fold", "take"]


def take(table: Table, idx: np.ndarray[Any, Any]) -> Table:
    return {k: v[idx] for k, v in table.items()}


def folds(labels: np.ndarray[Any, Any], protocol: str, seed: int = 0) -> Iterator[tuple[Any, Any]]:
    """``stratified``: stratified 5-fold with shuffle (seed); ``blocked``: 5 contiguous blocks, no shuffle."""
    if protocol == "stratified":
        yield from StratifiedKFold(5, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
    else:
        yield from KFold(5).split(np.zeros(len(labels)))


def out_of_fold(table: Table, roles: Roles, config: TrainConfig, protocol: str,
                progress: Callable[[str], None] | None = None, name: str = "") -> tuple[list[Any], Any, list[Any]]:
    """Pooled out-of-fold (predicted labels, class-probability matrix, classes); one row per table row."""
    assert roles.label is not None
    y = table[roles.label]
    pred: list[Any] = [None] * len(y)
    proba: np.ndarray[Any, Any] | None = None
    classes: list[Any] = []
    for k, (tr, te) in enumerate(folds(y, protocol)):
        model = train(take(table, tr), roles, config)
        res = model.score(take(table, te))
        classes = model.classes
        assert res.label is not None and res.probabilities is not None
        if proba is None:
            proba = np.zeros((len(y), res.probabilities.shape[1]))
        proba[te] = res.probabilities
        for i, lab in zip(te, res.label, strict=True):
            pred[i] = lab
        if progress:
            progress(f"{name}: {protocol} fold {k + 1}/5")
    return pred, proba, classes
