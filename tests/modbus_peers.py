"""Real Modbus servers for tests (and benchmarks): pymodbus TCP and RTU servers, a socat
pseudo-terminal pair, and an independent Node.js server (npm ``modbus-serial``).

Use the fixtures from a test module by importing them (the import registers them)::

    from tests.modbus_peers import modbus_tcp_server_fixture, node_modbus_server_fixture  # noqa: F401

    def test_something(modbus_tcp_server: ModbusTestServer) -> None: ...

* :class:`ModbusTestServer` is a pymodbus TCP server in a thread of its own (own event loop), on
  127.0.0.1 and a free port; ``stop()`` then ``start()`` brings it back on the same port. It
  records every request it receives in ``requests`` as (unit id, function code, address, count).
* :class:`RtuTestServer` is the same over a serial line: one end of a :class:`SocatPty` pair
  (Debian ``socat``; the fixture skips without it); the client opens the other end.
* :class:`NodeModbusServer` runs ``tests/peers/modbus_server.js`` with ``modbus-serial``, installed
  on demand into ``$TWINEDGE_PEERS_CACHE/node`` (default ``~/.cache/twinedge-peers/node``, shared
  with the OPC UA peer); the fixture skips if node/npm are missing or npm fails. CI can install it
  ahead: ``python -m tests.modbus_peers install``.
* :class:`ModbusServerProcess` serves N float32 holding registers from a separate Python process,
  for measuring the agent's CPU without the server's (``python -m tests.modbus_peers serve``).

The register contents of the standard device (:func:`standard_device`) are built here with
``struct`` and explicit byte permutations, independently of ``edge_agent.connectors.modbus_codec``,
and :data:`STANDARD_TAGS` / :data:`EXPECTED` say what a client must read from them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

__all__ = [
    "EXPECTED",
    "STANDARD_TAGS",
    "ModbusServerProcess",
    "ModbusTestServer",
    "NodeModbusServer",
    "RtuTestServer",
    "SocatPty",
    "free_port",
    "modbus_tcp_server_fixture",
    "node_modbus_server_fixture",
    "standard_device",
    "wire",
]

HOST = "127.0.0.1"
PEERS = Path(__file__).resolve().parent / "peers"
#: npm peers live outside the repository, shared with tests/opcua_peers.py.
NODE_CACHE = Path(os.environ.get("TWINEDGE_PEERS_CACHE") or Path.home() / ".cache" / "twinedge-peers") / "node"
MODBUS_SERIAL_VERSION = "8.0.25"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# -- register contents, built independently of the codec -----------------------------------------

#: Byte layouts by name, as permutations of the big-endian bytes (A = most significant).
LAYOUTS = {
    "ABCD": "ABCD", "DCBA": "DCBA", "BADC": "BADC", "CDAB": "CDAB",
    "AB": "AB", "BA": "BA",
    "ABCDEFGH": "ABCDEFGH", "HGFEDCBA": "HGFEDCBA", "BADCFEHG": "BADCFEHG", "GHEFCDAB": "GHEFCDAB",
}
#: (byte_order, word_order) of each layout, as the connector's tags spell them.
ORDERS = {
    "ABCD": ("big", "big"), "DCBA": ("little", "little"), "BADC": ("little", "big"), "CDAB": ("big", "little"),
    "AB": ("big", "big"), "BA": ("little", "big"),
    "ABCDEFGH": ("big", "big"), "HGFEDCBA": ("little", "little"),
    "BADCFEHG": ("little", "big"), "GHEFCDAB": ("big", "little"),
}


def wire(value: Any, code: str, layout: str) -> list[int]:
    """Registers holding `value` (struct `code`) with its bytes arranged as `layout`."""
    big = struct.pack(">" + code, value)
    if len(layout) != len(big):
        raise ValueError(f"layout {layout} does not fit {len(big)} bytes")
    data = bytes(big[ord(c) - ord("A")] for c in layout)
    return list(struct.unpack(f">{len(data) // 2}H", data))


def text_registers(text: str, registers: int, swap: bool = False) -> list[int]:
    data = text.encode().ljust(2 * registers, b"\x00")
    if swap:
        data = b"".join(data[i + 1:i + 2] + data[i:i + 1] for i in range(0, len(data), 2))
    return list(struct.unpack(f">{registers}H", data))


F32 = 123.456
F32_AS_FLOAT32 = struct.unpack(">f", struct.pack(">f", F32))[0]

#: (signal, address, code, layout, value) of the holding registers of unit 1.
_NUMBERS: list[tuple[str, int, str, str, Any]] = [
    ("f32_abcd", 0, "f", "ABCD", F32),
    ("f32_dcba", 2, "f", "DCBA", F32),
    ("f32_badc", 4, "f", "BADC", F32),
    ("f32_cdab", 6, "f", "CDAB", F32),
    ("i16", 8, "h", "AB", -1234),
    ("u16", 9, "H", "AB", 54321),
    ("i32", 10, "i", "ABCD", -123456789),
    ("u32_cdab", 12, "I", "CDAB", 3_000_000_000),
    ("i64", 14, "q", "ABCDEFGH", -1_234_567_890_123),
    ("u64_le", 18, "Q", "HGFEDCBA", 2**63 + 5),
    ("f64", 22, "d", "ABCDEFGH", -9876.54321),
    ("f64_cdab", 26, "d", "GHEFCDAB", 2.718281828459045),
    ("i16_ba", 40, "h", "BA", -2),
    ("i64_badc", 41, "q", "BADCFEHG", 81985529216486895),
    ("f64_badc", 45, "d", "BADCFEHG", 1e-300),
]
_DATA_TYPE = {"f": "float32", "h": "int16", "H": "uint16", "i": "int32", "I": "uint32", "q": "int64",
              "Q": "uint64", "d": "float64"}
BITS_REGISTER = 0b1010_0000_0000_0101  # bits 0, 2, 13, 15 set
COILS = [True, False, True, True, False, False, False, True, True, False, False, False, False, False, False, True]
DISCRETE = [False, True, False, False, True, True, False, False, False, False, False, False, False, False, True, False]


def _standard_holding() -> list[int]:
    hr = [0] * 50
    for _, address, code, layout, value in _NUMBERS:
        regs = wire(value, code, layout)
        hr[address:address + len(regs)] = regs
    hr[30:36] = text_registers("TwinEdge", 6)        # 12 bytes: 8 characters and 4 NULs
    hr[36] = BITS_REGISTER
    hr[37] = 1000                                    # raw for scale/offset: 1000 * 0.1 - 20 = 80.0
    hr[38:40] = text_registers("Hi", 2, swap=True)   # byte-swapped string "Hi\0\0"
    return hr


#: Holding registers 50..59 are a hole (undefined: reads spanning it get exception 2); 60..63 follow.
FAR = [("f32_far1", 60, 42.0), ("f32_far2", 62, -1.5)]
UNIT2_VALUE = 2.5
INPUT_VALUES = {"in_f32": 1.25, "in_i16": -7}


def standard_device(unit_id: int = 1, unit2: bool = True) -> list[SimDevice]:
    """The standard device(s): unit `unit_id` with everything above, unit 2 with one float32."""
    holding = [SimData(0, values=_standard_holding(), datatype=DataType.REGISTERS)]
    holding.append(SimData(60, values=wire(42.0, "f", "ABCD") + wire(-1.5, "f", "ABCD"),
                           datatype=DataType.REGISTERS))
    inputs = [SimData(0, values=wire(1.25, "f", "ABCD") + wire(-7, "h", "AB"), datatype=DataType.REGISTERS)]
    devices = [SimDevice(unit_id, simdata=(
        [SimData(0, values=list(COILS), datatype=DataType.BITS)],
        [SimData(0, values=list(DISCRETE), datatype=DataType.BITS)],
        holding, inputs))]
    if unit2:
        devices.append(SimDevice(2, simdata=(
            [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
            [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
            [SimData(0, values=wire(UNIT2_VALUE, "f", "ABCD"), datatype=DataType.REGISTERS)],
            [SimData(0, values=[0], datatype=DataType.REGISTERS)])))
    return devices


def _tags() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    tags: list[dict[str, Any]] = []
    expected: dict[str, Any] = {}
    for signal, address, code, layout, value in _NUMBERS:
        byte_order, word_order = ORDERS[layout]
        tags.append({"signal": signal, "address": address, "data_type": _DATA_TYPE[code],
                     "byte_order": byte_order, "word_order": word_order})
        expected[signal] = F32_AS_FLOAT32 if code == "f" else value
    tags += [
        {"signal": "text", "address": 30, "data_type": "string", "length": 6},
        {"signal": "text_swapped", "address": 38, "data_type": "string", "length": 2, "byte_order": "little"},
        {"signal": "bit0", "address": 36, "data_type": "bit", "bit": 0},
        {"signal": "bit1", "address": 36, "data_type": "bit", "bit": 1},
        {"signal": "bit13", "address": 36, "data_type": "bit", "bit": 13},
        {"signal": "bit15", "address": 36, "data_type": "bit", "bit": 15},
        {"signal": "scaled", "address": 37, "data_type": "uint16", "scale": 0.1, "offset": -20},
        {"signal": "in_f32", "table": "input", "address": 0, "data_type": "float32"},
        {"signal": "in_i16", "table": "input", "address": 2, "data_type": "int16"},
        {"signal": "coil0", "table": "coil", "address": 0},
        {"signal": "coil1", "table": "coil", "address": 1},
        {"signal": "coil7", "table": "coil", "address": 7},
        {"signal": "coil15", "table": "coil", "address": 15},
        {"signal": "di1", "table": "discrete", "address": 1},
        {"signal": "di3", "table": "discrete", "address": 3},
        {"signal": "di14", "table": "discrete", "address": 14},
        {"signal": "unit2_f32", "address": 0, "data_type": "float32", "unit_id": 2},
    ]
    expected.update({"text": "TwinEdge", "text_swapped": "Hi", "bit0": True, "bit1": False, "bit13": True,
                     "bit15": True, "scaled": 80.0, "in_f32": 1.25, "in_i16": -7, "coil0": True, "coil1": False,
                     "coil7": True, "coil15": True, "di1": True, "di3": False, "di14": True,
                     "unit2_f32": UNIT2_VALUE})
    return tags, expected


#: Tag configs (dicts for ModbusTag) covering every data type of the standard device, and the
#: value each must read as.
STANDARD_TAGS, EXPECTED = _tags()


# -- servers in a thread ------------------------------------------------------------------------

Request = tuple[int, int, int, int]


class _ThreadedServer:
    """A pymodbus server running in its own thread and event loop."""

    def __init__(self, devices: Callable[[], list[SimDevice]]) -> None:
        self.devices = devices
        #: (unit id, function code, address, count) of every request received.
        self.requests: list[Request] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None

    def _trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.requests.append((pdu.dev_id, pdu.function_code, pdu.address, pdu.count))
        return pdu

    def requests_for(self, function_code: int) -> list[Request]:
        return [r for r in list(self.requests) if r[1] == function_code]

    def _make(self) -> ModbusTcpServer | ModbusSerialServer:
        raise NotImplementedError

    async def _serve(self, ready: threading.Event) -> None:
        try:
            server = self._make()
            await server.serve_forever(background=True)
            self._stop_event = asyncio.Event()
        except BaseException as exc:  # reported to start()
            self._error = exc
            ready.set()
            return
        ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await server.shutdown()  # type: ignore[no-untyped-call]
            await asyncio.sleep(0.05)  # let the transports close

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("already running")
        ready = threading.Event()
        self._error = None
        loop = asyncio.new_event_loop()
        self._loop = loop

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(ready))
            finally:
                loop.close()

        self._thread = threading.Thread(target=main, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("server did not start within 10 s")
        if self._error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError(f"server did not start: {self._error}") from self._error

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        if self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(10)
        self._thread = None
        self._stop_event = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class ModbusTestServer(_ThreadedServer):
    """pymodbus TCP server on 127.0.0.1:`port` serving `devices()` (fresh registers each start)."""

    host = HOST

    def __init__(self, devices: Callable[[], list[SimDevice]] = standard_device, port: int | None = None) -> None:
        super().__init__(devices)
        self.port = port or free_port()

    def _make(self) -> ModbusTcpServer:
        return ModbusTcpServer(self.devices(), address=(self.host, self.port), trace_pdu=self._trace)


class RtuTestServer(_ThreadedServer):
    """pymodbus RTU server on the serial device `port` (one end of a SocatPty)."""

    def __init__(self, port: str, devices: Callable[[], list[SimDevice]] = standard_device,
                 baudrate: int = 38400) -> None:
        super().__init__(devices)
        self.port = port
        self.baudrate = baudrate

    def _make(self) -> ModbusSerialServer:
        return ModbusSerialServer(self.devices(), framer=FramerType.RTU, port=self.port, baudrate=self.baudrate,
                                  trace_pdu=self._trace)


class SocatPty:
    """Two pseudo-terminals wired together by socat: ``a`` and ``b`` are their paths (symlinks)."""

    def __init__(self, workdir: Path | None = None) -> None:
        exe = shutil.which("socat")
        if exe is None:
            raise FileNotFoundError("socat is not installed (apt-get install socat)")
        self.binary = exe
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="socat-")
            workdir = Path(self._tmp.name)
        self.a = workdir / "a"
        self.b = workdir / "b"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [self.binary, "-d", "-d", f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not (self.a.exists() and self.b.exists()):
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"socat exited with {self._proc.returncode}: {err}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("socat did not create its pseudo-terminals within 10 s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# -- the Node.js peer ---------------------------------------------------------------------------

def _installed_version() -> str | None:
    try:
        return str(json.loads((NODE_CACHE / "node_modules" / "modbus-serial" / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def install_modbus_serial() -> Path:
    """node_modules holding ``modbus-serial`` (npm-installed into the cache once). Raises
    RuntimeError saying why when node/npm are missing or the install fails."""
    modules = NODE_CACHE / "node_modules"
    if _installed_version() == MODBUS_SERIAL_VERSION:
        return modules
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        raise RuntimeError("node and npm are needed for the modbus-serial peer (apt-get install nodejs npm)")
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    with open(NODE_CACHE / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the OPC UA peer installs into the same folder
        if _installed_version() != MODBUS_SERIAL_VERSION:
            package = f"modbus-serial@{MODBUS_SERIAL_VERSION}"
            # --omit=optional: its optional "serialport" (native serial access) is not needed for TCP
            proc = subprocess.run(
                [npm, "install", "--prefix", str(NODE_CACHE), "--no-audit", "--no-fund", "--save-exact",
                 "--omit=optional", "--loglevel=error", package],
                capture_output=True, text=True, timeout=300, check=False, cwd=NODE_CACHE, stdin=subprocess.DEVNULL)
            if proc.returncode != 0 or _installed_version() != MODBUS_SERIAL_VERSION:
                raise RuntimeError(f"npm install {package} into {NODE_CACHE} failed: "
                                   f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    return modules


class NodeModbusServer:
    """tests/peers/modbus_server.js (npm modbus-serial ServerTCP) on 127.0.0.1:`port`."""

    host = HOST

    def __init__(self, node_modules: Path, port: int | None = None) -> None:
        self.node_modules = node_modules
        self.port = port or free_port()
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        node = shutil.which("node")
        if node is None:
            raise FileNotFoundError("node is not installed")
        env = {**os.environ, "NODE_PATH": str(self.node_modules)}
        self._proc = subprocess.Popen([node, str(PEERS / "modbus_server.js"), str(self.port)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()  # "listening PORT", or EOF when it failed
        if not line.startswith("listening"):
            self._proc.wait(5)
            err = self._proc.stderr.read() if self._proc.stderr else ""
            self._proc = None
            raise RuntimeError(f"node modbus server did not start: {err[-500:]}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream:
                    stream.close()
            self._proc = None


# -- a server in another process (benchmarks) ---------------------------------------------------

def _float_device(count: int) -> list[SimDevice]:
    return [SimDevice(0, simdata=[SimData(0, count=count, values=1.5, datatype=DataType.FLOAT32)])]


async def _serve_floats(port: int, count: int) -> None:
    server = ModbusTcpServer(_float_device(count), address=(HOST, port))
    await server.serve_forever()


class ModbusServerProcess:
    """``count`` float32 holding registers (value 1.5, any unit id) served by a child process."""

    host = HOST

    def __init__(self, count: int = 62, port: int | None = None) -> None:
        self.count = count
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        root = Path(__file__).resolve().parents[1]
        self._proc = subprocess.Popen([sys.executable, "-m", "tests.modbus_peers", "serve", str(self.port),
                                       str(self.count)], cwd=root, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.2):
                return
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("modbus server process did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module", name="modbus_tcp_server")
def modbus_tcp_server_fixture() -> Iterator[ModbusTestServer]:
    """The standard device on a pymodbus TCP server (shared by a module: clear `requests` before counting)."""
    server = ModbusTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", name="node_modbus_server")
def node_modbus_server_fixture() -> Iterator[NodeModbusServer]:
    try:
        modules = install_modbus_serial()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no Node.js Modbus peer: {exc}")
    server = NodeModbusServer(modules)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.modbus_peers")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve COUNT float32 holding registers (value 1.5) on 127.0.0.1:PORT")
    serve.add_argument("port", type=int)
    serve.add_argument("count", type=int, nargs="?", default=62)
    sub.add_parser("install", help="install the npm peer (modbus-serial) into the cache, e.g. in CI")
    args = parser.parse_args()
    if args.command == "install":
        try:
            print(f"modbus-serial {MODBUS_SERIAL_VERSION} in {install_modbus_serial()}")
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            print(f"not installed: {exc}", file=sys.stderr)
            sys.exit(1)
        return
    asyncio.run(_serve_floats(args.port, args.count))


if __name__ == "__main__":
    main()
