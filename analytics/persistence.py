"""Save and load models: a zip with ``metadata.json`` (readable without unpickling) and ``state.pkl``.

Loading checks the file format and the scikit-learn/numpy versions *before* unpickling: pickled estimators
are only guaranteed to load identically under the versions that wrote them, so a mismatch is refused with
a :class:`ModelFileError` that says to retrain. The pickle is checked against its SHA-256 in the metadata.
Pickle executes code on load: load only model files you made or trust.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import platform
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy  # type: ignore[import-untyped]
import sklearn

from .errors import ModelFileError
from .model import Model, TrainConfig
from .table import Roles

__all__ = ["FORMAT", "library_versions", "load", "save"]

FORMAT = "twinedge-analytics-model/1"
_CHECKED = ("numpy", "scikit-learn")


def library_versions() -> dict[str, str]:
    from twinedge import __version__

    return {"twinedge": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}


def save(model: Model, path: str | Path) -> Path:
    """Write ``model`` to ``path`` (conventionally ``*.tem``); returns the path."""
    state = pickle.dumps({"estimator": model.estimator}, protocol=pickle.HIGHEST_PROTOCOL)
    meta = {
        "format": FORMAT,
        "roles": model.roles.model_dump(),
        "config": model.config.model_dump(mode="json"),
        "categories": model.categories,
        "features": model.features,
        "metadata": model.metadata,
        "state_sha256": hashlib.sha256(state).hexdigest(),
    }
    out = Path(path)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(meta, indent=2, sort_keys=True, default=str))
        zf.writestr("state.pkl", state)
    return out


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of a model file, without loading the model."""
    try:
        with zipfile.ZipFile(Path(path)) as zf:
            meta: dict[str, Any] = json.loads(zf.read("metadata.json"))
    except FileNotFoundError as exc:
        raise ModelFileError(f"{path}: no such model file") from exc
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: not a TwinEdge analytics model file ({exc}); train one with "
                             "`twinedge analytics train`") from exc
    return meta


def load(path: str | Path) -> Model:
    """Load a model saved by :func:`save`; refuse files from another format or library version."""
    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: model format {meta.get('format')!r}, this TwinEdge reads {FORMAT!r}; "
                             "retrain the model with this version")
    saved = meta.get("metadata", {}).get("libraries", {})
    now = library_versions()
    diff = {k: (saved.get(k), now[k]) for k in _CHECKED if saved.get(k) != now[k]}
    if diff:
        text = ", ".join(f"{k} {a} (file) vs {b} (installed)" for k, (a, b) in diff.items())
        raise ModelFileError(f"{path}: written with other library versions: {text}; pickled models only load "
                             "identically under the versions that wrote them: retrain, or install those versions")
    with zipfile.ZipFile(Path(path)) as zf:
        state_bytes = zf.read("state.pkl")
    if hashlib.sha256(state_bytes).hexdigest() != meta.get("state_sha256"):
        raise ModelFileError(f"{path}: model state does not match its checksum (damaged or edited); retrain")
    state = pickle.loads(state_bytes)
    return Model(Roles(**meta["roles"]), TrainConfig.model_validate(meta["config"]), meta["categories"],
                 meta["features"], state["estimator"], meta["metadata"])
