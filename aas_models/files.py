"""Read and write AAS files by their extension (.json, .xml, .aasx)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from aas_models.aasx import read_aasx, write_aasx
from aas_models.errors import AasFileError, LossError, Problem
from aas_models.jsonio import dump_json, parse_json
from aas_models.package import AasPackage
from aas_models.xmlio import dump_xml, parse_xml

Format = Literal["json", "xml", "aasx"]
FORMATS: tuple[Format, ...] = ("json", "xml", "aasx")


def format_of(path: Path) -> Format:
    suffix = path.suffix.lower().lstrip(".")
    for fmt in FORMATS:
        if suffix == fmt:
            return fmt
    raise AasFileError([Problem(str(path), "", "file-type",
                                f"unknown extension {path.suffix!r}; use .json, .xml or .aasx")])


def read_package(data: bytes, fmt: Format, name: str, *, strict: bool = True) -> AasPackage:
    if fmt == "aasx":
        return read_aasx(data, name)
    if fmt == "json":
        return AasPackage(parse_json(data, name, strict=strict))
    return AasPackage(parse_xml(data, name))


def load(path: Path, *, strict: bool = True) -> AasPackage:
    fmt = format_of(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AasFileError([Problem(str(path), "", "file-read", f"cannot read: {exc.strerror}")]) from None
    return read_package(data, fmt, str(path), strict=strict)


def write_package(package: AasPackage, fmt: Format, name: str) -> bytes:
    """Serialise; refuses (LossError) when `fmt` cannot hold the package's files."""
    if fmt == "aasx":
        return write_aasx(package)
    if package.parts():
        raise LossError([
            Problem(name, part.name, "convert-loss",
                    f"{fmt.upper()} cannot hold the package file {part.name} ({len(part.data)} bytes); "
                    "write .aasx instead, or pass --files-dir to extract the files beside it")
            for part in package.parts()
        ])
    return dump_json(package.environment) if fmt == "json" else dump_xml(package.environment)


def save(package: AasPackage, path: Path) -> None:
    data = write_package(package, format_of(path), str(path))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
