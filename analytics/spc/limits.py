"""Frozen control limits (Phase I result) and their JSON form.

A :class:`ChartLimits` holds everything needed to apply a chart to new data (Phase II) and to draw it:
the centre line, the sigma of the plotted statistic, the ``k``-sigma control limits and the 1- and
2-sigma zone limits (for the run rules). Limits are ``centre -/+ k * sigma`` (and ``centre -/+ sigma``,
``centre -/+ 2 sigma`` for the zones), clipped to the range the statistic can take (>= 0 for R, S, MR,
p, np, c, u; <= 1 for p; <= n for np). For ``k = 3`` they equal the factor forms of the textbooks
(``x-double-bar +/- A2 R-bar``, ``D3 R-bar``, ``D4 R-bar``, ``B3 S-bar``, ...).

Field meanings by chart (``chart`` value):

* ``xbar``, ``r``, ``s``, ``i``, ``mr``, ``c``, ``np``: the fields as named; ``n`` is the subgroup size.
* ``p``, ``u``: ``centre`` is p-bar / u-bar; ``sigma`` and the limits are those of a subgroup of the
  average reference size ``n``. Per-subgroup limits for other sizes come from :meth:`ChartLimits.at`
  (and are what :func:`analytics.spc.apply` uses).
* ``ewma``: ``centre`` = ``target`` (mu0), ``sigma`` = the asymptotic sd of the EWMA statistic,
  ``k`` = L, ``ewma_lambda`` = lambda; the scalar limits are the steady-state ones (the exact,
  narrower limits of the first points are computed when the chart is applied).
* ``cusum``: the plot is centred on 0 (``centre`` = 0); ``target`` = mu0, ``sigma`` = sd of the
  observations, ``cusum_k`` = reference value k and ``k`` = decision interval h (both in sigma units),
  so ``ucl`` = H = h * sigma and ``lcl`` = -H (C- is plotted as a negative value).

``process_sigma`` is the estimated within-subgroup sigma of the individual measurements (R-bar/d2,
S-bar/c4 or MR-bar/d2), the one capability's Cp/Cpk use.

JSON: :meth:`ChartLimits.to_json` / :meth:`ChartLimits.from_json` round-trip exactly (floats are written
with Python's shortest round-trip repr), so limits stored in a twin reload identically.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import LimitsFormatError, SpcError

__all__ = ["CHART_KINDS", "SCHEMA", "Bounds", "ChartLimits", "ChartPair"]

SCHEMA = "twinedge.spc.limits/1"
PAIR_SCHEMA = "twinedge.spc.limits-pair/1"

#: Chart kinds and a human-readable title.
CHART_KINDS: dict[str, str] = {
    "xbar": "X-bar chart (subgroup means)",
    "r": "R chart (subgroup ranges)",
    "s": "S chart (subgroup standard deviations)",
    "i": "Individuals chart",
    "mr": "Moving-range chart (span 2)",
    "p": "p chart (fraction nonconforming)",
    "np": "np chart (number nonconforming)",
    "c": "c chart (defects per subgroup)",
    "u": "u chart (defects per unit)",
    "ewma": "EWMA chart",
    "cusum": "Tabular CUSUM chart",
}
_NON_NEGATIVE = frozenset({"r", "s", "mr", "p", "np", "c", "u"})
_SIZE_SCALED = frozenset({"p", "u"})

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Bounds:
    """Centre line and limits per point (arrays broadcast against the plotted values)."""

    centre: FloatArray
    lcl: FloatArray
    ucl: FloatArray
    lcl_1sigma: FloatArray
    ucl_1sigma: FloatArray
    lcl_2sigma: FloatArray
    ucl_2sigma: FloatArray


@dataclass(frozen=True)
class ChartLimits:
    """Frozen centre line, sigma and limits of one control chart (see the module docstring)."""

    chart: str
    centre: float
    sigma: float
    lcl: float
    ucl: float
    lcl_1sigma: float
    ucl_1sigma: float
    lcl_2sigma: float
    ucl_2sigma: float
    k: float = 3.0
    n: float | None = None
    process_sigma: float | None = None
    target: float | None = None
    ewma_lambda: float | None = None
    cusum_k: float | None = None
    method: str = ""
    constants: str = "exact"
    reference_count: int = 0
    excluded: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def build(cls, chart: str, centre: float, sigma: float, k: float = 3.0, **meta: Any) -> ChartLimits:
        """Limits ``centre -/+ k sigma`` with 1- and 2-sigma zones, clipped to the statistic's range."""
        if chart not in CHART_KINDS:
            raise SpcError(f"unknown chart kind {chart!r}; expected one of {', '.join(CHART_KINDS)}")
        lo, hi = _range_of(chart, meta.get("n"))
        centre, sigma, k = float(centre), float(sigma), float(k)

        def clip(value: float) -> float:
            return float(min(max(value, lo), hi))

        return cls(
            chart=chart,
            centre=centre,
            sigma=sigma,
            lcl=clip(centre - k * sigma),
            ucl=clip(centre + k * sigma),
            lcl_1sigma=clip(centre - sigma),
            ucl_1sigma=clip(centre + sigma),
            lcl_2sigma=clip(centre - 2.0 * sigma),
            ucl_2sigma=clip(centre + 2.0 * sigma),
            k=k,
            **meta,
        )

    @classmethod
    def symmetric(cls, centre: float, sigma: float, k: float = 3.0, chart: str = "i") -> ChartLimits:
        """Limits from a known centre and sigma (e.g. a standard given by the customer)."""
        if not (math.isfinite(centre) and math.isfinite(sigma)) or sigma <= 0:
            raise SpcError(f"centre must be finite and sigma > 0, got centre={centre!r}, sigma={sigma!r}")
        return cls.build(chart, centre, sigma, k, method="given")

    # -- per-size limits (p, u) -----------------------------------------------------------------
    def sigma_at(self, sizes: ArrayLike) -> FloatArray:
        """Sigma of the plotted statistic for subgroups of the given sizes (p and u charts)."""
        n = np.asarray(sizes, dtype=np.float64)
        if self.chart == "p":
            return np.sqrt(self.centre * (1.0 - self.centre) / n)
        if self.chart == "u":
            return np.sqrt(self.centre / n)
        raise SpcError(
            f"{self.chart} limits are for a fixed subgroup size ({self.n}); per-size limits exist for p and u charts"
        )

    def at(self, n: float) -> ChartLimits:
        """These limits re-evaluated for one subgroup of size ``n`` (p and u charts)."""
        sigma = float(self.sigma_at(n))
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name in _META_FIELDS}
        meta["n"] = float(n)
        return ChartLimits.build(self.chart, self.centre, sigma, self.k, **meta)

    def bounds(self, sizes: ArrayLike | None = None) -> Bounds:
        """Centre and limits as arrays (per subgroup when ``sizes`` are given for p/u charts)."""
        if sizes is not None and self.chart in _SIZE_SCALED:
            n = np.asarray(sizes, dtype=np.float64)
            sigma = self.sigma_at(n)
            lo, hi = _range_of(self.chart, None)

            def clip(values: FloatArray) -> FloatArray:
                return np.clip(values, lo, hi)

            c = np.full(n.shape, self.centre)
            return Bounds(
                centre=c,
                lcl=clip(c - self.k * sigma),
                ucl=clip(c + self.k * sigma),
                lcl_1sigma=clip(c - sigma),
                ucl_1sigma=clip(c + sigma),
                lcl_2sigma=clip(c - 2.0 * sigma),
                ucl_2sigma=clip(c + 2.0 * sigma),
            )
        return Bounds(
            *(
                np.asarray(v, dtype=np.float64)
                for v in (
                    self.centre,
                    self.lcl,
                    self.ucl,
                    self.lcl_1sigma,
                    self.ucl_1sigma,
                    self.lcl_2sigma,
                    self.ucl_2sigma,
                )
            )
        )

    # -- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tagged with the schema name)."""
        out: dict[str, Any] = {"schema": SCHEMA}
        for f in fields(self):
            if f.name.startswith("_"):
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChartLimits:
        """Inverse of :meth:`to_dict`; raises :class:`LimitsFormatError` on a malformed dict."""
        if not isinstance(data, dict):
            raise LimitsFormatError(f"chart limits must be a JSON object, got {type(data).__name__}")
        if data.get("schema") != SCHEMA:
            raise LimitsFormatError(
                f"chart limits have schema {data.get('schema')!r}, expected {SCHEMA!r}; "
                "re-create them with ChartLimits.to_dict()"
            )
        known = {f.name: f for f in fields(cls) if not f.name.startswith("_")}
        unknown = sorted(set(data) - set(known) - {"schema"})
        if unknown:
            raise LimitsFormatError(f"chart limits: unknown field(s) {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for name in known:
            if name not in data:
                if name in _REQUIRED:
                    raise LimitsFormatError(f"chart limits: required field {name!r} is missing")
                continue
            kwargs[name] = _checked(name, data[name])
        if kwargs["chart"] not in CHART_KINDS:
            raise LimitsFormatError(f"chart limits: unknown chart kind {kwargs['chart']!r}")
        return cls(**kwargs)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> ChartLimits:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LimitsFormatError(f"chart limits: invalid JSON ({exc})") from exc
        return cls.from_dict(data)


_REQUIRED = frozenset(
    {"chart", "centre", "sigma", "lcl", "ucl", "lcl_1sigma", "ucl_1sigma", "lcl_2sigma", "ucl_2sigma"}
)
_META_FIELDS = frozenset(
    {
        "process_sigma",
        "target",
        "ewma_lambda",
        "cusum_k",
        "method",
        "constants",
        "reference_count",
        "excluded",
        "dropped",
    }
)
_FLOATS = frozenset({"centre", "sigma", "lcl", "ucl", "lcl_1sigma", "ucl_1sigma", "lcl_2sigma", "ucl_2sigma", "k"})
_OPTIONAL_FLOATS = frozenset({"n", "process_sigma", "target", "ewma_lambda", "cusum_k"})


def _checked(name: str, value: Any) -> Any:
    def number(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise LimitsFormatError(f"chart limits: field {name!r} must be a finite number, got {v!r}")
        return float(v)

    if name in _FLOATS:
        return number(value)
    if name in _OPTIONAL_FLOATS:
        return None if value is None else number(value)
    if name in {"chart", "method", "constants"}:
        if not isinstance(value, str):
            raise LimitsFormatError(f"chart limits: field {name!r} must be a string, got {value!r}")
        return value
    if name == "reference_count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise LimitsFormatError(f"chart limits: field {name!r} must be a non-negative integer, got {value!r}")
        return value
    if name in {"excluded", "dropped"}:
        if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
            raise LimitsFormatError(f"chart limits: field {name!r} must be a list of integers, got {value!r}")
        return tuple(value)
    raise LimitsFormatError(f"chart limits: unknown field {name!r}")  # pragma: no cover


def _range_of(chart: str, n: float | None) -> tuple[float, float]:
    if chart == "p":
        return 0.0, 1.0
    if chart == "np" and n is not None:
        return 0.0, float(n)
    if chart in _NON_NEGATIVE:
        return 0.0, math.inf
    return -math.inf, math.inf


@dataclass(frozen=True)
class ChartPair:
    """The two charts of a variables pair: X-bar with R or S, or I with MR."""

    location: ChartLimits
    dispersion: ChartLimits

    def to_dict(self) -> dict[str, Any]:
        return {"schema": PAIR_SCHEMA, "location": self.location.to_dict(), "dispersion": self.dispersion.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChartPair:
        if not isinstance(data, dict) or data.get("schema") != PAIR_SCHEMA:
            raise LimitsFormatError(f"chart pair must be a JSON object with schema {PAIR_SCHEMA!r}")
        try:
            return cls(ChartLimits.from_dict(data["location"]), ChartLimits.from_dict(data["dispersion"]))
        except KeyError as exc:
            raise LimitsFormatError(f"chart pair: missing {exc.args[0]!r}") from exc

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> ChartPair:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LimitsFormatError(f"chart pair: invalid JSON ({exc})") from exc
        return cls.from_dict(data)
