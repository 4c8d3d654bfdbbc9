"""The README's main job, and the convert chain of the issue on the twin it writes."""

from __future__ import annotations

import json
from pathlib import Path

from aas_test_engines import file as ate
from basyx.aas.adapter.aasx import AASXReader, DictSupplementaryFileContainer
from basyx.aas.adapter.json import read_aas_json_file
from basyx.aas.model import DictIdentifiableStore
from click.testing import CliRunner

from twinedge.cli import cli


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_writes_a_valid_twin_and_it_converts_losslessly(tmp_path: Path) -> None:
    output = run("demo", "--data-dir", str(tmp_path), "--asset-id", "press-07")
    assert "urn:twinedge:aas:press-07" in output
    x_json = tmp_path / "press-07.json"
    twin = json.loads(x_json.read_bytes())
    assert {sm["idShort"] for sm in twin["submodels"]} == {
        "Nameplate", "TechnicalData", "OperationalData", "TimeSeries", "ConditionMonitoring"}

    run("aas", "convert", str(x_json), str(tmp_path / "x.aasx"))
    run("aas", "convert", str(tmp_path / "x.aasx"), str(tmp_path / "y.xml"))
    run("aas", "convert", str(tmp_path / "y.xml"), str(tmp_path / "back.json"))
    assert json.loads((tmp_path / "back.json").read_bytes()) == twin

    with x_json.open("rb") as stream:
        assert ate.check_json_file(stream).ok()
    with (tmp_path / "x.aasx").open("rb") as stream:
        assert ate.check_aasx_file(stream).ok()
    with (tmp_path / "y.xml").open("rb") as stream:
        assert ate.check_xml_file(stream).ok()
    run("aas", "validate", str(x_json), str(tmp_path / "x.aasx"), str(tmp_path / "y.xml"), "--strict")


def test_demo_files_load_in_basyx(tmp_path: Path) -> None:
    run("demo", "--data-dir", str(tmp_path))
    with (tmp_path / "press-01.json").open(encoding="utf-8") as stream:
        store = read_aas_json_file(stream, failsafe=False)
    assert len(store) == 1 + 5 + len(json.loads((tmp_path / "press-01.json").read_bytes())["conceptDescriptions"])
    objects: DictIdentifiableStore = DictIdentifiableStore()  # type: ignore[type-arg]
    with AASXReader(str(tmp_path / "press-01.aasx"), failsafe=False) as reader:
        reader.read_into(objects, DictSupplementaryFileContainer())
    assert len(objects) == len(store)
