"""Statistical process control (numpy): Shewhart, EWMA and CUSUM charts, run rules, capability.

Workflow (Montgomery, *Introduction to Statistical Quality Control*):

1. **Phase I** - estimate limits from a reference range of in-control data with a ``fit_*``
   function and freeze them::

       pair = fit_xbar_r(subgroups[:25])             # ChartPair(location=X-bar, dispersion=R)
       text = pair.to_json()                          # store in the twin; ChartPair.from_json(text) reloads it

   ``iterate=True`` removes out-of-control reference subgroups and re-estimates (off by default).
2. **Phase II** - apply the frozen limits to new data::

       xbar, r = apply(pair, subgroups[25:])         # ChartResult for each chart
       xbar.out_of_control                           # 0-based indices beyond the limits
       xbar.violations("we")                         # Western Electric / Nelson run rules
       xbar.to_dict(rules="nelson")                  # everything a dashboard needs, JSON-ready

3. **Capability** - ``capability(data, lsl=..., usl=...)`` gives Cp, Cpk, Pp, Ppk.

Charts: X-bar/R (:func:`fit_xbar_r`), X-bar/S (:func:`fit_xbar_s`), I-MR (:func:`fit_imr`), p
(:func:`fit_p`, variable sizes), np (:func:`fit_np`), c (:func:`fit_c`), u (:func:`fit_u`, variable
sizes), EWMA (:func:`fit_ewma`), tabular CUSUM (:func:`fit_cusum`). Constants d2, d3, c4, A2, A3, B3,
B4, D3, D4 are computed from their definitions (:mod:`analytics.spc.constants`); ``constants="table"``
uses the printed 3-decimal values instead, as hand calculations do.

Bad input raises :class:`SpcError` subclasses whose messages say what to do. Missing values
(NaN/inf) raise :class:`MissingValueError` by default; ``nan_policy="omit"`` drops the affected
subgroups instead and lists them in ``dropped`` (of the limits and of the results).
"""

from __future__ import annotations

from .attributes import fit_c, fit_np, fit_p, fit_u
from .capability import Capability, capability
from .charts import ChartResult, apply
from .constants import Factors, c4, d2, d3, factors
from .errors import (
    InsufficientDataError,
    LimitsFormatError,
    MissingValueError,
    SpcError,
    SpecificationError,
    SubgroupSizeError,
    ZeroSigmaError,
)
from .limits import CHART_KINDS, Bounds, ChartLimits, ChartPair
from .rules import NELSON, RULES, WESTERN_ELECTRIC, Rule, RuleViolation, check, violations
from .timeweighted import fit_cusum, fit_ewma
from .variables import fit_imr, fit_xbar_r, fit_xbar_s

__all__ = [
    "CHART_KINDS",
    "NELSON",
    "RULES",
    "WESTERN_ELECTRIC",
    "Bounds",
    "Capability",
    "ChartLimits",
    "ChartPair",
    "ChartResult",
    "Factors",
    "InsufficientDataError",
    "LimitsFormatError",
    "MissingValueError",
    "Rule",
    "RuleViolation",
    "SpcError",
    "SpecificationError",
    "SubgroupSizeError",
    "ZeroSigmaError",
    "apply",
    "c4",
    "capability",
    "check",
    "d2",
    "d3",
    "factors",
    "fit_c",
    "fit_cusum",
    "fit_ewma",
    "fit_imr",
    "fit_np",
    "fit_p",
    "fit_u",
    "fit_xbar_r",
    "fit_xbar_s",
    "violations",
]
