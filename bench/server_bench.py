#!/usr/bin/env python3
"""Load-test the TwinEdge twin server with wrk, next to the BaSyx Python SDK 1.2.1 HTTP server.

What it does, all on loopback (127.0.0.1), with every server started and stopped by this script:

1. Builds the demo twin (press-01, as ``twinedge demo`` builds it), starts ``twinedge server --load
   press-01.json`` (one uvicorn process) and adds 150 generated shells and a submodel of 50 xs:double
   properties. The cases run again on ``twinedge server --runtime granian`` (one granian worker) when
   granian is installed (``--runtimes``), figures side by side.
2. Runs ``wrk`` from a second process against each case at 1 connection (``-t1 -c1``) and at 16
   (``-t2 -c16``), ``--duration`` seconds each after ``--warmup`` seconds of warm-up. A generated Lua
   script counts non-2xx responses, makes every PATCH body different (a real write each time) and
   prints the latency percentiles as one JSON line from ``done()``. The server's CPU time per request
   is read from /proc.
3. Does the same against basyx-python-sdk 1.2.1's own server (``basyx.aas.adapter.http.WSGIApp``, the
   last release that ships one; in-memory object store) loaded with the same data. It lives in its
   own virtualenv, made on demand under ~/.cache/twinedge-bench, and runs as BaSyx's Docker image runs
   it: uWSGI with one process and no threads ("object stores aren't thread-safe"); ``--basyx-server
   waitress`` uses waitress with one worker thread instead. Cases BaSyx answers with an error are
   reported as unsupported; for the PATCH cases the nearest call it has (PUT of the element or of
   the submodel) is measured and labelled as such. All servers run side by side and each case runs on
   them one right after the other, so changes in the machine's other load hit them alike.
4. Durable writes: PATCH is measured with ``--durability normal`` and ``--durability fsync``. After the
   runs it reads the values back, checks that each is one the load generator sent (and that the 50
   values of the last bulk write all come from one request), kills the server with SIGKILL, starts
   it again on the same data and checks the values are still there.
5. ``--scale N`` also stores N submodels (copies of OperationalData, written through SqliteStorage
   with the repository's index) and measures GET by id at N against 100 stored, a page of 100 at the
   start and at the end of the list, start-up time and resident memory.

The figures are printed as a table with the goals of the twin-server issue marked met or not met
(``--json``: one JSON object). Progress goes to stderr. Timings are figures to read, not assertions.

Run from the repository root, e.g.::

    python bench/server_bench.py                         # all cases, 5 s each, with BaSyx
    python bench/server_bench.py --duration 2 --no-basyx
    python bench/server_bench.py --cases get-submodel,patch-value --json
    python bench/server_bench.py --scale 100000 --scale-only

Needs ``wrk`` (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import http.client
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

API = "/api/v3.0"
HOST = "127.0.0.1"
BENCH50_ID = "urn:twinedge:bench:sm:fifty-doubles"
PROPERTY_PATH = "OilTemperature.Value"
GENERATED_SHELLS = 150
BASYX_VERSION = "1.2.1"
#: What the BaSyx virtualenv needs (see BASYX_INSTALL).
BASYX_REQUIREMENTS = (f"basyx-python-sdk=={BASYX_VERSION}", "pyuwsgi==2.0.30.post1", "waitress==3.0.2")
#: Beside the repository by default (never the project's own virtualenv); $TWINEDGE_BASYX_VENV or
#: --basyx-venv point elsewhere.
DEFAULT_BASYX_VENV = Path(os.environ.get("TWINEDGE_BASYX_VENV")
                          or Path(__file__).resolve().parent.parent.parent / "basyx12-venv")
BASYX_INSTALL = ("python3 -m venv {venv} && {venv}/bin/pip install "
                 + " ".join(f"'{r}'" for r in BASYX_REQUIREMENTS))
TWINEDGE_DEPS = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "granian", "orjson", "pydantic",
                 "aas-core3.0")
#: HTTP servers `twinedge server --runtime` runs on.
RUNTIMES = ("uvicorn", "granian")
#: A value slot in a body template; slot i is filled with "<base>.<i:02d>" by the Lua script.
SLOT = re.compile(r"@@V(\d\d)@@")
#: Goals of the twin-server issue.
GOAL_GET_RATIO = 5.0
GOAL_WRITES = 3000.0
GOAL_P99_MS = 10.0
GOAL_SCALE_GET_RATIO = 2.0
GOAL_SCALE_PAGE_RATIO = 1.25  # "the same anywhere": within 25 %
GOAL_STARTUP_S = 10.0
GOAL_RSS_MB = 2048.0


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """Something the benchmark cannot go on without (a server that does not start, no wrk, ...)."""


def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def http_call(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 60.0) \
        -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json", "Accept": "application/json"} if body is not None \
            else {"Accept": "application/json"}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def reason(status: int, body: bytes) -> str:
    """HTTP status and the first message of an AAS error body (or the start of the body)."""
    text = short(body, 100)
    with contextlib.suppress(ValueError, TypeError, KeyError, IndexError, AttributeError):
        text = str(orjson.loads(body)["messages"][0]["text"])
    return f"HTTP {status} {text}"


def short(body: bytes, limit: int = 160) -> str:
    text = body.decode("utf-8", "replace").replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------------------------------
# Server processes
# --------------------------------------------------------------------------------------------------


def proc_status(pid: int, field: str) -> int | None:
    """A kB figure from /proc/PID/status (VmRSS, VmHWM), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (granian serves from a forked worker process)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def tree_sum(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


class Server:
    """One server subprocess on loopback, in its own session so Ctrl-C reaches only this script."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path, ready_path: str,
                 env: dict[str, str] | None = None, stop_signal: int = signal.SIGTERM, runtime: str = "") -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.log_path = log_path
        self.ready_path = ready_path
        self.env = env
        self.stop_signal = stop_signal
        self.runtime = runtime
        self.proc: subprocess.Popen[bytes] | None = None
        self._pgid: int | None = None
        self.startup_s: float | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError(f"{self.name} is not running")
        return self.proc.pid

    def start(self, timeout: float = 120.0) -> float:
        """Start and wait for the first successful request; returns the seconds that took."""
        log = self.log_path.open("ab")
        started = time.perf_counter()
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=self.env, start_new_session=True)
            self._pgid = self.proc.pid
        finally:
            log.close()
        deadline = started + timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode} while starting; "
                                 f"its log ({self.log_path}):\n{self.log_tail()}")
            try:
                status, _ = http_call(self.port, "GET", self.ready_path, timeout=5)
                if 200 <= status < 300:
                    break
            except OSError:
                pass
            if time.perf_counter() > deadline:
                raise BenchError(f"{self.name} did not answer within {timeout:.0f} s; log:\n{self.log_tail()}")
            time.sleep(0.01)
        self.startup_s = time.perf_counter() - started
        return self.startup_s

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, sig: int | None = None) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        sig = self.stop_signal if sig is None else sig
        if sig == signal.SIGKILL:
            self._kill_group()
        else:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._kill_group()
            proc.wait(timeout=15)
        self._kill_group()  # a worker process left behind would hold the port

    def _kill_group(self) -> None:
        """SIGKILL to the server's whole process group (its own session: never this script)."""
        if self._pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pgid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing gets flushed or closed."""
        self.stop(signal.SIGKILL)

    def rss(self) -> int | None:
        """VmRSS summed over the server's processes (pages a forked worker shares count twice)."""
        total = tree_sum([proc_status(p, "VmRSS") for p in process_tree(self.pid)])
        return None if total is None else int(total)

    def hwm(self) -> int | None:
        total = tree_sum([proc_status(p, "VmHWM") for p in process_tree(self.pid)])
        return None if total is None else int(total)

    def cpu(self) -> float | None:
        return tree_sum([proc_cpu_seconds(p) for p in process_tree(self.pid)])


def twinedge_server(workdir: Path, name: str, data_dir: Path, load: Path | None, durability: str,
                    runtime: str = "uvicorn") -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "twinedge", "server", "--data-dir", str(data_dir), "--port", str(port),
            "--durability", durability, "--runtime", runtime]
    if load is not None:
        argv += ["--load", str(load)]
    return Server(name, argv, port, workdir / f"{name}.log", f"{API}/shells?limit=1", runtime=runtime)


BASYX_LAUNCHER = '''\
"""Generated by bench/server_bench.py: basyx-python-sdk's WSGIApp over an in-memory store."""
import os
import sys

from basyx.aas.adapter import aasx
from basyx.aas.adapter.http import WSGIApp
from basyx.aas.adapter.json import read_aas_json_file

with open(os.environ["BENCH_AAS_FILE"], encoding="utf-8") as f:
    store = read_aas_json_file(f, failsafe=False)
application = WSGIApp(store, aasx.DictSupplementaryFileContainer())

if __name__ == "__main__":
    import waitress

    waitress.serve(application, host=sys.argv[1], port=int(sys.argv[2]), threads=1, _quiet=True)
'''


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def basyx_missing(venv: Path, kind: str) -> str | None:
    """Why the BaSyx baseline cannot run from `venv`, or None. The bench never installs it (no network at
    run time, and never into the project's own virtualenv): make it once with BASYX_INSTALL."""
    if not venv_python(venv).exists():
        return f"no virtualenv at {venv}"
    modules = "basyx.aas.adapter.http, " + ("pyuwsgi" if kind == "uwsgi" else "waitress")
    result = subprocess.run([str(venv_python(venv)), "-c", f"import {modules}"], capture_output=True, text=True)
    if result.returncode != 0:
        return f"{venv} cannot import {modules}: {result.stderr.strip().splitlines()[-1:]}"
    version = package_version(venv, "basyx-python-sdk")
    if version != BASYX_VERSION:
        return f"{venv} has basyx-python-sdk {version}, not {BASYX_VERSION}"
    return None


def basyx_server(workdir: Path, venv: Path, data_file: Path, kind: str) -> Server:
    launcher = workdir / "basyx_app.py"
    launcher.write_text(BASYX_LAUNCHER)
    port = free_port()
    env = {**os.environ, "BENCH_AAS_FILE": str(data_file), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    if kind == "uwsgi":
        # As BaSyx's Docker image runs it (UWSGI_PROCESSES=1, no threads), minus the nginx in front.
        argv = [str(venv / "bin" / "uwsgi"), "--http-socket", f"{HOST}:{port}", "--wsgi-file", str(launcher),
                "--processes", "1", "--need-app", "--disable-logging", "--die-on-term", "--listen", "128",
                "--buffer-size", "32768",
                # --http-socket closes every connection but answers HTTP/1.1 without saying so, which wrk
                # counts as a read error and a lost keep-alive; say it.
                "--add-header", "Connection: close"]
        return Server("basyx", argv, port, workdir / "basyx.log", f"{API}/shells?limit=1", env=env,
                      stop_signal=signal.SIGINT)
    argv = [str(venv_python(venv)), str(launcher), HOST, str(port)]
    return Server("basyx", argv, port, workdir / "basyx.log", f"{API}/shells?limit=1", env=env)


def package_version(venv: Path, name: str) -> str:
    result = subprocess.run([str(venv_python(venv)), "-c",
                             f"import importlib.metadata as m; print(m.version({name!r}))"],
                            capture_output=True, text=True)
    return result.stdout.strip() or "?"


# --------------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class WrkResult:
    connections: int
    threads: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    max_ms: float
    non2xx: int
    first_non2xx: int
    socket_errors: dict[str, int]
    #: Requests each wrk thread generated (for checking which PATCH value was stored last).
    counters: list[int]
    run_id: int
    server_cpu_us_per_request: float | None


def lua_long_string(text: str) -> str:
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def wrk_script(method: str, pieces: list[str] | None, random_paths: bool) -> str:
    """The Lua script: counts non-2xx, fills body slots, picks paths, prints one WRKJSON line in done()."""
    lines = [f'wrk.method = "{method}"']
    if pieces is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append("local pieces = {" + ", ".join(lua_long_string(p) for p in pieces) + "}")
    lines.append("""
threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  counter = 0
  non2xx = 0
  first_non2xx = 0
  run_id = tonumber(args[1]) or 0
  math.randomseed(tid * 7919 + run_id)
  paths = nil
  if args[2] ~= nil and args[2] ~= "" then
    paths = {}
    for line in io.lines(args[2]) do
      if line ~= "" then paths[#paths + 1] = line end
    end
  end
end
""")
    if pieces is not None or random_paths:
        body_code = "nil"
        if pieces is not None:
            lines.append("""
local function body()
  local base = string.format("%d", run_id * 100000000 + tid * 10000000 + counter)
  local out = { pieces[1] }
  for i = 2, #pieces do
    out[#out + 1] = base .. string.format(".%02d", i - 1)
    out[#out + 1] = pieces[i]
  end
  return table.concat(out)
end
""")
            body_code = "body()"
        path_code = "paths[math.random(#paths)]" if random_paths else "nil"
        lines.append(f"""
function request()
  counter = counter + 1
  return wrk.format(nil, {path_code}, nil, {body_code})
end
""")
    lines.append(r"""
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_non2xx == 0 then first_non2xx = status end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, 0
  local counts = {}
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    local f = t:get("first_non2xx")
    if first == 0 and f ~= 0 then first = f end
    counts[#counts + 1] = string.format("%d", t:get("counter"))
  end
  local e = summary.errors
  io.write(string.format(
    '\nWRKJSON {"requests":%d,"duration_us":%d,"non2xx":%d,"first_non2xx":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"max":%.1f,"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f},"counters":[%s]}\n',
    summary.requests, summary.duration, bad, first,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), table.concat(counts, ",")))
end
""")
    return "\n".join(lines)


PIN_MODES = ("none", "shared", "split")


def pin(mode: str) -> tuple[set[int], set[int]] | None:
    """Pin this process (and so the servers it starts) for `--pin`; the CPUs of the servers and of wrk."""
    if mode == "none":
        return None
    cpus = sorted(os.sched_getaffinity(0))
    server = {cpus[0]}
    client = server if mode == "shared" else set(cpus[1:])
    if not client:
        raise BenchError("--pin split needs at least two usable CPUs")
    os.sched_setaffinity(0, server)
    return server, client


class Wrk:
    def __init__(self, workdir: Path, duration: int, warmup: int, timeout_s: float,
                 cpus: set[int] | None = None) -> None:
        binary = shutil.which("wrk")
        if binary is None:
            raise BenchError("wrk is not installed (Debian: apt-get install wrk)")
        self.binary = binary
        self.workdir = workdir
        self.duration = duration
        self.warmup = warmup
        self.timeout_s = timeout_s
        self.runs = 0
        self.scripts = 0
        #: CPUs wrk runs on (--pin), else those of this process.
        self.cpus = cpus

    def version(self) -> str:
        out = subprocess.run([self.binary, "-v"], capture_output=True, text=True)
        first = (out.stdout or out.stderr).strip().splitlines()
        return first[0].split(" Copyright")[0] if first else "?"

    def script(self, method: str, pieces: list[str] | None, random_paths: bool = False) -> Path:
        """A Lua script; with `random_paths`, each request takes a random line of the run's paths file."""
        self.scripts += 1
        path = self.workdir / f"case{self.scripts}.lua"
        path.write_text(wrk_script(method, pieces, random_paths))
        return path

    def run(self, server: Server, path: str, script: Path, connections: int,
            paths_file: Path | None = None, duration: int | None = None) -> WrkResult:
        threads = 1 if connections == 1 else min(2, connections)
        if self.warmup > 0:
            self._invoke(server, path, script, connections, threads, self.warmup, paths_file)
        cpu_before = server.cpu()
        result = self._invoke(server, path, script, connections, threads, duration or self.duration, paths_file)
        cpu_after = server.cpu()
        if cpu_before is not None and cpu_after is not None and result.requests:
            result.server_cpu_us_per_request = (cpu_after - cpu_before) / result.requests * 1e6
        return result

    def _invoke(self, server: Server, path: str, script: Path, connections: int, threads: int,
                seconds: int, paths_file: Path | None) -> WrkResult:
        self.runs += 1
        run_id = self.runs
        argv = [self.binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={self.timeout_s:g}s",
                "-s", str(script), f"http://{HOST}:{server.port}{path}", "--", str(run_id),
                str(paths_file) if paths_file else ""]
        cpus = self.cpus
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + self.timeout_s + 60,
                             preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus))
        data: dict[str, Any] | None = None
        for line in out.stdout.splitlines():
            if line.startswith("WRKJSON "):
                try:
                    data = json.loads(line[len("WRKJSON "):])
                except json.JSONDecodeError:
                    data = None
        if out.returncode != 0 or data is None:
            raise BenchError(f"wrk failed (exit {out.returncode}): {' '.join(argv)}\n{out.stdout[-1500:]}"
                             f"\n{out.stderr[-1500:]}")
        lat = data["latency_us"]
        duration_s = data["duration_us"] / 1e6
        return WrkResult(
            connections=connections, threads=threads, duration_s=duration_s, requests=data["requests"],
            rps=data["requests"] / duration_s if duration_s else 0.0,
            p50_ms=lat["p50"] / 1000, p90_ms=lat["p90"] / 1000, p99_ms=lat["p99"] / 1000,
            p999_ms=lat["p999"] / 1000, mean_ms=lat["mean"] / 1000, max_ms=lat["max"] / 1000,
            non2xx=data["non2xx"], first_non2xx=data["first_non2xx"],
            socket_errors={k: v for k, v in data["errors"].items() if k != "status"},
            counters=[int(c) for c in data["counters"]], run_id=run_id, server_cpu_us_per_request=None)


# --------------------------------------------------------------------------------------------------
# Data and cases
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Data:
    demo_file: Path
    #: The demo environment plus the generated shells and the 50-property submodel (for BaSyx).
    full_file: Path
    operational: dict[str, Any]
    property_element: dict[str, Any]
    shells: list[dict[str, Any]]
    fifty: dict[str, Any]


def make_data(workdir: Path) -> Data:
    from aas_models.equipment import SPECS_DIR, load_spec
    from aas_models.files import save
    from aas_models.package import AasPackage
    from aas_models.twin import build_twin

    # The twin `twinedge demo` serves for press-01, built the same way (without running the demo).
    environment = build_twin(load_spec(SPECS_DIR / "hydraulic-press.yaml"), "press-01", serial_number="SN-press-01")
    demo_file = workdir / "press-01.json"
    save(AasPackage(environment), demo_file)
    env = json.loads(demo_file.read_text(encoding="utf-8"))
    operational = next(s for s in env["submodels"] if s.get("idShort") == "OperationalData")
    parent = next(e for e in operational["submodelElements"] if e.get("idShort") == PROPERTY_PATH.split(".")[0])
    element = next(e for e in parent["value"] if e.get("idShort") == PROPERTY_PATH.split(".")[1])
    fifty = {
        "modelType": "Submodel", "id": BENCH50_ID, "idShort": "Bench50Doubles", "kind": "Instance",
        "submodelElements": [{"modelType": "Property", "idShort": f"P{i:02d}", "valueType": "xs:double",
                              "value": "0"} for i in range(1, 51)],
    }
    shells = [{
        "modelType": "AssetAdministrationShell", "id": f"urn:twinedge:bench:aas:{i:04d}",
        "idShort": f"BenchShell{i:04d}",
        "assetInformation": {"assetKind": "Instance", "globalAssetId": f"urn:twinedge:bench:asset:{i:04d}"},
        "submodels": [{"type": "ModelReference", "keys": [{"type": "Submodel", "value": BENCH50_ID}]}],
    } for i in range(GENERATED_SHELLS)]
    full = dict(env)
    full["assetAdministrationShells"] = [*env.get("assetAdministrationShells", []), *shells]
    full["submodels"] = [*env.get("submodels", []), fifty]
    full_file = workdir / "bench-environment.json"
    full_file.write_text(json.dumps(full), encoding="utf-8")
    return Data(demo_file, full_file, operational, element, shells, fifty)


def template(doc: Any) -> list[str]:
    """Split a JSON document with "@@Vnn@@" slot strings into literal pieces (slots in order 01, 02, ...).

    A slot that is a whole JSON string ("@@V01@@") becomes a number; one inside a string stays text.
    """
    text = re.sub(r'"(@@V\d\d@@)"', r"\1", json.dumps(doc, separators=(",", ":")))
    pieces = SLOT.split(text)
    literals, slots = pieces[0::2], [int(s) for s in pieces[1::2]]
    if slots != list(range(1, len(slots) + 1)):
        raise ValueError("slots must appear in order")
    return literals


def number_slot(i: int) -> str:
    return f"@@V{i:02d}@@"


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    #: Literal pieces of the body around its value slots, or None for no body.
    pieces: list[str] | None = None

    def sample_body(self) -> bytes | None:
        if self.pieces is None:
            return None
        out = [self.pieces[0]]
        for i, piece in enumerate(self.pieces[1:], start=1):
            out += [f"1.{i:02d}", piece]
        return "".join(out).encode()


@dataclasses.dataclass(frozen=True)
class Case:
    key: str
    title: str
    request: Request
    write: bool = False
    #: For servers that lack this call: the nearest one they have, and its label.
    equivalent: Request | None = None
    equivalent_title: str = ""


def make_cases(data: Data) -> list[Case]:
    op = f"{API}/submodels/{b64url(data.operational['id'])}"
    prop = f"{op}/submodel-elements/{PROPERTY_PATH}"
    fifty = f"{API}/submodels/{b64url(BENCH50_ID)}"
    put_element = {**data.property_element, "value": "@@V01@@"}
    put_fifty = {**data.fifty, "submodelElements": [
        {**e, "value": f"@@V{i:02d}@@"} for i, e in enumerate(data.fifty["submodelElements"], start=1)]}
    # In the element/submodel templates the value is an xs:double *string*: keep the quotes.
    put_element_pieces = SLOT.split(json.dumps(put_element, separators=(",", ":")))[0::2]
    put_fifty_pieces = SLOT.split(json.dumps(put_fifty, separators=(",", ":")))[0::2]
    return [
        Case("get-submodel", "GET submodel", Request("GET", op)),
        Case("get-property", "GET property", Request("GET", prop)),
        Case("get-value", "GET property $value", Request("GET", f"{prop}/$value")),
        Case("patch-value", "PATCH property $value", Request("PATCH", f"{prop}/$value", template(number_slot(1))),
             write=True, equivalent=Request("PUT", prop, put_element_pieces), equivalent_title="PUT element"),
        Case("patch-submodel-value", "PATCH submodel $value (50)",
             Request("PATCH", f"{fifty}/$value", template({f"P{i:02d}": number_slot(i) for i in range(1, 51)})),
             write=True, equivalent=Request("PUT", fifty, put_fifty_pieces), equivalent_title="PUT submodel"),
        Case("list-shells", "GET shells?limit=100", Request("GET", f"{API}/shells?limit=100")),
    ]


CASE_KEYS = ("get-submodel", "get-property", "get-value", "patch-value", "patch-submodel-value", "list-shells")


def post_bench_data(server: Server, data: Data) -> None:
    for shell in data.shells:
        status, body = http_call(server.port, "POST", f"{API}/shells", orjson.dumps(shell))
        if status != 201:
            raise BenchError(f"{server.name}: POST /shells answered {status}: {short(body)}")
    status, body = http_call(server.port, "POST", f"{API}/submodels", orjson.dumps(data.fifty))
    if status != 201:
        raise BenchError(f"{server.name}: POST /submodels answered {status}: {short(body)}")


# --------------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """One case against one server at one connection count."""

    status: str  # "ok", "unsupported", "failed"
    note: str = ""
    result: WrkResult | None = None
    #: For an unsupported case: the nearest equivalent call, measured.
    equivalent: WrkResult | None = None
    equivalent_title: str = ""


def probe(server: Server, request: Request) -> tuple[int, bytes]:
    return http_call(server.port, request.method, request.path, request.sample_body())


def measure_case(server: Server, wrk: Wrk, case: Case, connections: Sequence[int], *, allow_equivalent: bool) \
        -> dict[int, Outcome]:
    outcomes: dict[int, Outcome] = {}
    status, body = probe(server, case.request)
    if not 200 <= status < 300:
        note = reason(status, body)
        equivalent: dict[int, WrkResult] = {}
        if allow_equivalent and case.equivalent is not None:
            estatus, ebody = probe(server, case.equivalent)
            if 200 <= estatus < 300:
                script = wrk.script(case.equivalent.method, case.equivalent.pieces)
                for conns in connections:
                    progress(f"  {server.name}: {case.key} unsupported; {case.equivalent_title} at {conns} conn")
                    equivalent[conns] = wrk.run(server, case.equivalent.path, script, conns)
            else:
                note += f"; {case.equivalent_title} also failed: {reason(estatus, ebody)}"
        for conns in connections:
            outcomes[conns] = Outcome("unsupported" if allow_equivalent else "failed", note,
                                      equivalent=equivalent.get(conns), equivalent_title=case.equivalent_title)
        return outcomes
    script = wrk.script(case.request.method, case.request.pieces)
    for conns in connections:
        progress(f"  {server.name}: {case.key} at {conns} conn")
        result = wrk.run(server, case.request.path, script, conns)
        bad = result.non2xx + sum(result.socket_errors.values())
        outcomes[conns] = Outcome("ok" if bad == 0 else "failed",
                                  "" if bad == 0 else f"{result.non2xx} non-2xx (first {result.first_non2xx}), "
                                                      f"socket errors {result.socket_errors}", result)
    return outcomes


def ratio(mine: Outcome, theirs: Outcome | None) -> float | None:
    """TwinEdge's req/s over BaSyx's for one case and connection count; None where either did not run it."""
    if theirs is None or mine.result is None or theirs.result is None or not theirs.result.rps:
        return None
    return mine.result.rps / theirs.result.rps


def median_round(ratios: Sequence[float | None]) -> int:
    """The index of the round with the median ratio (the last round if none has one)."""
    known = sorted((r, k) for k, r in enumerate(ratios) if r is not None)
    return known[(len(known) - 1) // 2][1] if known else len(ratios) - 1


def decode_sent(value: Any) -> tuple[int, int, int, int] | None:
    """(run id, wrk thread, request counter, slot) from a value the Lua script sent, else None."""
    try:
        number = float(str(value))
    except ValueError:
        return None
    match = re.fullmatch(r"(\d+)\.(\d\d)", f"{number:.2f}") if math.isfinite(number) else None
    if match is None:
        return None
    base, slot = int(match.group(1)), int(match.group(2))
    return base // 100_000_000, (base // 10_000_000) % 10, base % 10_000_000, slot


def get_json(server: Server, path: str) -> Any:
    status, body = http_call(server.port, "GET", path)
    if status != 200:
        raise BenchError(f"{server.name}: GET {path} answered {status}: {short(body)}")
    return orjson.loads(body)


@dataclasses.dataclass
class DurabilityCheck:
    mode: str
    property_before: Any = None
    property_after: Any = None
    property_sent_by_last_run: bool | None = None
    fifty_one_request: bool | None = None
    fifty_sent_by_last_run: bool | None = None
    survived_kill: bool | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def sent_in(value: Any, run: WrkResult) -> bool:
    decoded = decode_sent(value)
    if decoded is None:
        return False
    run_id, tid, counter, _slot = decoded
    return run_id == run.run_id and 1 <= tid <= len(run.counters) and 1 <= counter <= run.counters[tid - 1]


def check_durability(server: Server, mode: str, outcomes: dict[str, dict[int, Outcome]], before: Any,
                     data: Data, restart: bool) -> DurabilityCheck:
    check = DurabilityCheck(mode, property_before=before)
    prop_path = f"{API}/submodels/{b64url(data.operational['id'])}/submodel-elements/{PROPERTY_PATH}/$value"
    fifty_path = f"{API}/submodels/{b64url(BENCH50_ID)}/$value"

    def last_run(key: str) -> WrkResult | None:
        runs = [o.result for o in outcomes.get(key, {}).values() if o.result is not None]
        return max(runs, key=lambda r: r.run_id) if runs else None

    def read_once() -> tuple[Any, Any]:
        prop = get_json(server, prop_path).get("Value") if "patch-value" in outcomes else None
        fifty = get_json(server, fifty_path) if "patch-submodel-value" in outcomes else None
        return prop, fifty

    def read() -> tuple[Any, Any]:
        """The values once they stay put: requests wrk had in flight when it stopped are still answered (and
        stored) after it exits, and one stored after the read would look like a write lost in the restart."""
        values = read_once()
        for _ in range(20):
            time.sleep(0.25)
            again = read_once()
            if again == values:
                break
            values = again
        return values

    prop, fifty = read()
    single = last_run("patch-value")
    if single is not None:
        check.property_after = prop
        check.property_sent_by_last_run = prop != before and sent_in(prop, single)
    bulk = last_run("patch-submodel-value")
    if bulk is not None and isinstance(fifty, dict):
        decoded = [decode_sent(fifty.get(f"P{i:02d}")) for i in range(1, 51)]
        bases = {(d[0], d[1], d[2]) for d in decoded if d is not None}
        slots_ok = all(d is not None and d[3] == i for i, d in enumerate(decoded, start=1))
        check.fifty_one_request = slots_ok and len(bases) == 1
        check.fifty_sent_by_last_run = sent_in(fifty.get("P01"), bulk)
    if restart:
        progress(f"  {server.name}: SIGKILL and restart on the same data")
        server.kill()
        # Without --load: it would replace the stored twin with the file's.
        if "--load" in server.argv:
            i = server.argv.index("--load")
            server.argv = server.argv[:i] + server.argv[i + 2:]
        server.start()
        prop2, fifty2 = read()
        check.survived_kill = prop2 == prop and fifty2 == fifty
        if not check.survived_kill:
            check.notes.append(f"after restart: property {prop2!r} (was {prop!r}); 50-property submodel "
                               f"{'same' if fifty2 == fifty else 'differs'}")
    return check


# --------------------------------------------------------------------------------------------------
# Scale mode
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ScaleResult:
    n: int
    doc_bytes: int
    #: Seconds to store the N submodels through SqliteStorage (one transaction each).
    insert_s: float
    db_bytes: int
    #: Process start to first answer, every try (the figure used is the median).
    startups_small_s: list[float]
    startups_n_s: list[float]
    #: Runs alternate between the two servers (and the two pages); the figures use each side's best p50.
    get_small: list[WrkResult]
    get_n: list[WrkResult]
    page_start: list[WrkResult]
    page_end: list[WrkResult]
    page_end_position: int
    walk_s: float
    rss_small: int | None
    rss_n: int | None
    hwm_n: int | None

    @staticmethod
    def best(runs: list[WrkResult]) -> WrkResult:
        return min(runs, key=lambda r: r.p50_ms)

    @staticmethod
    def median(values: list[float]) -> float:
        ordered = sorted(values)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def scale_id(i: int) -> str:
    return f"urn:twinedge:bench:scale:sm:{i:07d}"


async def insert_submodels(db_file: Path, doc: dict[str, Any], count: int) -> None:
    from twin_server.repository import dumps, index_of
    from twin_server.storage.base import Kind
    from twin_server.storage.sqlite import SqliteStorage

    storage = SqliteStorage(db_file)
    await storage.open()
    try:
        item = dict(doc)
        for i in range(count):
            item["id"] = scale_id(i)
            await storage.create(Kind.SUBMODEL, item["id"], dumps(item), index_of(Kind.SUBMODEL, item))
    finally:
        await storage.close()


def paths_file(workdir: Path, name: str, n: int, sample: int = 10_000) -> Path:
    rng = random.Random(n)
    ids = range(n) if n <= sample else rng.sample(range(n), sample)
    path = workdir / name
    path.write_text("".join(f"{API}/submodels/{b64url(scale_id(i))}\n" for i in ids))
    return path


def paging_cursor(body: bytes) -> str:
    """The paging_metadata cursor of a list answer, without parsing its (large) result array."""
    key = b'"paging_metadata":'
    at = body.find(key)
    if at < 0:
        raise BenchError(f"no paging_metadata in the answer: {short(body)}")
    head = body[at + len(key):at + len(key) + 2000].decode("utf-8", "replace").lstrip()
    meta, _end = json.JSONDecoder().raw_decode(head)
    return str(meta.get("cursor", "")) if isinstance(meta, dict) else ""


def walk_to_end(server: Server, n: int) -> tuple[str, int]:
    """Follow the cursor of /submodels to the last page of 100: (cursor, items before it).

    Walks with limit=1000; a full page holds exactly `limit` items, which the check at the end confirms.
    """
    target = max(0, n - 100)
    conn = http.client.HTTPConnection(HOST, server.port, timeout=120)
    try:
        def page(path: str) -> bytes:
            conn.request("GET", path, headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise BenchError(f"GET {path} answered {response.status}: {short(body)}")
            return body

        seen, cursor = 0, ""
        while seen < target:
            step = min(1000, target - seen)
            cursor = paging_cursor(page(f"{API}/submodels?limit={step}" + (f"&cursor={cursor}" if cursor else "")))
            seen += step
            if not cursor:
                raise BenchError(f"the list of submodels ended before {seen:,}, expected {n:,}")
        first = orjson.loads(page(f"{API}/submodels?limit=1&cursor={cursor}"))["result"]
        if not first or first[0].get("id") != scale_id(target):
            raise BenchError(f"the cursor after {target:,} items does not continue the list there")
        return cursor, seen
    finally:
        conn.close()


def start_median(server: Server, tries: int) -> list[float]:
    """Start the server `tries` times (stopping it in between, leaving it running at the end)."""
    times = []
    for attempt in range(tries):
        times.append(server.start())
        if attempt < tries - 1:
            server.stop()
    return times


def run_scale(args: argparse.Namespace, workdir: Path, wrk: Wrk, data: Data, stack: contextlib.ExitStack) \
        -> ScaleResult:
    n = args.scale
    doc = dict(data.operational)
    doc_bytes = len(orjson.dumps(doc))
    small_dir, big_dir = workdir / "scale-100", workdir / "scale-n"
    progress("scale: storing 100 submodels")
    asyncio.run(insert_submodels(small_dir / "twins.db", doc, 100))
    progress(f"scale: storing {n:,} submodels ({doc_bytes:,} bytes each)")
    started = time.perf_counter()
    asyncio.run(insert_submodels(big_dir / "twins.db", doc, n))
    insert_s = time.perf_counter() - started
    db_bytes = sum(p.stat().st_size for p in big_dir.glob("twins.db*"))

    small = twinedge_server(workdir, "twinedge-scale-100", small_dir, None, "normal")
    big = twinedge_server(workdir, "twinedge-scale-n", big_dir, None, "normal")
    stack.callback(small.stop)
    stack.callback(big.stop)
    progress("scale: start-up times (3 tries each)")
    startups_small = start_median(small, 3)
    startups_n = start_median(big, 3)

    script = wrk.script("GET", None, random_paths=True)
    small_paths = paths_file(workdir, "scale-100.paths", 100)
    big_paths = paths_file(workdir, "scale-n.paths", n)
    get_small: list[WrkResult] = []
    get_n: list[WrkResult] = []
    for round_ in range(2):
        progress(f"scale: GET by random id, 100 stored vs {n:,} stored (round {round_ + 1} of 2)")
        get_small.append(wrk.run(small, f"{API}/shells", script, 1, small_paths))
        get_n.append(wrk.run(big, f"{API}/shells", script, 1, big_paths))
    rss_small = small.rss()
    small.stop()

    progress("scale: walking the cursor to the end of the list")
    started = time.perf_counter()
    cursor, position = walk_to_end(big, n)
    walk_s = time.perf_counter() - started
    page_script = wrk.script("GET", None)
    page_start: list[WrkResult] = []
    page_end: list[WrkResult] = []
    for round_ in range(2):
        progress(f"scale: a page of 100 at the start and at the end (round {round_ + 1} of 2)")
        page_start.append(wrk.run(big, f"{API}/submodels?limit=100", page_script, 1))
        page_end.append(wrk.run(big, f"{API}/submodels?limit=100&cursor={cursor}", page_script, 1))
    rss_n, hwm_n = big.rss(), big.hwm()
    big.stop()
    return ScaleResult(n, doc_bytes, insert_s, db_bytes, startups_small, startups_n, get_small, get_n, page_start,
                       page_end, position, walk_s, rss_small, rss_n, hwm_n)


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def machine_facts(wrk: Wrk) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    for name in ("twinedge", *TWINEDGE_DEPS):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpus": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)), "cpu_model": model,
        "platform": platform.platform(), "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version, "wrk": wrk.version(), "versions": versions,
        "loadavg_start": list(os.getloadavg()),
    }


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def fmt_mb(value: int | None) -> str:
    return "?" if value is None else f"{value / 1e6:,.0f} MB"


def result_cells(result: WrkResult | None) -> str:
    if result is None:
        return f"{'':>9} {'':>7} {'':>7} {'':>7} {'':>7}"
    cpu = result.server_cpu_us_per_request
    cpu_text = "?" if cpu is None else f"{cpu:,.0f}"
    return (f"{fmt_rate(result.rps):>9} {result.p50_ms:>7.2f} {result.p99_ms:>7.2f} {result.non2xx:>7} "
            f"{cpu_text:>7}")


def mark(met: bool | None) -> str:
    return {True: "[met]    ", False: "[NOT met]", None: "[n/a]    "}[met]


def build_goals(report: dict[str, Any], connections: Sequence[int]) -> list[dict[str, Any]]:
    goals = build_goals_for(report, report["_ours"], connections, "")
    for runtime, outcomes in list(report["_runtimes"].items())[1:]:
        goals += [g for g in build_goals_for(report, outcomes, connections, f" [on {runtime}]")
                  if not g["goal"].startswith("PATCH")]
    return goals


def build_goals_for(report: dict[str, Any], ours: dict[str, dict[int, Outcome]], connections: Sequence[int],
                    label_suffix: str) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []
    theirs: dict[str, dict[int, Outcome]] | None = report["_basyx"]
    for key, label in (("get-submodel", "GET submodel"), ("get-property", "GET property")):
        if key not in ours:
            continue
        parts, met = [], None
        for conns in connections:
            mine = ours[key][conns].result if ours[key][conns].status == "ok" else None
            other = theirs[key][conns].result if theirs and key in theirs and theirs[key][conns].status == "ok" \
                else None
            if mine is None or other is None or not other.rps:
                parts.append(f"{conns} conn: no ratio")
                continue
            ratio = mine.rps / other.rps
            parts.append(f"{conns} conn: {ratio:.1f}x")
            met = (met is not False) and ratio >= GOAL_GET_RATIO
        goals.append({"goal": f"{label} >= {GOAL_GET_RATIO:g}x BaSyx req/s{label_suffix}", "met": met,
                      "detail": ", ".join(parts)})
    for mode, outcomes in report["_writes"].items():
        if "patch-value" not in outcomes:
            continue
        results = {c: o.result for c, o in outcomes["patch-value"].items()}
        best = max((r.rps for r in results.values() if r is not None), default=0.0)
        detail = ", ".join(f"{c} conn: {fmt_rate(r.rps)}/s" for c, r in results.items() if r is not None)
        check: DurabilityCheck | None = report["_checks"].get(mode)
        stored = check is not None and check.property_sent_by_last_run is True
        kept = check is None or check.survived_kill is not False
        note = "" if stored and kept else " (a write was not found after the run)"
        what = "survive a server crash" if mode == "normal" else "survive a power cut (fsync)"
        goals.append({"goal": f"PATCH $value >= {GOAL_WRITES:,.0f} durable writes/s, --durability {mode} "
                              f"(writes {what})",
                      "met": best >= GOAL_WRITES and stored and kept, "detail": detail + note})
    if 16 in connections:
        worst: tuple[float, str] | None = None
        for key, per_conns in ours.items():
            result = per_conns[16].result if 16 in per_conns else None
            if result is not None and (worst is None or result.p99_ms > worst[0]):
                worst = (result.p99_ms, key)
        for mode, outcomes in report["_writes"].items() if not label_suffix else ():
            if mode == "normal":
                continue
            for key, per_conns in outcomes.items():
                result = per_conns[16].result if 16 in per_conns else None
                if result is not None and (worst is None or result.p99_ms > worst[0]):
                    worst = (result.p99_ms, f"{key}, {mode}")
        if worst is not None:
            goals.append({"goal": f"p99 < {GOAL_P99_MS:g} ms at 16 connections (every case){label_suffix}",
                          "met": worst[0] < GOAL_P99_MS, "detail": f"worst: {worst[0]:.2f} ms ({worst[1]})"})
    scale: ScaleResult | None = report["_scale"]
    if scale is not None and not label_suffix:
        get_ratio = scale.best(scale.get_n).p50_ms / scale.best(scale.get_small).p50_ms
        page_ratio = scale.best(scale.page_end).p50_ms / scale.best(scale.page_start).p50_ms
        startup_n = scale.median(scale.startups_n_s)
        goals += [
            {"goal": f"GET by id with {scale.n:,} stored within {GOAL_SCALE_GET_RATIO:g}x of 100 stored (p50)",
             "met": get_ratio <= GOAL_SCALE_GET_RATIO, "detail": f"{get_ratio:.2f}x"},
            {"goal": f"page of 100 costs the same at the end as at the start (within {GOAL_SCALE_PAGE_RATIO:g}x)",
             "met": page_ratio <= GOAL_SCALE_PAGE_RATIO, "detail": f"{page_ratio:.2f}x"},
            {"goal": f"start-up with {scale.n:,} stored < {GOAL_STARTUP_S:g} s",
             "met": startup_n < GOAL_STARTUP_S, "detail": f"{startup_n:.2f} s (median of 3)"},
            {"goal": f"server memory with {scale.n:,} stored < {GOAL_RSS_MB / 1024:g} GB",
             "met": scale.rss_n is not None and scale.rss_n < GOAL_RSS_MB * 2**20,
             "detail": f"VmRSS {fmt_mb(scale.rss_n)}, VmHWM {fmt_mb(scale.hwm_n)}"},
        ]
    return goals


def print_report(report: dict[str, Any], cases: list[Case], connections: Sequence[int]) -> None:
    m = report["machine"]
    cfg = report["config"]
    print("TwinEdge twin server benchmark: wrk on loopback, one server process each")
    print(f"machine: {m['cpus']} CPUs ({m['cpus_usable']} usable) {m['cpu_model']}; {m['platform']}")
    print(f"python {m['python']}, SQLite {m['sqlite']}, {m['wrk']}; load average (1 min) before the run "
          f"{m['loadavg_start'][0]:.2f}, after {m['loadavg_end'][0]:.2f} (other work on the machine skews figures)")
    versions = dict(m["versions"])
    print(f"twinedge {versions.pop('twinedge')}; " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if report.get("basyx"):
        b = report["basyx"]
        print(f"baseline: basyx-python-sdk {b['version']} basyx.aas.adapter.http.WSGIApp, in-memory DictObjectStore, "
              f"on {b['server']} (one process, one worker)")
    if report.get("basyx_skipped"):
        print(report["basyx_skipped"])
    if cfg["runtimes"][1:]:
        print(f"TwinEdge runs on {cfg['runtimes'][0]} (rows with the case name) and on "
              + ", ".join(cfg["runtimes"][1:]) + " (rows 'on ...'; last column also against the first)")
    if cfg["runtimes_skipped"]:
        print(f"skipped runtimes (not installed): {', '.join(cfg['runtimes_skipped'])}")
    if m.get("pin"):
        print(f"pinned (--pin {m['pin']['mode']}): servers on CPU {m['pin']['servers']}, wrk on CPU {m['pin']['wrk']}; "
              "not what a server on a machine gets: compare with an unpinned run")
    print(f"load: {cfg['duration_s']:g} s per run after {cfg['warmup_s']:g} s warm-up; "
          + ", ".join(f"{c} conn = -t{1 if c == 1 else min(2, c)} -c{c}" for c in connections))
    if cases:
        print(f"data: press-01 demo twin + {GENERATED_SHELLS} generated shells + a 50-property submodel; paths:")
        for case in cases:
            print(f"  {case.title:<28} {case.request.method} {case.request.path}")
        print("columns: req/s, p50 and p99 latency in ms, non-2xx responses, server CPU µs per request")
        print()
        print_cases(report, cases, connections)
        memory = "server memory after the cases: " + ", ".join(
            f"TwinEdge on {r} VmRSS {fmt_mb(v)}" for r, v in report["rss_after_cases_by_runtime"].items())
        if report.get("basyx"):
            memory += f", BaSyx VmRSS {fmt_mb(report['basyx'].get('rss_after_cases'))}"
        print(f"{memory}; TwinEdge start-up with --load: {report.get('startup_s', 0.0):.2f} s")
    print_writes(report, cases)
    print_scale(report["_scale"])
    print()
    print("Goals (twin-server issue)")
    for goal in report["goals"]:
        print(f"  {mark(goal['met'])} {goal['goal']}: {goal['detail']}")


HEAD = f"{'req/s':>9} {'p50':>7} {'p99':>7} {'non-2xx':>7} {'CPU µs':>7}"


def print_cases(report: dict[str, Any], cases: list[Case], connections: Sequence[int]) -> None:
    head = HEAD
    ours: dict[str, dict[int, Outcome]] = report["_ours"]
    theirs: dict[str, dict[int, Outcome]] | None = report["_basyx"]
    head = f"{'req/s':>9} {'p50':>7} {'p99':>7} {'non-2xx':>7} {'CPU µs':>7}"
    print(f"{'case':<30} {'conn':>4} | TwinEdge{'':<{len(head) - 8}} | "
          + (f"BaSyx {BASYX_VERSION}{'':<{len(head) - 11}} | ratio" if theirs is not None else ""))
    print(f"{'':<30} {'':>4} | {head} | " + (f"{head} |" if theirs is not None else ""))
    runtimes: dict[str, dict[str, dict[int, Outcome]]] = report["_runtimes"] or {"": ours}
    primary = next(iter(runtimes))
    for case in cases:
        for runtime, outcomes in runtimes.items():
            for conns in connections:
                mine = outcomes[case.key][conns]
                title = case.title if runtime == primary else f"  on {runtime}"
                line = f"{title:<30} {conns:>4} | {result_cells(mine.result)} |"
                if mine.status != "ok":
                    line += f" TwinEdge {mine.status}: {mine.note}"
                elif theirs is not None:
                    other = theirs[case.key][conns]
                    if other.status == "ok" and other.result is not None and mine.result is not None:
                        line += f" {result_cells(other.result)} | {mine.result.rps / other.result.rps:5.1f}x"
                    else:
                        line += f" unsupported by BaSyx ({other.note})" if other.status == "unsupported" \
                            else f" BaSyx {other.status}: {other.note}"
                base = ours[case.key][conns].result
                if runtime != primary and mine.result is not None and base is not None and base.rps:
                    line += f" ({mine.result.rps / base.rps:.2f}x {primary})"
                print(line)
        for conns, ratios in report.get("rounds", {}).get(case.key, {}).items():
            shown = ", ".join("-" if r is None else f"{r:.1f}x" for r in ratios)
            print(f"{'  rounds':<30} {conns:>4} | {shown} (the median round is shown)")
        if theirs is not None:
            for conns in connections:
                other = theirs[case.key][conns]
                mine_result = ours[case.key][conns].result
                if other.equivalent is not None:
                    ratio = f"{mine_result.rps / other.equivalent.rps:5.1f}x" if mine_result else ""
                    label = f"  BaSyx nearest: {other.equivalent_title}"
                    print(f"{label:<30} {conns:>4} | {'':>{len(head)}} | {result_cells(other.equivalent)} | "
                          f"{ratio} (not the same call: a whole {other.equivalent_title.split()[-1]})")


def print_writes(report: dict[str, Any], cases: list[Case]) -> None:
    head = HEAD
    writes: dict[str, dict[str, dict[int, Outcome]]] = report["_writes"]
    if writes:
        print()
        print("Durable writes (PATCH, each request a new value; TwinEdge stores in SQLite WAL)")
        print(f"{'durability':<11} {'case':<30} {'conn':>4} | {head}")
        for mode, outcomes in writes.items():
            for key, per_conns in outcomes.items():
                title = next(c.title for c in cases if c.key == key)
                for conns, outcome in per_conns.items():
                    extra = "" if outcome.status == "ok" else f"  {outcome.status}: {outcome.note}"
                    print(f"{mode:<11} {title:<30} {conns:>4} | {result_cells(outcome.result)}{extra}")
        for mode, check in report["_checks"].items():
            parts = []
            if check.property_sent_by_last_run is not None:
                parts.append(f"{PROPERTY_PATH} = {check.property_after!r} after the run (before: "
                             f"{check.property_before!r}), a value wrk sent in the last run: "
                             f"{'yes' if check.property_sent_by_last_run else 'NO'}")
            if check.fifty_one_request is not None:
                parts.append("50-property $value: all 50 values from one request (atomic): "
                             f"{'yes' if check.fifty_one_request else 'NO'}, sent in the last run: "
                             f"{'yes' if check.fifty_sent_by_last_run else 'NO'}")
            if check.survived_kill is not None:
                parts.append(f"unchanged after SIGKILL and restart: {'yes' if check.survived_kill else 'NO'}")
            print(f"  {mode}: " + "; ".join(parts) + ("; " + "; ".join(check.notes) if check.notes else ""))
        if report["_basyx"] is not None:
            print("  (BaSyx keeps its object store in memory: its writes do not survive a restart)")


def print_scale(scale: ScaleResult | None) -> None:
    if scale is None:
        return
    get_small, get_n = scale.best(scale.get_small), scale.best(scale.get_n)
    page_start, page_end = scale.best(scale.page_start), scale.best(scale.page_end)
    print()
    print(f"Scale: {scale.n:,} submodels stored (copies of OperationalData, {scale.doc_bytes:,} bytes each; "
          f"SQLite files {fmt_mb(scale.db_bytes)}; stored in {scale.insert_s:.1f} s through SqliteStorage)")
    print("  two servers side by side (100 stored and N stored), runs alternating, best p50 of 2 runs each, 1 conn")
    print(f"  GET submodel by random id: 100 stored p50 {get_small.p50_ms:.2f} ms, p99 {get_small.p99_ms:.2f} ms, "
          f"{fmt_rate(get_small.rps)} req/s; {scale.n:,} stored p50 {get_n.p50_ms:.2f} ms, p99 {get_n.p99_ms:.2f} ms, "
          f"{fmt_rate(get_n.rps)} req/s")
    print(f"  page of 100 (/submodels?limit=100): at the start p50 {page_start.p50_ms:.2f} ms, p99 "
          f"{page_start.p99_ms:.2f} ms ({fmt_rate(page_start.rps)} req/s); after {scale.page_end_position:,} (cursor) "
          f"p50 {page_end.p50_ms:.2f} ms, p99 {page_end.p99_ms:.2f} ms ({fmt_rate(page_end.rps)} req/s); walking "
          f"the cursor there with limit=1000 took {scale.walk_s:.1f} s")
    print("  start-up (process start to first answer), 3 tries: 100 stored "
          + ", ".join(f"{t:.2f}" for t in scale.startups_small_s) + f" s; {scale.n:,} stored "
          + ", ".join(f"{t:.2f}" for t in scale.startups_n_s) + " s")
    print(f"  server memory: 100 stored VmRSS {fmt_mb(scale.rss_small)}; {scale.n:,} stored VmRSS "
          f"{fmt_mb(scale.rss_n)} (VmHWM {fmt_mb(scale.hwm_n)})")
    runs = [*scale.get_small, *scale.get_n, *scale.page_start, *scale.page_end]
    print(f"  non-2xx responses in these runs: {sum(r.non2xx for r in runs)}, socket errors: "
          f"{sum(sum(r.socket_errors.values()) for r in runs)}")


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def start_twinedge(workdir: Path, data: Data, stack: contextlib.ExitStack, runtime: str, primary: bool) \
        -> tuple[Server, Any, float]:
    """`twinedge server --runtime RUNTIME` with the bench data; (server, property value, start-up seconds)."""
    name = "twinedge" if primary else f"twinedge-{runtime}"
    server = twinedge_server(workdir, name, workdir / f"{name}-normal", data.demo_file, "normal", runtime)
    stack.callback(server.stop)
    progress(f"starting twinedge server on {runtime} (--durability normal)")
    startup = server.start()
    post_bench_data(server, data)
    return server, get_json(server, prop_value_path(data)).get("Value"), startup


def prop_value_path(data: Data) -> str:
    return f"{API}/submodels/{b64url(data.operational['id'])}/submodel-elements/{PROPERTY_PATH}/$value"


def start_basyx(args: argparse.Namespace, workdir: Path, data: Data, stack: contextlib.ExitStack,
                report: dict[str, Any]) -> Server | None:
    venv = Path(args.basyx_venv).expanduser()
    missing = basyx_missing(venv, args.basyx_server)
    if missing is not None:
        report["basyx_skipped"] = (f"BaSyx comparison skipped: {missing}. To compare, make it once with: "
                                   + BASYX_INSTALL.format(venv=venv))
        progress(report["basyx_skipped"])
        return None
    server = basyx_server(workdir, venv, data.full_file, args.basyx_server)
    stack.callback(server.stop)
    progress(f"starting BaSyx {BASYX_VERSION} on {args.basyx_server}")
    server.start()
    server_version = package_version(venv, "pyuwsgi" if args.basyx_server == "uwsgi" else "waitress")
    report["basyx"] = {"version": package_version(venv, "basyx-python-sdk"),
                       "server": f"{args.basyx_server} {server_version}", "venv": str(venv)}
    return server


def run_load(args: argparse.Namespace, workdir: Path, wrk: Wrk, data: Data, cases: list[Case],
             connections: Sequence[int], stack: contextlib.ExitStack, report: dict[str, Any]) -> None:
    """Every server runs side by side and each case runs on them one after the other (TwinEdge on each
    runtime, then BaSyx), so a change in the machine's other load hits all of them alike. Then the
    durability checks, and the writes again with --durability fsync on the first runtime."""
    ours: dict[str, tuple[Server, Any]] = {}
    for runtime in args.runtimes:
        server, before, startup = start_twinedge(workdir, data, stack, runtime, primary=not ours)
        ours[runtime] = (server, before)
        report["_runtimes"][runtime] = {}
        report.setdefault("startup_s", startup)
    basyx = None if args.no_basyx else start_basyx(args, workdir, data, stack, report)
    if basyx is not None:
        report["_basyx"] = {}
    for case in cases:
        # Reads are measured `--rounds` times, TwinEdge and BaSyx in turn; writes once (the durability checks
        # look at the last run's values).
        rounds = []
        for k in range(args.rounds if basyx is not None and not case.write else 1):
            if args.rounds > 1 and basyx is not None and not case.write:
                progress(f"  {case.key}: round {k + 1} of {args.rounds}")
            mine = {runtime: measure_case(server, wrk, case, connections, allow_equivalent=False)
                    for runtime, (server, _before) in ours.items()}
            theirs = measure_case(basyx, wrk, case, connections, allow_equivalent=True) if basyx is not None else None
            rounds.append((mine, theirs))
        ratios = {conns: [ratio(mine[args.runtimes[0]][conns], theirs[conns] if theirs else None)
                          for mine, theirs in rounds] for conns in connections}
        chosen = {conns: median_round(each) for conns, each in ratios.items()}
        for runtime in ours:
            report["_runtimes"][runtime][case.key] = {conns: rounds[k][0][runtime][conns]
                                                      for conns, k in chosen.items()}
        if basyx is not None:
            report["_basyx"][case.key] = {conns: (rounds[k][1] or {})[conns] for conns, k in chosen.items()}
        if len(rounds) > 1:
            report.setdefault("rounds", {})[case.key] = ratios
    if basyx is not None:
        report["basyx"]["rss_after_cases"] = basyx.rss()
        basyx.stop()
    primary = args.runtimes[0]
    report["_ours"] = report["_runtimes"][primary]
    for runtime, (server, before) in ours.items():
        report["rss_after_cases_by_runtime"][runtime] = server.rss()
        outcomes = report["_runtimes"][runtime]
        writes = {k: v for k, v in outcomes.items() if any(c.key == k and c.write for c in cases)}
        if writes:
            mode = "normal" if runtime == primary else f"normal ({runtime})"
            if runtime == primary:
                report["_writes"]["normal"] = writes
            report["_checks"][mode] = check_durability(server, "normal", writes, before, data, restart=True)
        server.stop()
    report["rss_after_cases"] = report["rss_after_cases_by_runtime"][primary]
    if any(c.write for c in cases) and not args.no_fsync:
        server = twinedge_server(workdir, "twinedge-fsync", workdir / "twinedge-fsync", data.demo_file, "fsync",
                                 primary)
        stack.callback(server.stop)
        progress(f"starting twinedge server on {primary} (--durability fsync)")
        server.start()
        post_bench_data(server, data)
        before = get_json(server, prop_value_path(data)).get("Value")
        fsync: dict[str, dict[int, Outcome]] = {}
        for case in cases:
            if case.write:
                fsync[case.key] = measure_case(server, wrk, case, connections, allow_equivalent=False)
        report["_writes"]["fsync"] = fsync
        report["_checks"]["fsync"] = check_durability(server, "fsync", fsync, before, data, restart=True)
        server.stop()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load-test the TwinEdge twin server with wrk on loopback, next to the BaSyx Python SDK "
                    f"{BASYX_VERSION} server; prints figures and the issue's goals (no assertions).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per case and connection count")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of wrk before each measurement (0: none)")
    parser.add_argument("--cases", default=",".join(CASE_KEYS),
                        help=f"comma-separated subset of: {', '.join(CASE_KEYS)}")
    parser.add_argument("--connections", default="1,16", help="comma-separated connection counts")
    parser.add_argument("--no-basyx", action="store_true", help="skip the BaSyx baseline")
    parser.add_argument("--no-fsync", action="store_true", help="skip the PATCH runs with --durability fsync")
    parser.add_argument("--basyx-server", choices=("uwsgi", "waitress"), default="uwsgi",
                        help="WSGI server for BaSyx (uwsgi: as BaSyx's Docker image, 1 process, no threads)")
    parser.add_argument("--basyx-venv", default=str(DEFAULT_BASYX_VENV),
                        help=f"virtualenv with basyx-python-sdk {BASYX_VERSION} (the comparison is skipped if absent)")
    parser.add_argument("--timeout", type=float, default=10.0, help="wrk's per-request timeout in seconds")
    parser.add_argument("--scale", type=int, default=0, metavar="N",
                        help="also store N submodels and measure GET, paging, start-up and memory at that size")
    parser.add_argument("--scale-only", action="store_true", help="with --scale: skip the load cases")
    parser.add_argument("--runtimes", default="uvicorn,granian",
                        help="comma-separated HTTP servers to run TwinEdge on (twinedge server --runtime), the "
                             "first also for the fsync writes and the goals; granian is skipped when not installed")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each read case this many times, TwinEdge and BaSyx in turn, and show the "
                             "round with the median ratio (this VM's speed drifts between runs)")
    parser.add_argument("--pin", choices=PIN_MODES, default="none",
                        help="CPU affinity (default none: what a server gets on a machine): 'shared' puts the "
                             "servers and wrk on the first CPU, 'split' the servers on the first CPU and wrk on "
                             "the others")
    args = parser.parse_args(argv)
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    if not runtimes or any(r not in RUNTIMES for r in runtimes) or len(set(runtimes)) != len(runtimes):
        parser.error(f"--runtimes: choose from {', '.join(RUNTIMES)}")
    args.runtimes = [r for r in runtimes if r != "granian" or importlib.util.find_spec("granian") is not None]
    args.runtimes_skipped = [r for r in runtimes if r not in args.runtimes]
    if not args.runtimes:
        parser.error("--runtimes: granian is not installed (pip install granian)")
    keys = [k.strip() for k in args.cases.split(",") if k.strip()]
    unknown = [k for k in keys if k not in CASE_KEYS]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASE_KEYS)}")
    args.case_keys = keys
    try:
        args.connection_counts = sorted({int(c) for c in args.connections.split(",") if c.strip()})
    except ValueError:
        parser.error("--connections: expected numbers such as 1,16")
    if not args.connection_counts or min(args.connection_counts) < 1:
        parser.error("--connections: expected positive numbers")
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be positive, --warmup positive or 0")
    if args.scale_only and args.scale < 100:
        parser.error("--scale-only needs --scale N with N >= 100")
    if 0 < args.scale < 100:
        parser.error("--scale N needs N >= 100")
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {"_ours": {}, "_runtimes": {}, "rss_after_cases_by_runtime": {}, "_basyx": None,
                              "_writes": {}, "_checks": {}, "_scale": None}
    try:
        with signals_raise(), tempfile.TemporaryDirectory(prefix="twinedge-server-bench-") as tmp, \
                contextlib.ExitStack() as stack:
            workdir = Path(tmp)
            wrk = Wrk(workdir, args.duration, args.warmup, args.timeout)
            report["machine"] = machine_facts(wrk)
            pinned = pin(args.pin)
            if pinned is not None:
                wrk.cpus = pinned[1]
                report["machine"]["pin"] = {"mode": args.pin, "servers": sorted(pinned[0]), "wrk": sorted(pinned[1])}
            report["config"] = {"duration_s": args.duration, "warmup_s": args.warmup, "cases": args.case_keys,
                                "connections": args.connection_counts, "basyx": not args.no_basyx,
                                "basyx_server": args.basyx_server, "scale": args.scale,
                                "runtimes": args.runtimes, "runtimes_skipped": args.runtimes_skipped}
            progress("building the demo twin")
            data = make_data(workdir)
            cases = [c for c in make_cases(data) if c.key in args.case_keys] if not args.scale_only else []
            if cases:
                run_load(args, workdir, wrk, data, cases, args.connection_counts, stack, report)
            if args.scale:
                report["_scale"] = run_scale(args, workdir, wrk, data, stack)
            report["goals"] = build_goals(report, args.connection_counts)
            report["machine"]["loadavg_end"] = list(os.getloadavg())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    if args.json:
        out = {k: v for k, v in report.items() if not k.startswith("_")}
        out["twinedge"] = to_jsonable(report["_ours"])
        out["twinedge_by_runtime"] = to_jsonable(report["_runtimes"])
        out["basyx_cases"] = to_jsonable(report["_basyx"])
        out["writes"] = to_jsonable(report["_writes"])
        out["durability_checks"] = to_jsonable(report["_checks"])
        out["scale"] = to_jsonable(report["_scale"])
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print_report(report, cases, args.connection_counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
