"""The README's main job: `twinedge demo` streams the simulated press line through agent, twin
server and store; the twins it writes are valid and convert losslessly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from aas_test_engines import file as ate
from basyx.aas.adapter.aasx import AASXReader, DictSupplementaryFileContainer
from basyx.aas.adapter.json import read_aas_json_file
from basyx.aas.model import DictIdentifiableStore
from click.testing import CliRunner

from aas_models.builders import operational_data
from aas_models.ids import b64url_encode
from aas_models.timeseries.base import SeriesKey
from aas_models.timeseries.sqlite import SqliteTimeSeries
from aas_models.twin import submodel_id_for
from tests.server import free_port
from twinedge.cli import cli


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(cli, ["demo", "--data-dir", str(folder), "--duration", "6", "--json",
                                      "--port", str(free_port())])
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    return folder, json.loads(last)


def test_demo_streams_the_line_into_twins_and_history(demo_dir: tuple[Path, dict[str, int]]) -> None:
    folder, counts = demo_dir
    assert set(counts) == {"samples_read", "samples_stored", "twin_updates", "lost"}
    assert counts["lost"] == 0
    assert counts["samples_stored"] > 0 and counts["twin_updates"] > 0
    assert counts["samples_read"] >= counts["samples_stored"]

    async def series() -> list[SeriesKey]:
        store = SqliteTimeSeries(folder / "timeseries.db")
        await store.open()
        try:
            return await store.series()
        finally:
            await store.close()

    keys = set(asyncio.run(series()))
    for asset in ("press-01", "press-02", "press-03"):  # over OPC UA and over Modbus
        sm_id = submodel_id_for(asset, operational_data.ID_SHORT)
        assert SeriesKey(sm_id, operational_data.value_path("HydraulicPressure")) in keys, asset


def test_demo_twins_are_valid_and_convert_losslessly(demo_dir: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    x_json = demo_dir[0] / "twins" / "press-01.json"
    twin = json.loads(x_json.read_bytes())
    assert {sm["idShort"] for sm in twin["submodels"]} == {
        "Nameplate", "TechnicalData", "OperationalData", "TimeSeries", "ConditionMonitoring"}
    # The default press line's name, by which the fleet page groups the presses.
    assert {"name": "line", "value": "Press line 1"} in twin["assetAdministrationShells"][0]["assetInformation"][
        "specificAssetIds"]

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


def test_demo_twins_load_in_basyx(demo_dir: tuple[Path, dict[str, int]]) -> None:
    folder = demo_dir[0] / "twins"
    with (folder / "press-01.json").open(encoding="utf-8") as stream:
        store = read_aas_json_file(stream, failsafe=False)
    assert len(store) == 1 + 5 + len(json.loads((folder / "press-01.json").read_bytes())["conceptDescriptions"])
    objects: DictIdentifiableStore = DictIdentifiableStore()  # type: ignore[type-arg]
    with AASXReader(str(folder / "press-01.aasx"), failsafe=False) as reader:
        reader.read_into(objects, DictSupplementaryFileContainer())
    assert len(objects) == len(store)


def test_ctrl_c_stops_the_demo_in_order_and_loses_nothing(tmp_path: Path) -> None:
    """The README's command runs until Ctrl-C: the agent must still deliver everything after it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "twinedge", "demo", "--port", str(port), "--data-dir",
                             str(tmp_path), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v3.0/shells", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        od = b64url_encode(submodel_id_for("press-01", operational_data.ID_SHORT))
        url = f"http://127.0.0.1:{port}/api/v3.0/submodels/{od}/submodel-elements/RamPosition.Value/$value"
        while time.monotonic() < deadline:  # the agent delivers: the line is fully up
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:  # the server may be busy starting the rest of the line: keep asking
                answer = httpx.get(url, timeout=5)
                if answer.status_code == 200 and answer.json().get("Value") is not None:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    counts = json.loads(out.decode().strip().splitlines()[-1])
    assert counts["lost"] == 0 and counts["samples_stored"] > 0, err.decode()
    assert "still buffered" not in err.decode()
