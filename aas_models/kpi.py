"""Production KPIs (ISO 22400-2): OEE with its weighted roll-up, MTBF and MTTR from state history.

Pure functions on plain numbers, shared by the dashboards and anything else that reports KPIs, so
every part computes them the same way. ISO 22400-2 terms, all times in seconds:

========  ==========================================================================================
PBT       planned busy time: the observed window minus planned stops (breaks, planned maintenance)
APT       actual production time: time in state ``producing``
ADET      actual unit down time: time in state ``down`` (unplanned stops, failures, repairs)
PQ        produced quantity (good and bad parts)
GQ        good quantity
PRI       planned run time per item: the ideal cycle time
========  ==========================================================================================

``availability = APT / PBT``, ``performance = PRI * PQ / APT``, ``quality = GQ / PQ`` and
``OEE = availability * performance * quality`` (= ``PRI * GQ / PBT``, the share of planned time spent
making good parts at ideal speed). A ratio whose denominator is zero is ``None`` ("not measured"),
never 0 or 1.

Roll-up (machine -> line -> factory) sums the ISO quantities and recomputes the ratios, so each
factor is weighted by its own denominator: availability by PBT, performance by APT, quality by PQ.
A machine that was planned for 8 h weighs twice one planned for 4 h; averaging the percentages
would not.

MTBF and MTTR come from a state history: a *failure* is an entry into ``down`` from another state;
``MTBF = up time / failures`` (up time = producing + idle) and ``MTTR = down time / failures``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "MachineState",
    "Oee",
    "Reliability",
    "StateInterval",
    "durations",
    "oee",
    "oee_from_states",
    "reliability",
    "roll_up",
    "states_from_cycles",
]


class MachineState(StrEnum):
    """What a machine is doing; the categories ISO 22400-2's time model needs."""

    PRODUCING = "producing"
    IDLE = "idle"              # ready but not producing (waiting for material, operator): counts in PBT, not APT
    DOWN = "down"              # unplanned stop: failure or repair
    PLANNED_STOP = "planned-stop"  # break, planned maintenance, no order: outside PBT
    OFFLINE = "offline"        # no data: unknown, left out of every time


@dataclass(frozen=True)
class StateInterval:
    """The machine was in `state` from `start` (inclusive) to `end` (exclusive); UTC-aware times."""

    state: MachineState
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())


@dataclass(frozen=True)
class Oee:
    """The ISO 22400-2 quantities of one machine or group and the ratios derived from them."""

    pbt: float
    apt: float
    produced: float
    good: float
    ideal_output_time: float
    """PRI * PQ summed per machine (each machine has its own ideal cycle time)."""

    @property
    def availability(self) -> float | None:
        return _ratio(self.apt, self.pbt)

    @property
    def performance(self) -> float | None:
        return _ratio(self.ideal_output_time, self.apt)

    @property
    def quality(self) -> float | None:
        return _ratio(self.good, self.produced)

    @property
    def oee(self) -> float | None:
        a, p, q = self.availability, self.performance, self.quality
        return None if a is None or p is None or q is None else a * p * q


@dataclass(frozen=True)
class Reliability:
    failures: int
    up_seconds: float
    down_seconds: float

    @property
    def mtbf(self) -> float | None:
        """Mean operating time between failures in seconds; None without a failure."""
        return self.up_seconds / self.failures if self.failures else None

    @property
    def mttr(self) -> float | None:
        """Mean time to repair in seconds; None without a failure."""
        return self.down_seconds / self.failures if self.failures else None


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def oee(pbt: float, apt: float, produced: float, good: float, ideal_cycle_time: float) -> Oee:
    """OEE of one machine from its ISO quantities; raises ValueError on impossible inputs."""
    if min(pbt, apt, produced, good, ideal_cycle_time) < 0:
        raise ValueError("times and quantities must not be negative")
    if apt > pbt:
        raise ValueError(f"actual production time {apt} s exceeds planned busy time {pbt} s")
    if good > produced:
        raise ValueError(f"good quantity {good} exceeds produced quantity {produced}")
    return Oee(pbt, apt, produced, good, ideal_cycle_time * produced)


def durations(intervals: Iterable[StateInterval]) -> dict[MachineState, float]:
    """Seconds spent in each state."""
    out = dict.fromkeys(MachineState, 0.0)
    for item in intervals:
        out[item.state] += item.seconds
    return out


def oee_from_states(intervals: Iterable[StateInterval], produced: float, good: float,
                    ideal_cycle_time: float) -> Oee:
    """OEE from a state history: PBT = producing + idle + down, APT = producing."""
    d = durations(intervals)
    pbt = d[MachineState.PRODUCING] + d[MachineState.IDLE] + d[MachineState.DOWN]
    return oee(pbt, d[MachineState.PRODUCING], produced, good, ideal_cycle_time)


def roll_up(parts: Iterable[Oee]) -> Oee:
    """The OEE of a line (of machines) or a factory (of lines): quantities summed, ratios recomputed."""
    items = list(parts)
    return Oee(
        pbt=sum(p.pbt for p in items),
        apt=sum(p.apt for p in items),
        produced=sum(p.produced for p in items),
        good=sum(p.good for p in items),
        ideal_output_time=sum(p.ideal_output_time for p in items),
    )


def reliability(intervals: Sequence[StateInterval]) -> Reliability:
    """Failures, up time and down time of a state history (intervals in time order)."""
    failures = 0
    previous: MachineState | None = None
    for item in intervals:
        if item.state is MachineState.DOWN and previous is not MachineState.DOWN:
            failures += 1
        if item.state is not MachineState.OFFLINE:
            previous = item.state
    d = durations(intervals)
    return Reliability(failures, d[MachineState.PRODUCING] + d[MachineState.IDLE], d[MachineState.DOWN])


def states_from_cycles(cycle_ends: Sequence[datetime], start: datetime, end: datetime,
                       max_gap: float) -> list[StateInterval]:
    """A state history for a machine without a state signal, from the times its cycle counter rose.

    A cycle that completed at ``t`` ran during ``[t - max_gap, t]`` at most; where consecutive
    completions are further apart, the time before that was an unplanned stop (``down``). After the
    last completion the machine counts as producing while less than `max_gap` has passed (a cycle
    is under way), as down once more has. No cycle in the window gives one ``idle`` interval: a
    machine that never ran is not a failure.
    """
    times = sorted(t for t in cycle_ends if start <= t <= end)
    if not times:
        return [StateInterval(MachineState.IDLE, start, end)] if end > start else []
    gap = timedelta(seconds=max_gap)
    out: list[StateInterval] = []

    def add(state: MachineState, a: datetime, b: datetime) -> None:
        if b <= a:
            return
        if out and out[-1].state is state and out[-1].end == a:
            out[-1] = StateInterval(state, out[-1].start, b)
        else:
            out.append(StateInterval(state, a, b))

    previous = start
    for t in times:
        began = max(previous, t - gap)
        add(MachineState.DOWN, previous, began)
        add(MachineState.PRODUCING, began, t)
        previous = t
    add(MachineState.PRODUCING if end - previous <= gap else MachineState.DOWN, previous, end)
    return out
