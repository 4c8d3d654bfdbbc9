"""The catalogue on disk: ``<root>/<equipment-type>/<major>.<minor>/`` folders and their metadata.

A model folder holds

============================  ===============================================================
``model.json``                the template environment (canonical, pretty-printed JSON)
``metadata.yaml``             name, version, status, owners, reviewers, changelog, release record
``README.md``                 generated from the model (``twinedge models build``)
``spec.yaml``                 the equipment spec the model is built from (optional for JSON-only models)
``agent-binding.yaml``        an edge-agent config that binds a typical controller to the twin
============================  ===============================================================

Immutability of released versions is checked against a content hash recorded in ``metadata.yaml``
at release (``released.content_sha256``), not against Git history: the check then works the same in
a shallow CI clone, a tarball, or a fork, and needs no Git at all. Everything in the folder is hashed
except ``metadata.yaml`` (its status may still move to deprecated) and ``README.md`` (generated from
model.json and metadata.yaml, so it shows that status; the lint checks it is up to date).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aas_models.errors import AasError, Problem

MODEL = "model.json"
METADATA = "metadata.yaml"
README = "README.md"
SPEC = "spec.yaml"
BINDING = "agent-binding.yaml"

VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)$")
Status = Literal["draft", "in-review", "approved", "released", "deprecated"]
STATUSES: tuple[Status, ...] = ("draft", "in-review", "approved", "released", "deprecated")
#: Allowed moves of `status` (``twinedge models release`` enforces them).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("in-review",),
    "in-review": ("approved", "draft"),
    "approved": ("released", "in-review"),
    "released": ("deprecated",),
    "deprecated": (),
}


class CatalogueError(AasError):
    """A catalogue folder or its metadata cannot be used; each problem names the file and field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _Meta(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChangelogEntry(_Meta):
    version: str
    date: dt.date
    changes: list[str] = Field(min_length=1)


class ReleaseRecord(_Meta):
    date: dt.date
    #: sha256 of the folder's content (every file but metadata.yaml), see :func:`content_hash`.
    content_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Metadata(_Meta):
    """``metadata.yaml`` of one model version."""

    name: str | dict[str, str]
    equipment_type: str
    version: str
    status: Status = "draft"
    #: People or organisations responsible for the model, e.g. "Kim Minji <KAMP> @minji-kim".
    owners: list[str] = Field(min_length=1)
    reviewers: list[str] = []
    changelog: list[ChangelogEntry] = Field(min_length=1)
    released: ReleaseRecord | None = None

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not VERSION.match(value):
            raise ValueError(f"{value!r} must be <major>.<minor>, e.g. '1.0'")
        return value


@dataclass(frozen=True)
class ModelFolder:
    """One model version folder: ``<root>/<equipment_type>/<version>``."""

    path: Path

    @property
    def equipment_type(self) -> str:
        return self.path.parent.name

    @property
    def version(self) -> str:
        return self.path.name

    @property
    def label(self) -> str:
        return f"{self.equipment_type}/{self.version}"

    def file(self, name: str) -> Path:
        return self.path / name


def version_key(version: str) -> tuple[int, int]:
    match = VERSION.match(version)
    return (int(match.group(1)), int(match.group(2))) if match else (-1, -1)


def discover(paths: Iterable[Path]) -> list[ModelFolder]:
    """Model folders under `paths` (a catalogue root, a type folder, a version folder or a model.json)."""
    found: dict[Path, ModelFolder] = {}
    for path in paths:
        if path.is_file():
            candidates = [path.parent]
        elif (path / MODEL).is_file():
            candidates = [path]
        else:
            candidates = [m.parent for m in sorted(path.glob(f"*/{MODEL}"))] + \
                         [m.parent for m in sorted(path.glob(f"*/*/{MODEL}"))]
        for folder in candidates:
            found.setdefault(folder.resolve(), ModelFolder(folder))
    return sorted(found.values(), key=lambda f: (f.equipment_type, version_key(f.version), str(f.path)))


def parse_metadata(data: Any, name: str) -> Metadata:
    if not isinstance(data, dict):
        raise CatalogueError([Problem(name, "", "catalogue/metadata", "expected a mapping (name, version, status...)")])
    try:
        return Metadata.model_validate(data)
    except ValidationError as exc:
        raise CatalogueError([
            Problem(name, ".".join(str(p) for p in error["loc"]) or "(document)", "catalogue/metadata",
                    error["msg"].removeprefix("Value error, "))
            for error in exc.errors()
        ]) from None


def load_yaml(text: str) -> Any:
    """YAML with libyaml's C parser when present (ten times faster; the lint reads many files)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)


def load_metadata(folder: ModelFolder) -> Metadata:
    path = folder.file(METADATA)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError([Problem(str(path), "", "catalogue/metadata",
                                      f"cannot read: {exc.strerror}; every model folder needs {METADATA}")]) from None
    except yaml.YAMLError as exc:
        raise CatalogueError([Problem(str(path), "", "catalogue/metadata", f"not valid YAML: {exc}")]) from None
    return parse_metadata(data, str(path))


def dump_metadata(metadata: Metadata) -> str:
    data = metadata.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=110)


def content_hash(folder: ModelFolder) -> str:
    """sha256 over every file of the folder but metadata.yaml and README.md (names and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.path.rglob("*") if p.is_file() and p.name not in (METADATA, README)):
        digest.update(path.relative_to(folder.path).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()
