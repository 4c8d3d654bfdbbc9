"""The reference-model catalogue as the dashboards see it: ``<root>/<type>/<version>/metadata.yaml``
plus the version's AAS environment JSON, a readable diff between two versions, and the AASX.

Read-only and tolerant: the catalogue is data others maintain, so a folder without metadata, or
metadata that is not a mapping, is listed with what can be read instead of breaking the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from aas_models.aasx import write_aasx
from aas_models.jsonio import parse_json
from aas_models.package import AasPackage


@dataclass(frozen=True)
class ModelVersion:
    equipment_type: str
    version: str
    folder: Path
    status: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def name(self, lang: str) -> str:
        names = self.metadata.get("name")
        if isinstance(names, dict):
            return str(names.get(lang) or names.get("en") or self.equipment_type)
        return str(names or self.equipment_type)

    def people(self) -> str:
        people = self.metadata.get("owners") or self.metadata.get("authors") or []
        return ", ".join(str(p) for p in people) if isinstance(people, list) else str(people)

    def changes(self) -> list[str]:
        """This version's changelog lines (metadata ``changelog: [{version, changes: [...]}]``)."""
        log = self.metadata.get("changelog")
        for entry in log if isinstance(log, list) else []:
            if isinstance(entry, dict) and str(entry.get("version")) == self.version:
                changes = entry.get("changes")
                return [str(c) for c in changes] if isinstance(changes, list) else [str(changes)]
        return []

    @property
    def environment_file(self) -> Path | None:
        files = sorted(p for p in self.folder.glob("*.json") if p.is_file())
        preferred = [p for p in files if p.stem in ("environment", "model", self.equipment_type)]
        chosen = preferred or files
        return chosen[0] if chosen else None


def _version_key(text: str) -> tuple[Any, ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in text.replace("-", ".").split("."))


def scan(roots: tuple[Path, ...]) -> list[ModelVersion]:
    """Every version folder under the roots that has metadata.yaml or an environment JSON."""
    out: list[ModelVersion] = []
    seen: set[tuple[str, str]] = set()
    for root in roots:
        if not root.is_dir():
            continue
        for type_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for version_dir in sorted((p for p in type_dir.iterdir() if p.is_dir()),
                                      key=lambda p: _version_key(p.name)):
                meta_file = version_dir / "metadata.yaml"
                meta: Any = {}
                if meta_file.is_file():
                    try:
                        meta = yaml.safe_load(meta_file.read_text(encoding="utf-8")) or {}
                    except (OSError, UnicodeDecodeError, yaml.YAMLError):
                        meta = {"status": "unreadable metadata"}
                elif not any(version_dir.glob("*.json")):
                    continue
                meta = meta if isinstance(meta, dict) else {}
                version = str(meta.get("version") or version_dir.name)
                if (type_dir.name, version) in seen:  # an earlier root wins
                    continue
                seen.add((type_dir.name, version))
                out.append(ModelVersion(type_dir.name, version, version_dir, str(meta.get("status") or "–"), meta))
    return out


def find(roots: tuple[Path, ...], equipment_type: str, version: str) -> ModelVersion | None:
    return next((m for m in scan(roots) if m.equipment_type == equipment_type and m.version == version), None)


def _flatten(env: dict[str, Any]) -> dict[str, str]:
    """(submodel idShort / idShortPath) -> a one-line description of the element, for diffing."""
    out: dict[str, str] = {}

    def walk(prefix: str, elements: list[Any]) -> None:
        for i, e in enumerate(elements):
            if not isinstance(e, dict):
                continue
            name = e.get("idShort") or f"[{i}]"
            path = f"{prefix}.{name}" if prefix and not name.startswith("[") else f"{prefix}{name}"
            semantic = ((e.get("semanticId") or {}).get("keys") or [{}])[0].get("value", "")
            desc = " ".join(str(x) for x in (e.get("modelType"), e.get("valueType") or "", semantic,
                                              e.get("value") if isinstance(e.get("value"), str) else "") if x)
            out[path] = desc
            children = e.get("value") if e.get("modelType") in ("SubmodelElementCollection",
                                                                 "SubmodelElementList") else e.get("statements")
            if isinstance(children, list):
                walk(path, children)

    for sm in env.get("submodels") or []:
        if isinstance(sm, dict):
            walk(str(sm.get("idShort") or sm.get("id")) + "/", sm.get("submodelElements") or [])
    for cd in env.get("conceptDescriptions") or []:
        if isinstance(cd, dict):
            out[f"ConceptDescription/{cd.get('idShort') or cd.get('id')}"] = str(cd.get("id"))
    return out


@dataclass(frozen=True)
class Diff:
    added: list[tuple[str, str]]
    removed: list[tuple[str, str]]
    changed: list[tuple[str, str, str]]


def diff(old: ModelVersion, new: ModelVersion) -> Diff:
    a, b = _load(old), _load(new)
    return Diff(
        added=[(k, b[k]) for k in sorted(b.keys() - a.keys())],
        removed=[(k, a[k]) for k in sorted(a.keys() - b.keys())],
        changed=[(k, a[k], b[k]) for k in sorted(a.keys() & b.keys()) if a[k] != b[k]],
    )


def _load(model: ModelVersion) -> dict[str, str]:
    path = model.environment_file
    if path is None:
        return {}
    try:
        env = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return _flatten(env) if isinstance(env, dict) else {}


def aasx(model: ModelVersion) -> bytes:
    """The version's environment as an AASX package (ValueError if it has none or it is invalid)."""
    path = model.environment_file
    if path is None:
        raise ValueError(f"{model.folder} holds no AAS environment JSON")
    environment = parse_json(path.read_bytes(), str(path))
    return write_aasx(AasPackage(environment))
