"""`twinedge models release`: the review stages, the gates, immutability of released versions, a fix as
a new version (`models new --from`), and the twin server publishing released models (real server)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from click.testing import CliRunner

from aas_models import ids
from aas_models.aasx import read_aasx
from aas_models.catalogue.cli import models_group
from aas_models.catalogue.layout import METADATA, CatalogueError, ModelFolder, content_hash, load_metadata
from aas_models.catalogue.lint import LintOptions, lint_paths
from aas_models.catalogue.publish import catalogue_environment, released_model_files, serialization_query
from aas_models.catalogue.release import release
from aas_models.catalogue.scaffold import build
from aas_models.files import load
from tests.server import run_server
from twin_server.config import ServerConfig

ROOT = Path(__file__).resolve().parent.parent / "reference_models"
FAST = LintOptions(conformance=False)  # aas-test-engines runs on the whole catalogue in test_models_lint


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    root = tmp_path / "reference_models"
    for kind in ("hydraulic-press", "conveyor"):
        shutil.copytree(ROOT / kind / "1.0", root / kind / "1.0")
    for folder in (ModelFolder(root / k / "1.0") for k in ("hydraulic-press", "conveyor")):
        data = yaml.safe_load(folder.file(METADATA).read_text(encoding="utf-8"))
        data.update(status="draft", reviewers=[])  # back to the start, whatever the catalogue's stage
        data.pop("released", None)
        folder.file(METADATA).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        build(folder)
    return root


def _with_reviewer(folder: ModelFolder) -> None:
    text = folder.file(METADATA).read_text(encoding="utf-8")
    folder.file(METADATA).write_text(text.replace("reviewers: []", "reviewers:\n- Park Jiho <KETI>"),
                                     encoding="utf-8")


def _release_fully(folder: ModelFolder) -> None:
    release(folder, options=FAST)
    _with_reviewer(folder)
    release(folder, options=FAST)
    release(folder, options=FAST, today=dt.date(2026, 12, 2))


def test_stages_gates_and_immutability(catalogue: Path) -> None:
    folder = ModelFolder(catalogue / "hydraulic-press" / "1.0")
    with pytest.raises(CatalogueError, match="cannot go from draft to released"):
        release(folder, "released", options=FAST)
    assert release(folder, options=FAST).status == "in-review"
    with pytest.raises(CatalogueError, match="at least one reviewer who is not an owner"):
        release(folder, options=FAST)
    assert release(folder, "draft", options=FAST).status == "draft"  # changes requested
    release(folder, options=FAST)
    _with_reviewer(folder)
    assert release(folder, options=FAST).status == "approved"
    released = release(folder, options=FAST, today=dt.date(2026, 12, 2))
    assert released.status == "released" and released.released is not None
    assert released.released.content_sha256 == content_hash(folder)
    assert "status **released**" in folder.file("README.md").read_text(encoding="utf-8")
    with pytest.raises(CatalogueError, match="--to deprecated"):
        release(folder, options=FAST)
    assert lint_paths([catalogue], options=FAST, jobs=1) == []

    # A "quick fix" in place: the lint, release and build all refuse it.
    spec = folder.file("spec.yaml")
    spec.write_text(spec.read_text(encoding="utf-8").replace("value: 800.0", "value: 850.0", 1), encoding="utf-8")
    with pytest.raises(CatalogueError, match="immutable"):
        build(folder)
    assert "catalogue/released-changed" in {p.rule for p in lint_paths([catalogue], options=FAST, jobs=1)}
    with pytest.raises(CatalogueError, match="immutable"):
        release(folder, "deprecated", options=FAST)

    # The fix becomes a new version; the released one goes back to what was released.
    spec.write_text(spec.read_text(encoding="utf-8").replace("value: 850.0", "value: 800.0", 1), encoding="utf-8")
    result = CliRunner().invoke(models_group, ["new", "hydraulic-press", "--from", str(folder.path), "--root",
                                               str(catalogue)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    fix = ModelFolder(catalogue / "hydraulic-press" / "1.1")
    assert (load_metadata(fix).status, load_metadata(fix).released) == ("draft", None)
    assert lint_paths([catalogue], options=FAST, jobs=1) == []
    assert release(folder, "deprecated", options=FAST).status == "deprecated"
    assert lint_paths([catalogue], options=FAST, jobs=1) == []


def test_release_gate_runs_the_lint(catalogue: Path) -> None:
    folder = ModelFolder(catalogue / "conveyor" / "1.0")
    model = orjson.loads(folder.file("model.json").read_bytes())
    model["assetAdministrationShells"][0]["administration"]["revision"] = "7"
    folder.file("model.json").write_bytes(orjson.dumps(model))
    result = CliRunner().invoke(models_group, ["release", str(folder.path), "--no-conformance"])
    assert result.exit_code == 1
    assert "[catalogue/version-mismatch]" in result.output and "before in-review" in result.output
    assert load_metadata(folder).status == "draft"


def test_twin_server_publishes_released_models_with_aasx_download(catalogue: Path, tmp_path: Path) -> None:
    press = ModelFolder(catalogue / "hydraulic-press" / "1.0")
    _release_fully(press)
    assert released_model_files(catalogue) == [press.file("model.json")]  # the conveyor is still a draft
    merged = catalogue_environment(catalogue)
    assert [s.id for s in merged.asset_administration_shells or []] == ["urn:twinedge:rm:hydraulic-press:1.0"]

    with run_server(ServerConfig(data_dir=tmp_path / "server", catalogue=catalogue)) as server:
        shells = httpx.get(f"{server.base}/shells").json()["result"]
        assert [(s["id"], s["assetInformation"]["assetKind"]) for s in shells] == \
            [("urn:twinedge:rm:hydraulic-press:1.0", "Type")]
        template = load(press.file("model.json")).environment
        kinds = {sm["kind"] for sm in httpx.get(f"{server.base}/submodels").json()["result"]}
        assert kinds == {"Template"}
        response = httpx.get(f"{server.base}/serialization?{serialization_query(template)}",
                             headers={"Accept": "application/asset-administration-shell-package+xml"})
        assert response.status_code == 200, response.text
        package = read_aasx(response.content, "download.aasx")
        assert {sm.id for sm in package.environment.submodels or []} == {sm.id for sm in template.submodels or []}
        cd = ids.b64url_encode("urn:twinedge:cd:hydraulic-press:1.0:OilTemperature")
        assert httpx.get(f"{server.base}/concept-descriptions/{cd}").status_code == 200
