"""Metrics of the pinned protocols, written out so the formulas are the ones the benchmarks define."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["binary_counts", "skab_metrics"]


def binary_counts(pred: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]) -> tuple[int, int, int, int]:
    """(TP, FP, FN, TN) of boolean/0-1 predictions against 0-1 truth."""
    p = np.asarray(pred).astype(bool)
    t = np.asarray(truth).astype(bool)
    return int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum()), int((~p & ~t).sum())


def skab_metrics(pred: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]) -> dict[str, float]:
    """SKAB: F1 = TP / (TP + (FP + FN) / 2), FAR = FP / (FP + TN) %, MAR = FN / (FN + TP) %."""
    tp, fp, fn, tn = binary_counts(pred, truth)
    return {
        "f1": round(tp / (tp + (fp + fn) / 2) if tp + fp + fn else 0.0, 4),
        "far": round(100.0 * fp / (fp + tn) if fp + tn else 0.0, 2),
        "mar": round(100.0 * fn / (fn + tp) if fn + tp else 0.0, 2),
    }
