"""OEE, roll-up, MTBF and MTTR on examples computed by hand (aas_models.kpi)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aas_models.kpi import (
    MachineState,
    StateInterval,
    durations,
    oee,
    oee_from_states,
    reliability,
    roll_up,
    states_from_cycles,
)

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
P, IDLE, D, S, OFF = (MachineState.PRODUCING, MachineState.IDLE, MachineState.DOWN, MachineState.PLANNED_STOP,
                      MachineState.OFFLINE)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def history(*parts: tuple[MachineState, float]) -> list[StateInterval]:
    """Consecutive intervals given as (state, minutes)."""
    out, t = [], 0.0
    for state, minutes in parts:
        out.append(StateInterval(state, at(t), at(t + minutes)))
        t += minutes
    return out


def test_oee_textbook_shift() -> None:
    # 8 h shift, 30 min break (planned) -> PBT 450 min; 60 min down -> APT 390 min = 23,400 s.
    # Ideal cycle 60 s, 300 parts of which 291 good.
    # A = 390/450 = 0.866667; P = 60*300/23400 = 0.769231; Q = 291/300 = 0.97; OEE = 60*291/27000 = 0.646667
    states = history((P, 200), (S, 30), (D, 60), (P, 190))
    result = oee_from_states(states, produced=300, good=291, ideal_cycle_time=60)
    assert result.pbt == 450 * 60 and result.apt == 390 * 60
    assert result.availability == pytest.approx(390 / 450)
    assert result.performance == pytest.approx(18000 / 23400)
    assert result.quality == pytest.approx(0.97)
    assert result.oee == pytest.approx(60 * 291 / 27000)


def test_idle_counts_in_planned_time_offline_in_none() -> None:
    states = history((P, 30), (IDLE, 10), (OFF, 100), (D, 20))
    d = durations(states)
    assert d[OFF] == 6000
    result = oee_from_states(states, produced=10, good=10, ideal_cycle_time=180)
    assert result.pbt == 60 * 60 and result.apt == 30 * 60
    assert result.availability == pytest.approx(0.5)
    assert result.performance == pytest.approx(1.0)


def test_ratios_without_denominator_are_not_measured() -> None:
    empty = oee(0, 0, 0, 0, 10)
    assert empty.availability is None and empty.performance is None and empty.quality is None
    assert empty.oee is None
    with pytest.raises(ValueError, match="good quantity"):
        oee(100, 50, 5, 6, 10)
    with pytest.raises(ValueError, match="exceeds planned"):
        oee(100, 150, 5, 5, 10)


def test_roll_up_weights_each_factor_by_its_denominator() -> None:
    # Machine A: PBT 8 h, APT 6 h, 600 parts at 30 s ideal, 570 good.
    # Machine B: PBT 4 h, APT 4 h, 100 parts at 120 s ideal, 100 good.
    a = oee(8 * 3600, 6 * 3600, 600, 570, 30)
    b = oee(4 * 3600, 4 * 3600, 100, 100, 120)
    line = roll_up([a, b])
    # A_line = (6+4)/(8+4) = 0.833333 (the mean of 0.75 and 1.0 would be 0.875)
    assert line.availability == pytest.approx(10 / 12)
    # P_line = (30*600 + 120*100)/(10 h) = 30000/36000 = 0.833333
    assert line.performance == pytest.approx(30000 / 36000)
    # Q_line = 670/700
    assert line.quality == pytest.approx(670 / 700)
    # OEE_line = A*P*Q = (30000/43200) * (670/700) = 0.664683 (not the good parts' ideal time over PBT,
    # 29100/43200 = 0.673611, which differs when the machines' ideal cycle times differ)
    assert line.oee == pytest.approx(30000 / 43200 * 670 / 700)
    # factory of one line and one more machine: the same as rolling the three machines at once
    c = oee(3600, 1800, 50, 40, 30)
    assert roll_up([line, c]) == roll_up([a, b, c])


def test_mtbf_mttr_from_state_history() -> None:
    # up 100, down 10, up 50, idle 20, down 30, planned 60, up 40 (minutes); two failures.
    states = history((P, 100), (D, 10), (P, 50), (IDLE, 20), (D, 30), (S, 60), (P, 40))
    r = reliability(states)
    assert r.failures == 2
    assert r.mtbf == pytest.approx((100 + 50 + 20 + 40) * 60 / 2)
    assert r.mttr == pytest.approx((10 + 30) * 60 / 2)


def test_consecutive_down_intervals_are_one_failure_and_offline_does_not_split_them() -> None:
    states = history((P, 10), (D, 5), (OFF, 5), (D, 5), (P, 10))
    r = reliability(states)
    assert r.failures == 1
    assert r.mttr == pytest.approx(600)
    assert reliability(history((P, 10))).mtbf is None


def test_states_from_cycle_completions() -> None:
    # cycles end at 1, 2, 3 min; then a stop; cycles at 10, 11 min; window 0..12 min; max gap 1.5 min.
    ends = [at(m) for m in (1, 2, 3, 10, 11)]
    states = states_from_cycles(ends, at(0), at(12), max_gap=90)
    assert [(s.state, s.start, s.end) for s in states] == [
        (P, at(0), at(3)),
        (D, at(3), at(8.5)),
        (P, at(8.5), at(12)),
    ]
    # stopped at the end of the window for longer than the max gap: down since the last cycle
    late = states_from_cycles(ends, at(0), at(20), max_gap=90)
    assert late[-1] == StateInterval(D, at(11), at(20))
    assert reliability(late).failures == 2
    assert states_from_cycles([], at(0), at(5), 90) == [StateInterval(IDLE, at(0), at(5))]
