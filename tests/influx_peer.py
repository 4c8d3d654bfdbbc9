"""InfluxDB peers for tests: a real InfluxDB 1.x server, and a recording stand-in for the 2.x write API.

* :class:`InfluxDB1` runs Debian's ``influxd`` (``apt-get install influxdb``, version 1.6.7 on Debian 12)
  with its config, data and log in a temporary folder, HTTP on a free loopback port, and reporting, UDP,
  Graphite, collectd, OpenTSDB, continuous queries and the monitor's self-storage switched off. ``stop()``
  then ``start()`` restarts it on the same port with its data. Fixture: ``influxdb1`` (module scope; skips
  with the install command when the binary is absent)::

      from tests.influx_peer import InfluxDB1, influxdb1_fixture  # noqa: F401

* :class:`RecordingInfluxServer` is a small ``http.server`` on loopback that records every request
  (method, path, query, headers, body with gzip undone) and answers with a status the test sets
  (default 204). No InfluxDB 2/3 server can be installed here, so the 2.x sink is checked against
  what it sends. Fixture: ``influx_recorder``.
"""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tests.mqtt_broker import free_port

__all__ = [
    "InfluxDB1",
    "RecordedRequest",
    "RecordingInfluxServer",
    "influx_recorder_fixture",
    "influxd_binary",
    "influxdb1_fixture",
]


def influxd_binary() -> str | None:
    return shutil.which("influxd") or shutil.which("influxd", path="/usr/bin:/usr/sbin:/usr/local/bin")


class InfluxDB1:
    """One ``influxd`` 1.x on 127.0.0.1:``port`` with everything in ``workdir``."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path | None = None, *, binary: str | None = None) -> None:
        exe = binary or influxd_binary()
        if exe is None:
            raise FileNotFoundError("influxd is not installed (apt-get install influxdb)")
        self.binary = exe
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="influxdb-")
            workdir = Path(self._tmp.name)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.rpc_port = free_port()
        self.config_file = self.workdir / "influxdb.conf"
        self.log_file = self.workdir / "influxd.log"
        self._proc: subprocess.Popen[bytes] | None = None
        d = self.workdir
        self.config_file.write_text(f"""\
reporting-enabled = false
bind-address = "{self.host}:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
  logging-enabled = false
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "{self.host}:{self.port}"
  log-enabled = false
  auth-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
""")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=1) as resp:
                return bool(resp.status == 204)
        except OSError:
            return False

    def start(self, timeout: float = 20.0) -> None:
        if self.running:
            return
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen([self.binary, "run", "-config", str(self.config_file)], stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"influxd exited with {self._proc.returncode}:\n{self.log()[-3000:]}")
            if self._ping():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"influxd did not answer /ping on port {self.port} within {timeout} s:\n"
                           f"{self.log()[-3000:]}")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> InfluxDB1:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- HTTP helpers for checks ----------------------------------------------------------------
    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run InfluxQL through ``/query`` (POST, epoch=ns) and return the decoded JSON."""
        params = {"q": q, "epoch": "ns"}
        if db is not None:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(urllib.request.Request(self.url + "/query", data=data), timeout=10) as resp:
            result: dict[str, Any] = json.loads(resp.read())
        return result

    def rows(self, q: str, db: str) -> list[dict[str, Any]]:
        """The rows of the first series of the first result as dicts (column -> value)."""
        out: list[dict[str, Any]] = []
        for series in self.query(q, db)["results"][0].get("series", []):
            cols = series["columns"]
            tags = series.get("tags", {})
            out.extend({**tags, **dict(zip(cols, values, strict=True))} for values in series["values"])
        return out

    def write_raw(self, db: str, body: bytes) -> tuple[int, bytes]:
        req = urllib.request.Request(f"{self.url}/write?db={urllib.parse.quote(db)}&precision=ns", data=body)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


@pytest.fixture(name="influxdb1", scope="module")
def influxdb1_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """A running InfluxDB 1.x on a free loopback port for the module (tests use their own databases)."""
    if influxd_binary() is None:
        pytest.skip("the influxd binary is absent: install Debian's InfluxDB 1.x with `apt-get install influxdb`")
    server = InfluxDB1(tmp_path_factory.mktemp("influxdb"))
    server.start()
    try:
        yield server
    finally:
        server.close()


# ---------------------------------------------------------------------------------------------
# Recording stand-in
# ---------------------------------------------------------------------------------------------

@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    #: The body as sent (possibly gzip-compressed).
    raw: bytes
    #: The body with any gzip Content-Encoding undone.
    body: bytes

    @property
    def lines(self) -> list[str]:
        return [line for line in self.body.decode("utf-8").split("\n") if line]

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class RecordingInfluxServer:
    """Records requests and answers ``status`` (with ``response_body``); see the module docstring."""

    status: int = 204
    response_body: bytes = b""
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
                parts = urllib.parse.urlsplit(self.path)
                recorder.requests.append(RecordedRequest(
                    self.command, parts.path, urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()}, raw, body))
                status = recorder.status
                payload = recorder.response_body
                self.send_response(status)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if payload:
                    self.wfile.write(payload)

            do_POST = _handle  # http.server's naming
            do_GET = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/write")]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(name="influx_recorder")
def influx_recorder_fixture() -> Iterator[RecordingInfluxServer]:
    server = RecordingInfluxServer()
    try:
        yield server
    finally:
        server.close()
