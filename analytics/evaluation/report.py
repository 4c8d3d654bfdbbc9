"""PNG reports of the evaluations (matplotlib, Agg backend): what a maintenance engineer looks at first.

- ``skab_scores.png``: anomaly score over time per run, the alarm limit, true anomalies shaded.
- ``<dataset>_confusion.png``: confusion matrices (counts) of the classifiers.
- ``spc_xbar_r.png``: X-bar and R charts with Phase I / II, limits and out-of-control points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter
from sklearn.metrics import confusion_matrix

__all__ = ["confusion_png", "skab_png", "spc_png"]


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def skab_png(runs: list[dict[str, Any]], out_dir: Path) -> Path:
    cols = 6
    rows = (len(runs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.0 * rows), squeeze=False)
    for ax, run in zip(axes.flat, runs, strict=False):
        score, truth = np.asarray(run["score"]), np.asarray(run["truth"]).astype(bool)
        t = np.arange(score.size)
        ax.fill_between(t, 0, 1, where=truth, transform=ax.get_xaxis_transform(), color="tab:red", alpha=0.15,
                        label="true anomaly")
        ax.plot(t, score, lw=0.7, color="tab:blue", label="score")
        ax.axhline(1.0, color="black", ls="--", lw=0.8, label="alarm limit")
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(run["run"], fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="upper left")
    fig.suptitle("SKAB: anomaly score (log) over test seconds; dashed = alarm limit, red = labelled anomaly")
    return _save(fig, out_dir / "skab_scores.png")


def confusion_png(panels: dict[str, tuple[Any, Any]], out_dir: Path, name: str) -> Path:
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.8), squeeze=False)
    for ax, (title, (truth, pred)) in zip(axes.flat, panels.items(), strict=True):
        seen = set(np.asarray(truth).tolist()) | set(np.asarray(pred).tolist())
        labels = sorted(seen, key=lambda v: (isinstance(v, str), v))
        cm = confusion_matrix(truth, pred, labels=labels)
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks(range(len(labels)), [str(x) for x in labels], rotation=45, fontsize=7)
        ax.set_yticks(range(len(labels)), [str(x) for x in labels], fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    return _save(fig, out_dir / f"{name}_confusion.png")


def spc_png(data: np.ndarray[Any, Any], result: dict[str, Any], out_dir: Path) -> Path:
    means, ranges = data.mean(axis=1), np.ptp(data, axis=1)
    n = np.arange(1, data.shape[0] + 1)
    phase1 = result["phase1_subgroups"][1]
    out = set(result["phase2_out_of_control"])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for ax, values, lim, title in ((ax1, means, result["xbar"], "X-bar"), (ax2, ranges, result["r"], "R")):
        ax.plot(n, values, marker="o", ms=3, lw=0.8)
        ax.axhline(lim["centre"], color="green", lw=0.8)
        for key in ("lcl", "ucl"):
            if lim.get(key) is not None:
                ax.axhline(lim[key], color="red", ls="--", lw=0.8)
        ax.axvline(phase1 + 0.5, color="gray", ls=":", lw=0.8)
        ax.set_ylabel(title)
    bad = [i for i in n if i in out]
    ax1.plot(bad, means[np.asarray(bad, dtype=int) - 1], "rs", ms=7, mfc="none", label="out of control")
    ax1.legend(fontsize=7)
    ax2.set_xlabel("subgroup (Phase I | Phase II)")
    fig.suptitle("Piston rings: X-bar / R chart, Phase I limits frozen for Phase II")
    return _save(fig, out_dir / "spc_xbar_r.png")
