"""`--load FILE`: put the shells, submodels and concept descriptions of AAS files into the repository."""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aas_core3 import jsonization

from aas_models.files import load
from aas_models.package import PackagePart
from twin_server.idshort_path import render, walk
from twin_server.repository import Repository, dumps, index_of
from twin_server.storage.base import THUMBNAIL, Conflict, Index, Kind, StoredFile
from twin_server.validate import canonical

log = logging.getLogger(__name__)

_PARTS = (("assetAdministrationShells", Kind.SHELL), ("submodels", Kind.SUBMODEL),
          ("conceptDescriptions", Kind.CONCEPT_DESCRIPTION))


def _replacement(body: bytes, index: Index) -> Callable[[bytes], tuple[bytes, Index]]:
    return lambda _old: (body, index)


async def load_files(repo: Repository, paths: list[Path]) -> dict[str, int]:
    """Insert or replace every identifiable of each file; counts per kind. Invalid files raise."""
    counts = {kind.value: 0 for _, kind in _PARTS}
    for path in paths:
        package = load(path)
        environment = jsonization.to_jsonable(package.environment)
        assert isinstance(environment, dict)
        for key, kind in _PARTS:
            for item in environment.get(key, []):
                doc = canonical(kind, item)
                body, index = dumps(doc), index_of(kind, doc)
                try:
                    await repo.storage.create(kind, doc["id"], body, index)
                except Conflict:
                    await repo.storage.update(kind, doc["id"], _replacement(body, index))
                counts[kind.value] += 1
        await _store_parts(repo, environment, {p.name: p for p in package.parts()})
        log.info("loaded %s", path)
    return counts


async def _store_parts(repo: Repository, environment: dict[str, Any], parts: dict[str, PackagePart]) -> None:
    """AASX files become what the API serves: File attachments and shell thumbnails."""
    if not parts:
        return
    for submodel in environment.get("submodels", []):
        for tokens, element in walk(submodel, []):
            part = parts.get(str(element.get("value", ""))) if element.get("modelType") == "File" else None
            if part is not None:
                await repo.storage.put_file(Kind.SUBMODEL, submodel["id"], render(tokens), StoredFile(
                    element.get("contentType") or part.content_type, posixpath.basename(part.name), part.data))
    for shell in environment.get("assetAdministrationShells", []):
        thumbnail = shell.get("assetInformation", {}).get("defaultThumbnail", {})
        part = parts.get(thumbnail.get("path", ""))
        if part is not None:
            await repo.storage.put_file(Kind.SHELL, shell["id"], THUMBNAIL, StoredFile(
                thumbnail.get("contentType") or part.content_type, posixpath.basename(part.name), part.data))
