"""Control-chart constants computed from their definitions.

For a normal sample of size ``n`` with standard deviation sigma (Montgomery, *Introduction to
Statistical Quality Control*, chapter 6 and Appendix VI):

* ``d2(n)`` = E[R] / sigma, the mean of the relative range W = R / sigma:
  ``d2 = integral over x of 1 - Phi(x)^n - (1 - Phi(x))^n``.
* ``d3(n)`` = sd(W): ``d3^2 = E[W^2] - d2^2`` with
  ``E[W^2] = 2 * integral_{w>0} integral_x P(min <= x, max > x + w) dx dw``
  and ``P(min <= x, max > y) = 1 - Phi(y)^n - (1 - Phi(x))^n + (Phi(y) - Phi(x))^n``.
* ``c4(n)`` = E[S] / sigma = sqrt(2 / (n - 1)) * Gamma(n / 2) / Gamma((n - 1) / 2).

and the derived 3-sigma factors ``A2 = 3 / (d2 sqrt n)``, ``A3 = 3 / (c4 sqrt n)``,
``B3, B4 = 1 -/+ 3 sqrt(1 - c4^2) / c4`` (B3 floored at 0), ``D3, D4 = 1 -/+ 3 d3 / d2`` (D3 floored
at 0).

The integrals are evaluated with Gauss-Legendre quadrature (numpy only); the results agree with the
exact ``d2(2) = 2 / sqrt(pi)`` to better than 1e-12.

Two modes:

* ``"exact"``: the values above at full double precision (default of the charts).
* ``"table"``: the values as printed in the published tables (Montgomery Appendix VI, ASTM):
  every constant rounded to 3 decimals, c4 to 4. Charts built with it reproduce hand calculations
  and the worked textbook examples (e.g. the piston-ring example's ``x-double-bar +/- A2 R-bar``
  with A2 = 0.577, and its R chart UCL ``D4 R-bar`` with D4 = 2.114). A few printed entries were
  derived by their authors from already rounded d2/d3 and differ from the correctly rounded value
  by one unit in the last decimal (e.g. D4 for n = 3: printed 2.574, exact 2.57459); ``"table"``
  mode gives the correctly rounded value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .errors import SubgroupSizeError

__all__ = ["TABLE_SIZES", "ConstantsMode", "Factors", "c4", "d2", "d3", "factors", "table"]

ConstantsMode = Literal["exact", "table"]

#: Subgroup sizes of the published tables.
TABLE_SIZES = range(2, 26)

_X_HALF_WIDTH = 12.0  # integrate x over [-12, 12]: Phi(-12) ~ 2e-33
_W_MAX = 16.0  # relative ranges beyond 16 sigma have negligible probability for any practical n
_NODES_X = 200  # converged: doubling both node counts changes d2, d3 by < 1e-10 (n = 2..1000)
_NODES_W = 120


@dataclass(frozen=True)
class Factors:
    """The constants for one subgroup size ``n`` (see the module docstring)."""

    n: int
    d2: float
    d3: float
    c4: float
    A2: float
    A3: float
    B3: float
    B4: float
    D3: float
    D4: float

    def to_dict(self) -> dict[str, float]:
        return {key: float(value) for key, value in asdict(self).items()}


def _phi_upper(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """1 - Phi(x), accurate in the upper tail."""
    erfc = np.frompyfunc(math.erfc, 1, 1)
    return np.asarray(erfc(x / math.sqrt(2.0)), dtype=np.float64) * 0.5


def _gauss(a: float, b: float, count: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    nodes, weights = np.polynomial.legendre.leggauss(count)
    half = 0.5 * (b - a)
    return (half * nodes + 0.5 * (a + b)).astype(np.float64), (half * weights).astype(np.float64)


@cache
def _grids() -> tuple[NDArray[np.float64], ...]:
    """Quadrature nodes/weights and the normal CDF on them (independent of n, computed once)."""
    # Composite rule on the x axis (two halves) keeps the node spacing small near the centre.
    xl, wl = _gauss(-_X_HALF_WIDTH, 0.0, _NODES_X // 2)
    xr, wr = _gauss(0.0, _X_HALF_WIDTH, _NODES_X // 2)
    x = np.concatenate([xl, xr])
    wx = np.concatenate([wl, wr])
    w, ww = _gauss(0.0, _W_MAX, _NODES_W)
    upper_x = _phi_upper(x)  # 1 - Phi(x)
    lower_x = _phi_upper(-x)  # Phi(x)
    y = x[None, :] + w[:, None]
    lower_y = _phi_upper(-y)  # Phi(x + w)
    between = np.clip(_phi_upper(x)[None, :] - _phi_upper(y), 0.0, 1.0)  # Phi(x + w) - Phi(x)
    return x, wx, w, ww, upper_x, lower_x, lower_y, between


def _check_n(n: int, minimum: int = 2) -> int:
    if isinstance(n, bool) or int(n) != n or n < minimum:
        raise SubgroupSizeError(
            f"subgroup size must be an integer >= {minimum}, got {n!r}; "
            "for individual measurements (size 1) use the I-MR chart"
        )
    return int(n)


@cache
def _d2_exact(n: int) -> float:
    _x, wx, _w, _ww, upper_x, lower_x, _ly, _b = _grids()
    integrand = 1.0 - lower_x**n - upper_x**n
    return float(np.dot(wx, integrand))


@cache
def _d3_exact(n: int) -> float:
    _x, wx, _w, ww, upper_x, _lx, lower_y, between = _grids()
    g = 1.0 - lower_y**n - upper_x[None, :] ** n + between**n
    second_moment = 2.0 * float(ww @ (g @ wx))
    return math.sqrt(max(second_moment - _d2_exact(n) ** 2, 0.0))


@cache
def _c4_exact(n: int) -> float:
    return math.sqrt(2.0 / (n - 1)) * math.exp(math.lgamma(n / 2.0) - math.lgamma((n - 1) / 2.0))


def d2(n: int, mode: ConstantsMode = "exact") -> float:
    """Mean of the relative range of ``n`` normal observations (E[R] / sigma)."""
    return factors(n, mode).d2


def d3(n: int, mode: ConstantsMode = "exact") -> float:
    """Standard deviation of the relative range of ``n`` normal observations (sd(R) / sigma)."""
    return factors(n, mode).d3


def c4(n: int, mode: ConstantsMode = "exact") -> float:
    """E[S] / sigma for ``n`` normal observations (S with divisor n - 1)."""
    return factors(n, mode).c4


def _derive(n: int, d2v: float, d3v: float, c4v: float) -> Factors:
    root_n = math.sqrt(n)
    spread_s = 3.0 * math.sqrt(max(1.0 - c4v * c4v, 0.0)) / c4v
    spread_r = 3.0 * d3v / d2v
    return Factors(
        n=n,
        d2=d2v,
        d3=d3v,
        c4=c4v,
        A2=3.0 / (d2v * root_n),
        A3=3.0 / (c4v * root_n),
        B3=max(0.0, 1.0 - spread_s),
        B4=1.0 + spread_s,
        D3=max(0.0, 1.0 - spread_r),
        D4=1.0 + spread_r,
    )


@cache
def factors(n: int, mode: ConstantsMode = "exact") -> Factors:
    """All constants for subgroup size ``n`` (>= 2) in the given mode (``"exact"`` or ``"table"``)."""
    n = _check_n(n)
    if mode == "exact":
        return _derive(n, _d2_exact(n), _d3_exact(n), _c4_exact(n))
    if mode == "table":
        exact = factors(n, "exact")
        printed = {key: round(value, 4 if key == "c4" else 3) for key, value in exact.to_dict().items() if key != "n"}
        return Factors(n=n, **printed)
    raise ValueError(f"constants mode must be 'exact' or 'table', got {mode!r}")


def table(mode: ConstantsMode = "exact", sizes: range = TABLE_SIZES) -> list[Factors]:
    """The constants for every size in ``sizes`` (n = 2..25 by default), like Appendix VI."""
    return [factors(n, mode) for n in sizes]
