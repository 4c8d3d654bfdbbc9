"""``twinedge models diff OLD NEW``: what changed between two versions of a model, for its consumers.

Elements are matched by (submodel idShort, idShortPath), never by id (ids contain the version).
Each change is classified:

- **breaking** (needs a new major version): a submodel or element removed; its model type, value
  type or semanticId changed; its concept's unit or IEC 61360 data type changed; a submodel template's
  major version changed. Twins, agent bindings and analytics that read the old model stop working.
- **non-breaking** (a new minor version): something added; a default value, text, or a concept's
  name or definition changed; a submodel template's minor version changed.

One change is reported once: an element added or removed also adds or removes its children, the
TimeSeries Record variable and the concept description of the same concept, which are listed under
it rather than as changes of their own. TimeSeries Segments are not compared: they say where each
twin's history is served, which ``instantiate`` rewrites per twin and which follows OperationalData.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aas_models.builders import time_series
from aas_models.catalogue.layout import version_key
from aas_models.catalogue.template import children

BREAKING = "breaking"
NON_BREAKING = "non-breaking"


@dataclass
class Change:
    kind: str  # added | removed | changed
    severity: str  # breaking | non-breaking
    where: str
    detail: str
    also: list[str] = field(default_factory=list)
    concepts: set[str] = field(default_factory=set)

    def __str__(self) -> str:
        also = f" (with {', '.join(self.also)})" if self.also else ""
        return f"{self.severity:<13} {self.kind:<8} {self.where}: {self.detail}{also}"


@dataclass
class DiffResult:
    old_version: str
    new_version: str
    changes: list[Change]

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.severity == BREAKING]

    @property
    def bump(self) -> str:
        """``major``, ``minor`` or ``none``."""
        if self.breaking:
            return "major"
        return "minor" if self.changes else "none"

    @property
    def required_version(self) -> str:
        major, minor = version_key(self.old_version)
        if self.bump == "major":
            return f"{major + 1}.0"
        if self.bump == "minor":
            return f"{major}.{minor + 1}"
        return self.old_version

    @property
    def version_ok(self) -> bool:
        """Is the new model's version at least the one its changes need?"""
        return version_key(self.new_version) >= version_key(self.required_version)

    def report(self) -> list[str]:
        lines = [str(c) for c in self.changes]
        n_breaking = len(self.breaking)
        lines.append(f"{len(self.changes)} changes: {n_breaking} breaking, {len(self.changes) - n_breaking} "
                     "non-breaking.")
        if self.bump == "none":
            lines.append("No version bump needed.")
        else:
            verdict = "ok" if self.version_ok else f"too small: make it {self.required_version} or higher"
            lines.append(f"Needs a {self.bump} version bump: {self.old_version} -> {self.required_version} "
                         f"(the new model is {self.new_version}: {verdict}).")
        return lines


@dataclass(frozen=True)
class _Node:
    model_type: str
    value_type: str | None
    semantic_id: str | None
    value: Any
    texts: Any
    subtree_concepts: frozenset[str]


def _semantic_id(node: dict[str, Any]) -> str | None:
    keys = (node.get("semanticId") or {}).get("keys") or []
    return str(keys[0].get("value")) if keys else None


def _own_ids(model: dict[str, Any]) -> dict[str, str]:
    """The model's own ids (they contain its version) as version-free tokens, for comparing values."""
    tokens: dict[str, str] = {}
    for shell in model.get("assetAdministrationShells") or []:
        tokens[str(shell.get("id"))] = "<shell id>"
        tokens[str((shell.get("assetInformation") or {}).get("globalAssetId"))] = "<asset id>"
    for submodel in model.get("submodels") or []:
        tokens[str(submodel.get("id"))] = f"<{submodel.get('idShort')} id>"
    return tokens


def _flatten(model: dict[str, Any]) -> dict[tuple[str, str], _Node]:
    out: dict[tuple[str, str], _Node] = {}
    tokens = _own_ids(model)
    for submodel in model.get("submodels") or []:
        name = str(submodel.get("idShort"))
        admin = submodel.get("administration") or {}
        out[(name, "")] = _Node("Submodel", None, _semantic_id(submodel),
                                f"{admin.get('version')}.{admin.get('revision')}", None, _concepts(submodel))
        if _semantic_id(submodel) == time_series.SEMANTIC_ID:
            submodel = {**submodel, "submodelElements": [e for e in submodel.get("submodelElements") or []
                                                         if e.get("idShort") != "Segments"]}
        for path, element in _walk(submodel, ""):
            out[(name, path)] = _Node(
                str(element.get("modelType")), element.get("valueType"), _semantic_id(element),
                tokens.get(str(element.get("value")), element.get("value"))
                if element.get("modelType") in ("Property", "Range", "File", "Blob") else None,
                [element.get("description"), element.get("displayName"),
                 element.get("value") if element.get("modelType") == "MultiLanguageProperty" else None],
                _concepts(element),
            )
    return out


def _walk(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    in_list = node.get("modelType") == "SubmodelElementList"
    for i, child in enumerate(children(node)):
        step = f"[{i}]" if in_list else str(child.get("idShort"))
        path = f"{prefix}{step}" if in_list or not prefix else f"{prefix}.{step}"
        yield path, child
        yield from _walk(child, path)


def _concepts(node: dict[str, Any]) -> frozenset[str]:
    found = {sid for sid in [_semantic_id(node)] if sid}
    for child in children(node):
        found |= _concepts(child)
    return frozenset(found)


def _cd_content(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for cd in model.get("conceptDescriptions") or []:
        content: dict[str, Any] = {}
        for spec in cd.get("embeddedDataSpecifications") or []:
            content = spec.get("dataSpecificationContent") or content
        out[str(cd.get("id"))] = content
    return out


def _version(model: dict[str, Any]) -> str:
    shells = model.get("assetAdministrationShells") or [{}]
    admin = shells[0].get("administration") or {}
    return f"{admin.get('version', '0')}.{admin.get('revision', '0')}"


def _where(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}".strip() if key[1] else f"submodel {key[0]}"


def diff_models(old: dict[str, Any], new: dict[str, Any]) -> DiffResult:
    """The semantic diff of two model.json documents (jsonable)."""
    before, after = _flatten(old), _flatten(new)
    changes: list[Change] = []

    def topmost(keys: set[tuple[str, str]]) -> list[tuple[str, str]]:
        return sorted(k for k in keys if not any(
            k[0] == p[0] and (p[1] == "" or k[1].startswith(p[1] + ".") or k[1].startswith(p[1] + "["))
            for p in keys if p != k))

    removed = topmost(set(before) - set(after))
    added = topmost(set(after) - set(before))
    for kind, keys, nodes, severity in (("removed", removed, before, BREAKING), ("added", added, after, NON_BREAKING)):
        for key in keys:
            node = nodes[key]
            what = f"{node.model_type}" + (f" {node.value_type}" if node.value_type else "")
            changes.append(Change(kind, severity, _where(key), what, concepts=set(node.subtree_concepts)))
    for key in sorted(set(before) & set(after)):
        changes.extend(_changed(key, before[key], after[key]))
    changes = _fold(changes)
    changes.extend(_concept_changes(old, new, changes))
    return DiffResult(_version(old), _version(new), changes)


def _changed(key: tuple[str, str], a: _Node, b: _Node) -> Iterator[Change]:
    where = _where(key)
    if a.model_type != b.model_type:
        yield Change("changed", BREAKING, where, f"model type {a.model_type} -> {b.model_type}")
        return
    if a.model_type == "Submodel":
        if a.semantic_id != b.semantic_id:
            yield Change("changed", BREAKING, where, f"semanticId {a.semantic_id} -> {b.semantic_id}")
        if a.value != b.value:
            major_changed = str(a.value).split(".")[0] != str(b.value).split(".")[0]
            yield Change("changed", BREAKING if major_changed else NON_BREAKING, where,
                         f"template version {a.value} -> {b.value}")
        return
    if a.value_type != b.value_type:
        yield Change("changed", BREAKING, where, f"value type {a.value_type} -> {b.value_type}")
    if a.semantic_id != b.semantic_id:
        yield Change("changed", BREAKING, where, f"semanticId {a.semantic_id} -> {b.semantic_id}")
    if a.value != b.value:
        yield Change("changed", NON_BREAKING, where, f"value {a.value!r} -> {b.value!r}")
    if a.texts != b.texts:
        yield Change("changed", NON_BREAKING, where, "description, display name or text changed")


def _fold(changes: list[Change]) -> list[Change]:
    """An added/removed element whose concept is part of another added/removed element of the same
    kind (the TimeSeries Record variable of a data point) is listed under that one."""
    hosts = [c for c in changes if c.kind != "changed" and len(c.concepts) > 1]
    out: list[Change] = []
    for change in changes:
        own = next(iter(change.concepts)) if change.kind != "changed" and len(change.concepts) == 1 else None
        host = next((h for h in hosts if h is not change and h.kind == change.kind and own in h.concepts), None)
        if own is not None and host is not None:
            host.also.append(change.where)
        else:
            out.append(change)
    return out


def _concept_changes(old: dict[str, Any], new: dict[str, Any], changes: list[Change]) -> Iterator[Change]:
    before, after = _cd_content(old), _cd_content(new)
    explained = {sid for c in changes if c.kind != "changed" for sid in c.concepts}
    for cd_id in sorted(set(before) & set(after)):
        a, b = before[cd_id], after[cd_id]
        for attribute in ("unit", "unitId", "dataType"):
            if a.get(attribute) != b.get(attribute):
                yield Change("changed", BREAKING, f"concept {cd_id}",
                             f"{attribute} {a.get(attribute)!r} -> {b.get(attribute)!r}: values mean something else")
        if any(a.get(t) != b.get(t) for t in ("preferredName", "shortName", "definition")):
            yield Change("changed", NON_BREAKING, f"concept {cd_id}", "name or definition changed")
    for cd_id in sorted(set(after) - set(before) - explained):
        yield Change("added", NON_BREAKING, f"concept {cd_id}", "ConceptDescription")
    for cd_id in sorted(set(before) - set(after) - explained):
        yield Change("removed", NON_BREAKING, f"concept {cd_id}", "ConceptDescription no element uses any more")
