"""Dashboards: fleet page with 200 assets, and the asset page under 10 value updates per second.

Prints figures, asserts nothing. Needs Debian's chromium and the playwright package for the browser
figures (the server-side figures run without them).

    /work/venv/bin/python bench/ui_bench.py [--assets 200] [--rate 10] [--seconds 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aas_models.equipment import SPECS_DIR, load_spec
from aas_models.ids import b64url_encode
from aas_models.jsonio import dump_json
from aas_models.twin import build_twin
from tests.server import run_server
from twin_server.config import ServerConfig

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def fleet_file(folder: Path, count: int) -> Path:
    """One AAS environment with `count` press twins (concept descriptions once)."""
    spec = load_spec(SPECS_DIR / "hydraulic-press.yaml")
    merged: dict[str, list[object]] = {"assetAdministrationShells": [], "submodels": [], "conceptDescriptions": []}
    for i in range(count):
        env = json.loads(dump_json(build_twin(spec, f"press-{i:03d}"), pretty=False))
        env["assetAdministrationShells"][0]["assetInformation"]["specificAssetIds"] = [
            {"name": "line", "value": f"Line {i // 20 + 1}"}]
        merged["assetAdministrationShells"] += env["assetAdministrationShells"]
        merged["submodels"] += env["submodels"]
        if i == 0:
            merged["conceptDescriptions"] = env["conceptDescriptions"]
    path = folder / "fleet.json"
    path.write_text(json.dumps(merged), encoding="utf-8")
    return path


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        t = time.perf_counter()
        source = fleet_file(data, args.assets)
        print(f"built {args.assets} twins in {time.perf_counter() - t:.1f} s")
        with run_server(ServerConfig(data_dir=data, load=[source])) as srv:
            origin = srv.base.removesuffix("/api/v3.0")
            with httpx.Client() as client:
                for i in range(args.assets):
                    sm = b64url_encode(f"urn:twinedge:sm:press-{i:03d}:OperationalData:1.0")
                    client.patch(f"{srv.base}/submodels/{sm}/$value", json={
                        s: {"Value": v, "Quality": "good", "Timestamp": now()}
                        for s, v in (("OilTemperature", 45.0 + i % 7), ("CycleCounter", 1000 + i))})
                client.get(origin + "/ui")
                times = []
                for _ in range(5):
                    t = time.perf_counter()
                    r = client.get(origin + "/ui")
                    times.append(time.perf_counter() - t)
                    assert r.status_code == 200
                print(f"fleet page, {args.assets} assets, server render + transfer: median "
                      f"{1000 * statistics.median(times):.0f} ms, max {1000 * max(times):.0f} ms "
                      f"({len(r.content) / 1024:.0f} KiB)")
            browser_figures(srv.base, origin, args)


def browser_figures(base: str, origin: str, args: argparse.Namespace) -> None:
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        print("browser figures skipped: needs Debian's chromium and `pip install playwright`")
        return
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page()
        loads = []
        for _ in range(3):
            t = time.perf_counter()
            page.goto(origin + "/ui", wait_until="load")
            loads.append(time.perf_counter() - t)
        print(f"fleet page, {args.assets} assets, in Chromium until 'load': median "
              f"{1000 * statistics.median(loads):.0f} ms")

        page.goto(origin + "/ui/asset?id=" + b64url_encode("urn:twinedge:aas:press-000"), wait_until="load")
        page.wait_for_selector("#conn[data-connected='1']")
        page.evaluate("""() => {
            window.__seen = [];
            const cell = document.querySelector("tr[data-signal='OilTemperature'] .v");
            new MutationObserver(() => window.__seen.push([cell.textContent, Date.now()]))
                .observe(cell, {childList: true, characterData: true, subtree: true});
        }""")
        sm = b64url_encode("urn:twinedge:sm:press-000:OperationalData:1.0")
        sent: dict[str, float] = {}
        period = 1.0 / args.rate
        count = int(args.rate * args.seconds)
        with httpx.Client() as client:
            start = time.perf_counter()
            for i in range(count):
                value = 100.0 + i
                key = str(int(value))
                sent[key] = time.time() * 1000
                client.patch(f"{base}/submodels/{sm}/$value",
                             json={"OilTemperature": {"Value": value, "Quality": "good", "Timestamp": now()}})
                page.wait_for_timeout(0)  # let the browser's event loop run between writes
                delay = start + (i + 1) * period - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            elapsed = time.perf_counter() - start
        page.wait_for_timeout(1000)
        seen = page.evaluate("() => window.__seen")
        received = page.evaluate("() => Number(document.body.getAttribute('data-updates') || 0)")
        lat = [ms - sent[text] for text, ms in seen if text in sent]
        print(f"asset page: {count} updates sent in {elapsed:.1f} s ({count / elapsed:.1f}/s); the page received "
              f"{received} change events and painted {len(lat)} distinct values (frames coalesce updates)")
        if lat:
            lat.sort()
            print(f"  write -> on screen latency: median {statistics.median(lat):.0f} ms, "
                  f"p95 {lat[int(0.95 * (len(lat) - 1))]:.0f} ms, max {lat[-1]:.0f} ms")
        shown = page.locator("tr[data-signal='OilTemperature'] .v").inner_text()
        print(f"  last value on screen: {shown} (last sent: {100 + count - 1})")
        browser.close()


if __name__ == "__main__":
    main()
