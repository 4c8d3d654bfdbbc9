"""From a table and its column roles to samples (cycles, windows or rows) and their feature matrix.

Training and scoring use this one path, so a model always sees features computed the same way.
Bad input handling (documented, flagged): a NaN in a signal raises :class:`DataError` unless the policy is
``"drop"``, which skips the affected rows (window/row mode) or cycles (cycle mode) and lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .errors import DataError
from .features import FeatureConfig, feature_names, matrix_features
from .table import Roles, Table

__all__ = ["SampleConfig", "Samples", "build_samples"]

Array = np.ndarray[Any, np.dtype[np.float64]]


class SampleConfig(BaseModel):
    """How rows become samples: whole cycles (``roles.cycle``), trailing windows, or single rows (window 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(default=1, ge=1, description="rows per trailing window when there is no cycle column")
    step: int = Field(default=1, ge=1)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    nan_policy: Literal["error", "drop"] = "error"
    unseen_category: Literal["error", "ignore"] = "error"


@dataclass
class Samples:
    """Feature matrix plus what each row is (cycle id or last table row) and what was skipped or flagged."""

    x: Array
    ids: list[Any]
    labels: list[Any] | None
    dropped: list[Any] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    rows: np.ndarray[Any, Any] | None = None  # window/row mode: position of each sample's last row in time order


def _item(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def check_columns(table: Table, roles: Roles, need_label: bool) -> None:
    cols = roles.required() + ([roles.label] if need_label and roles.label else [])
    missing = [c for c in cols if c not in table]
    if missing:
        raise DataError(f"missing columns {missing}; the table has {sorted(table)[:20]}")
    for s in roles.signals:
        if table[s].dtype.kind not in "fiub":
            raise DataError(f"signal {s!r} is not numeric (e.g. {table[s][:1].tolist()}); fix the column or its role")
    if not table[roles.signals[0]].size:
        raise DataError("the table has no rows")


def _names(roles: Roles, config: SampleConfig, categories: dict[str, list[str]]) -> list[str]:
    if roles.cycle is None and config.window == 1:
        names = list(roles.signals)
    else:
        names = feature_names(roles.signals, config.features)
    for col, cats in categories.items():
        names += [f"{col}={c}" for c in cats]
    return names


def _onehot(values: Array, col: str, cats: list[str], policy: str, flags: list[str]) -> Array:
    vals = values.astype(str)
    unseen = sorted(set(vals.tolist()) - set(cats))
    if unseen:
        if policy == "error":
            raise DataError(f"column {col!r} has categories {unseen[:5]} not seen in training {cats}; retrain with "
                            "them or set unseen_category='ignore' (encoded as all-zero, flagged)")
        flags.append(f"unseen categories in {col!r}: {unseen[:5]} (encoded as all-zero)")
    return np.column_stack([(vals == c).astype(np.float64) for c in cats])


def build_samples(table: Table, roles: Roles, config: SampleConfig, categories: dict[str, list[str]],
                  need_label: bool) -> Samples:
    """Samples of ``table``; ``categories`` are the training categories per categorical column."""
    check_columns(table, roles, need_label)
    sig = np.column_stack([table[s].astype(np.float64) for s in roles.signals])
    n = sig.shape[0]
    order = np.arange(n)
    if roles.time is not None:
        order = np.argsort(table[roles.time], kind="stable")
    label = table[roles.label][order] if need_label and roles.label else None
    sig = sig[order]
    flags: list[str] = []
    bad_rows: np.ndarray[Any, Any] = np.asarray(~np.isfinite(sig).all(axis=1))
    if bad_rows.any() and config.nan_policy == "error":
        cols = [s for j, s in enumerate(roles.signals) if not np.isfinite(sig[:, j]).all()]
        raise DataError(f"{int(bad_rows.sum())} rows have NaN/inf in signals {cols}; clean them or use "
                        "nan_policy='drop' (skips and lists them)")
    cat_blocks = [_onehot(table[c][order], c, cats, config.unseen_category, flags) for c, cats in categories.items()]
    cat = np.column_stack(cat_blocks) if cat_blocks else np.empty((n, 0))
    dropped: list[Any] = []
    rows: np.ndarray[Any, Any] | None = None
    if roles.cycle is not None:
        cyc = table[roles.cycle][order]
        uniq, first, inverse = np.unique(cyc, return_index=True, return_inverse=True)
        ordered = [np.flatnonzero(inverse == k) for k in np.argsort(first)]
        good = [idx for idx in ordered if not bad_rows[idx].any()]
        dropped = [_item(uniq[inverse[idx[0]]]) for idx in ordered if bad_rows[idx].any()]
        rows_x: list[Array] = [np.empty(0)] * len(good)
        by_len: dict[int, list[int]] = {}
        for j, idx in enumerate(good):
            by_len.setdefault(idx.size, []).append(j)
        for members in by_len.values():  # equal-length cycles go through one vectorised pass
            data = {s: np.vstack([sig[good[j], c] for j in members]) for c, s in enumerate(roles.signals)}
            try:
                feats = matrix_features(data, roles.signals, config.features)
            except DataError as exc:
                cids = [_item(uniq[inverse[good[j][0]]]) for j in members[:3]]
                raise DataError(f"cycles {cids}: {exc}") from exc
            for r, j in enumerate(members):
                rows_x[j] = np.concatenate([feats[r], cat[good[j][-1]]])
        ids = [_item(uniq[inverse[idx[0]]]) for idx in good]
        labels = [label[idx[-1]].item() for idx in good] if label is not None else []
        x = np.vstack(rows_x) if rows_x else np.empty((0, len(_names(roles, config, categories))))
        out_labels: list[Any] | None = labels if label is not None else None
    else:
        keep = np.flatnonzero(~bad_rows)
        if keep.size < n:
            dropped = order[bad_rows].tolist()
        sig, cat = sig[keep], cat[keep]
        w = config.window
        if w == 1:
            x = np.hstack([sig, cat])[:: config.step]
            sel = keep[:: config.step]
        else:
            if sig.shape[0] < w:
                raise DataError(f"{sig.shape[0]} usable rows, fewer than the window of {w}; give more rows")
            win = np.lib.stride_tricks.sliding_window_view(sig, w, axis=0)[:: config.step]  # (m, p, w)
            data = {s: win[:, j, :] for j, s in enumerate(roles.signals)}
            feats = matrix_features(data, roles.signals, config.features)
            sel = keep[w - 1 :: config.step]
            x = np.hstack([feats, cat[w - 1 :: config.step]])
        ids = order[sel].tolist()
        rows = sel
        out_labels = label[sel].tolist() if label is not None else None
    if dropped:
        flags.append(f"skipped {len(dropped)} {'cycles' if roles.cycle else 'rows'} with NaN/inf signals")
    return Samples(x=x, ids=ids, labels=out_labels, dropped=dropped, flags=flags, rows=rows)


def sample_feature_names(roles: Roles, config: SampleConfig, categories: dict[str, list[str]]) -> list[str]:
    """Column names of :attr:`Samples.x`."""
    return _names(roles, config, categories)
