"""Regenerate the lint's golden cases (run from the repository root, then review the diff):

    python tests/cases/models_lint/make_cases.py

Each case is a small catalogue (JSON-only models, no spec.yaml, so that model.json can carry the
defect) made from one tiny spec, plus one deliberate defect; expected.txt is the lint's output.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from aas_models.catalogue.cli import models_group
from aas_models.catalogue.layout import SPEC, ModelFolder, ReleaseRecord, content_hash, dump_metadata, load_metadata
from aas_models.catalogue.readme import render_readme
from aas_models.catalogue.scaffold import new_model
from aas_models.catalogue.template import dump_model

CASES = Path(__file__).resolve().parent
SPEC_TEXT = """# A small machine for the lint's golden cases.
equipment_type: test-machine
version: "1.0"
description: {en: "A machine with two data points, for tests."}
manufacturer_name: Example Co.
product_designation: {en: Test machine}
order_code: TM-1
article_number: TM1
technical_properties:
  - {name: RatedPower, value: 5.0, unit: kW, description: {en: Rated power.}}
signals:
  - {name: MotorSpeed, value_type: xs:double, unit: 1/min, description: {en: Speed of the motor.}}
  - {name: PartCounter, value_type: xs:long, description: {en: Parts made.}}
"""
Mutation = Callable[[dict[str, Any], ModelFolder], None]


def _walk(node: Any, fn: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(node, dict):
        fn(node)
        for value in list(node.values()):
            _walk(value, fn)
    elif isinstance(node, list):
        for value in node:
            _walk(value, fn)


def _base(work: Path) -> Path:
    for kind, name in (("test-machine", "Test machine"), ("other-machine", "Other machine")):
        spec = work / f"{kind}.yaml"
        spec.write_text(SPEC_TEXT.replace("test-machine", kind).replace("Test machine", name), encoding="utf-8")
        folder = new_model(work / "base", kind, spec=spec, owners=["Test Owner <test>"], name={"en": name},
                           today=dt.date(2026, 12, 1))
        folder.file(SPEC).unlink()
    return work / "base"


def _case(base: Path, name: str, mutate: Mutation, both: bool = False) -> None:
    case = CASES / name
    shutil.rmtree(case, ignore_errors=True)
    kinds = ["test-machine", "other-machine"] if both else ["test-machine"]
    for kind in kinds:
        shutil.copytree(base / kind, case / "catalogue" / kind)
    folder = ModelFolder(case / "catalogue" / "test-machine" / "1.0")
    model = orjson.loads(folder.file("model.json").read_bytes())
    mutate(model, folder)
    folder.file("model.json").write_bytes(dump_model(model))
    for kind in kinds:
        each = ModelFolder(case / "catalogue" / kind / "1.0")
        each.file("README.md").write_text(render_readme(orjson.loads(each.file("model.json").read_bytes()),
                                                        load_metadata(each)), encoding="utf-8")
    result = CliRunner().invoke(models_group, ["lint", str(case / "catalogue"), "--no-conformance", "-j", "1"])
    output = result.output.replace(str(case) + "/", "")
    (case / "expected.txt").write_text(output + f"exit {result.exit_code}\n", encoding="utf-8")


def _semantic_id_whitespace(model: dict[str, Any], folder: ModelFolder) -> None:
    def fn(node: dict[str, Any]) -> None:
        keys = (node.get("semanticId") or {}).get("keys")
        if node.get("idShort") == "Value" and keys and keys[0]["value"].endswith(":MotorSpeed"):
            keys[0]["value"] = keys[0]["value"].replace("MotorSpeed", "Motor Speed")
    _walk(model["submodels"][2], fn)  # OperationalData


def _missing_cd(model: dict[str, Any], folder: ModelFolder) -> None:
    model["conceptDescriptions"] = [c for c in model["conceptDescriptions"] if not c["id"].endswith(":MotorSpeed")]


def _missing_unit(model: dict[str, Any], folder: ModelFolder) -> None:
    for cd in model["conceptDescriptions"]:
        if cd["id"].endswith(":MotorSpeed"):
            del cd["embeddedDataSpecifications"][0]["dataSpecificationContent"]["unit"]


def _version(model: dict[str, Any], folder: ModelFolder) -> None:
    model["assetAdministrationShells"][0]["administration"]["revision"] = "1"


def _cardinality(model: dict[str, Any], folder: ModelFolder) -> None:
    history = next(s for s in model["submodels"] if s["idShort"] == "MaintenanceHistory")
    history["submodelElements"][0]["qualifiers"][0]["type"] = "Cardinality"
    history["submodelElements"][1]["qualifiers"][0]["value"] = "0..1"


def _duplicate(model: dict[str, Any], folder: ModelFolder) -> None:
    """test-machine's MaintenanceHistory takes other-machine's submodel id (a copy-and-paste slip)."""
    mine = "urn:twinedge:rm:test-machine:1.0:sm:MaintenanceHistory:1.0"
    other = mine.replace("test-machine", "other-machine")

    def fn(node: dict[str, Any]) -> None:
        for key, value in list(node.items()):
            if value == mine:
                node[key] = other
    _walk(model, fn)


def _released(model: dict[str, Any], folder: ModelFolder) -> None:
    """Released (hash recorded), then "fixed" in place."""
    metadata = load_metadata(folder).model_copy(update={
        "status": "released", "reviewers": ["Test Reviewer <test>"],
        "released": ReleaseRecord(date=dt.date(2026, 12, 1), content_sha256=content_hash(folder))})
    folder.file("metadata.yaml").write_text(dump_metadata(metadata), encoding="utf-8")

    def fn(node: dict[str, Any]) -> None:
        if node.get("idShort") == "RatedPower" and node.get("modelType") == "Property":
            node["value"] = "5.5"
    _walk(model, fn)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = _base(Path(tmp))
        _case(base, "clean", lambda model, folder: None)
        _case(base, "semantic-id-whitespace", _semantic_id_whitespace)
        _case(base, "missing-concept-description", _missing_cd)
        _case(base, "missing-unit", _missing_unit)
        _case(base, "version-mismatch", _version)
        _case(base, "cardinality-spelling", _cardinality)
        _case(base, "duplicate-id-across-models", _duplicate, both=True)
        _case(base, "released-changed", _released)
    print(f"cases written under {CASES}", file=sys.stderr)


if __name__ == "__main__":
    main()
