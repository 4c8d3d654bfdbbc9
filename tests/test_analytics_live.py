"""Live analytics end to end: the simulated press line (real OPC UA and Modbus servers) -> edge agent
-> twin server and history store -> analytics learns normal operation, scores each cycle into the
ConditionMonitoring submodel; a fault injected in the simulator shows as an anomaly, a health drop and
an alarm on the dashboard."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import yaml

from aas_models import ids
from aas_models.equipment import SPECS_DIR, load_spec
from aas_models.files import save
from aas_models.package import AasPackage
from aas_models.timeseries.sqlite import SqliteTimeSeries
from aas_models.twin import build_twin, submodel_id_for
from analytics.live import LiveConfig, LiveStats, run_live
from edge_agent.assembly import build_agent
from edge_agent.config import parse_config
from edge_agent.simulator.bindings import agent_config
from edge_agent.simulator.config import default_config
from edge_agent.simulator.servers import Simulator
from tests.server import run_server
from twin_server.config import ServerConfig

try:
    from playwright import sync_api
except ImportError:  # the browser part is skipped; the rest of the test still runs
    sync_api = None  # type: ignore[assignment]
CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTEFACTS = Path(os.environ.get("TWINEDGE_ARTEFACTS") or "/tmp/twinedge-artefacts") / "ui"
CYCLE = 1.0
TRAIN = 20


def _condition(api: str, asset: str) -> dict[str, Any]:
    sm = ids.b64url_encode(submodel_id_for(asset, "ConditionMonitoring"))
    body: dict[str, Any] = httpx.get(f"{api}/submodels/{sm}/$value", timeout=5).json()
    condition: dict[str, Any] = body.get("ConditionMonitoring", body)
    return condition


def _in_chromium(origin: str) -> dict[str, Any]:
    """What a person sees: live values changing on the asset page, the fault on the alarms page."""
    assert sync_api is not None and CHROMIUM is not None
    seen: dict[str, Any] = {"errors": [], "foreign": []}
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = chromium.new_page()
        page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: None if r.url.startswith((origin, "data:")) else seen["foreign"].append(r.url))
        page.goto(f"{origin}/ui/asset?id={ids.b64url_encode('urn:twinedge:aas:press-02')}")
        page.wait_for_selector("#conn[data-connected='1']")
        cell = page.locator("tr[data-signal='RamPosition'] .v")
        first = cell.inner_text()
        sync_api.expect(cell).not_to_have_text(first, timeout=10_000)  # the ram moves: pushed by the server
        seen["health_on_page"] = page.locator("[data-cm-key=HealthIndex]").inner_text()
        page.screenshot(path=str(ARTEFACTS / "asset-live-fault.png"), full_page=True)
        page.goto(f"{origin}/ui/alarms")
        seen["alarms"] = page.locator("body").inner_text()
        page.screenshot(path=str(ARTEFACTS / "alarms-live-fault.png"), full_page=True)
        chromium.close()
    return seen


def _alarm_level(healthy: dict[str, Any]) -> float:
    return max(1.0, 10 * float(healthy["AnomalyScore"]))


def test_injected_fault_shows_as_anomaly_health_drop_and_alarm(tmp_path: Path) -> None:
    spec = load_spec(SPECS_DIR / "hydraulic-press.yaml")
    twins = []
    for asset in ("press-01", "press-02"):
        twins.append(tmp_path / f"{asset}.json")
        save(AasPackage(build_twin(spec, asset)), twins[-1])
    store_path = tmp_path / "timeseries.db"
    with run_server(ServerConfig(data_dir=tmp_path / "server", load=twins, timeseries=store_path)) as server:
        observed: dict[str, Any] = {}

        async def scenario() -> LiveStats:
            # 10 model seconds per wall second: each 1 s cycle window holds about one whole stroke (~9 s)
            line = default_config(presses=2, seed=7, rate_hz=20).model_copy(update={"time_scale": 10.0})
            simulator = Simulator(line)
            await simulator.start()
            config = agent_config(simulator.config, {"Press1": "opcua", "Press2": "modbus"}) | {
                "sinks": [{"type": "twin", "url": server.base}, {"type": "timeseries", "path": str(store_path)}],
                "buffer": {"path": str(tmp_path / "buffer.db")}, "metrics": {"enabled": False},
                "flush_interval": 0.1}
            (tmp_path / "agent.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
            agent = build_agent(parse_config(config, "agent.yaml"), {}, "agent.yaml")
            history = SqliteTimeSeries(store_path)
            await history.open()
            stop_sim, stop_agent, stop_live = asyncio.Event(), asyncio.Event(), asyncio.Event()
            tasks = [asyncio.create_task(simulator.run(stop_sim)), asyncio.create_task(agent.run(stop_agent))]
            live = LiveConfig(api=server.base, store=store_path, assets=["press-01", "press-02"],
                              cycle_seconds=CYCLE, train_cycles=TRAIN, far=0.002, lag_seconds=0.5)
            stats = LiveStats()
            live_task = asyncio.create_task(run_live(live, history, stop_live, stats))
            try:
                for _ in range(int(4 * TRAIN / CYCLE)):  # learning the healthy line
                    assert not live_task.done(), live_task
                    if len(stats.trained) == 2:
                        break
                    await asyncio.sleep(0.5)
                assert len(stats.trained) == 2, stats
                await asyncio.sleep(4 * CYCLE)
                observed["healthy"] = await asyncio.to_thread(_condition, server.base, "press-02")
                simulator.inject("Press2", "pump", 1.0)  # severe internal leakage, at once
                observed["fault_at"] = dt.datetime.now(dt.UTC)
                for _ in range(40):
                    await asyncio.sleep(CYCLE)
                    faulty = await asyncio.to_thread(_condition, server.base, "press-02")
                    if float(faulty.get("AnomalyScore") or 0) > _alarm_level(observed["healthy"]):
                        break
                observed["faulty"] = faulty
                observed["alarms_page"] = (await asyncio.to_thread(
                    httpx.get, server.base.replace("/api/v3.0", "/ui/alarms"), timeout=10)).text
                if CHROMIUM is not None and sync_api is not None:  # the dashboard, while the line streams
                    observed["browser"] = await asyncio.to_thread(_in_chromium, server.base.replace("/api/v3.0", ""))
            finally:
                stop_live.set()
                await live_task
                await history.close()
                await agent.stop_sources()
                stop_sim.set()
                await tasks[0]
                await simulator.stop()
                stop_agent.set()
                await tasks[1]
            return stats

        stats = asyncio.run(scenario())

    healthy, faulty = observed["healthy"], observed["faulty"]
    # A model learnt from 20 short cycles can score a healthy cycle near the limit now and then, so the
    # fault must stand out far above that, not just cross 1.
    assert float(faulty["AnomalyScore"]) > _alarm_level(healthy), (healthy, faulty)
    assert float(faulty["HealthIndex"]) < float(healthy["HealthIndex"]), (healthy, faulty)
    assert faulty["SpcState"] in ("in-control", "out-of-control")
    assert stats.scored > 0 and stats.alarms >= 1
    assert "press-02" in observed["alarms_page"]
    if "browser" in observed:
        seen = observed["browser"]
        assert seen["errors"] == [] and seen["foreign"] == [], seen
        assert float(seen["health_on_page"]) < float(healthy["HealthIndex"]), (seen, healthy)
        assert "press-02" in seen["alarms"] and "Anomaly score" in seen["alarms"], seen["alarms"]
