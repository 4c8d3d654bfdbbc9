"""Create and (re)build model folders: ``twinedge models new`` and ``twinedge models build``.

A folder's generated files (model.json, README.md) always come from its sources (spec.yaml,
metadata.yaml) through :func:`generated_files`, the same function the lint uses to report stale
files, so "build, then lint" can never disagree.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from aas_models.catalogue.layout import (
    BINDING,
    METADATA,
    MODEL,
    README,
    SPEC,
    VERSION,
    CatalogueError,
    ChangelogEntry,
    Metadata,
    ModelFolder,
    dump_metadata,
    load_metadata,
    load_yaml,
)
from aas_models.catalogue.readme import render_readme
from aas_models.catalogue.template import build_template, dump_model
from aas_models.equipment import SPECS_DIR, EquipmentSpec, load_spec, parse_spec
from aas_models.errors import Problem
from aas_models.jsonio import load_jsonable


def _problem(folder: ModelFolder, name: str, message: str, rule: str = "catalogue/build") -> CatalogueError:
    return CatalogueError([Problem(str(folder.file(name)), "", rule, message)])


def load_folder_spec(folder: ModelFolder) -> EquipmentSpec:
    path = folder.file(SPEC)
    try:
        spec = parse_spec(load_yaml(path.read_text(encoding="utf-8")), str(path))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        spec = load_spec(path)  # says what is wrong with the file, or reads it after all
    if spec.equipment_type != folder.equipment_type or spec.version != folder.version:
        raise _problem(folder, SPEC, f"spec says {spec.equipment_type} {spec.version} but the folder is "
                                     f"{folder.label}: make equipment_type and version match the folder",
                       "catalogue/version-mismatch")
    return spec


def generated_files(folder: ModelFolder, metadata: Metadata | None = None) -> dict[str, bytes]:
    """What `build` writes: model.json (if the folder has a spec.yaml) and README.md."""
    metadata = metadata or load_metadata(folder)
    out: dict[str, bytes] = {}
    if folder.file(SPEC).is_file():
        model = build_template(load_folder_spec(folder))
        out[MODEL] = dump_model(model)
    else:
        model = load_jsonable(folder.file(MODEL).read_bytes(), str(folder.file(MODEL)))
    out[README] = render_readme(model, metadata).encode("utf-8")
    return out


def build(folder: ModelFolder) -> list[Path]:
    """Regenerate the folder's model.json and README.md; refuses to change a released version."""
    metadata = load_metadata(folder)
    files = generated_files(folder, metadata)
    changed = [name for name, data in files.items()
               if not folder.file(name).is_file() or folder.file(name).read_bytes() != data]
    if changed and metadata.status in ("released", "deprecated"):
        raise _problem(folder, METADATA, f"{folder.label} is {metadata.status} and immutable; building it would "
                                         f"change {', '.join(changed)}. Make a new version: twinedge models new "
                                         f"{folder.equipment_type} --from {folder.path}", "catalogue/released-changed")
    for name in changed:
        folder.file(name).write_bytes(files[name])
    return [folder.file(name) for name in changed]


def new_model(
    root: Path,
    equipment_type: str,
    *,
    version: str = "1.0",
    spec: Path | None = None,
    source: ModelFolder | None = None,
    owners: list[str] | None = None,
    name: str | dict[str, str] | None = None,
    today: dt.date | None = None,
) -> ModelFolder:
    """Create ``root/<type>/<version>``: from `source` (a new version of an existing model), from a
    spec file, from the shipped spec of that type, or from a skeleton spec."""
    if not VERSION.match(version):
        raise CatalogueError([Problem(version, "", "catalogue/version", "a version is <major>.<minor>, e.g. 1.0")])
    folder = ModelFolder(root / equipment_type / version)
    if folder.path.exists():
        raise _problem(folder, "", f"{folder.path} exists already; choose another version")
    today = today or dt.date.today()
    folder.path.mkdir(parents=True)
    if source is not None:
        previous = load_metadata(source)
        for name in (SPEC, BINDING):
            if source.file(name).is_file():
                shutil.copyfile(source.file(name), folder.file(name))
        if folder.file(SPEC).is_file():
            _set_spec_version(folder.file(SPEC), version)
        elif source.file(MODEL).is_file():
            shutil.copyfile(source.file(MODEL), folder.file(MODEL))
        metadata = previous.model_copy(update={
            "version": version, "status": "draft", "released": None, "reviewers": [],
            "changelog": [ChangelogEntry(version=version, date=today,
                                         changes=[f"Describe what changed since {source.version}."]),
                          *previous.changelog],
        })
    else:
        shipped = SPECS_DIR / f"{equipment_type}.yaml"
        origin = spec if spec is not None else (shipped if shipped.is_file() else None)
        if origin is not None:
            shutil.copyfile(origin, folder.file(SPEC))
            _set_spec_version(folder.file(SPEC), version)
        else:
            folder.file(SPEC).write_text(_skeleton_spec(equipment_type, version), encoding="utf-8")
        loaded = load_folder_spec(folder)
        folder.file(BINDING).write_text(binding_yaml(loaded), encoding="utf-8")
        metadata = Metadata(name=name or equipment_type.replace("-", " ").capitalize(), equipment_type=equipment_type,
                            version=version, owners=owners or ["Your name <your organisation>"],
                            changelog=[ChangelogEntry(version=version, date=today, changes=["First draft."])])
    folder.file(METADATA).write_text(dump_metadata(metadata), encoding="utf-8")
    build(folder)
    return folder


def _set_spec_version(path: Path, version: str) -> None:
    text = path.read_text(encoding="utf-8")
    new, count = re.subn(r'^version:.*$', f'version: "{version}"', text, count=1, flags=re.MULTILINE)
    if not count:
        new = re.sub(r'^(equipment_type:.*)$', rf'\1\nversion: "{version}"', text, count=1, flags=re.MULTILINE)
    path.write_text(new, encoding="utf-8")


def _skeleton_spec(equipment_type: str, version: str) -> str:
    return f"""# Equipment spec of reference model {equipment_type} {version} (fields: aas_models/equipment.py).
# Replace the placeholders, add technical properties and signals, then run `twinedge models build`.
equipment_type: {equipment_type}
version: "{version}"
description: {{en: "What this equipment is and where it is used."}}
manufacturer_name: Example Manufacturer Co., Ltd.
product_designation: {{en: "{equipment_type.replace('-', ' ').capitalize()}"}}
order_code: ORDER-CODE
article_number: ARTICLE-NUMBER
country_of_origin: KR
technical_properties:
  - name: RatedPower
    value: 10.0
    unit: kW
    description: {{en: Rated electrical power.}}
signals:
  - name: EquipmentState
    value_type: xs:string
    description: {{en: "Operating state: Running, Idle, Setup, Alarm or Off."}}
"""


def binding_yaml(spec: EquipmentSpec, *, prefix: str = "Machine1", endpoint: str = "opc.tcp://127.0.0.1:4840",
                 comment: str = "") -> str:
    """An example edge-agent config (edge_agent/config.py) that reads every signal of `spec` from an OPC UA
    controller whose variables are ``ns=2;s=<prefix>.<Signal>``."""
    nodes = [{"signal": f"{prefix}.{s.name}", "node_id": f"ns=2;s={prefix}.{s.name}"} for s in spec.signals]
    bindings = [{"source": "controller", "signal": f"{prefix}.{s.name}", "element": s.name} for s in spec.signals]
    config: dict[str, Any] = {
        "sources": [{"type": "opcua", "name": "controller", "endpoint": endpoint, "nodes": nodes}],
        "assets": [{"id": f"{spec.equipment_type}-01", "spec": SPEC, "bindings": bindings}],
    }
    return _binding_header(spec, comment) + _dump_flow(config)


def modbus_binding_yaml(spec: EquipmentSpec, *, host: str = "127.0.0.1", port: int = 502, comment: str = "") -> str:
    """An example edge-agent config reading `spec`'s signals from Modbus holding registers: float32 for
    decimals, uint32 for integers, 8-register strings; consecutive addresses from 0."""
    tags: list[dict[str, Any]] = []
    address = 0
    for s in spec.signals:
        if s.value_type in ("xs:double", "xs:float", "xs:decimal"):
            tag: dict[str, Any] = {"data_type": "float32"}
        elif s.value_type == "xs:boolean":
            tag = {"data_type": "bit", "bit": 0}
        elif s.value_type == "xs:string":
            tag = {"data_type": "string", "length": 8}
        else:
            tag = {"data_type": "uint32"}
        width = {"float32": 2, "uint32": 2, "bit": 1, "string": 8}[tag["data_type"]]
        tags.append({"signal": s.name, "address": address, **tag})
        address += width
    bindings = [{"source": "plc", "signal": s.name, "element": s.name} for s in spec.signals]
    config: dict[str, Any] = {
        "sources": [{"type": "modbus", "name": "plc", "host": host, "port": port, "unit_id": 1, "tags": tags}],
        "assets": [{"id": f"{spec.equipment_type}-01", "spec": SPEC, "bindings": bindings}],
    }
    return _binding_header(spec, comment) + _dump_flow(config)


def _binding_header(spec: EquipmentSpec, comment: str) -> str:
    lines = [f"# Example edge-agent config for {spec.equipment_type} {spec.version} (format: edge_agent/config.py).",
             "# `twinedge models instantiate ... --agent-config agent.yaml` writes a copy with your asset id,",
             "# the absolute path of spec.yaml and, with --endpoint, your controller's address."]
    lines += [f"# {line}" if line else "#" for line in comment.strip().splitlines()]
    return "\n".join(lines) + "\n"


def _dump_flow(config: dict[str, Any]) -> str:
    """Block style for the structure, one flow-style line per node, tag and binding (readable diffs)."""
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=200, default_flow_style=None)
    return text

