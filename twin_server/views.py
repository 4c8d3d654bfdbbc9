"""The other representations of Part 2: $metadata, $reference, $path, level=core, extent."""

from __future__ import annotations

from typing import Any

from twin_server.idshort_path import CHILDREN, Token, render, walk

#: Attributes that carry an element's value; $metadata leaves them out (but keeps what the metamodel
#: requires, such as a relationship's first and second). Operation and Capability have no $metadata.
_VALUE_KEYS = {
    "Property": ("value", "valueId"),
    "MultiLanguageProperty": ("value", "valueId"),
    "Range": ("min", "max"),
    "File": ("value",),
    "Blob": ("value",),
    "ReferenceElement": ("value",),
    "RelationshipElement": (),
    "AnnotatedRelationshipElement": ("annotations",),
    "SubmodelElementCollection": ("value",),
    "SubmodelElementList": ("value",),
    "Entity": ("statements",),
    "BasicEventElement": (),
    "Submodel": ("submodelElements",),
}


def has_metadata(node: dict[str, Any]) -> bool:
    return node.get("modelType", "Submodel") in _VALUE_KEYS


def metadata(node: dict[str, Any]) -> dict[str, Any]:
    drop = _VALUE_KEYS.get(node.get("modelType", "Submodel"), ())
    return {k: v for k, v in node.items() if k not in drop}


def core(node: dict[str, Any]) -> dict[str, Any]:
    """level=core: the node with its direct children, each without children of its own."""
    key = CHILDREN.get(node.get("modelType", "Submodel"))
    if key is None or key not in node:
        return node
    return {**node, key: [_without_children(child) for child in node[key]]}


def _without_children(node: dict[str, Any]) -> dict[str, Any]:
    key = CHILDREN.get(node.get("modelType", ""))
    return {k: v for k, v in node.items() if k != key} if key else node


def without_blobs(node: dict[str, Any]) -> dict[str, Any]:
    """extent=withoutBlobValue: Blob values left out, everything else as is (copies only what changes)."""
    if node.get("modelType") == "Blob":
        return {k: v for k, v in node.items() if k != "value"}
    key = CHILDREN.get(node.get("modelType", "Submodel"))
    if key is None or key not in node:
        return node
    return {**node, key: [without_blobs(child) for child in node[key]]}


def shape(node: dict[str, Any], level: str | None, extent: str | None) -> dict[str, Any]:
    if level == "core":
        node = core(node)
    if extent == "withoutBlobValue":
        node = without_blobs(node)
    return node


def identifiable_reference(key_type: str, ident: str) -> dict[str, Any]:
    return {"type": "ModelReference", "keys": [{"type": key_type, "value": ident}]}


def element_reference(submodel_id: str, chain: list[dict[str, Any]], tokens: list[Token]) -> dict[str, Any]:
    """Reference to the element reached by `tokens`; `chain` is the elements along the way."""
    keys = [{"type": "Submodel", "value": submodel_id}]
    for token, element in zip(tokens, chain, strict=True):
        keys.append({"type": element.get("modelType", ""), "value": str(token)})
    return {"type": "ModelReference", "keys": keys}


def paths(node: dict[str, Any], prefix: list[Token], level: str | None) -> list[str]:
    """$path: the idShortPaths of `node` (if it is an element) and of the elements below it."""
    out = [render(prefix)] if prefix else []
    for path, _element in walk(node, prefix):
        if level == "core" and len(path) > len(prefix) + 1:
            continue
        out.append(render(path))
    return out
