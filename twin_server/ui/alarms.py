"""Alarms and the machine state, derived from an asset's live signals and analytics results.

The platform has no separate alarm store: an alarm is active while the twin shows its condition, so
the list is always consistent with what the twin says. Thresholds are :class:`AlarmRules`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from twin_server.ui.snapshot import AssetSnapshot, parse_time


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


@dataclass(frozen=True)
class Alarm:
    asset_id: str
    shell_id: str
    severity: Severity
    code: str
    """Message key suffix in i18n (``alarm.<code>``)."""
    args: dict[str, str]
    since: dt.datetime | None


@dataclass(frozen=True)
class AlarmRules:
    health_warning: float = 0.6
    health_critical: float = 0.3
    fault_probability: float = 0.5
    rul_warning_h: float = 100.0
    stale_after: dt.timedelta = dt.timedelta(seconds=60)
    producing_within: dt.timedelta = dt.timedelta(seconds=120)


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def alarms(asset: AssetSnapshot, now: dt.datetime, rules: AlarmRules = AlarmRules()) -> list[Alarm]:
    """The asset's active alarms, most severe first."""
    c = asset.condition
    since = parse_time(c.get("Timestamp"))
    out: list[Alarm] = []

    def add(severity: Severity, code: str, when: dt.datetime | None = since, **args: str) -> None:
        out.append(Alarm(asset.asset_id, asset.shell_id, severity, code, args, when))

    health = _num(c.get("HealthIndex"))
    if health is not None and health < rules.health_warning:
        add(Severity.CRITICAL if health < rules.health_critical else Severity.WARNING, "health_low",
            value=f"{health:.2f}")
    score, threshold = _num(c.get("AnomalyScore")), _num(c.get("AnomalyThreshold"))
    if score is not None and threshold is not None and score > threshold:
        add(Severity.WARNING, "anomaly", value=f"{score:.3g}", threshold=f"{threshold:.3g}")
    fault, p = c.get("FaultClass"), _num(c.get("FaultProbability"))
    if isinstance(fault, str) and fault and fault.lower() not in ("normal", "none", "ok") and \
            (p is None or p >= rules.fault_probability):
        add(Severity.CRITICAL, "fault", value=fault, p="–" if p is None else f"{100 * p:.0f} %")
    if c.get("SpcState") == "out-of-control":
        add(Severity.WARNING, "spc", value=str(c.get("ViolatedRules") or "–"))
    rul = _num(c.get("RemainingUsefulLife"))
    if rul is not None and rul < rules.rul_warning_h:
        add(Severity.WARNING, "rul_low", value=f"{rules.rul_warning_h:.0f}")
    bad = sorted(s.name for s in asset.signals.values() if s.quality == "bad")
    if bad:
        add(Severity.WARNING, "quality_bad", when=asset.last_data, value=", ".join(bad))
    last = asset.last_data
    if last is not None and now - last > rules.stale_after:
        add(Severity.WARNING, "stale", when=last, value=_age(now - last))
    out.sort(key=lambda a: a.severity != Severity.CRITICAL)
    return out


def state(asset: AssetSnapshot, active: list[Alarm], now: dt.datetime, rules: AlarmRules = AlarmRules()) -> str:
    """no-data, offline, fault, producing or idle (message key suffix ``state.<x>``)."""
    last = asset.last_data
    if last is None:
        return "no-data"
    if now - last > rules.stale_after:
        return "offline"
    if any(a.severity == Severity.CRITICAL for a in active):
        return "fault"
    counter = asset.signals.get("CycleCounter")
    if counter is not None and counter.timestamp is not None and now - counter.timestamp <= rules.producing_within:
        return "producing"
    return "idle"


def _age(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
