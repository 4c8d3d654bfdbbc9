"""An equipment spec as a reference-model *template*, and a template as one machine's twin.

The template (``model.json``) is what :func:`aas_models.twin.build_twin` builds, turned into the
template form: the shell is of asset kind ``Type`` with ``administration`` = the model version, the
submodels are of kind ``Template``, per-machine values (serial number, year of construction) are
present but empty, and the MaintenanceHistory template is added. Its ids belong to the model, not
to a machine::

    shell            urn:twinedge:rm:{type}:{major}.{minor}
    asset type       urn:twinedge:rm:{type}:{major}.{minor}:asset
    submodel         urn:twinedge:rm:{type}:{major}.{minor}:sm:{idShort}:{submodel version}

:func:`instantiate` reverses this for one asset: the ids become those of :mod:`aas_models.ids`
(exactly the ids the edge agent derives with :func:`aas_models.twin.submodel_id_for`), so a twin
instantiated from the catalogue and the agent's bindings agree without hand edits. It works on the
JSON alone, so a model contributed as JSON without a spec instantiates too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import unquote

import orjson
from aas_core3 import jsonization

from aas_models import ids
from aas_models.builders import nameplate, time_series
from aas_models.catalogue import maintenance
from aas_models.equipment import EquipmentSpec
from aas_models.errors import AasError
from aas_models.twin import build_twin, shell_id_short

TEMPLATE_BASE = "urn:twinedge:rm:"
_SHELL_ID = re.compile(r"^urn:twinedge:rm:([^:]+):([^:]+)$")
_SERIAL = "0112/2///61987#ABA951#009"
_YEAR = "0112/2///61987#ABP000#002"
_TS_METADATA = "https://admin-shell.io/idta/TimeSeries/Metadata/1/1"
_TS_ENDPOINT = "https://admin-shell.io/idta/TimeSeries/Endpoint/1/1"
_TEXTS = ("https://admin-shell.io/idta/TimeSeries/Metadata/Name/1/1",
          "https://admin-shell.io/idta/TimeSeries/Metadata/Description/1/1")


class TemplateError(AasError):
    """A model.json is not a catalogue template (no single template shell with the catalogue's ids)."""


def template_shell_id(equipment_type: str, version: str) -> str:
    return f"{TEMPLATE_BASE}{ids.encode_segment(equipment_type)}:{ids.encode_segment(version)}"


def template_asset_id(equipment_type: str, version: str) -> str:
    return template_shell_id(equipment_type, version) + ":asset"


def template_submodel_id(equipment_type: str, version: str, id_short: str, submodel_version: str) -> str:
    return f"{template_shell_id(equipment_type, version)}:sm:{ids.encode_segment(id_short)}:" \
           f"{ids.encode_segment(submodel_version)}"


def parse_template_shell_id(shell_id: str) -> tuple[str, str]:
    """(equipment type, version) of a template shell id; TemplateError if it is not one."""
    match = _SHELL_ID.match(shell_id)
    if not match:
        raise TemplateError(f"shell id {shell_id!r} is not a catalogue template id "
                            f"({TEMPLATE_BASE}<type>:<major>.<minor>); build the model with `twinedge models build`")
    return unquote(match.group(1)), unquote(match.group(2))


def pascal(equipment_type: str) -> str:
    """``hydraulic-press`` -> ``HydraulicPress``: the template shell's idShort."""
    return "".join(part[:1].upper() + part[1:] for part in equipment_type.split("-") if part)


def dump_model(jsonable: Any) -> bytes:
    """The canonical text of a model.json: 2-space indent, the metamodel's key order, final newline."""
    return orjson.dumps(jsonable, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def _submodel_version(submodel: dict[str, Any]) -> str:
    admin = submodel.get("administration") or {}
    return ".".join(p for p in (admin.get("version"), admin.get("revision")) if p) or "1.0"


def build_template(spec: EquipmentSpec) -> dict[str, Any]:
    """The reference-model template (AAS JSON, jsonable) of `spec`; deterministic."""
    kind = spec.equipment_type
    concept_spec = spec.model_copy(update={"version": spec.concept_version or spec.version})
    env = build_twin(concept_spec, kind, serial_number="-", year_of_construction="-")
    jsonable = cast(dict[str, Any], jsonization.to_jsonable(env))
    history = maintenance.build_maintenance_history(
        template_submodel_id(kind, spec.version, maintenance.ID_SHORT, ".".join(maintenance.VERSION)), template=True)
    jsonable["submodels"].append(jsonization.to_jsonable(history))
    jsonable["conceptDescriptions"].extend(jsonization.to_jsonable(cd) for cd in maintenance.concept_descriptions())

    (shell,) = jsonable["assetAdministrationShells"]
    mapping = {shell["id"]: template_shell_id(kind, spec.version),
               shell["assetInformation"]["globalAssetId"]: template_asset_id(kind, spec.version)}
    for submodel in jsonable["submodels"]:
        mapping[submodel["id"]] = template_submodel_id(kind, spec.version, submodel["idShort"],
                                                       _submodel_version(submodel))
        submodel["kind"] = "Template"
    shell["submodels"].append({"type": "ModelReference", "keys": [{"type": "Submodel", "value": history.id}]})
    jsonable = _rewrite_ids(jsonable, mapping)
    (shell,) = jsonable["assetAdministrationShells"]

    major, _, minor = spec.version.partition(".")
    template_shell: dict[str, Any] = {
        "idShort": pascal(kind),
        "displayName": [{"language": k, "text": v[:128]} for k, v in _texts(spec.product_designation)],
    }
    if spec.description is not None:
        template_shell["description"] = [{"language": k, "text": v} for k, v in _texts(spec.description)]
    template_shell.update({
        "administration": {"version": major, "revision": minor or "0"},
        "id": shell["id"],
        "assetInformation": {"assetKind": "Type", "globalAssetId": shell["assetInformation"]["globalAssetId"]},
        "submodels": shell["submodels"],
        "modelType": "AssetAdministrationShell",
    })
    jsonable["assetAdministrationShells"] = [template_shell]
    for element in _all_elements(_submodel(jsonable, nameplate.SEMANTIC_ID)):
        if _semantic_id(element) in (_SERIAL, _YEAR):
            element.pop("value", None)
    return jsonable


def instantiate(
    template: dict[str, Any],
    asset_id: str,
    *,
    serial_number: str | None = None,
    year_of_construction: str | None = None,
    id_base: str = ids.DEFAULT_ID_BASE,
    timeseries_endpoint: str | None = None,
    line: str | None = None,
) -> dict[str, Any]:
    """One machine's twin (AAS JSON, jsonable) from a catalogue template; `template` is not changed."""
    twin: dict[str, Any] = orjson.loads(orjson.dumps(template))
    shells = twin.get("assetAdministrationShells") or []
    if len(shells) != 1:
        raise TemplateError(f"a template has exactly one shell, this one has {len(shells)}")
    shell = shells[0]
    kind, _version = parse_template_shell_id(shell["id"])
    template_id = shell["id"]
    mapping = {shell["id"]: ids.shell_id(asset_id, id_base=id_base),
               shell["assetInformation"].get("globalAssetId", ""): ids.global_asset_id(asset_id, id_base=id_base)}
    for submodel in twin.get("submodels") or []:
        mapping[submodel["id"]] = ids.submodel_id(asset_id, submodel["idShort"], _submodel_version(submodel),
                                                  id_base=id_base)
        submodel["kind"] = "Instance"
        _drop_prototypes(submodel)
    twin = _rewrite_ids(twin, mapping)
    shell = twin["assetAdministrationShells"][0]

    asset_information: dict[str, Any] = {"assetKind": "Instance",
                                         "globalAssetId": shell["assetInformation"]["globalAssetId"]}
    specific = [{"name": name, "value": value} for name, value in (("serialNumber", serial_number), ("line", line))
                if value]
    if specific:
        asset_information["specificAssetIds"] = specific
    instance: dict[str, Any] = {"idShort": shell_id_short(asset_id),
                                "displayName": [{"language": "en", "text": asset_id[:128]}]}
    if "description" in shell:
        instance["description"] = shell["description"]
    instance.update({
        "id": shell["id"],
        "derivedFrom": {"type": "ModelReference",
                        "keys": [{"type": "AssetAdministrationShell", "value": template_id}]},
        "assetInformation": asset_information,
        "submodels": shell.get("submodels", []),
        "modelType": "AssetAdministrationShell",
    })
    twin["assetAdministrationShells"] = [instance]

    plate = _submodel(twin, nameplate.SEMANTIC_ID)
    if plate is not None:
        _set_or_drop(plate, _SERIAL, serial_number)
        _set_or_drop(plate, _YEAR, year_of_construction)
    series = _submodel(twin, time_series.SEMANTIC_ID)
    for element in _all_elements(series):
        if _semantic_id(element) in _TEXTS:
            for text in element.get("value") or []:
                text["text"] = text["text"].replace(kind, asset_id)
        if timeseries_endpoint and _semantic_id(element) == _TS_ENDPOINT:
            element["value"] = timeseries_endpoint
    return twin


# -- helpers on AAS JSON ---------------------------------------------------------------------------

def _texts(text: str | dict[str, str]) -> list[tuple[str, str]]:
    return [("en", text)] if isinstance(text, str) else list(text.items())


def _semantic_id(node: dict[str, Any]) -> str | None:
    keys = (node.get("semanticId") or {}).get("keys") or []
    return keys[0].get("value") if keys else None


def children(element: dict[str, Any]) -> list[dict[str, Any]]:
    """The child elements of a submodel or element (collections, lists, entities, annotated relationships)."""
    if element.get("modelType") in ("SubmodelElementCollection", "SubmodelElementList"):
        return element.get("value") or []
    for key in ("submodelElements", "statements", "annotations"):
        if key in element:
            return element.get(key) or []
    return []


def _all_elements(node: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    for child in children(node) if node else []:
        yield child
        yield from _all_elements(child)


def _submodel(env: dict[str, Any], semantic_id: str) -> dict[str, Any] | None:
    return next((s for s in env.get("submodels") or [] if _semantic_id(s) == semantic_id), None)


def _set_or_drop(submodel: dict[str, Any], semantic_id: str, value: str | None) -> None:
    elements = submodel.get("submodelElements") or []
    for i, element in enumerate(elements):
        if _semantic_id(element) == semantic_id:
            if value:
                element["value"] = value
            else:
                del elements[i]
            return


def _cardinality(element: dict[str, Any]) -> str | None:
    for qualifier in element.get("qualifiers") or []:
        if qualifier.get("type") == maintenance.CARDINALITY_TYPE:
            value = qualifier.get("value")
            return value if isinstance(value, str) else None
    return None


def _drop_prototypes(node: dict[str, Any]) -> None:
    """Remove template-only content: prototype list items (ZeroToMany) and template qualifiers."""
    if node.get("modelType") == "SubmodelElementList":
        items = [i for i in node.get("value") or [] if _cardinality(i) != "ZeroToMany"]
        if items:
            node["value"] = items
        else:
            node.pop("value", None)
    qualifiers = [q for q in node.get("qualifiers") or [] if q.get("kind") != "TemplateQualifier"]
    if qualifiers:
        node["qualifiers"] = qualifiers
    else:
        node.pop("qualifiers", None)
    for child in children(node):
        _drop_prototypes(child)


def _rewrite_ids(node: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """Every string equal to a key of `mapping` replaced, and the submodel id inside time-series queries.

    Done on the JSON text: ids are plain ASCII (percent-encoded, see aas_models.ids), so a quoted id
    can only be that exact string value, and this is ten times faster than walking the tree.
    """
    text = orjson.dumps(node)
    for old, new in mapping.items():
        if not old:
            continue
        text = text.replace(orjson.dumps(old), orjson.dumps(new))
        text = text.replace(f"submodelId={ids.b64url_encode(old)}&".encode(),
                            f"submodelId={ids.b64url_encode(new)}&".encode())
    result: dict[str, Any] = orjson.loads(text)
    return result
