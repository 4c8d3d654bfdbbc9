"""/description (the profiles this server implements) and /serialization (JSON, XML, AASX)."""

# No `from __future__ import annotations`: FastAPI must see the local `Scope` dependency type.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from aas_core3 import jsonization
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from aas_models.aasx import write_aasx
from aas_models.package import AasPackage
from aas_models.xmlio import dump_xml
from twin_server.errors import ApiError
from twin_server.repository import Repository
from twin_server.routes.common import DEFAULT_LIMIT, Limit, Reader, decode_id, json_response, paged, parts
from twin_server.storage.base import Filter, Kind

router = APIRouter(tags=["Description", "Serialization"])

_API = "https://admin-shell.io/aas/API/3/0/"
PROFILES = [
    f"{_API}AssetAdministrationShellRepositoryServiceSpecification/SSP-001",
    f"{_API}AssetAdministrationShellRepositoryServiceSpecification/SSP-002",
    f"{_API}SubmodelRepositoryServiceSpecification/SSP-001",
    f"{_API}SubmodelRepositoryServiceSpecification/SSP-002",
    f"{_API}ConceptDescriptionRepositoryServiceSpecification/SSP-001",
    f"{_API}AssetAdministrationShellServiceSpecification/SSP-001",
    f"{_API}AssetAdministrationShellServiceSpecification/SSP-002",
    f"{_API}SubmodelServiceSpecification/SSP-001",
    f"{_API}SubmodelServiceSpecification/SSP-002",
    f"{_API}AasxFileServerServiceSpecification/SSP-001",
    f"{_API}AssetAdministrationShellRegistryServiceSpecification/SSP-001",
    f"{_API}SubmodelRegistryServiceSpecification/SSP-001",
]
AASX = "application/asset-administration-shell-package+xml"


@router.get("/description")
async def get_description(_p: Reader) -> Response:
    return json_response({"profiles": PROFILES})


async def _all(repo: Repository, kind: Kind) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await repo.page(kind, Filter(), 1000, cursor)
        out.extend(orjson.loads(item) for item in page.items)
        if page.cursor is None:
            return out
        cursor = page.cursor


@router.get("/serialization")
async def get_serialization(
    request: Request, _p: Reader,
    aas_ids: Annotated[list[str] | None, Query(alias="aasIds")] = None,
    submodel_ids: Annotated[list[str] | None, Query(alias="submodelIds")] = None,
    include_concept_descriptions: Annotated[bool, Query(alias="includeConceptDescriptions")] = True,
) -> Response:
    return await serialize(request, aas_ids, submodel_ids, include_concept_descriptions)


async def serialize(request: Request, aas_ids: list[str] | None, submodel_ids: list[str] | None,
                    include_concept_descriptions: bool, scope: tuple[list[str], list[str]] | None = None) -> Response:
    """The environment of the given ids (all when none are given, or all within `scope`: shell ids,
    submodel ids), as JSON, XML or AASX by the Accept header."""
    repo = parts(request).repo
    if aas_ids is not None:
        shells = [await repo.get(Kind.SHELL, decode_id(i, "aasIds")) for i in aas_ids]
    elif scope is not None:
        shells = [await repo.get(Kind.SHELL, i) for i in scope[0]]
    else:
        shells = await _all(repo, Kind.SHELL)
    if submodel_ids is not None:
        submodels = [await repo.get(Kind.SUBMODEL, decode_id(i, "submodelIds")) for i in submodel_ids]
    elif scope is not None:
        submodels = [await repo.get(Kind.SUBMODEL, i) for i in scope[1]]
    else:
        submodels = await _all(repo, Kind.SUBMODEL)
    jsonable: dict[str, Any] = {}
    if shells:
        jsonable["assetAdministrationShells"] = shells
    if submodels:
        jsonable["submodels"] = submodels
    if include_concept_descriptions:
        concepts = await _all(repo, Kind.CONCEPT_DESCRIPTION)
        if concepts:
            jsonable["conceptDescriptions"] = concepts
    accept = request.headers.get("accept", "application/json")
    if AASX in accept:
        package = AasPackage(jsonization.environment_from_jsonable(jsonable))
        return Response(write_aasx(package), media_type=AASX,
                        headers={"Content-Disposition": 'attachment; filename="environment.aasx"'})
    if "xml" in accept:
        return Response(dump_xml(jsonization.environment_from_jsonable(jsonable)), media_type="application/xml")
    if "json" in accept or "*/*" in accept or not accept:
        return json_response(jsonable)
    raise ApiError(406, f"cannot serialize as {accept!r}; use application/json, application/xml or {AASX}")


ScopeIds = tuple[list[str], list[str]]


def scoped(prefix: str, scope: Callable[..., Awaitable[ScopeIds]]) -> APIRouter:
    """/description, /serialization and /shells inside a single-shell or single-submodel interface.

    The conformance suites for those interfaces ask for these relative to the interface's base;
    they answer for what the interface covers (`scope`: shell ids and submodel ids).
    """
    router = APIRouter(prefix=prefix, tags=["Description", "Serialization"])
    Scope = Annotated[ScopeIds, Depends(scope)]

    @router.get("/description")
    async def get_scoped_description(_p: Reader, _s: Scope) -> Response:
        return json_response({"profiles": PROFILES})

    @router.get("/serialization")
    async def get_scoped_serialization(
        request: Request, _p: Reader, ids: Scope,
        aas_ids: Annotated[list[str] | None, Query(alias="aasIds")] = None,
        submodel_ids: Annotated[list[str] | None, Query(alias="submodelIds")] = None,
        include_concept_descriptions: Annotated[bool, Query(alias="includeConceptDescriptions")] = True,
    ) -> Response:
        return await serialize(request, aas_ids, submodel_ids, include_concept_descriptions, scope=ids)

    @router.get("/shells")
    async def get_scoped_shells(request: Request, _p: Reader, ids: Scope, limit: Limit = DEFAULT_LIMIT) -> Response:
        repo = parts(request).repo
        return paged([await repo.get_bytes(Kind.SHELL, i) for i in ids[0][:limit]], None)

    return router


def _ref_target(ref: dict[str, Any]) -> str:
    keys = ref.get("keys") or [{}]
    value = keys[-1].get("value", "")
    return value if isinstance(value, str) else ""


async def shell_scope(request: Request, aas_id: str) -> ScopeIds:
    repo = parts(request).repo
    shell = await repo.get(Kind.SHELL, decode_id(aas_id, "aasIdentifier"))
    refs = [_ref_target(r) for r in shell.get("submodels", [])]
    present = [ident for ident in refs if await repo.storage.get(Kind.SUBMODEL, ident) is not None]
    return [shell["id"]], present


async def submodel_scope(request: Request, submodel_id: str) -> ScopeIds:
    repo = parts(request).repo
    ident = decode_id(submodel_id, "submodelIdentifier")
    await repo.get_bytes(Kind.SUBMODEL, ident)
    shells = [s["id"] for s in await _all(repo, Kind.SHELL)
              if any(_ref_target(r) == ident for r in s.get("submodels", []))]
    return shells, [ident]
