"""AASX File Server: AASX packages stored as they were uploaded, with the shells they carry."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from aas_core3 import verification
from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from aas_models.aasx import read_aasx
from aas_models.errors import AasFileError
from twin_server.errors import bad_request, not_found
from twin_server.repository import dumps
from twin_server.routes.common import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Reader,
    Writer,
    content_disposition,
    decode_id,
    json_response,
    paged_page,
    parts,
)
from twin_server.storage.base import Conflict, Filter, Index, Kind, NotFound, StoredFile

router = APIRouter(tags=["AASX File Server"])
AASX = "application/asset-administration-shell-package+xml"
PACKAGE_FILE = "package"


async def _upload(request: Request) -> tuple[str, bytes, list[str]]:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise bad_request("expected multipart/form-data with a 'file' part holding the AASX package")
    data = await upload.read()
    try:
        package = read_aasx(data, upload.filename or "upload.aasx")
    except AasFileError as exc:
        raise bad_request("not a valid AASX package: " + "; ".join(str(p) for p in exc.problems[:5])) from None
    file_name = form.get("fileName")
    name = file_name if isinstance(file_name, str) and file_name else (upload.filename or "package.aasx")
    if len(name) > 255 or not verification.matches_xml_serializable_string(name):
        raise bad_request("fileName: at most 255 characters, and no control characters")
    aas_ids = [shell.id for shell in package.environment.asset_administration_shells or []]
    return name, data, aas_ids


def _description(package_id: str, aas_ids: list[str], file_name: str) -> dict[str, Any]:
    return {"packageId": package_id, "aasIds": aas_ids, "fileName": file_name}


def _index(aas_ids: list[str]) -> Index:
    return Index(refs=tuple(("aasId", i) for i in aas_ids))


@router.get("/packages")
async def get_all_packages(request: Request, _p: Reader,
                           aas_id: Annotated[str | None, Query(alias="aasId", min_length=1)] = None,
                           limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Response:
    flt = Filter(refs=(("aasId", decode_id(aas_id, "aasId")),) if aas_id else ())
    return paged_page(await parts(request).repo.page(Kind.PACKAGE, flt, limit, cursor))


@router.post("/packages", status_code=201)
async def post_package(request: Request, _p: Writer) -> Response:
    name, data, aas_ids = await _upload(request)
    package_id = str(uuid.uuid4())
    description = _description(package_id, aas_ids, name)
    storage = parts(request).repo.storage
    try:
        await storage.create(Kind.PACKAGE, package_id, dumps(description), _index(aas_ids))
    except Conflict:  # pragma: no cover - uuid4 collision
        raise bad_request("package id collision; retry") from None
    await storage.put_file(Kind.PACKAGE, package_id, PACKAGE_FILE, StoredFile(AASX, name, data))
    return json_response(description, 201, headers={"Location": f"packages/{package_id}"})


@router.get("/packages/{package_id}")
async def get_package(request: Request, _p: Reader, package_id: str) -> Response:
    ident = decode_id(package_id, "packageId")
    stored = await parts(request).repo.storage.get_file(Kind.PACKAGE, ident, PACKAGE_FILE)
    if stored is None:
        raise not_found(f"package {ident!r}")
    return Response(stored.data, media_type=AASX,
                    headers={"Content-Disposition": content_disposition(stored.file_name)})


@router.put("/packages/{package_id}", status_code=204)
async def put_package(request: Request, _p: Writer, package_id: str) -> Response:
    ident = decode_id(package_id, "packageId")
    name, data, aas_ids = await _upload(request)
    storage = parts(request).repo.storage
    description = dumps(_description(ident, aas_ids, name))
    try:
        await storage.update(Kind.PACKAGE, ident, lambda _old: (description, _index(aas_ids)))
    except NotFound:
        raise not_found(f"package {ident!r}") from None
    await storage.put_file(Kind.PACKAGE, ident, PACKAGE_FILE, StoredFile(AASX, name, data))
    return Response(status_code=204)


@router.delete("/packages/{package_id}", status_code=204)
async def delete_package(request: Request, _p: Writer, package_id: str) -> Response:
    ident = decode_id(package_id, "packageId")
    try:
        await parts(request).repo.storage.delete(Kind.PACKAGE, ident)
    except NotFound:
        raise not_found(f"package {ident!r}") from None
    return Response(status_code=204)

