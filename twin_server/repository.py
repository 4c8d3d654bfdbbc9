"""The AAS repositories over one Storage: validation on write, index fields, element operations.

Documents are kept as canonical JSON bytes. Reads of whole identifiables return those bytes
untouched; element reads parse the one submodel they need. Every change goes through
`Storage.update`, so it is atomic, and is announced to `notify` once it is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from twin_server import validate, values
from twin_server.errors import ApiError, bad_request, not_found
from twin_server.idshort_path import Located, Token, ensure_children, locate
from twin_server.storage.base import Conflict, FileChange, Filter, Index, Kind, NotFound, Page, Storage
from twin_server.value_splice import Splicer

T = TypeVar("T")

#: (event type, kind, identifiable id, idShortPath or None, value or None)
Notify = Callable[[str, Kind, str, str | None, Any], None]

_LABEL = {Kind.SHELL: "shell", Kind.SUBMODEL: "submodel", Kind.CONCEPT_DESCRIPTION: "concept description"}


def _first_key(reference: Any) -> str | None:
    if isinstance(reference, dict):
        keys = reference.get("keys") or []
        if keys and isinstance(keys[0], dict):
            value = keys[0].get("value")
            return value if isinstance(value, str) else None
    return None


def index_of(kind: Kind, doc: dict[str, Any]) -> Index:
    if kind == Kind.SHELL:
        info = doc.get("assetInformation", {})
        pairs = [("globalAssetId", info["globalAssetId"])] if "globalAssetId" in info else []
        pairs += [(s["name"], s["value"]) for s in info.get("specificAssetIds", [])]
        return Index(id_short=doc.get("idShort"), asset_ids=tuple(pairs))
    if kind == Kind.SUBMODEL:
        return Index(id_short=doc.get("idShort"), semantic_id=_first_key(doc.get("semanticId")))
    refs = [("isCaseOf", v) for v in map(_first_key, doc.get("isCaseOf", [])) if v]
    refs += [("dataSpecificationRef", v) for v in
             (_first_key(e.get("dataSpecification")) for e in doc.get("embeddedDataSpecifications", [])) if v]
    return Index(id_short=doc.get("idShort"), refs=tuple(refs))


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc)


#: Parsed submodels kept for element reads (each entry also holds the bytes it was parsed from).
_PARSED_CACHE_SIZE = 64
#: Serialized element answers kept per parsed submodel.
_RENDERED_PER_SUBMODEL = 256


@dataclass(slots=True)
class _Parsed:
    """One stored version of a submodel: its bytes, their parse and element answers made from it."""

    body: bytes
    doc: dict[str, Any]
    #: (idShortPath, `$value`?) -> the answer's JSON bytes
    rendered: dict[tuple[str, bool], bytes] = field(default_factory=dict)


@dataclass
class Repository:
    storage: Storage
    notify: Notify | None = None
    #: submodel id -> its last parsed version, for element reads only: a read still fetches the stored
    #: bytes (so every replica sees every write at once) and reuses the parse, and answers made from it,
    #: while they are equal. The cached documents are never mutated: writes parse their own copy.
    _parsed: dict[str, _Parsed] = field(default_factory=dict, repr=False)
    #: Property values written into the stored bytes without re-serialising the submodel.
    _splicer: Splicer = field(default_factory=lambda: Splicer(lambda doc: index_of(Kind.SUBMODEL, doc)), repr=False)

    def _emit(self, event: str, kind: Kind, ident: str, path: str | None = None, value: Any = None) -> None:
        if self.notify is not None:
            self.notify(event, kind, ident, path, value)

    # Identifiables --------------------------------------------------------------------------

    async def page(self, kind: Kind, flt: Filter, limit: int, cursor: str | None) -> Page:
        if limit < 1:
            raise bad_request("limit must be at least 1")
        try:
            return await self.storage.page(kind, flt, limit, cursor)
        except ValueError as exc:
            raise bad_request(f"cursor: {exc}") from None

    async def get_bytes(self, kind: Kind, ident: str) -> bytes:
        body = await self.storage.get(kind, ident)
        if body is None:
            raise not_found(f"{_LABEL.get(kind, kind)} {ident!r}")
        return body

    async def get(self, kind: Kind, ident: str) -> dict[str, Any]:
        doc = orjson.loads(await self.get_bytes(kind, ident))
        assert isinstance(doc, dict)
        return doc

    async def create(self, kind: Kind, body: bytes) -> dict[str, Any]:
        doc = validate.canonical(kind, validate.parse_json(body))
        try:
            await self.storage.create(kind, doc["id"], dumps(doc), index_of(kind, doc))
        except Conflict:
            raise ApiError(409, f"a {_LABEL[kind]} with id {doc['id']!r} exists already") from None
        self._emit("created", kind, doc["id"])
        return doc

    async def replace(self, kind: Kind, ident: str, body: bytes) -> dict[str, Any]:
        doc = validate.canonical(kind, validate.parse_json(body))
        if doc["id"] != ident:
            raise bad_request(f"the body's id {doc['id']!r} differs from the id in the path {ident!r}")
        stored = dumps(doc)
        try:
            await self.storage.update(kind, ident, lambda _old: (stored, index_of(kind, doc)))
        except NotFound:
            raise not_found(f"{_LABEL[kind]} {ident!r}") from None
        self._emit("updated", kind, ident)
        return doc

    async def delete(self, kind: Kind, ident: str) -> None:
        try:
            await self.storage.delete(kind, ident)
        except NotFound:
            raise not_found(f"{_LABEL[kind]} {ident!r}") from None
        self._emit("deleted", kind, ident)

    async def modify(self, kind: Kind, ident: str, change: Callable[[dict[str, Any]], T], *,
                     event: str = "updated", path: str | None = None, value: Any = None,
                     file: FileChange | None = None) -> tuple[T, dict[str, Any]]:
        """Run `change` on the parsed document and store the result, with `file` stored or removed in the
        same transaction, atomically, then announce (`event`, `path`, `value`). Raises NoFile (from storage).

        `change` mutates the document in place and validates what it touched (raising ApiError
        leaves the stored document unchanged).
        """
        result: list[T] = []
        after: list[dict[str, Any]] = []

        def apply(old: bytes) -> tuple[bytes, Index]:
            doc = orjson.loads(old)
            result.append(change(doc))
            after.append(doc)
            return dumps(doc), index_of(kind, doc)

        try:
            await self.storage.update(kind, ident, apply, file)
        except NotFound:
            raise not_found(f"{_LABEL[kind]} {ident!r}") from None
        self._emit(event, kind, ident, path, value)
        return result[0], after[0]

    # Value-only writes (the edge agent's hot path; also served by the fast lane) ----------------

    async def patch_submodel_value(self, ident: str, update: Any) -> None:
        """Every value is type-checked; all or nothing."""
        spliced: list[tuple[tuple[Token, ...], str, Any]] | None = None
        if isinstance(update, dict) and all(isinstance(key, str) for key in update):
            spliced = [((key,), key, value) for key, value in update.items()]
        await self._patch_values(ident, spliced, lambda doc: values.apply_submodel_value(doc, update),
                                 element_form=False, path=None, value=update)

    async def patch_element_value(self, ident: str, tokens: list[Token], path: str, update: Any) -> None:
        await self._patch_values(
            ident, [(tuple(tokens), path, update)],
            lambda doc: values.apply_element_value(locate(doc, tokens, path).element, update, path),
            element_form=True, path=path, value=update)

    async def _patch_values(self, ident: str, spliced: list[tuple[tuple[Token, ...], str, Any]] | None,
                            change: Callable[[dict[str, Any]], None], *, element_form: bool, path: str | None,
                            value: Any) -> None:
        """:meth:`modify` for value writes: Property values are spliced into the stored bytes when they can be
        (the same bytes, the same errors), else `change` runs on the parsed document."""

        def apply(old: bytes) -> tuple[bytes, Index]:
            done = self._splicer.splice(ident, old, spliced, element_form=element_form) if spliced is not None else None
            if done is not None:
                return done
            doc = orjson.loads(old)
            change(doc)
            return dumps(doc), index_of(Kind.SUBMODEL, doc)

        try:
            await self.storage.update(Kind.SUBMODEL, ident, apply)
        except NotFound:
            raise not_found(f"submodel {ident!r}") from None
        self._emit("value-changed", Kind.SUBMODEL, ident, path, value)

    # Submodel elements ----------------------------------------------------------------------

    async def element(self, submodel_id: str, tokens: list[Token], path: str) -> tuple[dict[str, Any], Located]:
        """The submodel and the element at `path`, both read-only (shared with other reads)."""
        parsed = await self._parsed_submodel(submodel_id)
        return parsed.doc, locate(parsed.doc, tokens, path)

    async def element_bytes(self, submodel_id: str, tokens: list[Token], path: str, value: bool) -> bytes:
        """The JSON answer of GET on the element at `path` (its `$value` if `value`), reused while the
        stored submodel is unchanged."""
        body = await self.get_bytes(Kind.SUBMODEL, submodel_id)
        return self.element_answer(submodel_id, body, tokens, path, value)

    def element_answer(self, submodel_id: str, body: bytes, tokens: list[Token], path: str, value: bool) -> bytes:
        """:meth:`element_bytes` for the stored submodel `body` (already read; no I/O, so callers that read
        the store synchronously can answer without a task)."""
        parsed = self._parsed_from(submodel_id, body)
        key = (path, value)
        answer = parsed.rendered.get(key)
        if answer is None:
            element = locate(parsed.doc, tokens, path).element
            answer = dumps(values.element_value(element) if value else element)
            if len(parsed.rendered) >= _RENDERED_PER_SUBMODEL:
                parsed.rendered.clear()
            parsed.rendered[key] = answer
        return answer

    async def _parsed_submodel(self, submodel_id: str) -> _Parsed:
        return self._parsed_from(submodel_id, await self.get_bytes(Kind.SUBMODEL, submodel_id))

    def _parsed_from(self, submodel_id: str, body: bytes) -> _Parsed:
        parsed = self._parsed.get(submodel_id)
        if parsed is None or parsed.body != body:
            parsed = _Parsed(body, orjson.loads(body))
            if submodel_id not in self._parsed and len(self._parsed) >= _PARSED_CACHE_SIZE:
                del self._parsed[next(iter(self._parsed))]
            self._parsed[submodel_id] = parsed
        return parsed

    async def add_element(self, submodel_id: str, tokens: list[Token] | None, path: str, body: bytes) \
            -> dict[str, Any]:
        element = validate.canonical("element", validate.parse_json(body))

        def change(submodel: dict[str, Any]) -> None:
            parent = locate(submodel, tokens, path).element if tokens else submodel
            items = ensure_children(parent, path)
            if parent.get("modelType") == "SubmodelElementList":
                _check_list_item(parent, element)
            elif any(item.get("idShort") == element.get("idShort") for item in items):
                raise ApiError(409, f"an element {element.get('idShort')!r} exists already in "
                                    f"{path or 'the submodel'}")
            elif "idShort" not in element:
                raise bad_request("an element outside a SubmodelElementList needs an idShort")
            items.append(element)

        await self.modify(Kind.SUBMODEL, submodel_id, change, event="created",
                          path=_child_path(path, element) if "idShort" in element else path or None)
        return element

    async def replace_element(self, submodel_id: str, tokens: list[Token], path: str, body: bytes) \
            -> dict[str, Any]:
        element = validate.canonical("element", validate.parse_json(body))

        def change(submodel: dict[str, Any]) -> None:
            found = locate(submodel, tokens, path)
            items = ensure_children(found.parent, path)
            if found.parent.get("modelType") == "SubmodelElementList":
                _check_list_item(found.parent, element)
            elif element.get("idShort") != found.element.get("idShort"):
                raise bad_request(f"the body's idShort {element.get('idShort')!r} differs from the path {path!r}")
            items[found.index] = element

        await self.modify(Kind.SUBMODEL, submodel_id, change, path=path)
        return element

    async def delete_element(self, submodel_id: str, tokens: list[Token], path: str) -> None:
        def change(submodel: dict[str, Any]) -> None:
            found = locate(submodel, tokens, path)
            del ensure_children(found.parent, path)[found.index]

        await self.modify(Kind.SUBMODEL, submodel_id, change, event="deleted", path=path)


def _child_path(parent_path: str, element: dict[str, Any]) -> str:
    id_short = element.get("idShort", "")
    return f"{parent_path}.{id_short}" if parent_path else id_short


def _check_list_item(lst: dict[str, Any], element: dict[str, Any]) -> None:
    if "idShort" in element:
        raise bad_request("items of a SubmodelElementList have no idShort (AASd-120)")
    expected = lst.get("typeValueListElement")
    if expected and element.get("modelType") != expected and expected != "SubmodelElement":
        raise bad_request(f"this list holds {expected} items, not {element.get('modelType')}")
    value_type = lst.get("valueTypeListElement")
    if value_type and element.get("valueType", value_type) != value_type:
        raise bad_request(f"this list holds {value_type} values, not {element.get('valueType')}")
