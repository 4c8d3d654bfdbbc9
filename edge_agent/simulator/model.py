"""A seeded model of a line of hydraulic presses: stroke cycles, hydraulics, heat, wear faults.

Pure computation (numpy, no I/O): :class:`PressLine` advances every press at once with
``step(dt)`` and ``values(press)`` returns the signals of ``aas_models/specs/hydraulic-press.yaml``
(:data:`SIGNALS`). The same seed and the same sequence of ``step`` and ``inject`` calls give the same
values, bit for bit.

The press (a 200 t four-column press: 250 bar gives 2,000 kN, so 8 kN per bar) repeats
============  ================================================================================
phase         what happens
============  ================================================================================
load          ram at top dead centre while the part is changed (``load_time``, jittered ±8 %)
approach      fast close at ``approach_speed`` to the tool contact; the accumulator supplies flow
press         forming at ``pressing_speed``: pressure rises with the draw depth toward the set pressure
hold          pressure held at the set pressure for ``hold_time`` (longer if it is not reached yet)
decompress    pressure released through the valve down to ``decompress_pressure``
return        ram back up to top dead centre at ``return_speed``; the part is inspected (OK/NG)
============  ================================================================================
Pressure follows a first-order lag (the valve's time constant), the oil temperature a heat balance
of pump losses against the cooler and the surroundings (``thermal_time_constant``), motor current
and vibration the pump's load. ``CycleTime`` is the time between two cycle completions.

Faults follow the failure modes of the UCI hydraulic test-rig data set (Helwig et al., 2015): each has
a severity 0..1 that ramps in from an onset time, and :func:`dataset_condition` gives the data set's
equivalent condition value:

===============  ========================  ==========================================================
kind             data set: healthy -> 1.0  signature in this model
===============  ========================  ==========================================================
``cooler``       cooler 100 % -> 3 %       cooling power drops: oil temperature rises (about +25 K at
                                           1.0, as 100 -> 3 % gives +19 K on the rig), vibration rises
                                           a little with the thinner oil, NG rate up when oil > 55 °C
``valve``        valve 100 % -> 73 %       slower pressure rise (time constant x7), switching dead time
                                           at every phase change, lower peak force (-10 %), longer
                                           cycle, more current (throttling) and NG parts
``pump``         leakage 0 -> 2            internal leakage: lower pressure and force (-18 %), slower
                                           pressing, higher motor current (makes up the leak flow),
                                           higher vibration (+60 %), more heat, NG rate up
``accumulator``  130 bar -> 90 bar         pressure dip at cycle start, slower approach (longer cycle),
                                           more pressure ripple, pump recharging while loading
===============  ========================  ==========================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

#: The signals of the hydraulic-press spec, in its order (``values()`` keys).
SIGNALS: tuple[str, ...] = (
    "RamPosition", "HydraulicPressure", "PressForce", "OilTemperature", "MotorCurrent", "Vibration",
    "CycleCounter", "CycleTime", "PartQuality",
)
#: The float-valued signals (in :data:`SIGNALS` order).
ANALOG_SIGNALS: tuple[str, ...] = (
    "RamPosition", "HydraulicPressure", "PressForce", "OilTemperature", "MotorCurrent", "Vibration", "CycleTime",
)
#: Units of the signals (as in the spec).
UNITS: dict[str, str] = {
    "RamPosition": "mm", "HydraulicPressure": "bar", "PressForce": "kN", "OilTemperature": "°C",
    "MotorCurrent": "A", "Vibration": "mm/s", "CycleCounter": "", "CycleTime": "s", "PartQuality": "",
}

#: Measuring ranges of the analog signals (OPC UA EURange): the press's stroke, maximum working
#: pressure and nominal force, and what the sensors on such a press usually span.
RANGES: dict[str, tuple[float, float]] = {
    "RamPosition": (0.0, 800.0), "HydraulicPressure": (0.0, 250.0), "PressForce": (0.0, 2000.0),
    "OilTemperature": (0.0, 100.0), "MotorCurrent": (0.0, 100.0), "Vibration": (0.0, 20.0), "CycleTime": (0.0, 60.0),
}

SignalValue = float | int | str


class UnknownPressError(LookupError):
    """A press name or index that the line does not have."""


class FaultKind(StrEnum):
    """The four failure modes of the hydraulic test-rig data set."""

    COOLER = "cooler"
    VALVE = "valve"
    PUMP = "pump"
    ACCUMULATOR = "accumulator"


_KINDS: tuple[FaultKind, ...] = tuple(FaultKind)


class Phase(IntEnum):
    LOAD = 0
    APPROACH = 1
    PRESS = 2
    HOLD = 3
    DECOMPRESS = 4
    RETURN = 5


#: Per fault kind: the data set's condition value of a healthy component and at its worst grade, and
#: what the value is.
DATASET_RANGES: dict[FaultKind, tuple[float, float, str]] = {
    FaultKind.COOLER: (100.0, 3.0, "cooler efficiency %"),
    FaultKind.VALVE: (100.0, 73.0, "valve condition %"),
    FaultKind.PUMP: (0.0, 2.0, "internal pump leakage grade"),
    FaultKind.ACCUMULATOR: (130.0, 90.0, "accumulator pressure bar"),
}


def dataset_condition(kind: FaultKind | str, severity: float) -> float:
    """The UCI hydraulic data set's condition value for a severity 0..1 (linear between its extremes):
    cooler efficiency % (100 -> 3), valve condition % (100 -> 73), internal pump leakage (0 -> 2),
    accumulator pressure bar (130 -> 90)."""
    s = min(max(float(severity), 0.0), 1.0)
    healthy, worst, _ = DATASET_RANGES[FaultKind(kind)]
    return healthy + (worst - healthy) * s


def severity_for_condition(kind: FaultKind | str, condition: float) -> float:
    """The severity 0..1 of a data set condition value (the inverse of :func:`dataset_condition`), e.g.
    cooler 20 % -> 0.825; ValueError naming the range when it is outside the data set's."""
    kind = FaultKind(kind)
    healthy, worst, what = DATASET_RANGES[kind]
    severity = (float(condition) - healthy) / (worst - healthy)
    if not -1e-9 <= severity <= 1.0 + 1e-9:
        low, high = sorted((healthy, worst))
        raise ValueError(f"condition {condition:g} is outside the data set's {kind.value} range: {what} "
                         f"from {low:g} to {high:g}")
    return min(max(severity, 0.0), 1.0)


@dataclass(frozen=True)
class Fault:
    """A fault on one press: its severity goes from ``start_severity`` at ``onset`` (s of model time)
    linearly to ``severity`` over ``ramp`` seconds, and stays there."""

    press: int
    kind: FaultKind
    severity: float
    onset: float = 0.0
    ramp: float = 0.0
    start_severity: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if not 0.0 <= self.severity <= 1.0 or not 0.0 <= self.start_severity <= 1.0:
            raise ValueError(f"fault severity must be within 0..1, got {self.severity}")
        if self.ramp < 0 or self.onset < 0:
            raise ValueError("fault onset and ramp must not be negative")

    def at(self, t: float) -> float:
        """Severity at model time ``t``."""
        if t < self.onset:
            return self.start_severity
        frac = 1.0 if self.ramp <= 0 else min((t - self.onset) / self.ramp, 1.0)
        return self.start_severity + (self.severity - self.start_severity) * frac


@dataclass(frozen=True)
class PressParams:
    """The healthy press and its process. Defaults: a 200 t press drawing a 50 mm deep part in ~10 s."""

    contact_mm: float = 300.0            # ram position where the tool meets the blank
    bottom_mm: float = 350.0             # bottom of the working stroke
    approach_speed: float = 200.0        # mm/s
    pressing_speed: float = 15.0         # mm/s
    return_speed: float = 180.0          # mm/s
    load_time: float = 1.5               # s at the top for the part change
    hold_time: float = 1.0               # s at the set pressure
    hold_timeout: float = 2.5            # s more at most, waiting for the set pressure
    set_pressure: float = 220.0          # bar (1,760 kN)
    approach_pressure: float = 30.0      # bar while closing
    return_pressure: float = 10.0        # bar in the main cylinder while opening
    standby_pressure: float = 5.0        # bar
    decompress_pressure: float = 40.0    # bar: the ram returns below this
    force_per_bar: float = 8.0           # kN/bar (2,000 kN at 250 bar)
    valve_tau: float = 0.12              # s, time constant of the pressure response
    decompress_tau: float = 0.15         # s
    valve_dead_time: float = 0.35        # s of switching delay per phase change at valve severity 1
    ambient: float = 25.0                # °C, cooling water / hall
    oil_rise: float = 20.0               # K above ambient at steady state, healthy (oil ~45 °C)
    thermal_time_constant: float = 600.0  # s
    idle_current: float = 22.0           # A, motor at no load
    rated_current: float = 68.0          # A, 37 kW at 400 V
    vibration_base: float = 1.1          # mm/s RMS at mid load
    ng_base: float = 0.01                # NG probability of a healthy press

    def nominal_cycle_time(self) -> float:
        """Healthy cycle time in seconds (load, approach, press, hold, decompress, return)."""
        decompress = self.decompress_tau * math.log(
            (self.set_pressure - self.standby_pressure) / (self.decompress_pressure - self.standby_pressure))
        return (self.load_time + self.contact_mm / self.approach_speed
                + (self.bottom_mm - self.contact_mm) / self.pressing_speed + self.hold_time + decompress
                + self.bottom_mm / self.return_speed)


class SignalSource(Protocol):
    """What the servers serve: the model (:class:`PressLine`) or a CSV replay."""

    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def time(self) -> float: ...

    def step(self, dt: float) -> None: ...

    def values(self, press: int | str) -> dict[str, SignalValue]: ...


# Heat balance, normalised so that a healthy cooler gives a conductance of 1: on the test rig,
# cooler 100 % / 20 % / 3 % give ~11 / 20.5 / 30 K above the cooling water; G = UA_c*e + UA_0 with
# UA_0 = 0.42 (hall, tank walls) fits the first two.
_UA_COOLER = 0.58
_UA_OTHER = 0.42
#: Mean load of a healthy cycle (measured on the model); scales the heat input so a healthy press
#: settles at ``ambient + oil_rise``.
_MEAN_LOAD = 0.45
_MAX_SUBSTEP = 0.1
_F64 = NDArray[np.float64]

# Per phase: motor load (fraction of rated above idle) = base + per_bar * p / set_pressure.
_BASE_LOAD = np.array([0.05, 0.25, 0.35, 0.15, 0.10, 0.55])
_PRESSURE_LOAD = np.array([0.0, 0.0, 0.6, 0.45, 0.0, 0.0])
#: Resolution of the readings: RamPosition .. Vibration, CycleTime.
_SCALE = np.array([[100.0], [100.0], [10.0], [100.0], [100.0], [1000.0], [100.0]])
_LOAD, _APPROACH, _PRESS, _HOLD, _DECOMPRESS, _RETURN = range(6)
_PHASES = 6


def _by_phase(phase: NDArray[np.int64], choices: tuple[Any, ...]) -> NDArray[Any]:
    """Per press, the choice for its phase (load, approach, press, hold, decompress, return)."""
    return np.choose(phase, cast(Any, choices))


@dataclass
class _State:
    phase: NDArray[np.int64]
    phase_t: _F64
    pos: _F64
    p: _F64
    temp: _F64
    cur: _F64
    vib: _F64
    cycle_start: _F64
    cycle_time: _F64
    count: NDArray[np.int64]
    ng: NDArray[np.bool_]
    peak_p: _F64
    dwell: _F64
    faults: dict[tuple[int, FaultKind], list[Fault]] = field(default_factory=dict)


class PressLine:
    """N presses, stepped together. ``presses`` is a count (names Press1..PressN) or the names.

    ``counter_start``: each press's CycleCounter at time 0 (None, or a None entry: a seeded number of past
    cycles). ``faults`` are active from the start (each ramps in from its onset).
    """

    def __init__(self, presses: int | Sequence[str], *, seed: int = 0, params: PressParams | None = None,
                 faults: Iterable[Fault] = (), counter_start: Sequence[int | None] | None = None) -> None:
        if isinstance(presses, int):
            if presses < 1:
                raise ValueError("a press line needs at least one press")
            names: tuple[str, ...] = tuple(f"Press{i + 1}" for i in range(presses))
        else:
            names = tuple(presses)
            if not names or len(set(names)) != len(names):
                raise ValueError("press names must be given, each once")
        self._names = names
        self._index = {name: i for i, name in enumerate(names)}
        n = len(names)
        self.params = params or PressParams()
        self._rng = np.random.default_rng(seed)
        rng = self._rng
        prm = self.params
        # Individual presses differ a little (set-up, location in the hall, pump).
        self._set_p = prm.set_pressure * (1.0 + 0.01 * rng.standard_normal(n))
        self._ambient = prm.ambient + 1.0 * rng.standard_normal(n)
        self._vib_base = prm.vibration_base * (1.0 + 0.05 * rng.standard_normal(n))
        offsets = rng.uniform(0.0, prm.nominal_cycle_time(), n)  # presses do not run in lockstep
        start_counts = rng.integers(100_000, 2_000_000, n)
        if counter_start is not None:
            if len(counter_start) != n:
                raise ValueError(f"counter_start needs {n} values, one per press")
            start_counts = np.array([c if c is not None else d for c, d in zip(counter_start, start_counts,
                                                                               strict=True)], dtype=np.int64)
        t0 = self._ambient + prm.oil_rise + 0.3 * rng.standard_normal(n)
        self._s = _State(
            phase=np.zeros(n, dtype=np.int64), phase_t=-offsets, pos=np.zeros(n),
            p=np.full(n, prm.standby_pressure), temp=t0, cur=np.full(n, prm.idle_current),
            vib=self._vib_base * 0.6, cycle_start=offsets.copy(), cycle_time=np.zeros(n),
            count=start_counts.astype(np.int64), ng=np.zeros(n, dtype=np.bool_), peak_p=np.zeros(n),
            dwell=np.full(n, prm.load_time),
        )
        self._t = 0.0
        self._sev = np.zeros((len(_KINDS), n))
        for fault in faults:
            self._check_press(fault.press)
            self._s.faults.setdefault((fault.press, fault.kind), []).append(fault)
        self._out = np.zeros((len(ANALOG_SIGNALS), n))
        self._rows: list[list[float]] | None = None
        self._update_severities()
        self._measure()

    # -- queries ---------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def time(self) -> float:
        """Model time in seconds since the start."""
        return self._t

    def index(self, press: int | str) -> int:
        """Index of a press given by index or name."""
        if isinstance(press, str):
            try:
                return self._index[press]
            except KeyError:
                raise UnknownPressError(f"no press named {press!r}; the presses are {', '.join(self._names)}") from None
        return self._check_press(press)

    def values(self, press: int | str) -> dict[str, SignalValue]:
        """The press's current signal values, keyed by the spec's signal names."""
        i = self.index(press)
        if self._rows is None:
            self._rows = self._out.T.tolist()
        row = self._rows[i]
        s = self._s
        return {
            "RamPosition": row[0], "HydraulicPressure": row[1], "PressForce": row[2], "OilTemperature": row[3],
            "MotorCurrent": row[4], "Vibration": row[5], "CycleCounter": int(s.count[i]), "CycleTime": row[6],
            "PartQuality": "NG" if s.ng[i] else "OK",
        }

    def cycle_count(self, press: int | str) -> int:
        return int(self._s.count[self.index(press)])

    def phase(self, press: int | str) -> Phase:
        return Phase(int(self._s.phase[self.index(press)]))

    def severity(self, press: int | str, kind: FaultKind | str) -> float:
        """Current severity 0..1 of a fault kind on a press."""
        return float(self._sev[_KINDS.index(FaultKind(kind)), self.index(press)])

    def condition(self, press: int | str) -> dict[str, float]:
        """The press's condition in the hydraulic data set's terms (see :func:`dataset_condition`)."""
        i = self.index(press)
        return {kind.value: dataset_condition(kind, float(self._sev[k, i])) for k, kind in enumerate(_KINDS)}

    def faults(self) -> list[Fault]:
        return [f for fs in self._s.faults.values() for f in fs]

    # -- control ---------------------------------------------------------------------------------

    def inject(self, press: int | str, kind: FaultKind | str, severity: float, *, ramp: float = 0.0,
               onset: float | None = None) -> Fault:
        """Set a fault's severity (0 clears it) from ``onset`` (default: now), ramping from its current
        severity over ``ramp`` seconds; replaces earlier faults of that kind on that press."""
        i = self.index(press)
        kind = FaultKind(kind)
        start = self._t if onset is None else max(onset, self._t)
        fault = Fault(i, kind, float(severity), onset=start, ramp=ramp, start_severity=self.severity(i, kind))
        self._s.faults[(i, kind)] = [fault]
        self._update_severities()
        return fault

    def step(self, dt: float) -> None:
        """Advance the model by ``dt`` seconds (in sub-steps of at most 0.1 s)."""
        if dt <= 0:
            raise ValueError("dt must be positive")
        n = max(1, math.ceil(dt / _MAX_SUBSTEP - 1e-9))
        h = dt / n
        for _ in range(n):
            self._substep(h)
        self._measure()

    # -- internals -------------------------------------------------------------------------------

    def _check_press(self, i: int) -> int:
        if not 0 <= i < len(self._names):
            raise UnknownPressError(f"press index {i} is out of range 0..{len(self._names) - 1}")
        return i

    def _update_severities(self) -> None:
        self._sev[:] = 0.0
        for (i, kind), faults in self._s.faults.items():
            self._sev[_KINDS.index(kind), i] = max(f.at(self._t) for f in faults)

    def _substep(self, dt: float) -> None:
        s, prm = self._s, self.params
        self._t += dt
        t = self._t
        if s.faults:
            self._update_severities()
        sc, sv, sp, sa = self._sev
        u = self._rng.random((2, len(self._names)))

        s.phase_t += dt
        ph, pt = s.phase, s.phase_t
        switched = pt >= 0.0  # the valve has switched to the current phase
        in_load, in_app, in_force = ph == _LOAD, ph == _APPROACH, (ph == _PRESS) | (ph == _HOLD)

        # Pressure target, ram speed and pressure time constant of each press's phase (np.choose
        # picks by phase: load, approach, press, hold, decompress, return).
        p_reach = self._set_p * (1.0 - 0.18 * sp) * (1.0 - 0.10 * sv)
        dip = sa * np.exp(-np.maximum(pt, 0.0) / 1.0)  # the soft accumulator's pressure dip at cycle start
        progress = np.clip((s.pos - prm.contact_mm) / (prm.bottom_mm - prm.contact_mm), 0.0, 1.0)
        approach_speed = prm.approach_speed * (1.0 - 0.35 * sa)
        pressing_speed = prm.pressing_speed * (1.0 - 0.30 * sp)
        target = _by_phase(ph, (
            prm.standby_pressure, prm.approach_pressure * (1.0 - 0.8 * dip),
            prm.approach_pressure + (p_reach - prm.approach_pressure) * progress ** 1.3, p_reach,
            prm.standby_pressure, prm.return_pressure))
        speed = _by_phase(ph, (0.0, approach_speed * (1.0 - 0.5 * dip), pressing_speed, 0.0, 0.0,
                               -prm.return_speed * (1.0 - 0.10 * sp)))
        valve = 1.0 + sv
        tau = np.where(ph == _DECOMPRESS, prm.decompress_tau * (1.0 + 2.0 * sv), prm.valve_tau * (valve + 5.0 * sv))
        alpha = np.where(switched, -np.expm1(-dt / tau), 0.0)
        s.p += (target - s.p) * alpha
        new_pos = s.pos + np.where(switched, speed * dt, 0.0)  # unclipped: the overshoot times transitions
        s.pos = np.clip(new_pos, 0.0, prm.bottom_mm)
        s.peak_p = np.where(in_force, np.maximum(s.peak_p, s.p), s.peak_p)

        # Motor current (RMS, smoothed), heat and vibration from the pump's load.
        ratio = s.p / self._set_p
        load = _BASE_LOAD[ph] + _PRESSURE_LOAD[ph] * ratio
        load += sp * (0.05 + 0.4 * ratio) + 0.12 * sv * in_force + 0.25 * sa * in_load
        current = prm.idle_current + (prm.rated_current - prm.idle_current) * load
        s.cur += (current - s.cur) * -math.expm1(-dt / 0.2)
        heat = prm.oil_rise * (0.4 + load) / (0.4 + _MEAN_LOAD) * (1.0 + 0.05 * sv)
        conductance = _UA_COOLER * (1.0 - 0.97 * sc) + _UA_OTHER
        s.temp += dt / prm.thermal_time_constant * (heat - conductance * (s.temp - self._ambient))
        thin_oil = np.clip(1.0 + 0.012 * (s.temp - self._ambient - prm.oil_rise), 0.7, 2.0)
        vib = self._vib_base * (0.55 + 0.9 * load) * (1.0 + 0.6 * sp) * thin_oil + 0.25 * sa * in_app
        s.vib += (vib - s.vib) * -math.expm1(-dt)

        # Phase changes; every valve switch costs the valve's dead time. The time a condition was
        # already true within this step (``late``) counts in the next phase, so the cycle time does
        # not depend on the step size.
        in_hold = ph == _HOLD
        ends = _by_phase(ph, (
            pt >= s.dwell, new_pos >= prm.contact_mm, new_pos >= prm.bottom_mm,
            in_hold & (pt >= prm.hold_time) & ((s.p >= 0.97 * p_reach) | (pt >= prm.hold_time + prm.hold_timeout)),
            switched & (s.p <= prm.decompress_pressure), new_pos <= 0.0))
        if not ends.any():
            return
        v = np.maximum(np.abs(speed), 1e-9)
        late = np.clip(_by_phase(ph, (
            pt - s.dwell, (new_pos - prm.contact_mm) / v, (new_pos - prm.bottom_mm) / v, pt - prm.hold_time,
            0.0, -new_pos / v)), 0.0, dt)
        done = ends & (ph == _RETURN)
        dead = np.where(in_load | done, 0.0, prm.valve_dead_time * sv)
        run = np.maximum(late - dead, 0.0)  # time already moving in the new phase
        s.pos = np.where(ends, _by_phase(ph, (
            approach_speed * (1.0 - 0.5 * sa) * run, prm.contact_mm + pressing_speed * run, s.pos, s.pos, s.pos,
            0.0)), s.pos)
        s.phase = np.where(ends, (ph + 1) % _PHASES, ph)
        s.phase_t = np.where(ends, late - dead, pt)
        if done.any():
            deficit = np.maximum(0.0, 0.97 - s.peak_p / self._set_p)
            hot = np.clip((s.temp - 55.0) / 20.0, 0.0, 1.0)
            p_ng = np.clip(prm.ng_base + 4.0 * deficit + 0.25 * hot + 0.12 * sa + 0.03 * sv, 0.0, 0.95)
            end = t - late
            s.ng = np.where(done, u[0] < p_ng, s.ng)
            s.count = np.where(done, s.count + 1, s.count)
            s.cycle_time = np.where(done, end - s.cycle_start, s.cycle_time)
            s.cycle_start = np.where(done, end, s.cycle_start)
            s.peak_p = np.where(done, 0.0, s.peak_p)
            s.dwell = np.where(done, prm.load_time * (0.92 + 0.16 * u[1]), s.dwell)

    def _measure(self) -> None:
        """Sensor readings of the current state: noise, resolution."""
        s, prm = self._s, self.params
        noise = self._rng.standard_normal((6, len(self._names)))
        contact = (s.phase >= _PRESS) & (s.phase <= _DECOMPRESS)
        out = self._out
        out[0] = s.pos + 0.02 * noise[0]
        out[1] = np.maximum(s.p + 0.4 * (1.0 + 2.0 * self._sev[3]) * noise[1], 0.0)
        out[2] = np.where(contact, np.maximum(prm.force_per_bar * (s.p - prm.approach_pressure) + 2.0 * noise[2], 0.0),
                          np.abs(0.3 * noise[2]))
        out[3] = s.temp + 0.05 * noise[3]
        out[4] = s.cur + 0.3 * noise[4]
        out[5] = np.maximum(s.vib * (1.0 + 0.03 * noise[5]), 0.0)
        out[6] = s.cycle_time
        np.multiply(out, _SCALE, out=out)
        np.rint(out, out=out)
        np.divide(out, _SCALE, out=out)
        self._rows = None

