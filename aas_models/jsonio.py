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
from aas_models.gcpause import gc_paused
from aas_models.location import describe


class _DuplicateKey(ValueError):
    pass


def _checked_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        hint = next((v for k, v in pairs if k in ("idShort", "id") and isinstance(v, str)), None)
        owner = f" in the object {hint!r}" if hint else ""
        raise _DuplicateKey(f"key {key!r} appears twice{owner}; a reader would keep only the last: keep one of them")
    return result


def _reject_constant(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON value")


def load_jsonable(data: bytes, name: str, *, strict: bool = True) -> Any:
    """Parse JSON text; errors name the line and column.

    Strict mode parses once with the standard library so that duplicate keys are seen; the fast
    mode uses orjson.
    """
    try:
        with gc_paused():
            if not strict:
                return orjson.loads(data)
            return json.loads(data.decode("utf-8"), object_pairs_hook=_checked_object,
                              parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:  # orjson's error is a subclass
        truncated = exc.pos >= len(exc.doc.rstrip())
        where = f"line {exc.lineno} column {exc.colno}"
        what = "unexpected end of data: is the file truncated or empty?" if truncated else exc.msg
    except UnicodeDecodeError as exc:
        where, what = f"byte {exc.start}", f"the file is not UTF-8 ({exc.reason})"
    except _DuplicateKey as exc:
        raise AasFileError([Problem(name, "", "json-duplicate-key", str(exc))]) from None
    except ValueError as exc:
        where, what = "", str(exc)
    raise AasFileError([Problem(name, where, "json-syntax", f"not valid JSON: {what}")])


def environment_from_jsonable(jsonable: Any, name: str) -> aas.Environment:
    try:
        with gc_paused():
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
