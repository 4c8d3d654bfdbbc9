"""What the dashboards know about the fleet right now, read from the twin store in one pass.

Assets are the stored shells; a shell's OperationalData and ConditionMonitoring submodels are found
by semanticId (two list scans for the whole fleet instead of one read per submodel reference). An
asset's line is its shell's specificAssetId named ``line`` (else it belongs to no line).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson

from aas_models.builders import condition_monitoring, operational_data
from twin_server.repository import Repository
from twin_server.storage.base import Filter, Kind
from twin_server.values import submodel_value

NO_LINE = ""
_PAGE = 1000


@dataclass(frozen=True)
class Signal:
    name: str
    value: Any
    quality: str | None
    timestamp: dt.datetime | None
    unit: str | None
    display: dict[str, str]


@dataclass
class AssetSnapshot:
    asset_id: str
    shell_id: str
    id_short: str
    name: str
    line: str
    submodel_ids: list[str]
    operational_id: str | None = None
    condition_id: str | None = None
    signals: dict[str, Signal] = field(default_factory=dict)
    condition: dict[str, Any] = field(default_factory=dict)

    @property
    def last_data(self) -> dt.datetime | None:
        times = [s.timestamp for s in self.signals.values() if s.timestamp is not None]
        return max(times) if times else None


def parse_time(text: object) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


async def _all(repo: Repository, kind: Kind, flt: Filter) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await repo.page(kind, flt, _PAGE, cursor)
        out.extend(orjson.loads(item) for item in page.items)
        cursor = page.cursor
        if cursor is None:
            return out


def _texts(items: object) -> dict[str, str]:
    if not isinstance(items, list):
        return {}
    return {str(i.get("language")): str(i.get("text")) for i in items if isinstance(i, dict)}


def _signals(doc: dict[str, Any]) -> dict[str, Signal]:
    values = submodel_value(doc)
    out: dict[str, Signal] = {}
    for element in doc.get("submodelElements", []):
        name = element.get("idShort")
        v = values.get(name)
        if not isinstance(name, str) or element.get("modelType") != "SubmodelElementCollection":
            continue
        v = v if isinstance(v, dict) else {}
        out[name] = Signal(name, v.get("Value"), v.get("Quality"), parse_time(v.get("Timestamp")),
                           v.get("Unit"), _texts(element.get("displayName")))
    return out


def _asset(shell: dict[str, Any]) -> AssetSnapshot:
    info = shell.get("assetInformation") or {}
    specific = {str(s.get("name")): str(s.get("value")) for s in info.get("specificAssetIds") or []
                if isinstance(s, dict)}
    global_id = str(info.get("globalAssetId") or shell["id"])
    asset_id = unquote(global_id.rsplit(":", 1)[-1].rsplit("/", 1)[-1])
    names = _texts(shell.get("displayName"))
    refs = [str(k[0]["value"]) for r in shell.get("submodels") or [] if (k := r.get("keys"))]
    return AssetSnapshot(asset_id=asset_id, shell_id=shell["id"], id_short=str(shell.get("idShort") or asset_id),
                         name=names.get("en") or str(shell.get("idShort") or asset_id),
                         line=specific.get("line", NO_LINE), submodel_ids=refs)


async def fleet(repo: Repository) -> list[AssetSnapshot]:
    """Every asset with its live signals and condition results, sorted by line then name."""
    shells = await _all(repo, Kind.SHELL, Filter())
    od = {d["id"]: d for d in await _all(repo, Kind.SUBMODEL, Filter(semantic_id=operational_data.SEMANTIC_ID))}
    cm = {d["id"]: d for d in await _all(repo, Kind.SUBMODEL, Filter(semantic_id=condition_monitoring.SEMANTIC_ID))}
    assets = []
    for shell in shells:
        asset = _asset(shell)
        for ref in asset.submodel_ids:
            if ref in od and asset.operational_id is None:
                asset.operational_id = ref
                asset.signals = _signals(od[ref])
            elif ref in cm and asset.condition_id is None:
                asset.condition_id = ref
                asset.condition = submodel_value(cm[ref])
        assets.append(asset)
    assets.sort(key=lambda a: (a.line, a.name))
    return assets


async def one(repo: Repository, shell_id: str) -> tuple[AssetSnapshot, dict[str, dict[str, Any]]]:
    """One asset and all of its readable submodels, keyed by id (KeyError-free: unknown refs are skipped)."""
    shell = await repo.get(Kind.SHELL, shell_id)
    asset = _asset(shell)
    docs: dict[str, dict[str, Any]] = {}
    for ref in asset.submodel_ids:
        body = await repo.storage.get(Kind.SUBMODEL, ref)
        if body is None:
            continue
        doc = orjson.loads(body)
        docs[ref] = doc
        semantic = ((doc.get("semanticId") or {}).get("keys") or [{}])[0].get("value")
        if semantic == operational_data.SEMANTIC_ID and asset.operational_id is None:
            asset.operational_id = ref
            asset.signals = _signals(doc)
        elif semantic == condition_monitoring.SEMANTIC_ID and asset.condition_id is None:
            asset.condition_id = ref
            asset.condition = submodel_value(doc)
    return asset, docs
