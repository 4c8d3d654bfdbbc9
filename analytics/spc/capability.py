"""Process capability: Cp, Cpk (within-subgroup sigma) and Pp, Ppk (overall sigma).

* Cp = (USL - LSL) / (6 sigma_within), Cpk = min(Cpu, Cpl), Cpu = (USL - mean) / (3 sigma_within),
  Cpl = (mean - LSL) / (3 sigma_within), with sigma_within = R-bar / d2 or S-bar / c4 of the
  subgroups, MR-bar / d2(2) of individuals, or a given sigma (e.g. ``limits.process_sigma`` of frozen
  Phase I limits).
* Pp, Ppk, Ppu, Ppl: the same with sigma_overall, the sample standard deviation (n - 1 divisor) of
  all individual values.
* One-sided specifications: with only USL (or only LSL), Cp and Pp are undefined (None) and
  Cpk = Cpu (or Cpl), Ppk = Ppu (or Ppl).

The indices assume a stable (in control), roughly normal process; compute them on Phase I data whose
charts show control.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from . import _input
from .constants import ConstantsMode, factors
from .errors import SpcError, SpecificationError, ZeroSigmaError
from .variables import moving_ranges, subgroup_stats

__all__ = ["Capability", "capability"]

WithinMethod = Literal["auto", "range", "sd", "moving_range"]


@dataclass(frozen=True)
class Capability:
    """Capability indices (None where a one-sided specification leaves them undefined)."""

    lsl: float | None
    usl: float | None
    mean: float
    sigma_within: float
    sigma_overall: float
    within_method: str
    observations: int
    cp: float | None
    cpk: float
    cpu: float | None
    cpl: float | None
    pp: float | None
    ppk: float
    ppu: float | None
    ppl: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _indices(mean: float, sigma: float, lsl: float | None, usl: float | None) -> tuple[float | None, ...]:
    upper = None if usl is None else (usl - mean) / (3.0 * sigma)
    lower = None if lsl is None else (mean - lsl) / (3.0 * sigma)
    both = None if lsl is None or usl is None else (usl - lsl) / (6.0 * sigma)
    sides = [v for v in (upper, lower) if v is not None]
    return both, min(sides), upper, lower


def capability(
    data: ArrayLike,
    *,
    lsl: float | None = None,
    usl: float | None = None,
    within: WithinMethod = "auto",
    sigma_within: float | None = None,
    constants: ConstantsMode = "exact",
    nan_policy: str = "raise",
) -> Capability:
    """Cp, Cpk, Pp, Ppk of ``data``: 2-D subgroups or 1-D individual values.

    ``within``: ``"range"`` (R-bar/d2, default for 2-D), ``"sd"`` (S-bar/c4) or ``"moving_range"``
    (MR-bar/d2, default for 1-D); ignored when ``sigma_within`` is given. Give at least one of
    ``lsl``/``usl``. Missing values: ``nan_policy`` as for the charts (``"omit"`` drops the subgroup).
    """
    for name, value in (("lsl", lsl), ("usl", usl)):
        if value is not None and not math.isfinite(value):
            raise SpecificationError(f"{name} must be a finite number, got {value!r}")
    if lsl is None and usl is None:
        raise SpecificationError("give a specification: lsl, usl or both")
    if lsl is not None and usl is not None and not lsl < usl:
        raise SpecificationError(f"lsl ({lsl}) must be below usl ({usl})")
    arr = np.asarray(data, dtype=np.float64)
    chart = "capability"
    if arr.ndim == 2 and arr.shape[1] > 1:
        sub, _dropped = _input.subgroups(arr, chart, nan_policy)
        keep = np.isfinite(sub).all(axis=1)
        sub = sub[keep]
        _input.require_count(sub.shape[0], _input.MIN_SUBGROUPS, chart)
        values = sub.ravel()
        method = "range" if within == "auto" else within
        _means, ranges, sds = subgroup_stats(sub)
        f = factors(sub.shape[1], constants)
        if method == "range":
            estimate = float(ranges.mean()) / f.d2
            label = "Rbar/d2"
        elif method == "sd":
            estimate = float(sds.mean()) / f.c4
            label = "Sbar/c4"
        elif method == "moving_range":
            raise SpcError("within='moving_range' is for individual values (1-D data); use 'range' or 'sd'")
        else:
            raise SpcError(f"within must be 'auto', 'range', 'sd' or 'moving_range', got {within!r}")
    else:
        x, _dropped = _input.individuals(arr, chart, nan_policy)
        if within not in ("auto", "moving_range"):
            raise SpcError(f"within={within!r} needs subgroups (a 2-D array); individual values use 'moving_range'")
        mr = moving_ranges(x)
        values = x[np.isfinite(x)]
        _input.require_count(values.size, _input.MIN_INDIVIDUALS, chart, "observations")
        estimate = float(np.nanmean(mr)) / factors(2, constants).d2 if np.isfinite(mr).any() else 0.0
        label = "MRbar/d2"
    if sigma_within is not None:
        if not (sigma_within > 0 and math.isfinite(sigma_within)):
            raise SpcError(f"sigma_within must be a positive number, got {sigma_within!r}")
        estimate, label = float(sigma_within), "given"
    overall = float(values.std(ddof=1))
    if estimate <= 0 or overall <= 0:
        raise ZeroSigmaError(
            "capability: the data show no variation (sigma = 0), so the indices are undefined; check the gauge "
            "resolution or that the right column was read"
        )
    mean = float(values.mean())
    cp, cpk, cpu, cpl = _indices(mean, estimate, lsl, usl)
    pp, ppk, ppu, ppl = _indices(mean, overall, lsl, usl)
    assert cpk is not None and ppk is not None
    return Capability(
        lsl=None if lsl is None else float(lsl),
        usl=None if usl is None else float(usl),
        mean=mean,
        sigma_within=estimate,
        sigma_overall=overall,
        within_method=label,
        observations=int(values.size),
        cp=cp,
        cpk=cpk,
        cpu=cpu,
        cpl=cpl,
        pp=pp,
        ppk=ppk,
        ppu=ppu,
        ppl=ppl,
    )
