"""AAS JSON (metamodel 3.0) to and from the aas-core object model.

orjson plus aas-core's jsonization is the fast path; `strict` adds the checks that a parser would
otherwise hide (duplicate keys, where the last one silently wins).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from aas_core3 import jsonization
from aas_core3 import types as aas

from aas_models.errors import AasFileError, Problem
from aas_models.location import describe


class _DuplicateKey(ValueError):
    pass


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            hint = next((v for k, v in pairs if k in ("idShort", "id") and isinstance(v, str)), None)
            owner = f" in the object {hint!r}" if hint else ""
            raise _DuplicateKey(f"key {key!r} appears twice{owner}; a reader would keep only the last: "
                                "keep one of them")
        result[key] = value
    return result


def load_jsonable(data: bytes, name: str, *, strict: bool = True) -> Any:
    """Parse JSON text; errors name the line and column."""
    try:
        jsonable = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise AasFileError(
            [Problem(name, f"line {exc.lineno} column {exc.colno}", "json-syntax",
                     f"not valid JSON: {exc.msg}")]
        ) from None
    if strict:
        try:
            json.loads(data, object_pairs_hook=_reject_duplicates)
        except _DuplicateKey as exc:
            raise AasFileError([Problem(name, "", "json-duplicate-key", str(exc))]) from None
    return jsonable


def environment_from_jsonable(jsonable: Any, name: str) -> aas.Environment:
    try:
        return jsonization.environment_from_jsonable(jsonable)
    except jsonization.DeserializationException as exc:
        segments = [
            s.name if isinstance(s, jsonization.PropertySegment) else s.index for s in exc.path.segments
        ]
        raise AasFileError(
            [Problem(name, describe(jsonable, segments), "aas-structure", _explain(exc.cause))]
        ) from None


def parse_json(data: bytes, name: str, *, strict: bool = True) -> aas.Environment:
    return environment_from_jsonable(load_jsonable(data, name, strict=strict), name)


def dump_json(environment: aas.Environment, *, pretty: bool = True) -> bytes:
    option = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE if pretty else 0
    return orjson.dumps(jsonization.to_jsonable(environment), option=option)


def _explain(cause: str) -> str:
    """aas-core's causes say what is wrong; add what the metamodel expected where it helps."""
    if cause.startswith("Unexpected property"):
        return f"{cause}: metamodel 3.0 has no such attribute here (misspelt, or from another version?)"
    if cause.startswith("Expected a mapping") and "list" in cause:
        return f"{cause}: an AAS JSON file is one object with assetAdministrationShells, submodels, " \
               "conceptDescriptions"
    if "modelType" in cause:
        return f"{cause}: expected one of the metamodel 3.0 model types, e.g. Property, Submodel"
    return cause
