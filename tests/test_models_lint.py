"""The catalogue lint: golden cases (one per rule that matters), the whole of reference_models/ (so CI
runs it), and for every model: aas-test-engines' file check, basyx-python-sdk, the AASX package and
an agent config the real edge-agent config loader accepts.

Golden cases: tests/cases/models_lint/<case>/catalogue/ -> expected.txt, the exact output of
`twinedge models lint catalogue --no-conformance -j 1` run in the case folder, then `exit N`.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from aas_test_engines import file as ate
from aas_test_engines.result import AasTestResult, Level
from basyx.aas.adapter.json import read_aas_json_file
from click.testing import CliRunner

from aas_models.catalogue.cli import models_group
from aas_models.catalogue.layout import BINDING, MODEL, discover, load_yaml
from aas_models.catalogue.lint import lint_paths
from aas_models.catalogue.package import package_folder
from aas_models.equipment import SPECS_DIR, load_spec
from edge_agent.config import bindings, parse_config
from tests.conftest import CASES

ROOT = Path(__file__).resolve().parent.parent / "reference_models"
FOLDERS = discover([ROOT])
CASE_DIRS = sorted(p for p in (CASES / "models_lint").iterdir() if p.is_dir())
EQUIPMENT = {
    "hydraulic-press", "servo-press", "cnc-machining-centre", "cnc-lathe", "injection-moulding-machine",
    "die-casting-machine", "industrial-robot", "air-compressor", "conveyor", "welding-machine",
    "heat-treatment-furnace", "filling-packaging-machine",
}


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_lint_case(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(case)
    result = CliRunner().invoke(models_group, ["lint", "catalogue", "--no-conformance", "-j", "1"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.output + f"exit {result.exit_code}\n" == (case / "expected.txt").read_text(encoding="utf-8")


def test_each_required_rule_has_a_failing_case() -> None:
    expected = {c.name: (c / "expected.txt").read_text(encoding="utf-8") for c in CASE_DIRS}
    for case, rule in {
        "semantic-id-whitespace": "catalogue/semantic-id-whitespace",
        "missing-concept-description": "catalogue/semantic-id-unresolved",
        "missing-unit": "catalogue/missing-unit",
        "version-mismatch": "catalogue/version-mismatch",
        "duplicate-id-across-models": "catalogue/duplicate-id",
        "released-changed": "catalogue/released-changed",
        "cardinality-spelling": "catalogue/cardinality-spelling",
    }.items():
        assert f"[{rule}]" in expected[case] and expected[case].endswith("exit 1\n"), case
    assert expected["clean"].endswith("exit 0\n")


def test_the_catalogue_has_the_twelve_models_and_lints_clean() -> None:
    """The same check as `twinedge models lint` in CI, with aas-test-engines, over all of reference_models/."""
    assert {f.equipment_type for f in FOLDERS} >= EQUIPMENT
    problems = lint_paths([ROOT], jobs=2)
    assert [str(p) for p in problems] == []


def _problems(result: AasTestResult) -> list[str]:
    if not result.sub_results:
        return [result.message] if result.level.value >= Level.WARNING.value else []
    return [p for sub in result.sub_results for p in _problems(sub)]


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.label for f in FOLDERS])
def test_model_passes_aas_test_engines_and_loads_in_basyx(folder: object) -> None:
    from aas_models.catalogue.layout import ModelFolder
    assert isinstance(folder, ModelFolder)
    text = folder.file(MODEL).read_text(encoding="utf-8")
    data = json.loads(text)
    result = ate.check_json_data(data)
    assert result.ok(), _problems(result)
    assert _problems(result) == []
    store = read_aas_json_file(io.StringIO(text), failsafe=False)
    assert len(store) == 1 + len(data["submodels"]) + len(data["conceptDescriptions"])
    assert {sm["idShort"] for sm in data["submodels"]} == {
        "Nameplate", "TechnicalData", "OperationalData", "TimeSeries", "ConditionMonitoring", "MaintenanceHistory"}
    aasx = package_folder(folder)
    assert ate.check_aasx_data(zipfile.ZipFile(io.BytesIO(aasx))).ok()
    # Reproducible: no entry carries the time it was written, so a package's bytes follow its content.
    assert {i.date_time for i in zipfile.ZipFile(io.BytesIO(aasx)).infolist()} == {(1980, 1, 1, 0, 0, 0)}


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.label for f in FOLDERS])
def test_example_binding_is_a_valid_agent_config(folder: object) -> None:
    """The real config loader and binding resolution of the edge agent accept every example binding."""
    from aas_models.catalogue.layout import ModelFolder
    assert isinstance(folder, ModelFolder)
    path = folder.file(BINDING)
    config = parse_config(load_yaml(path.read_text(encoding="utf-8")), str(path), folder.path)
    delivered: dict[str, set[str]] = {}
    for source in config.sources:
        items = getattr(source, "nodes", None) or getattr(source, "tags", None) or []
        delivered[source.name] = {item.signal for item in items}
    resolved = bindings(config, {name: names.__contains__ for name, names in delivered.items()}, str(path))
    assert resolved and len(resolved) == sum(len(a.bindings) for a in config.assets)


def test_catalogue_specs_are_the_shipped_specs() -> None:
    """aas_models/specs holds the current spec of each type; the hydraulic press keeps the simulator's
    nine signals first and adds what a press PLC or MES delivers."""
    for folder in FOLDERS:
        shipped = SPECS_DIR / f"{folder.equipment_type}.yaml"
        catalogue = load_spec(folder.file("spec.yaml"))
        if folder.equipment_type == "hydraulic-press":
            simulator = [s.name for s in load_spec(shipped).signals]
            assert [s.name for s in catalogue.signals][:len(simulator)] == simulator
        else:
            assert load_spec(shipped) == catalogue, folder.label


def test_conformance_per_identifiable_finds_what_the_whole_file_check_finds() -> None:
    """The lint checks shells, submodels and concepts one by one (shared concepts once per memo): the same
    findings as aas-test-engines on the whole file, with the item's index in the path."""
    from aas_models.catalogue.lint import Memo, _ate_findings, _conformance

    model = json.loads((ROOT / "hydraulic-press" / "1.0" / MODEL).read_text(encoding="utf-8"))
    model["conceptDescriptions"][5]["idShort"] = "bad id"
    model["submodels"][3]["submodelElements"][1]["idShort"] = "bad id"
    memo: Memo = {}
    split = [(p.where, p.message, p.severity) for p in _conformance(model, "m.json", memo)]
    assert split == _ate_findings(model)
    assert any("@ /submodels/3/submodel_elements/1" in message for _, message, _ in split)
    assert any("@ /concept_descriptions/5" in message for _, message, _ in split)
    pieces = len(model["assetAdministrationShells"]) + len(model["submodels"]) + len(model["conceptDescriptions"])
    assert len(memo) == pieces
    other = json.loads((ROOT / "servo-press" / "1.0" / MODEL).read_text(encoding="utf-8"))
    list(_conformance(other, "other.json", memo))
    shared = {json.dumps(cd, sort_keys=True) for cd in model["conceptDescriptions"]} & {
        json.dumps(cd, sort_keys=True) for cd in other["conceptDescriptions"]}
    assert shared, "the two models share concept descriptions"
    assert len(memo) == pieces + len(other["assetAdministrationShells"]) + len(other["submodels"]) + len(
        other["conceptDescriptions"]) - len(shared)
