"""``twinedge models instantiate PATH --asset-id ID``: one machine's twin, and its agent config.

The twin comes from :func:`aas_models.catalogue.template.instantiate`; its ids are those the edge
agent derives from the asset id, so the agent config written beside it (the folder's
agent-binding.yaml with the asset id, the absolute path of the folder's spec.yaml and, if given, the
controller's address) binds to it with no hand edits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aas_models import ids
from aas_models.catalogue.layout import BINDING, MODEL, SPEC, CatalogueError, ModelFolder, load_yaml
from aas_models.catalogue.template import instantiate
from aas_models.errors import Problem
from aas_models.jsonio import load_jsonable


def instantiate_folder(folder: ModelFolder, asset_id: str, *, serial_number: str | None = None,
                       year_of_construction: str | None = None, id_base: str = ids.DEFAULT_ID_BASE,
                       timeseries_endpoint: str | None = None, line: str | None = None) -> dict[str, Any]:
    template = load_jsonable(folder.file(MODEL).read_bytes(), str(folder.file(MODEL)))
    return instantiate(template, asset_id, serial_number=serial_number, year_of_construction=year_of_construction,
                       id_base=id_base, timeseries_endpoint=timeseries_endpoint, line=line)


def agent_config(folder: ModelFolder, asset_id: str, *, id_base: str = ids.DEFAULT_ID_BASE,
                 endpoint: str | None = None, twin_server: str | None = None) -> str:
    """The folder's example binding as an agent config for `asset_id` (YAML text); `endpoint` is the
    controller's address, `twin_server` the API base the twin sink writes to (default: the agent's)."""
    binding, spec = folder.file(BINDING), folder.file(SPEC)
    if not binding.is_file() or not spec.is_file():
        missing = BINDING if not binding.is_file() else SPEC
        raise CatalogueError([Problem(str(folder.file(missing)), "", "catalogue/binding",
                                      f"an agent config needs the model's {missing}; this model has none")])
    config = load_yaml(binding.read_text(encoding="utf-8"))
    assets = config.get("assets") if isinstance(config, dict) else None
    if not isinstance(assets, list) or len(assets) != 1:
        raise CatalogueError([Problem(str(binding), "assets", "catalogue/binding",
                                      "the example binding must have exactly one asset")])
    assets[0]["id"] = asset_id
    assets[0]["spec"] = str(spec.resolve())
    if id_base != ids.DEFAULT_ID_BASE:
        assets[0]["id_base"] = id_base
    if endpoint is not None:
        _set_endpoint(config["sources"][0], endpoint, binding)
    if twin_server is not None:
        config["sinks"] = [{"type": "twin", "url": twin_server}, {"type": "timeseries"}]
    header = (f"# Edge-agent config for {asset_id}, made by `twinedge models instantiate` from\n"
              f"# {binding.resolve()}\n")
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=200, default_flow_style=None)


def _set_endpoint(source: dict[str, Any], endpoint: str, binding: Path) -> None:
    if source.get("type") == "opcua":
        source["endpoint"] = endpoint
    elif source.get("type") in ("modbus", "mqtt"):
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise CatalogueError([Problem(str(binding), "sources[0]", "catalogue/binding",
                                          f"--endpoint {endpoint!r}: give host:port for a {source['type']} source")])
        source["host"], source["port"] = host, int(port)
    else:
        raise CatalogueError([Problem(str(binding), "sources[0].type", "catalogue/binding",
                                      f"cannot set the endpoint of a {source.get('type')!r} source")])
