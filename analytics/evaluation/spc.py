"""SPC evaluation on the piston-ring data (Montgomery; the same as R ``qcc::pistonrings``).

Protocol (pinned in ``../shared/datasets/README.md``): 40 subgroups of 5 inside diameters (mm);
X-bar/R chart with Phase I limits estimated from subgroups 1-25 (no iterative removal) and frozen;
Phase II = subgroups 26-40; sigma = R-bar / d2; limits with the constants as printed in the tables
(A2 = 0.577, D3 = 0, D4 = 2.114 for n = 5, the textbook's worked example; the exact constants are
reported alongside); capability of the Phase I data against the specification 74.000 +/- 0.05.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from analytics.spc import (
    ChartLimits,
    ChartPair,
    SpcError,
    apply,
    capability,
    fit_xbar_r,
)

__all__ = ["GOLDEN", "evaluate", "load_pistonrings"]

FILENAME = "pistonrings.csv"
PHASE1 = 25  # subgroups 1-25
LSL, USL = 73.95, 74.05
#: The published values (README of the datasets), to the precision given there.
GOLDEN: dict[str, Any] = {
    "xbar_centre": 74.00118,
    "sigma": 0.009785,
    "xbar_lcl": 73.98804,
    "xbar_ucl": 74.01431,
    "xbar_lcl_2sigma": 73.99242,
    "xbar_ucl_2sigma": 74.00993,
    "r_ucl": 0.04811,
    "phase2_out_of_control": [37, 38, 39],
    "cp": 1.70,
    "cpk": 1.66,
}


def load_pistonrings(data_dir: Path) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The 40 x 5 matrix of diameters (one row per subgroup) from ``data_dir / pistonrings.csv``."""
    path = Path(data_dir) / FILENAME
    if not path.is_file():
        raise SpcError(
            f"{path} not found; pass the folder holding the piston-ring data (../shared/datasets/spc from the "
            "project root)"
        )
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], [r for r in rows[1:] if r]
    try:
        data = np.array([[float(v) for v in row] for row in body], dtype=np.float64)
    except ValueError as exc:
        raise SpcError(f"{path}: non-numeric value ({exc}); expected {len(header)} numeric columns per row") from exc
    if data.ndim != 2 or data.shape[0] <= PHASE1 or data.shape[1] < 2:
        raise SpcError(f"{path}: expected one subgroup per row (40 rows of 5 diameters), got shape {data.shape}")
    return data


def _r(value: float | None, digits: int = 5) -> float | None:
    return None if value is None else round(float(value), digits)


def _summary(pair: ChartPair) -> dict[str, dict[str, float | None]]:
    x: ChartLimits = pair.location
    r: ChartLimits = pair.dispersion
    return {
        "xbar": {
            "centre": _r(x.centre),
            "sigma": _r(x.process_sigma, 6),
            "lcl": _r(x.lcl),
            "ucl": _r(x.ucl),
            "lcl_2sigma": _r(x.lcl_2sigma),
            "ucl_2sigma": _r(x.ucl_2sigma),
        },
        "r": {"centre": _r(r.centre), "lcl": _r(r.lcl), "ucl": _r(r.ucl)},
    }


def evaluate(data_dir: Path) -> dict[str, Any]:
    """Run the pinned protocol on ``data_dir / pistonrings.csv``; a JSON-ready dict of the results.

    Values are rounded to 5 decimals (sigma to 6, as the published figure); subgroup numbers are
    1-based as in the textbook.
    """
    data = load_pistonrings(data_dir)
    phase1, phase2 = data[:PHASE1], data[PHASE1:]
    pair = fit_xbar_r(phase1, constants="table")
    exact = fit_xbar_r(phase1, constants="exact")
    xbar, _r_chart = apply(pair, phase2)
    out_numbers = [PHASE1 + 1 + i for i in xbar.out_of_control]
    rules = {v.rule_id: [PHASE1 + 1 + i for i in v.indices] for v in xbar.violations("we")}
    cap = capability(phase1, lsl=LSL, usl=USL, sigma_within=pair.location.process_sigma)
    summary = _summary(pair)
    result: dict[str, Any] = {
        "dataset": "pistonrings",
        "source": "Montgomery, Introduction to Statistical Quality Control (piston-ring inside diameters, mm); "
        "= R qcc::pistonrings",
        "protocol": "X-bar/R, n = 5; Phase I subgroups 1-25 (no iteration), limits frozen; Phase II subgroups "
        "26-40; sigma = R-bar/d2; printed table constants (A2 = 0.577, D4 = 2.114); capability of Phase I "
        "against 74.000 +/- 0.05 (Cp/Cpk: R-bar/d2, Pp/Ppk: overall sample sd)",
        "subgroup_size": int(data.shape[1]),
        "phase1_subgroups": [1, PHASE1],
        "phase2_subgroups": [PHASE1 + 1, int(data.shape[0])],
        **summary,
        "phase2_out_of_control": out_numbers,
        "phase2_western_electric": rules,
        "capability": {
            "lsl": LSL,
            "usl": USL,
            "cp": _r(cap.cp),
            "cpk": _r(cap.cpk),
            "pp": _r(cap.pp),
            "ppk": _r(cap.ppk),
            "sigma_within": _r(cap.sigma_within, 6),
            "sigma_overall": _r(cap.sigma_overall, 6),
        },
        "exact_constants": _summary(exact),
        "golden": GOLDEN,
    }
    got = {
        "xbar_centre": summary["xbar"]["centre"],
        "sigma": summary["xbar"]["sigma"],
        "xbar_lcl": summary["xbar"]["lcl"],
        "xbar_ucl": summary["xbar"]["ucl"],
        "xbar_lcl_2sigma": summary["xbar"]["lcl_2sigma"],
        "xbar_ucl_2sigma": summary["xbar"]["ucl_2sigma"],
        "r_ucl": summary["r"]["ucl"],
        "phase2_out_of_control": out_numbers,
        "cp": _r(cap.cp, 2),
        "cpk": _r(cap.cpk, 2),
    }
    result["matches_golden"] = all(got[key] == value for key, value in GOLDEN.items())
    return result
