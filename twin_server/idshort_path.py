"""idShortPaths (`Hydraulics.Pressure`, `Readings[3].Value`) and finding elements in submodel JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from twin_server.errors import ApiError, bad_request, not_found

Token = str | int
_SEGMENT = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)?((?:\[\d+\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")

#: Where each model type keeps its child elements.
CHILDREN = {
    "Submodel": "submodelElements",
    "SubmodelElementCollection": "value",
    "SubmodelElementList": "value",
    "Entity": "statements",
    "AnnotatedRelationshipElement": "annotations",
}


def parse(path: str) -> list[Token]:
    if not path:
        raise bad_request("empty idShortPath")
    tokens: list[Token] = []
    for i, segment in enumerate(path.split(".")):
        match = _SEGMENT.match(segment)
        if not match or (not match.group(1) and (i == 0 or not match.group(2))):
            raise bad_request(f"{path!r} is not an idShortPath (idShort segments joined by '.', list items as [n])")
        if match.group(1):
            tokens.append(match.group(1))
        tokens.extend(int(n) for n in _INDEX.findall(match.group(2)))
    if isinstance(tokens[0], int):
        raise bad_request(f"{path!r} must start with an idShort")
    return tokens


def render(tokens: list[Token]) -> str:
    text = ""
    for token in tokens:
        text += f"[{token}]" if isinstance(token, int) else (f".{token}" if text else token)
    return text


def children_of(node: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The node's child element list, or None if its model type has no children."""
    key = CHILDREN.get(node.get("modelType", "Submodel"))
    if key is None:
        return None
    value = node.get(key)
    return value if isinstance(value, list) else None


@dataclass
class Located:
    parent: dict[str, Any]
    index: int
    element: dict[str, Any]
    #: The elements along the path, the located one last.
    chain: list[dict[str, Any]]


def locate(submodel: dict[str, Any], tokens: list[Token], path: str) -> Located:
    node = submodel
    parent: dict[str, Any] = submodel
    index = -1
    chain: list[dict[str, Any]] = []
    for token in tokens:
        items = children_of(node)
        if items is None:
            raise not_found(f"submodel element {path!r}")
        is_list = node.get("modelType") == "SubmodelElementList"
        if isinstance(token, int):
            if not is_list or token >= len(items):
                raise not_found(f"submodel element {path!r}")
            index = token
        else:
            if is_list:
                raise not_found(f"submodel element {path!r} (items of a list are addressed as [n])")
            found = next((i for i, item in enumerate(items) if item.get("idShort") == token), None)
            if found is None:
                raise not_found(f"submodel element {path!r}")
            index = found
        parent, node = node, items[index]
        chain.append(node)
    return Located(parent, index, node, chain)


def ensure_children(node: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """The child list of `node`, created if absent; 400 if the node cannot have children."""
    key = CHILDREN.get(node.get("modelType", "Submodel"))
    if key is None:
        raise ApiError(400, f"{path or 'the submodel'} is a {node.get('modelType')} and cannot hold elements")
    items = node.setdefault(key, [])
    assert isinstance(items, list)
    return items


def walk(node: dict[str, Any], prefix: list[Token]) -> list[tuple[list[Token], dict[str, Any]]]:
    """(path, element) for every element below `node`, depth first, in document order."""
    out: list[tuple[list[Token], dict[str, Any]]] = []
    items = children_of(node) or []
    is_list = node.get("modelType") == "SubmodelElementList"
    for i, item in enumerate(items):
        path = [*prefix, i if is_list else item.get("idShort", "")]
        out.append((path, item))
        out.extend(walk(item, path))
    return out
