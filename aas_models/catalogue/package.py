"""``twinedge models package PATH -o X.aasx``: one model version as an AASX package.

The package holds the template environment and, as supplementary files, the folder's README.md and
agent-binding.yaml (under ``/aasx/files/``), so that whoever receives only the AASX still has the
documentation and the example binding.
"""

from __future__ import annotations

from aas_models.aasx import write_aasx
from aas_models.catalogue.layout import BINDING, MODEL, README, ModelFolder
from aas_models.files import load
from aas_models.package import AasPackage, PackagePart

_TYPES = {README: "text/markdown", BINDING: "application/yaml"}


def package_folder(folder: ModelFolder) -> bytes:
    """The AASX bytes of `folder` (its model.json must be valid: lint first)."""
    environment = load(folder.file(MODEL)).environment
    files = [PackagePart(f"/aasx/files/{name}", content_type, folder.file(name).read_bytes())
             for name, content_type in _TYPES.items() if folder.file(name).is_file()]
    return write_aasx(AasPackage(environment, files))
