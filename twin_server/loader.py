"""`--load FILE`: put the shells, submodels and concept descriptions of AAS files into the repository."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from aas_core3 import jsonization

from aas_models.files import load
from twin_server.repository import Repository, dumps, index_of
from twin_server.storage.base import Conflict, Index, Kind
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
        environment = jsonization.to_jsonable(load(path).environment)
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
        log.info("loaded %s", path)
    return counts
