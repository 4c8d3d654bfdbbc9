"""OEE, MTBF and MTTR of one asset from its history in the time-series store (aas_models.kpi does the
arithmetic; this module only turns the recorded signals into ISO 22400-2 quantities).

From the OperationalData signals over a window (default the last 8 h):
- state history: from a ``MachineState`` signal when the asset has one (producing, idle, down,
  planned-stop), otherwise from the times ``CycleCounter`` rose (:func:`aas_models.kpi.states_from_cycles`,
  a stop longer than three ideal cycles counts as down);
- produced quantity PQ: the rise of ``CycleCounter`` in the window;
- good quantity GQ: PQ times the share of ``OK`` among the ``PartQuality`` samples (OK/NG) in the window;
- ideal cycle time PRI: the TechnicalData property ``IdealCycleTime`` when the twin has one, else the
  shortest ``CycleTime`` recorded in the window (so performance is then an upper bound).
Without CycleCounter history the OEE is not measured (None).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from aas_models import kpi
from aas_models.timeseries.base import MAX_POINTS, Point, SeriesKey, TimeSeriesStore

WINDOW = dt.timedelta(hours=8)
_STATES = {s.value: s for s in kpi.MachineState}


@dataclass(frozen=True)
class Production:
    oee: kpi.Oee | None
    reliability: kpi.Reliability | None
    states: list[kpi.StateInterval]


async def _read(store: TimeSeriesStore, sm_id: str, signal: str, start: dt.datetime, end: dt.datetime) \
        -> list[Point]:
    return await store.read(SeriesKey(sm_id, f"{signal}.Value"), start, end, MAX_POINTS)


async def production(store: TimeSeriesStore, operational_id: str | None, now: dt.datetime,
                     window: dt.timedelta = WINDOW, ideal_cycle_time: float | None = None) -> Production:
    if operational_id is None:
        return Production(None, None, [])
    start = now - window
    counter = [p for p in await _read(store, operational_id, "CycleCounter", start, now)
               if isinstance(p.value, int | float) and not isinstance(p.value, bool)]
    if len(counter) < 2:
        return Production(None, None, [])
    if ideal_cycle_time is None:
        cycles = [float(p.value) for p in await _read(store, operational_id, "CycleTime", start, now)
                  if isinstance(p.value, int | float) and not isinstance(p.value, bool) and float(p.value) > 0]
        gaps = [(b.time - a.time).total_seconds() for a, b in itertools.pairwise(counter)
                if isinstance(b.value, int | float) and isinstance(a.value, int | float) and b.value > a.value]
        candidates = cycles or gaps
        ideal_cycle_time = min(candidates) if candidates else None
    if not ideal_cycle_time:
        return Production(None, None, [])
    states = await _states(store, operational_id, start, now, counter, 3 * ideal_cycle_time)
    produced = 0.0
    for a, b in itertools.pairwise(counter):
        rise = float(b.value) - float(a.value)  # type: ignore[arg-type]
        if rise > 0:
            produced += rise
    verdicts = [str(p.value).upper() for p in await _read(store, operational_id, "PartQuality", start, now)]
    judged = [v for v in verdicts if v in ("OK", "NG")]
    good = produced * (judged.count("OK") / len(judged)) if judged else produced
    d = kpi.durations(states)
    pbt = d[kpi.MachineState.PRODUCING] + d[kpi.MachineState.IDLE] + d[kpi.MachineState.DOWN]
    apt = d[kpi.MachineState.PRODUCING]
    result = kpi.Oee(pbt, apt, produced, good, ideal_cycle_time * produced)
    return Production(result, kpi.reliability(states), states)


async def _states(store: TimeSeriesStore, sm_id: str, start: dt.datetime, end: dt.datetime, counter: list[Point],
                  max_gap: float) -> list[kpi.StateInterval]:
    recorded = [p for p in await _read(store, sm_id, "MachineState", start, end) if str(p.value) in _STATES]
    if recorded:
        out = []
        for a, b in zip(recorded, [*recorded[1:], None], strict=False):
            out.append(kpi.StateInterval(_STATES[str(a.value)], a.time, b.time if b else end))
        return out
    rises = [b.time for a, b in itertools.pairwise(counter)
             if float(b.value) > float(a.value)]  # type: ignore[arg-type]
    return kpi.states_from_cycles(rises, counter[0].time, end, max_gap)
