"""An AAS environment together with the files an AASX package carries beside it."""

from __future__ import annotations

from dataclasses import dataclass, field

from aas_core3 import types as aas


@dataclass(frozen=True)
class PackagePart:
    """A supplementary file or thumbnail; `name` is the absolute part name, e.g. /aasx/files/a.pdf."""

    name: str
    content_type: str
    data: bytes


@dataclass
class AasPackage:
    """What a JSON, XML or AASX file holds. JSON and XML files only ever fill `environment`."""

    environment: aas.Environment
    files: list[PackagePart] = field(default_factory=list)
    thumbnail: PackagePart | None = None

    def parts(self) -> list[PackagePart]:
        return [*self.files, *([self.thumbnail] if self.thumbnail else [])]
