"""AAS XML (metamodel 3.0, namespace https://admin-shell.io/aas/3/0) to and from aas-core."""

from __future__ import annotations

import io
from typing import Any
from xml.etree import ElementTree

from aas_core3 import types as aas
from aas_core3 import xmlization

from aas_models.errors import AasFileError, Problem
from aas_models.gcpause import gc_paused
from aas_models.location import describe

_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
_NS_3_0 = b'"https://admin-shell.io/aas/3/0"'
_NS_3_1 = b'"https://admin-shell.io/aas/3/1"'


def parse_xml(data: bytes, name: str) -> aas.Environment:
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data[:65536]:
        raise AasFileError([Problem(name, "", "xml-doctype",
                                    "DTDs and entity declarations are not allowed in AAS XML; remove them")])
    if _NS_3_1 in data[:4096]:
        # Metamodel 3.1 writers (basyx-python-sdk 2.x) use the 3.1 namespace for 3.0 content; read it
        # as 3.0, and let any 3.1-only construct fail at its element below.
        data = data.replace(_NS_3_1, _NS_3_0)
    try:
        with gc_paused():
            return xmlization.environment_from_iterparse(
                ElementTree.iterparse(io.BytesIO(data), events=["start", "end"])
            )
    except ElementTree.ParseError as exc:
        line, column = exc.position
        raise AasFileError(
            [Problem(name, f"line {line} column {column + 1}", "xml-syntax", f"not well-formed XML: {exc}")]
        ) from None
    except xmlization.DeserializationException as exc:
        skeleton, segments = _skeleton(exc.path.segments)
        where = describe(skeleton, segments) if segments else str(exc.path)
        raise AasFileError([Problem(name, where, "aas-structure", exc.cause)]) from None


def dump_xml(environment: aas.Environment) -> bytes:
    return _DECLARATION + xmlization.to_str(environment).encode("utf-8") + b"\n"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _skeleton(path_segments: Any) -> tuple[dict[str, Any], list[str | int]]:
    """Rebuild just enough of the JSON shape along an XML error path for `describe` to name it."""
    root: dict[str, Any] = {}
    node: Any = root
    segments: list[str | int] = []
    pending: str | None = None
    for seg in list(path_segments)[1:]:  # the first is <environment> itself
        if isinstance(seg, xmlization.IndexSegment):
            element: Any = seg.element
            item: dict[str, Any] = {"modelType": _local(element.tag)[:1].upper() + _local(element.tag)[1:]}
            for child in element:
                if _local(child.tag) in ("idShort", "id") and child.text:
                    item[_local(child.tag)] = child.text
            if pending is not None and isinstance(node, dict):
                node[pending] = [None] * seg.index + [item]
            segments.append(seg.index)
            node, pending = item, None
        else:
            name = _local(seg.element.tag)
            if pending is not None and isinstance(node, dict):
                node[pending] = {}
                node = node[pending]
            segments.append(name)
            pending = name
    return root, segments
