"""Concept Description Repository."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from twin_server.repository import dumps
from twin_server.routes.common import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Reader,
    Writer,
    decode_b64_text,
    decode_id,
    json_response,
    paged_page,
    parts,
)
from twin_server.storage.base import Filter, Kind

router = APIRouter(tags=["Concept Description Repository"])


def _ref_value(encoded: str, what: str) -> str:
    """A base64url-encoded Reference (JSON) or plain IRI; filters match on its first key."""
    text = decode_b64_text(encoded, what)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if isinstance(value, dict) and value.get("keys"):
        first = value["keys"][0]
        return str(first.get("value", "")) if isinstance(first, dict) else text
    return text


@router.get("/concept-descriptions")
async def get_all_concept_descriptions(
    request: Request, _p: Reader,
    id_short: Annotated[str | None, Query(alias="idShort", min_length=1, max_length=128)] = None,
    is_case_of: Annotated[str | None, Query(alias="isCaseOf", min_length=1)] = None,
    data_specification_ref: Annotated[str | None, Query(alias="dataSpecificationRef", min_length=1)] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> Response:
    refs = []
    if is_case_of:
        refs.append(("isCaseOf", _ref_value(is_case_of, "isCaseOf")))
    if data_specification_ref:
        refs.append(("dataSpecificationRef", _ref_value(data_specification_ref, "dataSpecificationRef")))
    flt = Filter(id_short=id_short, refs=tuple(refs))
    return paged_page(await parts(request).repo.page(Kind.CONCEPT_DESCRIPTION, flt, limit, cursor))


@router.post("/concept-descriptions", status_code=201)
async def post_concept_description(request: Request, _p: Writer) -> Response:
    doc = await parts(request).repo.create(Kind.CONCEPT_DESCRIPTION, await request.body())
    return json_response(dumps(doc), 201)


@router.get("/concept-descriptions/{cd_id}")
async def get_concept_description(request: Request, _p: Reader, cd_id: str) -> Response:
    ident = decode_id(cd_id, "cdIdentifier")
    return json_response(await parts(request).repo.get_bytes(Kind.CONCEPT_DESCRIPTION, ident))


@router.put("/concept-descriptions/{cd_id}", status_code=204)
async def put_concept_description(request: Request, _p: Writer, cd_id: str) -> Response:
    ident = decode_id(cd_id, "cdIdentifier")
    await parts(request).repo.replace(Kind.CONCEPT_DESCRIPTION, ident, await request.body())
    return Response(status_code=204)


@router.delete("/concept-descriptions/{cd_id}", status_code=204)
async def delete_concept_description(request: Request, _p: Writer, cd_id: str) -> Response:
    await parts(request).repo.delete(Kind.CONCEPT_DESCRIPTION, decode_id(cd_id, "cdIdentifier"))
    return Response(status_code=204)
