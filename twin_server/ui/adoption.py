"""The AI-adoption assessment of the factory, each line and each asset, and where it is kept.

Evidence comes from the fleet (twin_server.ui.evidence) and the questionnaire; the questionnaire is
answered once for the factory and applies to every scope. A recorded assessment is an
AiAdoptionAssessment submodel (aas_models.adoption.submodel) in this server: one per scope, its
history growing by one entry per recording; an asset's is also referenced from its shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from aas_models.adoption import Assessment, AssessmentModel, assess, load_model
from aas_models.adoption import submodel as sm
from aas_models.adoption.model import DEFAULT_MODEL
from twin_server.repository import dumps
from twin_server.storage.base import Kind
from twin_server.ui.context import Ctx
from twin_server.ui.evidence import metrics
from twin_server.ui.fleetdata import AssetRow, lines, rows

FACTORY = "factory"
#: Answer key for the number of machines in the factory (twin coverage's denominator).
EQUIPMENT_COUNT = "EquipmentCount"


@dataclass(frozen=True)
class Scope:
    kind: str
    """factory, line or asset"""
    key: str
    """factory name, line name or asset id"""
    label: str
    members: list[AssetRow]
    shell_id: str | None = None


def model_of(c: Ctx) -> AssessmentModel:
    """The factory's model file when present, else the default (AssessmentModelError if malformed)."""
    path = c.settings.adoption_model
    return load_model(path if path.is_file() else DEFAULT_MODEL)


def scopes(items: list[AssetRow]) -> list[Scope]:
    out = [Scope("factory", FACTORY, FACTORY, items)]
    out += [Scope("line", line, line, members) for line, members in lines(items).items() if line]
    out += [Scope("asset", r.asset.asset_id, r.asset.name, [r], r.asset.shell_id) for r in items]
    return out


async def stored(c: Ctx, scope: Scope) -> dict[str, Any] | None:
    body = await c.repo.storage.get(Kind.SUBMODEL, sm.submodel_id(scope.kind, scope.key))
    return orjson.loads(body) if body is not None else None


async def answers(c: Ctx) -> dict[str, float]:
    return sm.read_answers(await stored(c, Scope("factory", FACTORY, FACTORY, [])))


def evaluate(c: Ctx, model: AssessmentModel, scope: Scope, given: dict[str, float]) -> Assessment:
    count = given.get(EQUIPMENT_COUNT) if scope.kind == "factory" else None
    evidence = metrics([r.asset for r in scope.members], {r.asset.shell_id: r.production for r in scope.members},
                       c.now, int(count) if count else None)
    return assess(model, evidence, given)


async def record(c: Ctx, given: dict[str, float]) -> None:
    """Store the answers and record the assessment of every scope (history +1 each)."""
    model = model_of(c)
    items = await rows(c)
    for scope in scopes(items):
        result = evaluate(c, model, scope, given)
        previous = await stored(c, scope)
        history = [*sm.read_history(previous), sm.HistoryEntry(c.now, result.level, result.score)]
        doc = sm.to_jsonable(sm.build(model, result, scope.kind, scope.key, c.now,
                                      given if scope.kind == "factory" else {}, history))
        if previous is None:
            await c.repo.create(Kind.SUBMODEL, dumps(doc))
        else:
            await c.repo.replace(Kind.SUBMODEL, doc["id"], dumps(doc))
        if scope.shell_id:
            await _reference(c, scope.shell_id, doc["id"])
    await _concepts(c)


async def _reference(c: Ctx, shell_id: str, submodel_id: str) -> None:
    shell = await c.repo.get(Kind.SHELL, shell_id)
    refs = shell.get("submodels") or []
    if any(k.get("value") == submodel_id for r in refs for k in r.get("keys") or []):
        return
    shell["submodels"] = [*refs, {"type": "ModelReference", "keys": [{"type": "Submodel", "value": submodel_id}]}]
    await c.repo.replace(Kind.SHELL, shell_id, dumps(shell))


async def _concepts(c: Ctx) -> None:
    for cd in sm.concept_descriptions():
        if await c.repo.storage.get(Kind.CONCEPT_DESCRIPTION, cd.id) is None:
            from aas_core3 import jsonization

            await c.repo.create(Kind.CONCEPT_DESCRIPTION, dumps(jsonization.to_jsonable(cd)))


