"""Run rules: Western Electric (4) and Nelson (8).

Zones are measured from the centre line in sigmas of the plotted statistic: zone C within 1 sigma,
zone B between 1 and 2, zone A between 2 and 3, beyond 3 outside the control limits. "Beyond x sigma"
is strict (a point exactly on a zone line is not beyond it); "within 1 sigma" is its complement. A
point exactly on the centre line is on neither side and breaks a run of same-side points; equal
consecutive values break a trend and an alternation.

Each rule returns the 0-based indices of the points at which it fires: the last point of every
window that completes the pattern (for a "2 of 3" or "4 of 5" rule the flagged point is itself one
of the points beyond the zone line; windows at the start of the series may be shorter). A long run
therefore fires at every point from the one that completes it onwards.

Rules (Montgomery, Introduction to SQC, section 5.3.6; Nelson, J. Quality Technology 16(4), 1984):

======  ====================================================================
WE1     one point beyond the 3-sigma limits
WE2     2 of 3 consecutive points beyond 2 sigma, same side
WE3     4 of 5 consecutive points beyond 1 sigma, same side
WE4     8 consecutive points on one side of the centre line
N1      one point beyond 3 sigma
N2      9 points in a row on one side of the centre line
N3      6 points in a row steadily increasing or decreasing
N4      14 points in a row alternating up and down
N5      2 of 3 points in a row beyond 2 sigma, same side
N6      4 of 5 points in a row beyond 1 sigma, same side
N7      15 points in a row within 1 sigma of the centre line (either side)
N8      8 points in a row beyond 1 sigma, either side (none within 1 sigma)
======  ====================================================================

Missing values (NaN) in the plotted series are skipped: patterns are matched over the remaining points
as if the missing ones had not been plotted, and indices refer to the original series.

The rules assume independent points: do not apply them to EWMA or CUSUM statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import SpcError
from .limits import Bounds, ChartLimits

__all__ = [
    "NELSON",
    "RULES",
    "WESTERN_ELECTRIC",
    "Rule",
    "RuleViolation",
    "check",
    "select_rules",
    "violations",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IndexArray = NDArray[np.intp]


@dataclass(frozen=True)
class _Zones:
    """Per-point classification of a (NaN-free) series."""

    values: FloatArray
    above: BoolArray
    below: BoolArray
    beyond1_up: BoolArray
    beyond1_down: BoolArray
    beyond2_up: BoolArray
    beyond2_down: BoolArray
    beyond3: BoolArray

    @classmethod
    def classify(cls, values: FloatArray, b: Bounds) -> _Zones:
        return cls(
            values=values,
            above=values > b.centre,
            below=values < b.centre,
            beyond1_up=values > b.ucl_1sigma,
            beyond1_down=values < b.lcl_1sigma,
            beyond2_up=values > b.ucl_2sigma,
            beyond2_down=values < b.lcl_2sigma,
            beyond3=(values > b.ucl) | (values < b.lcl),
        )


def _run_lengths(mask: BoolArray) -> NDArray[np.int64]:
    """Length of the run of True values ending at each position (0 where False)."""
    out = np.zeros(mask.shape, dtype=np.int64)
    run = 0
    for i, flag in enumerate(mask.tolist()):
        run = run + 1 if flag else 0
        out[i] = run
    return out


def _runs(mask: BoolArray, length: int) -> BoolArray:
    return _run_lengths(mask) >= length


def _m_of_n(mask: BoolArray, m: int, n: int) -> BoolArray:
    """True at i when mask[i] and at least m of the (up to) n points ending at i are True."""
    csum = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(mask, dtype=np.int64)])
    idx = np.arange(mask.size)
    window = csum[idx + 1] - csum[np.maximum(idx + 1 - n, 0)]
    fired: BoolArray = mask & (window >= m)
    return fired


def _step_runs(values: FloatArray, predicate: Callable[[FloatArray], BoolArray], steps: int) -> BoolArray:
    """True at point i when the last ``steps`` differences ending at i all satisfy ``predicate``."""
    fired = np.zeros(values.shape, dtype=bool)
    if values.size >= 2:
        fired[1:] = _runs(predicate(np.diff(values)), steps)
    return fired


def _alternating(values: FloatArray, points: int) -> BoolArray:
    fired = np.zeros(values.shape, dtype=bool)
    if values.size >= 3:
        sign = np.sign(np.diff(values))
        alternates = (sign[1:] * sign[:-1]) < 0  # consecutive differences of opposite, non-zero sign
        fired[2:] = _runs(alternates, points - 2)
    return fired


def _we1(z: _Zones) -> BoolArray:
    return z.beyond3


def _two_of_three(z: _Zones) -> BoolArray:
    return _m_of_n(z.beyond2_up, 2, 3) | _m_of_n(z.beyond2_down, 2, 3)


def _four_of_five(z: _Zones) -> BoolArray:
    return _m_of_n(z.beyond1_up, 4, 5) | _m_of_n(z.beyond1_down, 4, 5)


def _same_side(length: int) -> Callable[[_Zones], BoolArray]:
    def rule(z: _Zones) -> BoolArray:
        return _runs(z.above, length) | _runs(z.below, length)

    return rule


def _trend(z: _Zones) -> BoolArray:
    return _step_runs(z.values, lambda d: d > 0, 5) | _step_runs(z.values, lambda d: d < 0, 5)


def _alternate(z: _Zones) -> BoolArray:
    return _alternating(z.values, 14)


def _stratification(z: _Zones) -> BoolArray:
    return _runs(~(z.beyond1_up | z.beyond1_down), 15)


def _mixture(z: _Zones) -> BoolArray:
    return _runs(z.beyond1_up | z.beyond1_down, 8)


@dataclass(frozen=True)
class RuleViolation:
    """One rule that fired: its id, name and the 0-based indices where it fired."""

    rule_id: str
    name: str
    indices: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "name": self.name, "indices": list(self.indices)}


@dataclass(frozen=True)
class Rule:
    """A run rule; call it with the plotted values and the limits to get the indices where it fires."""

    id: str
    name: str
    ruleset: str
    _test: Callable[[_Zones], BoolArray]

    def __call__(self, values: ArrayLike, limits: ChartLimits | Bounds) -> IndexArray:
        clean, positions, bounds = _prepare(values, limits)
        fired = self._test(_Zones.classify(clean, bounds))
        return positions[np.flatnonzero(fired)]


WESTERN_ELECTRIC: tuple[Rule, ...] = (
    Rule("WE1", "One point beyond the 3-sigma control limits", "we", _we1),
    Rule("WE2", "Two of three consecutive points beyond 2 sigma on the same side", "we", _two_of_three),
    Rule("WE3", "Four of five consecutive points beyond 1 sigma on the same side", "we", _four_of_five),
    Rule("WE4", "Eight consecutive points on the same side of the centre line", "we", _same_side(8)),
)
NELSON: tuple[Rule, ...] = (
    Rule("N1", "One point beyond 3 sigma", "nelson", _we1),
    Rule("N2", "Nine points in a row on the same side of the centre line", "nelson", _same_side(9)),
    Rule("N3", "Six points in a row steadily increasing or decreasing", "nelson", _trend),
    Rule("N4", "Fourteen points in a row alternating up and down", "nelson", _alternate),
    Rule("N5", "Two of three points in a row beyond 2 sigma on the same side", "nelson", _two_of_three),
    Rule("N6", "Four of five points in a row beyond 1 sigma on the same side", "nelson", _four_of_five),
    Rule("N7", "Fifteen points in a row within 1 sigma of the centre line", "nelson", _stratification),
    Rule("N8", "Eight points in a row beyond 1 sigma on either side of the centre line", "nelson", _mixture),
)
#: Every rule by id.
RULES: dict[str, Rule] = {rule.id: rule for rule in (*WESTERN_ELECTRIC, *NELSON)}

_RULESETS = {"nelson": NELSON, "we": WESTERN_ELECTRIC, "western_electric": WESTERN_ELECTRIC}


def select_rules(rules: str | Sequence[str]) -> tuple[Rule, ...]:
    """``"nelson"``, ``"we"`` (``"western_electric"``), or a sequence of rule ids such as ``["N1", "N2"]``."""
    if isinstance(rules, str):
        key = rules.lower()
        if key in _RULESETS:
            return _RULESETS[key]
        rules = [rules]
    chosen = []
    for rule_id in rules:
        rule = RULES.get(str(rule_id).upper())
        if rule is None:
            raise SpcError(f"unknown rule {rule_id!r}; use 'nelson', 'we' or rule ids {', '.join(RULES)}")
        chosen.append(rule)
    return tuple(chosen)


def _prepare(values: ArrayLike, limits: ChartLimits | Bounds) -> tuple[FloatArray, IndexArray, Bounds]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise SpcError(f"run rules need a 1-D series of plotted values, got shape {arr.shape}")
    if isinstance(limits, ChartLimits):
        if limits.chart in {"ewma", "cusum"}:
            raise SpcError(
                f"run rules do not apply to {limits.chart.upper()} statistics (successive points are "
                "correlated); use the chart's out-of-control points instead"
            )
        bounds = limits.bounds()
    else:
        bounds = limits
    keep = np.isfinite(arr)
    positions = np.flatnonzero(keep)

    def pick(a: FloatArray) -> FloatArray:
        full = np.broadcast_to(np.asarray(a, dtype=np.float64), arr.shape)
        return full[keep]

    clean_bounds = Bounds(
        centre=pick(bounds.centre),
        lcl=pick(bounds.lcl),
        ucl=pick(bounds.ucl),
        lcl_1sigma=pick(bounds.lcl_1sigma),
        ucl_1sigma=pick(bounds.ucl_1sigma),
        lcl_2sigma=pick(bounds.lcl_2sigma),
        ucl_2sigma=pick(bounds.ucl_2sigma),
    )
    return arr[keep], positions, clean_bounds


def check(
    values: ArrayLike, limits: ChartLimits | Bounds, rules: str | Sequence[str] = "nelson"
) -> dict[str, IndexArray]:
    """Indices where each selected rule fires, by rule id (every selected rule, possibly empty)."""
    selected = select_rules(rules)
    clean, positions, bounds = _prepare(values, limits)
    zones = _Zones.classify(clean, bounds)
    return {rule.id: positions[np.flatnonzero(rule._test(zones))] for rule in selected}


def violations(
    values: ArrayLike, limits: ChartLimits | Bounds, rules: str | Sequence[str] = "nelson"
) -> list[RuleViolation]:
    """The rules that fire on ``values`` against ``limits``, in rule order, with their indices.

    ``rules`` is ``"nelson"`` (default), ``"we"`` or a sequence of rule ids. ``limits`` is a
    :class:`ChartLimits` (constant limits) or :class:`Bounds` (per-point limits, e.g. a p chart with
    variable sample sizes; :meth:`ChartResult.violations` does this for you).
    """
    found = check(values, limits, rules)
    return [
        RuleViolation(rule_id, RULES[rule_id].name, tuple(int(i) for i in idx))
        for rule_id, idx in found.items()
        if idx.size
    ]
