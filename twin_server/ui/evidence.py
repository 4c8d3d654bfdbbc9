"""The platform's own evidence for the AI-adoption assessment, computed over a set of assets.

Each metric is a share from 0 to 1 (see :class:`aas_models.adoption.Metric`); None means the
platform cannot tell, and the assessment then falls back to the questionnaire.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from aas_models.adoption import Metric
from twin_server.ui.production import Production
from twin_server.ui.snapshot import AssetSnapshot

#: A value older than this does not count as "live and fresh".
FRESH = dt.timedelta(minutes=5)
_ENERGY_UNITS = {"w", "kw", "mw", "wh", "kwh", "mwh", "a", "va", "kva"}
_ENERGY_WORDS = ("energy", "power", "current")
_SAFETY_WORDS = ("safety", "estop", "emergency", "guard", "lightcurtain", "door", "interlock")


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _has(asset: AssetSnapshot, key: str) -> bool:
    return asset.condition.get(key) not in (None, "")


def _deployed(asset: AssetSnapshot) -> bool:
    info = asset.condition.get("ModelInfo")
    if not isinstance(info, dict) or not info.get("ModelName"):
        return False
    metrics = info.get("Metrics")
    return bool(metrics) and (_has(asset, "FaultClass") or _has(asset, "RemainingUsefulLife"))


def _energy(asset: AssetSnapshot) -> bool:
    return any((s.unit or "").lower() in _ENERGY_UNITS or any(w in s.name.lower() for w in _ENERGY_WORDS)
               for s in asset.signals.values())


def _safety(asset: AssetSnapshot) -> bool:
    return any(any(w in s.name.lower().replace("_", "") for w in _SAFETY_WORDS) for s in asset.signals.values())


def metrics(assets: Sequence[AssetSnapshot], production: dict[str, Production], now: dt.datetime,
            equipment_count: int | None = None) -> dict[Metric, float | None]:
    """The metrics over `assets`; `equipment_count` (from the questionnaire) is how many machines the
    scope really has, twins or not."""
    with_twin = [a.operational_id is not None for a in assets]
    total = max(len(assets), equipment_count or 0)
    points = [s.timestamp is not None and now - s.timestamp <= FRESH and s.quality in ("good", None)
              and s.value is not None for a in assets for s in a.signals.values()]
    return {
        Metric.TWIN_COVERAGE: sum(with_twin) / total if total else None,
        Metric.DATA_LIVE_FRESH: _share(points) if points else (0.0 if assets else None),
        Metric.SPC_IN_USE: _share([_has(a, "SpcState") for a in assets]),
        Metric.OEE_MEASURED: _share([(p := production.get(a.shell_id)) is not None and p.oee is not None
                                     and p.oee.oee is not None for a in assets]),
        Metric.ANOMALY_MONITORED: _share([_has(a, "AnomalyScore") for a in assets]),
        Metric.PREDICTIVE_DEPLOYED: _share([_deployed(a) for a in assets]),
        Metric.ALARMS_ACTED_ON: None,  # no acknowledgement record yet: asked in the questionnaire
        Metric.ENERGY_MONITORED: _share([_energy(a) for a in assets]),
        Metric.SAFETY_MONITORED: (_share([_safety(a) for a in assets]) if any(_safety(a) for a in assets)
                                  else None),
    }
