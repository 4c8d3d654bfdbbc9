"""Asset Administration Shell Repository and the single-shell interface."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from twin_server import views
from twin_server.errors import ApiError, bad_request, not_found
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
    page_slice,
    paged,
    paged_page,
    parts,
)
from twin_server.storage.base import THUMBNAIL, FileChange, Filter, Kind, NoFile, StoredFile
from twin_server.validate import canonical, parse_json

router = APIRouter(tags=["Asset Administration Shell Repository"])

IdShortQ = Annotated[str | None, Query(alias="idShort", min_length=1, max_length=128)]
AssetIdsQ = Annotated[list[str] | None, Query(alias="assetIds")]


def _asset_filter(asset_ids: list[str] | None) -> tuple[tuple[str, str], ...]:
    pairs = []
    for encoded in asset_ids or []:
        text = decode_b64_text(encoded, "assetIds")
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise bad_request("assetIds: each value is a base64url-encoded SpecificAssetId JSON object") from None
        for item in value if isinstance(value, list) else [value]:
            if not (isinstance(item, dict) and isinstance(item.get("name"), str)
                    and isinstance(item.get("value"), str)):
                raise bad_request('assetIds: expected {"name": ..., "value": ...} objects')
            pairs.append((item["name"], item["value"]))
    return tuple(pairs)


@router.get("/shells")
async def get_all_shells(request: Request, _p: Reader, id_short: IdShortQ = None, asset_ids: AssetIdsQ = None,
                         limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Response:
    flt = Filter(id_short=id_short, asset_ids=_asset_filter(asset_ids))
    return paged_page(await parts(request).repo.page(Kind.SHELL, flt, limit, cursor))


@router.get("/shells/$reference")
async def get_all_shells_reference(request: Request, _p: Reader, id_short: IdShortQ = None,
                                   asset_ids: AssetIdsQ = None, limit: Limit = DEFAULT_LIMIT,
                                   cursor: Cursor = None) -> Response:
    flt = Filter(id_short=id_short, asset_ids=_asset_filter(asset_ids))
    page = await parts(request).repo.page(Kind.SHELL, flt, limit, cursor)
    refs = [dumps(views.identifiable_reference("AssetAdministrationShell", orjson.loads(i)["id"]))
            for i in page.items]
    return paged(refs, page.cursor)


@router.post("/shells", status_code=201)
async def post_shell(request: Request, _p: Writer) -> Response:
    doc = await parts(request).repo.create(Kind.SHELL, await request.body())
    return json_response(dumps(doc), 201)


@router.get("/shells/{aas_id}")
async def get_shell(request: Request, _p: Reader, aas_id: str) -> Response:
    return json_response(await parts(request).repo.get_bytes(Kind.SHELL, decode_id(aas_id, "aasIdentifier")))


@router.put("/shells/{aas_id}", status_code=204)
async def put_shell(request: Request, _p: Writer, aas_id: str) -> Response:
    await parts(request).repo.replace(Kind.SHELL, decode_id(aas_id, "aasIdentifier"), await request.body())
    return Response(status_code=204)


@router.delete("/shells/{aas_id}", status_code=204)
async def delete_shell(request: Request, _p: Writer, aas_id: str) -> Response:
    await parts(request).repo.delete(Kind.SHELL, decode_id(aas_id, "aasIdentifier"))
    return Response(status_code=204)


@router.get("/shells/{aas_id}/$reference")
async def get_shell_reference(request: Request, _p: Reader, aas_id: str) -> Response:
    ident = decode_id(aas_id, "aasIdentifier")
    await parts(request).repo.get_bytes(Kind.SHELL, ident)
    return json_response(views.identifiable_reference("AssetAdministrationShell", ident))


@router.get("/shells/{aas_id}/asset-information")
async def get_asset_information(request: Request, _p: Reader, aas_id: str) -> Response:
    shell = await parts(request).repo.get(Kind.SHELL, decode_id(aas_id, "aasIdentifier"))
    return json_response(shell["assetInformation"])


@router.put("/shells/{aas_id}/asset-information", status_code=204)
async def put_asset_information(request: Request, _p: Writer, aas_id: str) -> Response:
    info = canonical("asset-information", parse_json(await request.body()))

    def change(shell: dict[str, Any]) -> None:
        shell["assetInformation"] = info

    await parts(request).repo.modify(Kind.SHELL, decode_id(aas_id, "aasIdentifier"), change)
    return Response(status_code=204)


@router.get("/shells/{aas_id}/asset-information/thumbnail")
async def get_thumbnail(request: Request, _p: Reader, aas_id: str) -> Response:
    ident = decode_id(aas_id, "aasIdentifier")
    repo = parts(request).repo
    await repo.get_bytes(Kind.SHELL, ident)
    stored = await repo.storage.get_file(Kind.SHELL, ident, THUMBNAIL)
    if stored is None:
        raise not_found(f"thumbnail of shell {ident!r}")
    return Response(stored.data, media_type=stored.content_type)


@router.put("/shells/{aas_id}/asset-information/thumbnail", status_code=204)
async def put_thumbnail(request: Request, _p: Writer, aas_id: str) -> Response:
    ident = decode_id(aas_id, "aasIdentifier")
    form = await request.form()
    upload, file_name = form.get("file"), form.get("fileName")
    if upload is None or isinstance(upload, str):
        raise bad_request("expected multipart/form-data with a 'file' part")
    name = file_name if isinstance(file_name, str) and file_name else (upload.filename or "thumbnail")
    content_type = upload.content_type or "application/octet-stream"
    data = await upload.read()

    def change(shell: dict[str, Any]) -> None:
        # Checked like a PUT of the asset information: the upload's name and type become stored attributes.
        info = {**shell["assetInformation"], "defaultThumbnail": {"path": name, "contentType": content_type}}
        shell["assetInformation"] = canonical("asset-information", info)

    repo = parts(request).repo
    await repo.modify(Kind.SHELL, ident, change, file=FileChange(THUMBNAIL, StoredFile(content_type, name, data)))
    return Response(status_code=204)


@router.delete("/shells/{aas_id}/asset-information/thumbnail", status_code=204)
async def delete_thumbnail(request: Request, _p: Writer, aas_id: str) -> Response:
    ident = decode_id(aas_id, "aasIdentifier")
    repo = parts(request).repo

    def change(shell: dict[str, Any]) -> None:
        shell["assetInformation"].pop("defaultThumbnail", None)

    try:
        await repo.modify(Kind.SHELL, ident, change, file=FileChange(THUMBNAIL))
    except NoFile:
        raise not_found(f"thumbnail of shell {ident!r}") from None
    return Response(status_code=204)


@router.get("/shells/{aas_id}/submodel-refs")
async def get_submodel_refs(request: Request, _p: Reader, aas_id: str, limit: Limit = DEFAULT_LIMIT,
                            cursor: Cursor = None) -> Response:
    shell = await parts(request).repo.get(Kind.SHELL, decode_id(aas_id, "aasIdentifier"))
    items, next_cursor = page_slice(shell.get("submodels", []), limit, cursor)
    return paged([dumps(ref) for ref in items], next_cursor)


@router.post("/shells/{aas_id}/submodel-refs", status_code=201)
async def post_submodel_ref(request: Request, _p: Writer, aas_id: str) -> Response:
    ref = canonical("reference", parse_json(await request.body()))

    def change(shell: dict[str, Any]) -> None:
        refs = shell.setdefault("submodels", [])
        if ref in refs:
            raise ApiError(409, "the shell already references this submodel")
        refs.append(ref)

    await parts(request).repo.modify(Kind.SHELL, decode_id(aas_id, "aasIdentifier"), change)
    return json_response(dumps(ref), 201)


@router.delete("/shells/{aas_id}/submodel-refs/{submodel_id}", status_code=204)
async def delete_submodel_ref(request: Request, _p: Writer, aas_id: str, submodel_id: str) -> Response:
    target = decode_id(submodel_id, "submodelIdentifier")

    def change(shell: dict[str, Any]) -> None:
        refs = shell.get("submodels", [])
        kept = [r for r in refs if r.get("keys", [{}])[-1].get("value") != target]
        if len(kept) == len(refs):
            raise not_found(f"submodel reference {target!r}")
        if kept:
            shell["submodels"] = kept
        else:
            shell.pop("submodels", None)

    await parts(request).repo.modify(Kind.SHELL, decode_id(aas_id, "aasIdentifier"), change)
    return Response(status_code=204)
