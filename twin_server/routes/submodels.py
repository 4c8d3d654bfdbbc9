"""Submodel Repository and the Submodel interface (also reached through a shell's superpath)."""

# No `from __future__ import annotations` here: FastAPI must see the local `Target` dependency type.


from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from twin_server import idshort_path, values, views
from twin_server.errors import ApiError, bad_request, not_found
from twin_server.idshort_path import Token, children_of, locate
from twin_server.repository import dumps
from twin_server.routes.common import (
    DEFAULT_LIMIT,
    Cursor,
    ExtentQ,
    LevelQ,
    Limit,
    Reader,
    Writer,
    content_disposition,
    decode_b64_text,
    decode_id,
    json_response,
    page_slice,
    paged,
    paged_page,
    parts,
)
from twin_server.storage.base import FileChange, Filter, Kind, NoFile, StoredFile
from twin_server.validate import canonical, parse_json

repository = APIRouter(tags=["Submodel Repository"])

IdShortQ = Annotated[str | None, Query(alias="idShort", min_length=1, max_length=128)]
SemanticIdQ = Annotated[str | None, Query(alias="semanticId", min_length=1)]


def _submodel_filter(id_short: str | None, semantic_id: str | None) -> Filter:
    return Filter(id_short=id_short,
                  semantic_id=decode_b64_text(semantic_id, "semanticId") if semantic_id else None)


def _docs(items: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(item) for item in items]


@repository.get("/submodels")
async def get_all_submodels(request: Request, _p: Reader, id_short: IdShortQ = None,
                            semantic_id: SemanticIdQ = None, limit: Limit = DEFAULT_LIMIT,
                            cursor: Cursor = None, level: LevelQ = None, extent: ExtentQ = None) -> Response:
    page = await parts(request).repo.page(Kind.SUBMODEL, _submodel_filter(id_short, semantic_id), limit, cursor)
    if level is None and extent is None:
        return paged_page(page)
    return paged([dumps(views.shape(d, level, extent)) for d in _docs(page.items)], page.cursor)


@repository.get("/submodels/$metadata")
async def get_all_submodels_metadata(request: Request, _p: Reader, id_short: IdShortQ = None,
                                     semantic_id: SemanticIdQ = None, limit: Limit = DEFAULT_LIMIT,
                                     cursor: Cursor = None) -> Response:
    page = await parts(request).repo.page(Kind.SUBMODEL, _submodel_filter(id_short, semantic_id), limit, cursor)
    return paged([dumps(views.metadata(d)) for d in _docs(page.items)], page.cursor)


@repository.get("/submodels/$value")
async def get_all_submodels_value(request: Request, _p: Reader, id_short: IdShortQ = None,
                                  semantic_id: SemanticIdQ = None, limit: Limit = DEFAULT_LIMIT,
                                  cursor: Cursor = None, level: LevelQ = None, extent: ExtentQ = None) -> Response:
    page = await parts(request).repo.page(Kind.SUBMODEL, _submodel_filter(id_short, semantic_id), limit, cursor)
    return paged([dumps(values.submodel_value(views.shape(d, level, extent))) for d in _docs(page.items)],
                 page.cursor)


@repository.get("/submodels/$reference")
async def get_all_submodels_reference(request: Request, _p: Reader, id_short: IdShortQ = None,
                                      semantic_id: SemanticIdQ = None, limit: Limit = DEFAULT_LIMIT,
                                      cursor: Cursor = None) -> Response:
    page = await parts(request).repo.page(Kind.SUBMODEL, _submodel_filter(id_short, semantic_id), limit, cursor)
    return paged([dumps(views.identifiable_reference("Submodel", d["id"])) for d in _docs(page.items)],
                 page.cursor)


@repository.get("/submodels/$path")
async def get_all_submodels_path(request: Request, _p: Reader, id_short: IdShortQ = None,
                                 semantic_id: SemanticIdQ = None, limit: Limit = DEFAULT_LIMIT,
                                 cursor: Cursor = None, level: LevelQ = None) -> Response:
    page = await parts(request).repo.page(Kind.SUBMODEL, _submodel_filter(id_short, semantic_id), limit, cursor)
    # One entry per submodel (its own idShortPath, the idShort), so that `limit` counts submodels.
    return paged([dumps(d.get("idShort", "")) for d in _docs(page.items)], page.cursor)


@repository.post("/submodels", status_code=201)
async def post_submodel(request: Request, _p: Writer) -> Response:
    doc = await parts(request).repo.create(Kind.SUBMODEL, await request.body())
    return json_response(dumps(doc), 201)


# The Submodel interface -----------------------------------------------------------------------

SubmodelTarget = Callable[..., Awaitable[str]]


async def direct_target(submodel_id: str) -> str:
    return decode_id(submodel_id, "submodelIdentifier")


async def shell_target(request: Request, aas_id: str, submodel_id: str) -> str:
    """Through a shell: the submodel must be one of the shell's submodel references."""
    shell_id = decode_id(aas_id, "aasIdentifier")
    ident = decode_id(submodel_id, "submodelIdentifier")
    shell = await parts(request).repo.get(Kind.SHELL, shell_id)
    refs = [ref.get("keys", [{}])[-1].get("value") for ref in shell.get("submodels", [])]
    if ident not in refs:
        raise not_found(f"submodel {ident!r} in shell {shell_id!r}")
    return ident


def _path_tokens(path: str) -> list[Token]:
    return idshort_path.parse(path)


def submodel_interface(prefix: str, target: SubmodelTarget) -> APIRouter:
    """The routes of one submodel; `target` resolves (and checks) the submodel id from the path."""
    router = APIRouter(prefix=prefix, tags=["Submodel"])
    Target = Annotated[str, Depends(target)]

    @router.get("")
    async def get_submodel(request: Request, _p: Reader, ident: Target, level: LevelQ = None,
                           extent: ExtentQ = None) -> Response:
        repo = parts(request).repo
        if level is None and extent is None:
            return json_response(await repo.get_bytes(Kind.SUBMODEL, ident))
        return json_response(views.shape(await repo.get(Kind.SUBMODEL, ident), level, extent))

    @router.put("", status_code=204)
    async def put_submodel(request: Request, _p: Writer, ident: Target) -> Response:
        await parts(request).repo.replace(Kind.SUBMODEL, ident, await request.body())
        return Response(status_code=204)

    @router.patch("", status_code=204)
    async def patch_submodel(request: Request, _p: Writer, ident: Target) -> Response:
        await parts(request).repo.replace(Kind.SUBMODEL, ident, await request.body())
        return Response(status_code=204)

    @router.delete("", status_code=204)
    async def delete_submodel(request: Request, _p: Writer, ident: Target) -> Response:
        await parts(request).repo.delete(Kind.SUBMODEL, ident)
        return Response(status_code=204)

    @router.get("/$metadata")
    async def get_submodel_metadata(request: Request, _p: Reader, ident: Target) -> Response:
        return json_response(views.metadata(await parts(request).repo.get(Kind.SUBMODEL, ident)))

    @router.patch("/$metadata", status_code=204)
    async def patch_submodel_metadata(request: Request, _p: Writer, ident: Target) -> Response:
        update = parse_json(await request.body())
        if not isinstance(update, dict):
            raise bad_request("expected the submodel's metadata as an object")
        repo = parts(request).repo

        def change(doc: dict[str, Any]) -> None:
            merged = {**doc, **{k: v for k, v in update.items() if k != "submodelElements"}}
            if merged.get("id") != ident:
                raise bad_request("the metadata's id differs from the id in the path")
            doc.clear()
            doc.update(canonical(Kind.SUBMODEL, merged))

        await repo.modify(Kind.SUBMODEL, ident, change)
        return Response(status_code=204)

    @router.get("/$value")
    async def get_submodel_value(request: Request, _p: Reader, ident: Target, level: LevelQ = None,
                                 extent: ExtentQ = None) -> Response:
        doc = views.shape(await parts(request).repo.get(Kind.SUBMODEL, ident), level, extent)
        return json_response(values.submodel_value(doc))

    @router.patch("/$value", status_code=204)
    async def patch_submodel_value(request: Request, _p: Writer, ident: Target) -> Response:
        """Value-only bulk write (the edge agent's path): every value is type-checked; all or nothing."""
        await parts(request).repo.patch_submodel_value(ident, parse_json(await request.body()))
        return Response(status_code=204)

    @router.get("/$reference")
    async def get_submodel_reference(request: Request, _p: Reader, ident: Target) -> Response:
        await parts(request).repo.get_bytes(Kind.SUBMODEL, ident)
        return json_response(views.identifiable_reference("Submodel", ident))

    @router.get("/$path")
    async def get_submodel_path(request: Request, _p: Reader, ident: Target, level: LevelQ = None) -> Response:
        return json_response(views.paths(await parts(request).repo.get(Kind.SUBMODEL, ident), [], level))

    # All elements ---------------------------------------------------------------------------

    async def top_elements(request: Request, ident: str, limit: int, cursor: str | None) \
            -> tuple[list[dict[str, Any]], str | None]:
        doc = await parts(request).repo.get(Kind.SUBMODEL, ident)
        return page_slice(doc.get("submodelElements", []), limit, cursor)

    @router.get("/submodel-elements")
    async def get_all_elements(request: Request, _p: Reader, ident: Target, limit: Limit = DEFAULT_LIMIT,
                               cursor: Cursor = None, level: LevelQ = None, extent: ExtentQ = None) -> Response:
        items, next_cursor = await top_elements(request, ident, limit, cursor)
        return paged([dumps(views.shape(e, level, extent)) for e in items], next_cursor)

    @router.get("/submodel-elements/$metadata")
    async def get_all_elements_metadata(request: Request, _p: Reader, ident: Target, limit: Limit = DEFAULT_LIMIT,
                                        cursor: Cursor = None) -> Response:
        items, next_cursor = await top_elements(request, ident, limit, cursor)
        return paged([dumps(views.metadata(e)) for e in items], next_cursor)

    @router.get("/submodel-elements/$value")
    async def get_all_elements_value(request: Request, _p: Reader, ident: Target, limit: Limit = DEFAULT_LIMIT,
                                     cursor: Cursor = None, level: LevelQ = None, extent: ExtentQ = None) \
            -> Response:
        items, next_cursor = await top_elements(request, ident, limit, cursor)
        return paged([dumps(values.element_value(views.shape(e, level, extent))) for e in items], next_cursor)

    @router.get("/submodel-elements/$reference")
    async def get_all_elements_reference(request: Request, _p: Reader, ident: Target,
                                         limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Response:
        items, next_cursor = await top_elements(request, ident, limit, cursor)
        return paged([dumps(views.element_reference(ident, [e], [e.get("idShort", "")])) for e in items],
                     next_cursor)

    @router.get("/submodel-elements/$path")
    async def get_all_elements_path(request: Request, _p: Reader, ident: Target, limit: Limit = DEFAULT_LIMIT,
                                    cursor: Cursor = None, level: LevelQ = None) -> Response:
        doc = await parts(request).repo.get(Kind.SUBMODEL, ident)
        items, next_cursor = page_slice(views.paths(doc, [], level), limit, cursor)
        return paged([dumps(p) for p in items], next_cursor)

    @router.post("/submodel-elements", status_code=201)
    async def post_element(request: Request, _p: Writer, ident: Target) -> Response:
        element = await parts(request).repo.add_element(ident, None, "", await request.body())
        return json_response(dumps(element), 201)

    # One element ----------------------------------------------------------------------------

    @router.get("/submodel-elements/{path}")
    async def get_element(request: Request, _p: Reader, ident: Target, path: str, level: LevelQ = None,
                          extent: ExtentQ = None) -> Response:
        _doc, found = await parts(request).repo.element(ident, _path_tokens(path), path)
        return json_response(views.shape(found.element, level, extent))

    @router.put("/submodel-elements/{path}", status_code=204)
    async def put_element(request: Request, _p: Writer, ident: Target, path: str) -> Response:
        await parts(request).repo.replace_element(ident, _path_tokens(path), path, await request.body())
        return Response(status_code=204)

    @router.patch("/submodel-elements/{path}", status_code=204)
    async def patch_element(request: Request, _p: Writer, ident: Target, path: str) -> Response:
        await parts(request).repo.replace_element(ident, _path_tokens(path), path, await request.body())
        return Response(status_code=204)

    @router.post("/submodel-elements/{path}", status_code=201)
    async def post_element_at(request: Request, _p: Writer, ident: Target, path: str) -> Response:
        element = await parts(request).repo.add_element(ident, _path_tokens(path), path, await request.body())
        return json_response(dumps(element), 201)

    @router.delete("/submodel-elements/{path}", status_code=204)
    async def delete_element(request: Request, _p: Writer, ident: Target, path: str) -> Response:
        await parts(request).repo.delete_element(ident, _path_tokens(path), path)
        return Response(status_code=204)

    @router.get("/submodel-elements/{path}/$metadata")
    async def get_element_metadata(request: Request, _p: Reader, ident: Target, path: str) -> Response:
        _doc, found = await parts(request).repo.element(ident, _path_tokens(path), path)
        if not views.has_metadata(found.element):
            raise bad_request(f"a {found.element.get('modelType')} has no $metadata representation")
        return json_response(views.metadata(found.element))

    @router.patch("/submodel-elements/{path}/$metadata", status_code=204)
    async def patch_element_metadata(request: Request, _p: Writer, ident: Target, path: str) -> Response:
        update = parse_json(await request.body())
        if not isinstance(update, dict):
            raise bad_request("expected the element's metadata as an object")
        tokens = _path_tokens(path)

        def change(doc: dict[str, Any]) -> None:
            found = locate(doc, tokens, path)
            kept = {k: v for k, v in found.element.items() if k not in views.metadata(found.element)}
            merged = canonical("element", {**views.metadata(found.element), **update, **kept})
            if merged.get("idShort") != found.element.get("idShort"):
                raise bad_request("the idShort of an element cannot change through $metadata")
            (children_of(found.parent) or [])[found.index] = merged

        await parts(request).repo.modify(Kind.SUBMODEL, ident, change, path=path)
        return Response(status_code=204)

    @router.get("/submodel-elements/{path}/$value")
    async def get_element_value(request: Request, _p: Reader, ident: Target, path: str, level: LevelQ = None,
                                extent: ExtentQ = None) -> Response:
        _doc, found = await parts(request).repo.element(ident, _path_tokens(path), path)
        return json_response(values.element_value(views.shape(found.element, level, extent)))

    @router.patch("/submodel-elements/{path}/$value", status_code=204)
    async def patch_element_value(request: Request, _p: Writer, ident: Target, path: str) -> Response:
        update = parse_json(await request.body())
        await parts(request).repo.patch_element_value(ident, _path_tokens(path), path, update)
        return Response(status_code=204)

    @router.get("/submodel-elements/{path}/$reference")
    async def get_element_reference(request: Request, _p: Reader, ident: Target, path: str) -> Response:
        tokens = _path_tokens(path)
        _doc, found = await parts(request).repo.element(ident, tokens, path)
        return json_response(views.element_reference(ident, found.chain, tokens))

    @router.get("/submodel-elements/{path}/$path")
    async def get_element_path(request: Request, _p: Reader, ident: Target, path: str,
                               level: LevelQ = None) -> Response:
        tokens = _path_tokens(path)
        _doc, found = await parts(request).repo.element(ident, tokens, path)
        if found.element.get("modelType") not in ("SubmodelElementCollection", "SubmodelElementList", "Entity"):
            raise bad_request(f"{path!r} is a {found.element.get('modelType')}; only collections, lists and "
                              "entities have paths below them")
        return json_response(views.paths(found.element, tokens, level))

    # Attachments of File elements -----------------------------------------------------------

    @router.get("/submodel-elements/{path}/attachment")
    async def get_attachment(request: Request, _p: Reader, ident: Target, path: str) -> Response:
        _doc, found = await parts(request).repo.element(ident, _path_tokens(path), path)
        if found.element.get("modelType") != "File":
            raise bad_request(f"{path!r} is a {found.element.get('modelType')}, not a File")
        stored = await parts(request).repo.storage.get_file(Kind.SUBMODEL, ident, path)
        if stored is None:
            raise not_found(f"attachment of {path!r}")
        return Response(stored.data, media_type=stored.content_type,
                        headers={"Content-Disposition": content_disposition(stored.file_name)})

    @router.put("/submodel-elements/{path}/attachment", status_code=204)
    async def put_attachment(request: Request, _p: Writer, ident: Target, path: str) -> Response:
        form = await request.form()
        upload = form.get("file")
        file_name = form.get("fileName")
        if upload is None or isinstance(upload, str):
            raise bad_request("expected multipart/form-data with a 'file' part")
        data = await upload.read()
        name = file_name if isinstance(file_name, str) and file_name else (upload.filename or "attachment")
        content_type = upload.content_type or "application/octet-stream"
        tokens = _path_tokens(path)
        repo = parts(request).repo

        def change(doc: dict[str, Any]) -> None:
            found = locate(doc, tokens, path)
            if found.element.get("modelType") != "File":
                raise bad_request(f"{path!r} is a {found.element.get('modelType')}, not a File")
            # Checked like a PUT of the element: the upload's name and type become its value and contentType.
            try:
                checked = canonical("element", {**found.element, "value": name, "contentType": content_type})
            except ApiError as exc:
                raise bad_request(f"{path}: the upload's fileName or content type: {exc.text}") from None
            (children_of(found.parent) or [])[found.index] = checked

        await repo.modify(Kind.SUBMODEL, ident, change, path=path,
                          file=FileChange(path, StoredFile(content_type, name, data)))
        return Response(status_code=204)

    @router.delete("/submodel-elements/{path}/attachment", status_code=204)
    async def delete_attachment(request: Request, _p: Writer, ident: Target, path: str) -> Response:
        tokens = _path_tokens(path)
        repo = parts(request).repo
        await repo.element(ident, tokens, path)  # a missing element is a 404 before a missing attachment

        def change(doc: dict[str, Any]) -> None:
            locate(doc, tokens, path).element.pop("value", None)

        try:
            await repo.modify(Kind.SUBMODEL, ident, change, path=path, file=FileChange(path))
        except NoFile:
            raise not_found(f"attachment of {path!r}") from None
        return Response(status_code=204)

    @router.post("/submodel-elements/{path}/invoke")
    async def invoke_operation(_p: Writer, ident: Target, path: str) -> Response:
        raise ApiError(501, "operations are not invoked by this server")

    return router
