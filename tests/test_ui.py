"""The dashboards in real headless Chromium (Debian's chromium driven by Playwright) against a real
twin server. Live values are fed through the AAS HTTP API (PATCH $value), as the edge agent does;
ConditionMonitoring results are PATCHed the way the analytics runner writes them (the simulator and
analytics runner are not composed here), and history is written into the server's time-series store
file, the one the agent writes. Screenshots of every page go to $TWINEDGE_ARTEFACTS/ui (default
/tmp/twinedge-artefacts/ui)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import math
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aas_models.equipment import SPECS_DIR, load_spec
from aas_models.ids import b64url_encode
from aas_models.jsonio import dump_json
from aas_models.timeseries.base import Sample, SeriesKey
from aas_models.timeseries.sqlite import SqliteTimeSeries
from aas_models.twin import build_twin
from tests.server import RunningServer, run_server
from twin_server.config import ServerConfig

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="Debian's chromium is not installed (apt-get install chromium)")

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ASSETS = ("press-01", "press-02")


def artefacts() -> Path:
    path = Path(os.environ.get("TWINEDGE_ARTEFACTS") or "/tmp/twinedge-artefacts") / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path


def od_id(asset: str) -> str:
    return f"urn:twinedge:sm:{asset}:OperationalData:1.0"


def cm_id(asset: str) -> str:
    return f"urn:twinedge:sm:{asset}:ConditionMonitoring:1.0"


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def write_twins(data_dir: Path) -> list[Path]:
    spec = load_spec(SPECS_DIR / "hydraulic-press.yaml")
    files = []
    for asset in ASSETS:
        env = json.loads(dump_json(build_twin(spec, asset, serial_number=f"SN-{asset}")))
        env["assetAdministrationShells"][0]["assetInformation"].setdefault("specificAssetIds", []).append(
            {"name": "line", "value": "Line 1"})
        path = data_dir / f"{asset}.json"
        path.write_text(json.dumps(env), encoding="utf-8")
        files.append(path)
    return files


def write_history(data_dir: Path) -> None:
    """Two hours of a press: a cycle every 12 s (one NG in 20), oil temperature drifting, one stop."""
    async def run() -> None:
        store = SqliteTimeSeries(data_dir / "timeseries.db")
        await store.open()
        end = dt.datetime.now(dt.UTC)
        t0 = end - dt.timedelta(hours=2)
        samples: list[Sample] = []
        sm = od_id("press-01")
        count = 0
        for i in range(600):
            t = t0 + dt.timedelta(seconds=12 * i)
            if 200 <= i < 260:  # 12-minute stop
                continue
            count += 1
            samples += [Sample(SeriesKey(sm, "CycleCounter.Value"), t, count),
                        Sample(SeriesKey(sm, "CycleTime.Value"), t, 11.5 + 0.5 * math.sin(i)),
                        Sample(SeriesKey(sm, "PartQuality.Value"), t, "NG" if i % 20 == 0 else "OK"),
                        Sample(SeriesKey(sm, "OilTemperature.Value"), t, 45 + 3 * math.sin(i / 30) + (i % 7) / 10)]
        await store.write(samples)
        await store.close()

    asyncio.run(run())


def reference_models(root: Path) -> None:
    spec = load_spec(SPECS_DIR / "hydraulic-press.yaml")
    for version, extra in (("1.0", False), ("1.1", True)):
        folder = root / "reference_models" / "test-press" / version
        folder.mkdir(parents=True)
        env = json.loads(dump_json(build_twin(spec, "template")))
        if extra:
            env["submodels"][2]["submodelElements"].pop()  # a signal removed in 1.1
        (folder / "environment.json").write_text(json.dumps(env, indent=2), encoding="utf-8")
        (folder / "metadata.yaml").write_text(
            f"name: {{en: Test press, ko: 시험 프레스}}\nequipment_type: test-press\nversion: '{version}'\n"
            f"status: {'released' if not extra else 'draft'}\nowners: [TwinEdge]\n"
            f"changelog: [{{version: '{version}', changes: [Signal removed]}}]\n", encoding="utf-8")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("ui")
    files = write_twins(data)
    write_history(data)
    reference_models(data)
    with run_server(ServerConfig(data_dir=data, load=files)) as srv:
        for asset in ASSETS:
            feed(srv, asset, {"OilTemperature": 45.0, "HydraulicPressure": 180.0, "CycleCounter": 600})
        patch_cm(srv, "press-01", {"HealthIndex": 0.92, "AnomalyScore": 0.1, "AnomalyThreshold": 0.5,
                                   "SpcState": "in-control", "RemainingUsefulLife": 1500.0})
        yield srv


def root(srv: RunningServer) -> str:
    return srv.base.removesuffix("/api/v3.0")


def feed(srv: RunningServer, asset: str, values: dict[str, Any]) -> None:
    body = {name: {"Value": v, "Quality": "good", "Timestamp": now_text()} for name, v in values.items()}
    r = httpx.patch(f"{srv.base}/submodels/{b64url_encode(od_id(asset))}/$value", json=body)
    assert r.status_code == 204, r.text


def patch_cm(srv: RunningServer, asset: str, values: dict[str, Any]) -> None:
    r = httpx.patch(f"{srv.base}/submodels/{b64url_encode(cm_id(asset))}/$value",
                    json={**values, "Timestamp": now_text()})
    assert r.status_code == 204, r.text


class Browser:
    """One Chromium page that records console errors and every request that leaves the server."""

    def __init__(self, srv: RunningServer, chromium: Any, locale: str = "en-US") -> None:
        self.origin = root(srv)
        self.chromium = chromium
        self._context = chromium.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        self.page = self._context.new_page()
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: None if r.url.startswith((self.origin, "data:")) else
                     self.foreign.append(r.url))

    def open(self, path: str, shot: str | None = None) -> Any:
        response = self.page.goto(self.origin + path)
        assert response is not None and response.status == 200, path
        self.page.wait_for_load_state("load")
        if shot:
            self.page.screenshot(path=str(artefacts() / f"{shot}.png"), full_page=True)
        return response

    def clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.foreign == [], self.foreign

    def close(self) -> None:
        self._context.close()


@pytest.fixture(scope="module")
def browser(server: RunningServer) -> Iterator[Browser]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        b = Browser(server, chromium)
        yield b
        b.close()
        chromium.close()


def asset_path(asset: str) -> str:
    return "/ui/asset?id=" + b64url_encode(f"urn:twinedge:aas:{asset}")


def test_fleet_page(browser: Browser) -> None:
    browser.open("/ui?lang=en", "fleet")
    page = browser.page
    assert page.locator("h1").inner_text() == "Fleet overview"
    assert page.locator("table.fleet tbody tr").count() == 2
    assert "Line 1" in page.locator("section.line h2").inner_text()
    # press-01 has two hours of cycle history: OEE is measured; press-02 has none
    first = page.locator("table.fleet tbody tr").first.inner_text()
    assert "%" in first and "0.92" in first
    assert page.evaluate("document.characterSet") == "UTF-8"
    browser.clean()


def test_asset_page_live_value_changes_on_screen(browser: Browser, server: RunningServer) -> None:
    browser.open(asset_path("press-01"))
    page = browser.page
    page.wait_for_selector("#conn[data-connected='1']")
    cell = page.locator("tr[data-signal='OilTemperature'] .v")
    assert cell.inner_text() == "45"
    feed(server, "press-01", {"OilTemperature": 51.25})
    sync_api.expect(cell).to_have_text("51.25")
    # one element written on its own (the other form of the event)
    httpx.patch(f"{server.base}/submodels/{b64url_encode(od_id('press-01'))}/submodel-elements/"
                "HydraulicPressure.Value/$value", json=199.5)
    sync_api.expect(page.locator("tr[data-signal='HydraulicPressure'] .v")).to_have_text("199.5")
    # the trend and the SPC chart of the selected signal are drawn from the history endpoint
    page.select_option("#signal", "OilTemperature")
    page.wait_for_selector("#trend svg polyline.series")
    page.wait_for_selector("#spc svg circle")
    page.screenshot(path=str(artefacts() / "asset.png"), full_page=True)
    # zoom: drag across the trend, the chart is redrawn from a narrower query
    box = page.locator("#trend svg").bounding_box()
    assert box is not None
    with page.expect_response(lambda r: "/ui/data/timeseries" in r.url and "from=" in r.url):
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 50)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 60)
        page.mouse.up()
    browser.clean()


def test_spc_limits_are_subgroup_correct(browser: Browser) -> None:
    browser.open(asset_path("press-02"))
    # 4 subgroups of 5: ranges 2, 4, 1, 3 -> R-bar 2.5 (the global range would be 13)
    values = [10, 11, 12, 11, 10, 14, 10, 12, 11, 13, 20, 20.5, 21, 20, 20.2, 9, 7, 8, 10, 9]
    res = browser.page.evaluate("v => TE.spc(v, 5)", values)
    means = [sum(values[i:i + 5]) / 5 for i in range(0, 20, 5)]
    xbar = sum(means) / 4
    assert res["rbar"] == pytest.approx(2.5)
    assert res["ucl"] == pytest.approx(xbar + 0.577 * 2.5)
    assert res["lcl"] == pytest.approx(xbar - 0.577 * 2.5)
    assert res["rucl"] == pytest.approx(2.114 * 2.5)
    # the third subgroup (mean 20.34) is far beyond the UCL: rule 1 marks it
    assert "WE1" in res["violations"][2]
    assert "WE1" not in res["violations"][1]  # mean 12.0 lies between LCL 11.49 and UCL 14.38
    browser.clean()


def test_fault_shows_as_alarm_and_health_drop(browser: Browser, server: RunningServer) -> None:
    browser.open(asset_path("press-02"))
    page = browser.page
    page.wait_for_selector("#conn[data-connected='1']")
    patch_cm(server, "press-02", {"HealthIndex": 0.88})
    page.reload()
    page.wait_for_selector("#conn[data-connected='1']")
    patch_cm(server, "press-02", {"HealthIndex": 0.21, "FaultClass": "cooler", "FaultProbability": 0.93,
                                  "SpcState": "out-of-control", "ViolatedRules": "nelson-1"})
    sync_api.expect(page.locator("[data-cm-key=HealthIndex]")).to_have_text("0.21")
    browser.open("/ui/alarms", "alarms")
    text = page.locator("table.alarms").inner_text()
    assert "Fault predicted: cooler (93 %)" in text and "Health index low: 0.21" in text
    assert "nelson-1" in text
    browser.open("/ui")
    assert "Fault" in page.locator("table.fleet tbody tr", has_text="press-02").inner_text()
    browser.clean()


def test_korean_and_english_switch(browser: Browser, server: RunningServer) -> None:
    browser.open("/ui?lang=en")
    page = browser.page
    page.click("#lang-switch")
    page.wait_for_load_state("load")
    assert page.locator("html").get_attribute("lang") == "ko"
    assert page.locator("h1").inner_text() == "설비 현황"
    page.screenshot(path=str(artefacts() / "fleet-ko.png"), full_page=True)
    browser.open("/ui/alarms")  # the choice is remembered
    assert page.locator("h1").inner_text() == "활성 알람"
    page.click("#lang-switch")
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == "Active alarms"
    browser.clean()
    korean = Browser(server, browser.chromium, locale="ko-KR")  # no choice made: the browser's language decides
    try:
        korean.open("/ui/adoption")
        assert korean.page.locator("h1").inner_text() == "AI 도입 수준"
        korean.clean()
    finally:
        korean.close()


def test_adoption_page_shows_level_and_what_is_missing(browser: Browser) -> None:
    browser.open("/ui/adoption?lang=en", "adoption")
    page = browser.page
    assert page.locator("#level").inner_text().isdigit()
    assert page.locator("#missing li").count() >= 1
    assert page.locator("svg.radar polygon.value").count() == 1
    # answering the questionnaire (a write: the anonymous loopback user is admin here) records history
    page.select_option("select[name=digital_records]", "1.0")
    page.fill("input[name=EquipmentCount]", "2")
    page.click("#questionnaire button")
    page.wait_for_url("**/ui/adoption?saved=1")
    assert int(page.locator("#level").inner_text()) >= 1
    assert page.locator("svg.spark, section table").count() >= 1
    browser.open("/ui/adoption?scope=asset&id=press-01")
    browser.open("/ui/adoption/report?scope=factory&id=factory", "adoption-report")
    assert "Level" in page.locator(".report").inner_text()
    browser.clean()


def test_adoption_result_is_an_aas_submodel(server: RunningServer, browser: Browser) -> None:
    browser.open("/ui/adoption")
    browser.page.click("#questionnaire button")
    browser.page.wait_for_url("**/ui/adoption?saved=1")
    sm_id = "urn:twinedge:sm:factory%3Afactory:AiAdoptionAssessment:1.0"
    r = httpx.get(f"{server.base}/submodels/{b64url_encode(sm_id)}/$value")
    assert r.status_code == 200
    value = r.json()
    assert value["Scope"] == "factory" and isinstance(value["Level"], int)
    shell = httpx.get(f"{server.base}/shells/{b64url_encode('urn:twinedge:aas:press-01')}").json()
    refs = [k["value"] for ref in shell["submodels"] for k in ref["keys"]]
    assert "urn:twinedge:sm:press-01:AiAdoptionAssessment:1.0" in refs
    cd = "https://twinedge.dev/aas/sm/AiAdoptionAssessment/1/0/Level"
    assert httpx.get(f"{server.base}/concept-descriptions/{b64url_encode(cd)}").status_code == 200


def test_catalogue_page_diff_and_aasx(browser: Browser, server: RunningServer) -> None:
    browser.open("/ui/catalogue", "catalogue")
    page = browser.page
    assert page.locator("table.catalogue tbody tr", has_text="test-press").count() == 2
    page.locator(".diff-form", has_text="test-press").locator("button").click()
    page.wait_for_selector("#diff")
    page.screenshot(path=str(artefacts() / "catalogue-diff.png"), full_page=True)
    assert "PartQuality" in page.locator("#diff").inner_text()
    href = page.locator("table.catalogue tr", has_text="test-press").first.locator("a").get_attribute("href")
    assert href is not None
    r = httpx.get(root(server) + href)
    assert r.status_code == 200
    assert "aasx/data.json" in " ".join(zipfile.ZipFile(io.BytesIO(r.content)).namelist())
    browser.clean()
