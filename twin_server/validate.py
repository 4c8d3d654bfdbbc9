"""Validation on write: request bodies become canonical, constraint-checked JSON, or a 400 naming
the element and the rule. Reads then never need to re-validate."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson
from aas_core3 import jsonization, verification

from aas_models.gcpause import gc_paused
from aas_models.location import describe, snake_to_camel
from twin_server.errors import bad_request
from twin_server.storage.base import Kind

_FROM_JSONABLE: dict[str, Callable[[Any], Any]] = {
    Kind.SHELL: jsonization.asset_administration_shell_from_jsonable,
    Kind.SUBMODEL: jsonization.submodel_from_jsonable,
    Kind.CONCEPT_DESCRIPTION: jsonization.concept_description_from_jsonable,
    "element": jsonization.submodel_element_from_jsonable,
    "asset-information": jsonization.asset_information_from_jsonable,
    "reference": jsonization.reference_from_jsonable,
}
_ROOT_KEY: dict[str, str] = {Kind.SHELL: "assetAdministrationShells", Kind.SUBMODEL: "submodels",
             Kind.CONCEPT_DESCRIPTION: "conceptDescriptions"}


def parse_json(body: bytes) -> Any:
    if not body:
        raise bad_request("the request needs a JSON body")
    try:
        with gc_paused():
            return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None


def canonical(what: str, jsonable: Any) -> dict[str, Any]:
    """Deserialize as `what` (a Kind, "element", "asset-information", "reference"), verify, re-serialize."""
    if what in (Kind.SUBMODEL, "element"):
        blob = _bad_blob_value(jsonable, [])
        if blob is not None:
            raise bad_request(f"not a valid {what}: {_where(what, jsonable, blob)}: a Blob value is base64 "
                              "(RFC 4648 alphabet A-Z a-z 0-9 + /, with = padding)")
    try:
        with gc_paused():
            instance = _FROM_JSONABLE[what](jsonable)
    except jsonization.DeserializationException as exc:
        segments = [s.name if isinstance(s, jsonization.PropertySegment) else s.index for s in exc.path.segments]
        raise bad_request(f"not a valid {what}: {_where(what, jsonable, segments)}: {exc.cause}") from None
    except ValueError as exc:  # aas-core lets some decoding errors through (e.g. of base64 or text)
        raise bad_request(f"not a valid {what}: {exc}") from None
    errors = list(verification.verify(instance))
    if errors:
        texts = []
        for error in errors[:10]:
            segments = [snake_to_camel(s.name) if isinstance(s, verification.PropertySegment) else s.index
                        for s in error.path.segments]
            texts.append(f"{_where(what, jsonable, segments)}: {error.cause}")
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise bad_request(f"{what} breaks metamodel constraints: " + "; ".join(texts) + more)
    result = jsonization.to_jsonable(instance)
    assert isinstance(result, dict)
    return result


def _bad_blob_value(root: Any, segments: list[str | int]) -> list[str | int] | None:
    """Where the first Blob whose value is not strict base64 is (aas-core's decoder would drop characters
    outside the alphabet, or fail with a bare binascii.Error), or None. Iterative: bodies may nest deeply."""
    stack: list[tuple[Any, list[str | int]]] = [(root, segments)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            if node.get("modelType") == "Blob" and isinstance(node.get("value"), str) \
                    and not is_base64(node["value"]):
                return [*where, "value"]
            children: list[tuple[str | int, Any]] = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            continue
        stack.extend((child, [*where, key]) for key, child in reversed(children) if isinstance(child, dict | list))
    return None


def is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _where(what: str, jsonable: Any, segments: list[str | int]) -> str:
    root_key = _ROOT_KEY.get(what)
    if root_key is not None:
        return describe({root_key: [jsonable]}, [root_key, 0, *segments])
    if what == "element":
        return describe({"submodels": [{"submodelElements": [jsonable]}]},
                        ["submodels", 0, "submodelElements", 0, *segments])
    return "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in segments).lstrip(".") or "(body)"
