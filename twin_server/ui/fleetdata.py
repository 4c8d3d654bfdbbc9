"""The fleet with everything the overview, alarms and assessment pages show per asset."""

from __future__ import annotations

from dataclasses import dataclass

from aas_models import kpi
from twin_server.ui.alarms import Alarm, alarms, state
from twin_server.ui.context import Ctx
from twin_server.ui.production import Production, production
from twin_server.ui.snapshot import AssetSnapshot, fleet


@dataclass(frozen=True)
class AssetRow:
    asset: AssetSnapshot
    state: str
    alarms: list[Alarm]
    production: Production


async def rows(c: Ctx) -> list[AssetRow]:
    out = []
    for asset in await fleet(c.repo):
        active = alarms(asset, c.now)
        out.append(AssetRow(asset, state(asset, active, c.now), active,
                            await production(c.store, asset.operational_id, c.now)))
    return out


def lines(items: list[AssetRow]) -> dict[str, list[AssetRow]]:
    out: dict[str, list[AssetRow]] = {}
    for row in items:
        out.setdefault(row.asset.line, []).append(row)
    return out


def rolled(items: list[AssetRow]) -> kpi.Oee:
    """Line or factory OEE: ISO quantities summed over the machines that measure it."""
    return kpi.roll_up(r.production.oee for r in items if r.production.oee is not None)
