"""Tables and column roles: the one input format of the generic API.

A table is a mapping of column name -> 1-D array (what :func:`read_csv` returns), or anything with
``columns`` and ``__getitem__`` returning array-likes (a pandas DataFrame works without pandas being a
dependency). :class:`Roles` says which column is what, so a new machine needs no code change.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from .errors import DataError

__all__ = ["Roles", "Table", "as_table", "read_csv"]

Table = dict[str, np.ndarray[Any, Any]]


class Roles(BaseModel):
    """Column roles. ``signals`` are numeric sensors; ``categorical`` are text inputs (one-hot encoded)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signals: list[str]
    time: str | None = None
    cycle: str | None = None
    label: str | None = None
    categorical: list[str] = []

    @field_validator("signals")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one signal column")
        if len(set(value)) != len(value):
            raise ValueError("signal columns must be unique")
        return value

    def required(self) -> list[str]:
        """Columns that scoring needs (the label is only needed for training and evaluation)."""
        cols = list(self.signals) + list(self.categorical)
        return cols + [c for c in (self.time, self.cycle) if c is not None]


def _column(values: Any) -> np.ndarray[Any, Any]:
    arr = np.asarray(values)
    if arr.dtype.kind in "OUS":
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError):
            return arr.astype(str)
    return arr


def as_table(source: Any) -> Table:
    """Normalise a mapping / DataFrame / CSV path into a :data:`Table`; raise :class:`DataError` if impossible."""
    if isinstance(source, (str, Path)):
        return read_csv(Path(source))
    if isinstance(source, Mapping):
        items = list(source.items())
    elif hasattr(source, "columns") and hasattr(source, "__getitem__"):
        items = [(str(c), source[c]) for c in source.columns]
    else:
        raise DataError(f"cannot read a table from {type(source).__name__}; pass a CSV path, a dict or a DataFrame")
    table = {str(k): _column(v) for k, v in items}
    lengths = {len(v) for v in table.values()}
    if len(lengths) > 1:
        raise DataError(f"columns have different lengths {sorted(lengths)}; every column needs one value per row")
    return table


def read_csv(path: Path, delimiter: str | None = None) -> Table:
    """Read a CSV with a header row; numeric columns become float64, others stay text. Delimiter is sniffed."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        head = handle.read(4096)
        handle.seek(0)
        delim = delimiter or (";" if head.count(";") > head.count(",") else ",")
        rows = list(csv.reader(handle, delimiter=delim))
    if len(rows) < 2:
        raise DataError(f"{path}: needs a header row and at least one data row")
    header, body = rows[0], [r for r in rows[1:] if r]
    bad = [i + 2 for i, r in enumerate(body) if len(r) != len(header)]
    if bad:
        raise DataError(f"{path}: rows {bad[:5]} do not have {len(header)} fields like the header")
    cols = list(zip(*body, strict=True))
    return {
        name.strip(): _column([v if v != "" else "nan" for v in col]) for name, col in zip(header, cols, strict=True)
    }
