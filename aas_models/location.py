"""Turn a path inside an environment into words a modeller recognises: the identifiable, then the
idShortPath of the element, then the attribute."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

_TOP_LEVEL = {
    "assetAdministrationShells": "shell",
    "submodels": "submodel",
    "conceptDescriptions": "concept description",
}
_CHILD_LISTS = {"submodelElements", "value", "statements", "annotations"}


def snake_to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


JsonPath = tuple[str | int, ...]


def objects(root: Any) -> Iterator[tuple[JsonPath, dict[str, Any]]]:
    """Every JSON object under `root` with its path, in document order.

    A loop over a stack, not recursive generators: the lint walks every node of large files, and a
    generator per node cost more than the rules it feeds.
    """
    stack: list[tuple[JsonPath, Any]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            yield path, node
            items = [((*path, k), v) for k, v in node.items() if isinstance(v, dict | list)]
        elif isinstance(node, list):
            items = [((*path, i), v) for i, v in enumerate(node) if isinstance(v, dict | list)]
        else:
            continue
        items.reverse()
        stack.extend(items)


def describe(root: Any, segments: Sequence[str | int]) -> str:
    """Describe `segments` (JSON property names and list indices) walked from the jsonable `root`.

    Returns e.g. ``submodel 'urn:x:sm' ContactInformation.Street (semanticId.keys[0])``.
    """
    owner = ""
    element_path: list[str] = []
    attribute: list[str] = []
    node: Any = root
    i = 0
    while i < len(segments):
        seg = segments[i]
        child = _step(node, seg)
        if child is _MISSING:
            attribute.extend(_fmt(s) for s in segments[i:])
            break
        if isinstance(seg, str) and node is root and seg in _TOP_LEVEL and i + 1 < len(segments):
            index = segments[i + 1]
            item = _step(child, index)
            if item is _MISSING:
                attribute.extend(_fmt(s) for s in segments[i:])
                break
            ident = item.get("id") if isinstance(item, dict) else None
            owner = f"{_TOP_LEVEL[seg]} {ident!r}" if isinstance(ident, str) else f"{seg}[{index}]"
            node = item
            i += 2
            continue
        is_element_list = isinstance(node, dict) and node.get("modelType") == "SubmodelElementList"
        if (
            isinstance(seg, str)
            and seg in _CHILD_LISTS
            and isinstance(child, list)
            and i + 1 < len(segments)
            and isinstance(node, dict)
            and (seg != "value" or node.get("modelType") in {"SubmodelElementCollection", "SubmodelElementList"})
        ):
            index = segments[i + 1]
            item = _step(child, index)
            if isinstance(item, dict) and "modelType" in item:
                id_short = item.get("idShort")
                if is_element_list or not isinstance(id_short, str):
                    if element_path:
                        element_path[-1] += f"[{index}]"
                    else:
                        element_path.append(f"[{index}]")
                else:
                    element_path.append(id_short)
                attribute.clear()
                node = item
                i += 2
                continue
        attribute.append(_fmt(seg))
        node = child
        i += 1
    text = owner
    if element_path:
        text = f"{text} {'.'.join(element_path)}".strip()
    if attribute:
        attr = "".join(attribute).lstrip(".")
        text = f"{text} ({attr})" if text else attr
    return text or "(document root)"


class _Missing:
    pass


_MISSING: Any = _Missing()


def _step(node: Any, seg: str | int) -> Any:
    if isinstance(seg, int):
        return node[seg] if isinstance(node, list) and -len(node) <= seg < len(node) else _MISSING
    return node[seg] if isinstance(node, dict) and seg in node else _MISSING


def _fmt(seg: str | int) -> str:
    return f"[{seg}]" if isinstance(seg, int) else f".{seg}"
