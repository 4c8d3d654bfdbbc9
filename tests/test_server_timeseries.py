"""History endpoint: what a Time Series Data LinkedSegment points at returns what the store holds."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from aas_models.equipment import SPECS_DIR, load_spec
from aas_models.files import save
from aas_models.package import AasPackage
from aas_models.timeseries.base import Quality, Sample, SeriesKey
from aas_models.timeseries.sqlite import SqliteTimeSeries
from aas_models.twin import build_twin
from tests.server import run_server
from twin_server.config import ServerConfig

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _linked_segments(twin_file: Path, base: str) -> dict[str, str]:
    """idShortPath -> URL, read from the twin's TimeSeries submodel as any client would."""
    response = requests.get(f"{base}/submodels", params={"idShort": "TimeSeries"}, timeout=10)
    (submodel,) = response.json()["result"]
    segments = next(e for e in submodel["submodelElements"] if e["idShort"] == "Segments")["value"]
    urls = {}
    for segment in segments:
        fields = {e["idShort"]: e.get("value") for e in segment["value"]}
        path = fields["Query"].split("idShortPath=")[1]
        urls[path] = f"{fields['Endpoint']}?{fields['Query']}"
    return urls


def test_linked_segment_serves_the_stored_history(tmp_path: Path) -> None:
    twin_file = tmp_path / "press.json"
    endpoint_base = "http://127.0.0.1:{port}/api/v3.0/timeseries"
    config = ServerConfig(data_dir=tmp_path, load=[twin_file])

    async def fill(key: SeriesKey) -> None:
        store = SqliteTimeSeries(tmp_path / "timeseries.db")
        await store.open()
        await store.write([Sample(key, T0 + timedelta(seconds=i), 40.0 + i,
                                  Quality.BAD if i == 5 else Quality.GOOD) for i in range(120)])
        await store.close()

    environment = build_twin(load_spec(SPECS_DIR / "hydraulic-press.yaml"), "press-01",
                             timeseries_endpoint=endpoint_base)
    save(AasPackage(environment), twin_file)
    operational = next(sm.id for sm in environment.submodels or [] if sm.id_short == "OperationalData")
    asyncio.run(fill(SeriesKey(operational, "OilTemperature.Value")))

    with run_server(config) as server:
        urls = _linked_segments(twin_file, server.base)
        port = server.base.split(":")[2].split("/")[0]
        url = urls["OilTemperature.Value"].replace("{port}", port)
        body = requests.get(url, timeout=10).json()
        assert body["idShortPath"] == "OilTemperature.Value" and body["submodelId"] == operational
        assert len(body["points"]) == 120
        assert body["points"][0] == {"time": "2026-11-25T08:00:00Z", "value": 40.0, "quality": "good"}
        assert body["points"][5]["quality"] == "bad"

        window = requests.get(url, params={"from": "2026-11-25T08:00:10Z", "to": "2026-11-25T08:00:20Z"},
                              timeout=10).json()["points"]
        assert [p["value"] for p in window] == [50.0 + i for i in range(10)]
        minutes = requests.get(url, params={"interval": 60}, timeout=10).json()["points"]
        assert [p["count"] for p in minutes] == [60, 60]
        assert minutes[1]["min"] == 100.0 and minutes[1]["max"] == 159.0

        bad = requests.get(url, params={"from": "yesterday"}, timeout=10)
        assert bad.status_code == 400 and "xs:dateTime" in bad.json()["messages"][0]["text"]
        empty = requests.get(url.replace("OilTemperature", "Nothing"), timeout=10).json()
        assert empty["points"] == []


def test_changes_stream_as_server_sent_events(tmp_path: Path) -> None:
    """A dashboard's view: PATCH a value, the event stream carries it with its path and value."""
    import http.client
    import json

    from tests.server import REPRESENTATIVE

    submodel = "urn:example:sm:press-01:AllKinds"
    encoded = base64.urlsafe_b64encode(submodel.encode()).decode().rstrip("=")
    with run_server(ServerConfig(data_dir=tmp_path, load=[REPRESENTATIVE])) as server:
        host, port = server.base.split("//")[1].split("/")[0].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", f"/api/v3.0/events?kind=submodels&id={encoded}")
        stream = conn.getresponse()
        assert stream.status == 200 and stream.getheader("content-type", "").startswith("text/event-stream")
        patched = requests.patch(f"{server.base}/submodels/{encoded}/submodel-elements/Temperature/$value",
                                 json=55.5, timeout=10)
        assert patched.status_code == 204
        event = None
        while event is None:
            line = stream.fp.readline().decode()
            if line.startswith("data: "):
                event = json.loads(line[6:])
        assert event["type"] == "value-changed" and event["id"] == submodel
        assert event["idShortPath"] == "Temperature" and event["value"] == 55.5
        conn.close()
