"""`twinedge models diff` on a real pair: hydraulic-press 1.0 (the catalogue's) and a 2.0 made from it with
`models new --from` that drops one data point and adds another (tests/cases/models_diff/)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from aas_models.catalogue.cli import models_group
from aas_models.catalogue.diff import BREAKING, NON_BREAKING, diff_models
from aas_models.catalogue.layout import ModelFolder
from aas_models.catalogue.lint import LintOptions, lint_folder
from aas_models.catalogue.scaffold import build
from tests.conftest import CASES

ROOT = Path(__file__).resolve().parent.parent / "reference_models"
CASE = CASES / "models_diff" / "remove-one-add-one"
OLD = ROOT / "hydraulic-press" / "1.0"
NEW = CASE / "hydraulic-press" / "2.0"


def _load(folder: Path) -> dict[str, Any]:
    data = orjson.loads((folder / "model.json").read_bytes())
    assert isinstance(data, dict)
    return data


def test_real_pair_one_breaking_one_not_major_bump(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASE)
    result = CliRunner().invoke(models_group, ["diff", "../../../../reference_models/hydraulic-press/1.0",
                                               "hydraulic-press/2.0"])
    assert result.output + f"exit {result.exit_code}\n" == (CASE / "expected.txt").read_text(encoding="utf-8")
    diff = diff_models(_load(OLD), _load(NEW))
    assert [(c.kind, c.severity) for c in diff.changes] == [("removed", BREAKING), ("added", NON_BREAKING)]
    assert (diff.bump, diff.required_version, diff.version_ok) == ("major", "2.0", True)


def test_the_new_version_is_itself_a_clean_model() -> None:
    assert [str(p) for p in lint_folder(ModelFolder(NEW), LintOptions(conformance=False)).problems] == []


def test_too_small_a_version_fails(tmp_path: Path) -> None:
    """The same change released as 1.1 (a minor bump) is refused: CI fails the pull request."""
    folder = tmp_path / "hydraulic-press" / "1.1"
    shutil.copytree(NEW, folder)
    for name in ("spec.yaml", "metadata.yaml"):
        text = (folder / name).read_text(encoding="utf-8")
        (folder / name).write_text(text.replace('version: "2.0"', 'version: "1.1"').replace("version: '2.0'",
                                                                                         "version: '1.1'"))
    build(ModelFolder(folder))
    result = CliRunner().invoke(models_group, ["diff", str(OLD), str(folder)])
    assert result.exit_code == 1
    assert "Needs a major version bump: 1.0 -> 2.0 (the new model is 1.1: too small: make it 2.0 or higher)." \
        in result.output


def test_unit_and_value_type_changes_are_breaking_texts_are_not() -> None:
    old = _load(OLD)
    new = copy.deepcopy(old)
    for cd in new["conceptDescriptions"]:
        if cd["id"].endswith(":OilTemperature"):
            cd["embeddedDataSpecifications"][0]["dataSpecificationContent"]["unit"] = "K"
    operational = next(s for s in new["submodels"] if s["idShort"] == "OperationalData")
    cycle = next(e for e in operational["submodelElements"] if e["idShort"] == "CycleCounter")
    cycle["value"][0]["valueType"] = "xs:int"
    cycle["description"] = [{"language": "en", "text": "Cycles."}]
    diff = diff_models(old, new)
    found = {(c.where, c.severity) for c in diff.changes}
    assert ("concept urn:twinedge:cd:hydraulic-press:1.0:OilTemperature", BREAKING) in found
    assert ("OperationalData CycleCounter.Value", BREAKING) in found
    assert ("OperationalData CycleCounter", NON_BREAKING) in found
    assert diff.bump == "major"
    same = diff_models(old, old)
    assert (same.changes, same.bump, same.report()[-1]) == ([], "none", "No version bump needed.")
