"""AASX packages (IEC 63278-1 / Part 5): an OPC zip holding one AAS spec part plus supplementary files.

Read: every part that is not OPC bookkeeping, the origin or the spec is kept as a supplementary
file, referenced or not, so that nothing in a package is lost on the way through TwinEdge.
"""

from __future__ import annotations

import io
import mimetypes
import posixpath
import zipfile
from xml.etree import ElementTree

from aas_core3 import types as aas

from aas_models.errors import AasFileError, Problem
from aas_models.jsonio import dump_json, parse_json
from aas_models.package import AasPackage, PackagePart
from aas_models.xmlio import dump_xml, parse_xml

REL_ORIGIN = "http://admin-shell.io/aasx/relationships/aasx-origin"
REL_SPEC = "http://admin-shell.io/aasx/relationships/aas-spec"
REL_SUPPL = "http://admin-shell.io/aasx/relationships/aas-suppl"
REL_THUMBNAIL = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail"
_OLD_PREFIX = "http://www.admin-shell.io/"
_RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
ORIGIN_PART = "/aasx/aasx-origin"

#: Refuse packages that would unpack to more than this (zip bombs on a small factory PC).
MAX_UNPACKED_BYTES = 2 * 1024**3


class _Rel:
    def __init__(self, rel_type: str, target: str) -> None:
        self.type = rel_type.replace(_OLD_PREFIX, "http://admin-shell.io/")
        self.target = target


def _rels_name(part: str) -> str:
    folder, base = posixpath.split(part)
    return posixpath.join(folder, "_rels", base + ".rels").lstrip("/")


def _read_rels(archive: zipfile.ZipFile, source_part: str, name: str) -> list[_Rel]:
    entry = _rels_name(source_part) if source_part != "/" else "_rels/.rels"
    try:
        data = archive.read(entry)
    except KeyError:
        return []
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise AasFileError([Problem(name, entry, "aasx-structure", f"relationships part is not XML: {exc}")]) \
            from None
    base = posixpath.dirname(source_part) if source_part != "/" else "/"
    rels = []
    for rel in root.iter(f"{{{_RELS_NS}}}Relationship"):
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External":
            continue
        absolute = target if target.startswith("/") else posixpath.normpath(posixpath.join(base, target))
        rels.append(_Rel(rel.get("Type", ""), "/" + absolute.lstrip("/")))
    return rels


def _content_types(archive: zipfile.ZipFile) -> tuple[dict[str, str], dict[str, str]]:
    try:
        root = ElementTree.fromstring(archive.read("[Content_Types].xml"))
    except (KeyError, ElementTree.ParseError):
        return {}, {}
    defaults = {d.get("Extension", "").lower(): d.get("ContentType", "") for d in root.iter(f"{{{_CT_NS}}}Default")}
    overrides = {o.get("PartName", ""): o.get("ContentType", "") for o in root.iter(f"{{{_CT_NS}}}Override")}
    return defaults, overrides


def read_aasx(data: bytes, name: str) -> AasPackage:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise AasFileError([Problem(name, "", "aasx-zip",
                                    f"not a readable AASX (zip) package: {exc}; is the file truncated?")]) from None
    if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
        raise AasFileError([Problem(name, "", "aasx-size", "package unpacks to more than 2 GiB; refusing it")])
    try:
        return _read_package(archive, name)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise AasFileError([Problem(name, "", "aasx-zip", f"damaged zip entry: {exc}; is the file truncated?")]) \
            from None


def _read_package(archive: zipfile.ZipFile, name: str) -> AasPackage:
    root_rels = _read_rels(archive, "/", name)
    origins = [r for r in root_rels if r.type == REL_ORIGIN]
    if len(origins) != 1:
        raise AasFileError([Problem(name, "_rels/.rels", "aasx-structure",
                                    f"expected one aasx-origin relationship, found {len(origins)}")])
    origin = origins[0].target
    specs = [r for r in _read_rels(archive, origin, name) if r.type == REL_SPEC]
    if len(specs) != 1:
        raise AasFileError([Problem(name, _rels_name(origin), "aasx-structure",
                                    f"expected one aas-spec relationship, found {len(specs)}; TwinEdge reads "
                                    "packages with exactly one environment part")])
    spec = specs[0].target
    try:
        spec_data = archive.read(spec.lstrip("/"))
    except KeyError:
        raise AasFileError([Problem(name, spec, "aasx-structure", "the aas-spec part named by the origin is "
                                                                  "missing from the package")]) from None
    spec_name = f"{name}:{spec}"
    if spec.lower().endswith(".json"):
        environment = parse_json(spec_data, spec_name)
    elif spec.lower().endswith(".xml"):
        environment = parse_xml(spec_data, spec_name)
    else:
        raise AasFileError([Problem(name, spec, "aasx-structure", "aas-spec part must end in .json or .xml")])

    defaults, overrides = _content_types(archive)
    thumbnails = {r.target for r in root_rels if r.type == REL_THUMBNAIL}
    bookkeeping = {origin, spec}
    files: list[PackagePart] = []
    thumbnail: PackagePart | None = None
    for info in archive.infolist():
        part = "/" + info.filename
        is_relationships = "/_rels/" in part and part.endswith(".rels")
        if info.is_dir() or part in bookkeeping or part == "/[Content_Types].xml" or is_relationships:
            continue
        ext = posixpath.splitext(part)[1].lstrip(".").lower()
        content_type = overrides.get(part) or defaults.get(ext) or _guess(part)
        item = PackagePart(part, content_type, archive.read(info))
        if part in thumbnails and thumbnail is None:
            thumbnail = item
        else:
            files.append(item)
    return AasPackage(environment, files, thumbnail)


def _guess(part: str) -> str:
    return mimetypes.guess_type(part)[0] or "application/octet-stream"


def write_aasx(package: AasPackage, *, spec_format: str = "json") -> bytes:
    spec = f"/aasx/data.{spec_format}"
    environment: aas.Environment = package.environment
    spec_bytes = dump_json(environment) if spec_format == "json" else dump_xml(environment)
    content_type = "application/json" if spec_format == "json" else "application/xml"
    parts = package.parts()
    names = [p.name for p in parts]
    if len(set(names)) != len(names) or spec in names or ORIGIN_PART in names:
        raise ValueError(f"package part names must be unique and not clash with {spec} or {ORIGIN_PART}")

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        overrides = [(ORIGIN_PART, "text/plain"), (spec, content_type)] + [(p.name, p.content_type) for p in parts]
        _put(archive, "[Content_Types].xml", _content_types_xml(overrides))
        root_rels = [(REL_ORIGIN, ORIGIN_PART)]
        if package.thumbnail:
            root_rels.append((REL_THUMBNAIL, package.thumbnail.name))
        _put(archive, "_rels/.rels", _rels_xml(root_rels))
        _put(archive, ORIGIN_PART.lstrip("/"), b"Intentionally empty.")
        _put(archive, _rels_name(ORIGIN_PART), _rels_xml([(REL_SPEC, spec)]))
        _put(archive, spec.lstrip("/"), spec_bytes)
        if package.files:
            _put(archive, _rels_name(spec), _rels_xml([(REL_SUPPL, f.name) for f in package.files]))
        for part in parts:
            _put(archive, part.name.lstrip("/"), part.data)
    return out.getvalue()


def _put(archive: zipfile.ZipFile, name: str, data: str | bytes) -> None:
    """A part with a fixed timestamp, so that the same package gives the same bytes (releases, Git, hashes)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def _rels_xml(rels: list[tuple[str, str]]) -> bytes:
    root = ElementTree.Element("Relationships", xmlns=_RELS_NS)
    for i, (rel_type, target) in enumerate(rels):
        ElementTree.SubElement(root, "Relationship", Type=rel_type, Target=target, Id=f"r{i}")
    data: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def _content_types_xml(overrides: list[tuple[str, str]]) -> bytes:
    root = ElementTree.Element("Types", xmlns=_CT_NS)
    ElementTree.SubElement(root, "Default", Extension="rels",
                           ContentType="application/vnd.openxmlformats-package.relationships+xml")
    for part, content_type in overrides:
        ElementTree.SubElement(root, "Override", PartName=part, ContentType=content_type)
    data: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return data
