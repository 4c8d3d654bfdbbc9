"""The ValueOnly form of Part 2 (`$value`): reading it from elements and writing it into them.

Writing checks every value against the element's valueType with aas-core's XSD checks, so a
value-only PATCH can never store what a full PUT would have refused.
"""

from __future__ import annotations

import math
from typing import Any

from aas_core3 import jsonization, verification
from aas_core3 import types as aas

from twin_server.errors import ApiError, bad_request
from twin_server.idshort_path import children_of
from twin_server.validate import canonical

_INTEGER_TYPES = {
    "xs:integer", "xs:long", "xs:int", "xs:short", "xs:byte", "xs:unsignedLong", "xs:unsignedInt",
    "xs:unsignedShort", "xs:unsignedByte", "xs:positiveInteger", "xs:nonNegativeInteger",
    "xs:negativeInteger", "xs:nonPositiveInteger",
}
_FLOAT_TYPES = {"xs:double", "xs:float", "xs:decimal"}
_VALUE_TYPES = {t.value: t for t in aas.DataTypeDefXSD}
_ENTITY_MEMBERS = {"statements", "entityType", "globalAssetId", "specificAssetIds"}


def typed(value: str | None, value_type: str | None) -> Any:
    """A Property's lexical value as the JSON type of its valueType (numbers, booleans, strings)."""
    if value is None:
        return None
    try:
        if value_type in _INTEGER_TYPES:
            return int(value)
        if value_type in _FLOAT_TYPES:
            number = float(value)
            return number if math.isfinite(number) else value
        if value_type == "xs:boolean":
            return value in ("true", "1")
    except ValueError:
        return value
    return value


def to_value(element: dict[str, Any]) -> Any:
    kind = element.get("modelType")
    if kind == "Property":
        return typed(element.get("value"), element.get("valueType"))
    if kind == "MultiLanguageProperty":
        return [{item["language"]: item["text"]} for item in element.get("value", [])]
    if kind == "Range":
        return {"min": typed(element.get("min"), element.get("valueType")),
                "max": typed(element.get("max"), element.get("valueType"))}
    if kind in ("File", "Blob"):
        return {"contentType": element.get("contentType"), "value": element.get("value")}
    if kind == "ReferenceElement":
        return element.get("value")
    if kind in ("RelationshipElement", "AnnotatedRelationshipElement"):
        out: dict[str, Any] = {"first": element.get("first"), "second": element.get("second")}
        if kind == "AnnotatedRelationshipElement":
            out["annotations"] = [{a["idShort"]: to_value(a)} for a in element.get("annotations", [])]
        return out
    if kind == "SubmodelElementCollection":
        return {child["idShort"]: to_value(child) for child in element.get("value", []) if _has_value(child)}
    if kind == "SubmodelElementList":
        return [to_value(child) for child in element.get("value", [])]
    if kind == "Entity":
        entity: dict[str, Any] = {
            "statements": {s["idShort"]: to_value(s) for s in element.get("statements", []) if _has_value(s)},
            "entityType": element.get("entityType"),
        }
        if "globalAssetId" in element:
            entity["globalAssetId"] = element["globalAssetId"]
        if "specificAssetIds" in element:
            entity["specificAssetIds"] = element["specificAssetIds"]
        return entity
    if kind == "BasicEventElement":
        return {"observed": element.get("observed")}
    return None


def _has_value(element: dict[str, Any]) -> bool:
    return element.get("modelType") not in ("Operation", "Capability")


def element_value(element: dict[str, Any]) -> Any:
    """An element on its own: ``{idShort: value}`` (items of a list, which have no idShort: the value)."""
    if "idShort" not in element:
        return to_value(element)
    return {element["idShort"]: to_value(element)}


def submodel_value(submodel: dict[str, Any]) -> dict[str, Any]:
    return {e["idShort"]: to_value(e) for e in submodel.get("submodelElements", []) if _has_value(e)}


def _lexical(value: Any, value_type: str, where: str) -> str:
    if type(value) is float and value_type == "xs:double" and math.isfinite(value):
        return repr(value)  # always a valid xs:double: the edge agent's usual value, checked without the regex
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        if isinstance(value, float) and value.is_integer() and value_type in _INTEGER_TYPES:
            value = int(value)
        text = repr(value) if isinstance(value, float) else str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise bad_request(f"{where}: expected a {value_type} value, got {type(value).__name__}")
    xsd = _VALUE_TYPES.get(value_type)
    if xsd is not None and not verification.value_consistent_with_xsd_type(text, xsd):
        raise bad_request(f"{where}: {text!r} is not a valid {value_type}")
    return text


def apply_value(element: dict[str, Any], value: Any, where: str) -> None:
    """Write a ValueOnly `value` into `element` in place; 400 if it does not fit."""
    kind = element.get("modelType")
    if kind == "Property":
        if value is None:
            element.pop("value", None)
        else:
            element["value"] = _lexical(value, element.get("valueType", "xs:string"), where)
    elif kind == "MultiLanguageProperty":
        items = value if isinstance(value, list) else [value] if isinstance(value, dict) else None
        if items is None or not all(isinstance(i, dict) and len(i) == 1 for i in items):
            raise bad_request(f"{where}: expected a list of {{language: text}} objects")
        pairs = [(lang, text) for item in items for lang, text in item.items()]
        if not all(isinstance(t, str) and verification.matches_bcp_47(lang) for lang, t in pairs):
            raise bad_request(f"{where}: languages must be BCP 47 tags and texts strings")
        element["value"] = [{"language": lang, "text": text} for lang, text in pairs]
        _verify(element, where)
    elif kind == "Range":
        if not isinstance(value, dict) or not set(value) <= {"min", "max"}:
            raise bad_request(f"{where}: expected {{\"min\": ..., \"max\": ...}}")
        for bound in ("min", "max"):
            if value.get(bound) is None:
                element.pop(bound, None)
            else:
                element[bound] = _lexical(value[bound], element.get("valueType", "xs:string"), f"{where}.{bound}")
    elif kind in ("File", "Blob"):
        if not isinstance(value, dict) or not set(value) <= {"contentType", "value"}:
            raise bad_request(f"{where}: expected {{\"contentType\": ..., \"value\": ...}}")
        for key in ("contentType", "value"):
            if key in value:
                if value[key] is None:
                    element.pop(key, None)
                elif isinstance(value[key], str):
                    element[key] = value[key]
                else:
                    raise bad_request(f"{where}.{key}: expected a string")
        _verify(element, where)
    elif kind == "SubmodelElementCollection":
        if not isinstance(value, dict):
            raise bad_request(f"{where}: expected an object of idShort: value")
        _apply_children(element.get("value", []), value, where)
    elif kind == "Entity":
        if not isinstance(value, dict) or not set(value) <= _ENTITY_MEMBERS:
            raise bad_request(f"{where}: expected an object with {', '.join(sorted(_ENTITY_MEMBERS))}")
        statements = value.get("statements", {})
        if not isinstance(statements, dict):
            raise bad_request(f"{where}.statements: expected an object of idShort: value")
        _apply_children(element.get("statements", []), statements, where)
        own = {key: value[key] for key in ("entityType", "globalAssetId", "specificAssetIds") if key in value}
        if own:
            for key, member in own.items():
                if member is None:
                    element.pop(key, None)
                else:
                    element[key] = member
            _verify(element, where)
    elif kind == "SubmodelElementList":
        items = children_of(element) or []
        if not isinstance(value, list) or len(value) != len(items):
            raise bad_request(f"{where}: expected a list of {len(items)} values")
        for i, (child, child_value) in enumerate(zip(items, value, strict=True)):
            apply_value(child, child_value, f"{where}[{i}]")
    elif kind == "ReferenceElement":
        if value is None:
            element.pop("value", None)
            return
        try:
            reference = jsonization.reference_from_jsonable(value)
        except jsonization.DeserializationException as exc:
            raise bad_request(f"{where}: not a Reference: {exc.path}: {exc.cause}") from None
        errors = [f"{e.path}: {e.cause}" for e in verification.verify(reference)]
        if errors:
            raise bad_request(f"{where}: " + "; ".join(errors))
        element["value"] = jsonization.to_jsonable(reference)
    else:
        raise bad_request(f"{where}: a {kind} has no value to set")


def _apply_children(children: list[dict[str, Any]], source: dict[str, Any], where: str) -> None:
    by_id_short = {c.get("idShort"): c for c in children}
    for id_short, child_value in source.items():
        if id_short not in by_id_short:
            raise bad_request(f"{where}.{id_short}: no such element")
        apply_value(by_id_short[id_short], child_value, f"{where}.{id_short}")


def _verify(element: dict[str, Any], where: str) -> None:
    """Values that aas-core's full check must judge (texts, content types, paths, base64): the element with
    its new value must be one that a PUT would store."""
    try:
        verified = canonical("element", element)
    except ApiError as exc:
        raise bad_request(f"{where}: {exc.text}") from None
    element.clear()
    element.update(verified)


def apply_element_value(element: dict[str, Any], value: Any, where: str) -> None:
    """Accept what `element_value` returns (``{idShort: value}``) or the bare value."""
    id_short = element.get("idShort")
    wrapped = isinstance(value, dict) and len(value) == 1 and id_short in value
    is_container = element.get("modelType") in ("SubmodelElementCollection", "Entity")
    if wrapped and not (is_container and any(c.get("idShort") == id_short for c in children_of(element) or [])):
        value = value[id_short]
    apply_value(element, value, where)


def apply_submodel_value(submodel: dict[str, Any], value: Any) -> None:
    if not isinstance(value, dict):
        raise bad_request("expected an object of idShort: value for the submodel's elements")
    elements = {e.get("idShort"): e for e in submodel.get("submodelElements", [])}
    for id_short, element_value in value.items():
        if id_short not in elements:
            raise bad_request(f"{id_short}: no such element in the submodel")
        apply_value(elements[id_short], element_value, id_short)
