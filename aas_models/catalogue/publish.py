"""The catalogue as the twin server publishes it: every released model version, as templates.

The server loads these files at start-up (``ServerConfig.load`` / ``twinedge server --load``), so the
templates are served through the ordinary AAS API (``/shells``, ``/submodels``,
``/concept-descriptions``) and each one downloads as AASX through ``/serialization``.
Concept descriptions shared by several models have equal content (the lint checks it), so loading
them twice is harmless.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from aas_core3 import types as aas

from aas_models import ids
from aas_models.catalogue.layout import MODEL, ModelFolder, discover, load_metadata
from aas_models.files import load

PUBLISHED = ("released",)


def released_models(root: Path) -> list[ModelFolder]:
    """Folders under `root` whose status is released (drafts, reviews and deprecated ones are not served)."""
    return [f for f in discover([root]) if load_metadata(f).status in PUBLISHED]


def released_model_files(root: Path) -> list[Path]:
    """The model.json of every released version: what to give the twin server to load."""
    return [f.file(MODEL) for f in released_models(root)]


def catalogue_environment(root: Path) -> aas.Environment:
    """All released templates in one environment (concept descriptions once each)."""
    shells: list[aas.AssetAdministrationShell] = []
    submodels: list[aas.Submodel] = []
    concepts: dict[str, aas.ConceptDescription] = {}
    for path in released_model_files(root):
        env = load(path).environment
        shells.extend(env.asset_administration_shells or [])
        submodels.extend(env.submodels or [])
        for cd in env.concept_descriptions or []:
            concepts.setdefault(cd.id, cd)
    return aas.Environment(asset_administration_shells=shells or None, submodels=submodels or None,
                           concept_descriptions=list(concepts.values()) or None)


def serialization_query(model: aas.Environment) -> str:
    """The query of ``GET /serialization`` (Accept: application/asset-administration-shell-package+xml)
    that downloads exactly this model as AASX from the twin server."""
    shell_ids = [s.id for s in model.asset_administration_shells or []]
    submodel_ids = [s.id for s in model.submodels or []]
    return urlencode([*(("aasIds", ids.b64url_encode(i)) for i in shell_ids),
                      *(("submodelIds", ids.b64url_encode(i)) for i in submodel_ids)])
