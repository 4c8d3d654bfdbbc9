"""AAS Registry and Submodel Registry: descriptors (where a shell or submodel is served).

Descriptors are kept as JSON like identifiables; the checks are the ones a client relies on:
an `id`, endpoints with an interface and an href, submodel descriptors nested in shell ones.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from twin_server.errors import ApiError, bad_request, not_found
from twin_server.repository import dumps
from twin_server.routes.common import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Reader,
    Writer,
    decode_id,
    json_response,
    page_slice,
    paged,
    paged_page,
    parts,
)
from twin_server.storage.base import Conflict, Filter, Index, Kind, NotFound
from twin_server.validate import parse_json

router = APIRouter(tags=["Registry"])


def _check_descriptor(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(f"a {what} is a JSON object")
    _text(body.get("id"), f"{what}.id", required=True)
    _text(body.get("idShort"), f"{what}.idShort")
    _text(body.get("globalAssetId"), f"{what}.globalAssetId")
    asset_ids = body.get("specificAssetIds", [])
    if not isinstance(asset_ids, list):
        raise bad_request(f"{what}.specificAssetIds: a list is required")
    for i, asset_id in enumerate(asset_ids):
        if not isinstance(asset_id, dict):
            raise bad_request(f"{what}.specificAssetIds[{i}]: an object with `name` and `value` is required")
        _text(asset_id.get("name"), f"{what}.specificAssetIds[{i}].name", required=True)
        _text(asset_id.get("value"), f"{what}.specificAssetIds[{i}].value", required=True)
    endpoints = body.get("endpoints", [])
    if not isinstance(endpoints, list):
        raise bad_request(f"{what}.endpoints: a list is required")
    for i, endpoint in enumerate(endpoints):
        info = endpoint.get("protocolInformation") if isinstance(endpoint, dict) else None
        if not isinstance(endpoint, dict) or not isinstance(endpoint.get("interface"), str) \
                or not isinstance(info, dict) or not isinstance(info.get("href"), str):
            raise bad_request(f"{what}.endpoints[{i}]: needs `interface` and `protocolInformation.href`")
    if what == "shell descriptor":
        subs = body.get("submodelDescriptors", [])
        if not isinstance(subs, list):
            raise bad_request("shell descriptor.submodelDescriptors: a list is required")
        for sub in subs:
            _check_descriptor(sub, "submodel descriptor")
    return body


def _text(value: Any, where: str, *, required: bool = False) -> None:
    """What the registry indexes and looks up by must be text every backend can store (no U+0000)."""
    if value is None and not required:
        return
    if not isinstance(value, str) or not value or "\x00" in value:
        raise bad_request(f"{where}: a non-empty string without U+0000 is required")


def _index(doc: dict[str, Any]) -> Index:
    pairs = [("globalAssetId", doc["globalAssetId"])] if isinstance(doc.get("globalAssetId"), str) else []
    pairs += [(s["name"], s["value"]) for s in doc.get("specificAssetIds", [])]
    return Index(id_short=doc.get("idShort"), asset_ids=tuple(pairs))


_KINDS = {"shell-descriptors": (Kind.SHELL_DESCRIPTOR, "shell descriptor"),
          "submodel-descriptors": (Kind.SUBMODEL_DESCRIPTOR, "submodel descriptor")}


def _routes(collection: str) -> None:
    kind, what = _KINDS[collection]

    @router.get(f"/{collection}", name=f"list {collection}")
    async def list_descriptors(request: Request, _p: Reader, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
                               asset_kind: Annotated[str | None, Query(alias="assetKind")] = None) -> Response:
        del asset_kind  # accepted for compatibility; every descriptor is listed
        return paged_page(await parts(request).repo.page(kind, Filter(), limit, cursor))

    @router.post(f"/{collection}", status_code=201, name=f"create {what}")
    async def post_descriptor(request: Request, _p: Writer) -> Response:
        doc = _check_descriptor(parse_json(await request.body()), what)
        try:
            await parts(request).repo.storage.create(kind, doc["id"], dumps(doc), _index(doc))
        except Conflict:
            raise ApiError(409, f"a {what} with id {doc['id']!r} exists already") from None
        return json_response(doc, 201)

    @router.get(f"/{collection}/{{ident}}", name=f"get {what}")
    async def get_descriptor(request: Request, _p: Reader, ident: str) -> Response:
        body = await parts(request).repo.storage.get(kind, decode_id(ident))
        if body is None:
            raise not_found(what)
        return json_response(body)

    @router.put(f"/{collection}/{{ident}}", status_code=204, name=f"replace {what}")
    async def put_descriptor(request: Request, _p: Writer, ident: str) -> Response:
        key = decode_id(ident)
        doc = _check_descriptor(parse_json(await request.body()), what)
        if doc["id"] != key:
            raise bad_request(f"the body's id {doc['id']!r} differs from the id in the path")
        body = dumps(doc)
        try:
            await parts(request).repo.storage.update(kind, key, lambda _old: (body, _index(doc)))
        except NotFound:
            raise not_found(what) from None
        return Response(status_code=204)

    @router.delete(f"/{collection}/{{ident}}", status_code=204, name=f"delete {what}")
    async def delete_descriptor(request: Request, _p: Writer, ident: str) -> Response:
        try:
            await parts(request).repo.storage.delete(kind, decode_id(ident))
        except NotFound:
            raise not_found(what) from None
        return Response(status_code=204)


_routes("shell-descriptors")
_routes("submodel-descriptors")


@router.get("/shell-descriptors/{ident}/submodel-descriptors")
async def get_nested_submodel_descriptors(request: Request, _p: Reader, ident: str, limit: Limit = DEFAULT_LIMIT,
                                          cursor: Cursor = None) -> Response:
    body = await parts(request).repo.storage.get(Kind.SHELL_DESCRIPTOR, decode_id(ident))
    if body is None:
        raise not_found("shell descriptor")
    items, next_cursor = page_slice(orjson.loads(body).get("submodelDescriptors", []), limit, cursor)
    return paged([dumps(i) for i in items], next_cursor)
