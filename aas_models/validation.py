"""Validation: metamodel 3.0 constraints (aas-core's verification) plus the project's lint rules.

Each finding names the file, where in the environment it is (identifiable, idShortPath,
attribute), the rule and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aas_core3 import jsonization, verification

from aas_models.errors import AasFileError, Problem
from aas_models.files import load
from aas_models.location import describe, objects, snake_to_camel
from aas_models.package import AasPackage

#: The IEC 61360 data specification reference of metamodel 3.0, as the conformance tool expects it.
IEC61360_3_0 = "https://admin-shell.io/DataSpecificationTemplates/DataSpecificationIec61360/3"
#: How many findings one file reports before summarising the rest.
MAX_PROBLEMS = 200

_CONSTRAINT = re.compile(r"\b(AAS[a-z]-\d+[a-z]?)\b")
_TOP_LEVEL = ("assetAdministrationShells", "submodels", "conceptDescriptions")


def validate_file(path: Path) -> list[Problem]:
    try:
        package = load(path)
    except AasFileError as exc:
        return exc.problems
    return validate_package(package, str(path))


def validate_package(package: AasPackage, name: str) -> list[Problem]:
    environment = package.environment
    jsonable = jsonization.to_jsonable(environment)
    problems = [*_constraint_problems(environment, jsonable, name), *lint(jsonable, name)]
    if len(problems) > MAX_PROBLEMS:
        rest = len(problems) - MAX_PROBLEMS
        problems = [*problems[:MAX_PROBLEMS], Problem(name, "", "too-many", f"{rest} more problems not shown")]
    return problems


def _constraint_problems(environment: Any, jsonable: Any, name: str) -> Iterator[Problem]:
    for error in verification.verify(environment):
        segments: list[str | int] = [
            snake_to_camel(s.name) if isinstance(s, verification.PropertySegment) else s.index
            for s in error.path.segments
        ]
        match = _CONSTRAINT.search(error.cause)
        rule = match.group(1) if match else "aas-constraint"
        yield Problem(name, describe(jsonable, segments), rule, _with_fix(error.cause))


def _with_fix(cause: str) -> str:
    if "unique languages" in cause:
        return f"{cause} Keep one text per language; a reader may silently drop the others."
    if "ID-short" in cause and "list" in cause:
        return f"{cause} Remove the idShort of elements inside a SubmodelElementList."
    if "ID-short" in cause or "id_short" in cause:
        return f"{cause} idShorts start with a letter and use only letters, digits and '_'."
    return cause


def lint(jsonable: Any, name: str) -> Iterator[Problem]:
    """The project's own rules, on top of the metamodel's."""
    seen: dict[str, tuple[str, int]] = {}
    for key in _TOP_LEVEL:
        for index, item in enumerate(jsonable.get(key, [])):
            ident = item.get("id", "")
            where = describe(jsonable, [key, index])
            if ident in seen:
                first_key, first_index = seen[ident]
                same_kind = first_key == key
                yield Problem(name, f"{key}[{index}]", "lint/duplicate-id",
                              f"id {ident!r} is already used by {first_key}[{first_index}]; ids must be "
                              "globally unique" + (", and many readers silently keep only one of the two"
                                                   if same_kind else ""),
                              severity="error" if same_kind else "warning")
            else:
                seen[ident] = (key, index)
            if ident != ident.strip() or re.search(r"\s", ident):
                yield Problem(name, where, "lint/id-whitespace",
                              f"id {ident!r} contains whitespace; ids are IRIs: remove or percent-encode it")
    yield from _walk_references(jsonable, name)


def _walk_references(root: Any, name: str) -> Iterator[Problem]:
    for path, node in objects(root):
        keys = node.get("keys")
        if isinstance(keys, list) and "type" in node:
            for index, key in enumerate(keys):
                value = key.get("value", "") if isinstance(key, dict) else ""
                if isinstance(value, str) and value != value.strip():
                    yield Problem(name, describe(root, [*path, "keys", index]), "lint/reference-whitespace",
                                  f"reference key {value!r} has leading or trailing whitespace; "
                                  "it will not match the concept it names: strip it", severity="warning")
        spec = node.get("dataSpecification")
        if isinstance(spec, dict) and node.get("dataSpecificationContent", {}).get("modelType") == \
                "DataSpecificationIec61360":
            spec_keys = spec.get("keys") or [{}]
            value = spec_keys[0].get("value", "")
            if value != IEC61360_3_0:
                yield Problem(name, describe(root, [*path, "dataSpecification"]),
                              "lint/data-specification-iri",
                              f"IEC 61360 content is announced as {value!r}; metamodel 3.0 expects "
                              f"{IEC61360_3_0!r}", severity="warning")
