"""Real OPC UA servers for tests (a helper module with pytest fixtures, not a test file).

Two independent implementations, with the same small address space (see `VARIABLES`):

* :class:`AsyncuaServer`: asyncua's server in a background thread with its own event loop, on a
  free loopback port. It can be stopped and started again on the same port, written to (values,
  status codes, timestamps), and configured with users and with Basic256Sha256 security only.
* :class:`NodeOpcuaServer`: node-opcua (Node.js) running ``tests/peers/opcua_server.js`` as a
  subprocess; values are set through its stdin. node-opcua is installed on demand with npm into
  a cache folder outside the repository (``$TWINEDGE_PEERS_CACHE/node``, default
  ``~/.cache/twinedge-peers/node``, shared with the Modbus peer); ``python -m tests.opcua_peers``
  installs it ahead (CI).

Use the fixtures by importing them into a test module (the import is what registers them)::

    from tests.opcua_peers import (  # noqa: F401
        asyncua_server_fixture, node_opcua_server_fixture, opcua_certificates_fixture)

Fixtures: ``asyncua_server`` (module scope; security None and Basic256Sha256 Sign/SignAndEncrypt;
anonymous or user ``operator``/``secret``; needs ``opcua_certificates`` imported too),
``node_opcua_server`` (module scope; skips with the reason when Node.js, npm or the install is
missing), ``opcua_certificates`` (module scope: a self-signed client and server certificate) and
``make_asyncua_server`` (a factory of fresh servers with any options, closed after the test).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from asyncua import ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.server import Server
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import BadCertificateUntrusted
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

__all__ = [
    "CLIENT_APPLICATION_URI",
    "NODE_OPCUA_VERSION",
    "VARIABLES",
    "AsyncuaServer",
    "Certificates",
    "NodeOpcuaServer",
    "asyncua_server_fixture",
    "ensure_node_opcua",
    "free_port",
    "make_asyncua_server_fixture",
    "make_certificates",
    "node_opcua_server_fixture",
    "opcua_certificates_fixture",
]

T = TypeVar("T")

#: The newest node-opcua whose packages still declare support for Node.js 20 (2.183 wants >= 22.13).
NODE_OPCUA_VERSION = "2.182.2"
#: Root of the npm peers cache, shared with tests/modbus_peers.py (node packages go in its "node" folder).
PEERS_CACHE_ENV = "TWINEDGE_PEERS_CACHE"
JS_SERVER = Path(__file__).resolve().parent / "peers" / "opcua_server.js"
CLIENT_APPLICATION_URI = "urn:twinedge:test:client"
SERVER_APPLICATION_URI = "urn:twinedge:test:server"
USERS = {"operator": "secret"}


@dataclass(frozen=True)
class Variable:
    name: str
    #: Identifier inside the test namespace: a string or a number.
    identifier: str | int
    variant_type: ua.VariantType
    value: Any
    status: str = "Good"


#: The address space both servers serve (node-opcua in namespace 1, asyncua in namespace 2).
VARIABLES: dict[str, Variable] = {v.name: v for v in [
    Variable("OilTemperature", "Press1.OilTemperature", ua.VariantType.Double, 42.5),
    Variable("StrokeCount", 1001, ua.VariantType.Int32, 7),
    Variable("Running", "Press1.Running", ua.VariantType.Boolean, True),
    Variable("Program", "Press1.Program", ua.VariantType.String, "P-100"),
    Variable("Speed", "Press1.Speed", ua.VariantType.Float, 1.5),
    Variable("Sensor", "Press1.Sensor", ua.VariantType.Double, 0.0, "BadSensorFailure"),
    Variable("Level", "Press1.Level", ua.VariantType.Double, 12.5, "UncertainLastUsableValue"),
    #: An AnalogItem with EURange 0..200 (what a percent deadband needs).
    Variable("Pressure", "Press1.Pressure", ua.VariantType.Double, 100.0),
    Variable("Vector", "Press1.Vector", ua.VariantType.Double, [1.0, 2.0, 3.0]),
]}
EURANGE = (0.0, 200.0)


def node_id(name: str, namespace: int) -> str:
    """The node id string of a test variable, e.g. ``ns=2;s=Press1.OilTemperature``."""
    ident = VARIABLES[name].identifier
    return f"ns={namespace};i={ident}" if isinstance(ident, int) else f"ns={namespace};s={ident}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port_closed(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
        except OSError:
            return
        time.sleep(0.05)


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Certificates:
    """A self-signed client and server application certificate (DER) with their keys (PEM)."""

    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path


def make_certificates(folder: Path, host: str | None = None) -> Certificates:
    """Generate the pair with asyncua's certificate tooling (RSA 2048, SHA-256, one year)."""
    folder.mkdir(parents=True, exist_ok=True)
    host = host or socket.gethostname()
    paths = {}
    for role, uri, usage in (("client", CLIENT_APPLICATION_URI, ExtendedKeyUsageOID.CLIENT_AUTH),
                             ("server", SERVER_APPLICATION_URI, ExtendedKeyUsageOID.SERVER_AUTH)):
        key = cert_gen.generate_private_key()
        cert = cert_gen.generate_self_signed_app_certificate(
            key, uri, {"organizationName": "TwinEdge tests"},
            [x509.UniformResourceIdentifier(uri), x509.DNSName(host), x509.DNSName("localhost")],
            extended=[usage], days=30)
        paths[f"{role}_key"] = folder / f"{role}-key.pem"
        paths[f"{role}_cert"] = folder / f"{role}-cert.der"
        paths[f"{role}_key"].write_bytes(cert_gen.dump_private_key_as_pem(key))
        paths[f"{role}_cert"].write_bytes(cert.public_bytes(Encoding.DER))
    return Certificates(**paths)


# --------------------------------------------------------------------------- asyncua server


class _Users:
    """asyncua user manager: anonymous (if allowed) and the listed users with their passwords."""

    def __init__(self, users: Mapping[str, str], allow_anonymous: bool) -> None:
        self.users = dict(users)
        self.allow_anonymous = allow_anonymous

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username is None:
            return User(role=UserRole.User) if self.allow_anonymous else None
        if self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


class AsyncuaServer:
    """asyncua's OPC UA server on 127.0.0.1:`port`, run by a background thread's event loop.

    All methods are synchronous and thread-safe (they hand coroutines to the server's loop), so the
    server works with any client loop, including ``asyncio.run`` in the test's thread.
    """

    host = "127.0.0.1"
    namespace_uri = "urn:twinedge:test"
    #: Index of the test namespace (the first one a fresh asyncua server registers).
    namespace = 2

    def __init__(self, port: int | None = None, *, users: Mapping[str, str] | None = None,
                 allow_anonymous: bool = True, certificates: Certificates | None = None,
                 secure_only: bool = False, trusted_clients: Sequence[Path] | None = None) -> None:
        self.port = port or free_port()
        self.users = dict(USERS if users is None else users)
        self.allow_anonymous = allow_anonymous
        self.certificates = certificates
        self.secure_only = secure_only
        self.trusted_clients = list(trusted_clients or [])
        self.endpoint = f"opc.tcp://{self.host}:{self.port}/twinedge/test"
        self._server: Server | None = None
        self._listening = False
        self._nodes: dict[str, Any] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"asyncua-server-{self.port}",
                                        daemon=True)
        self._thread.start()
        self.rejected_certificates = 0

    def node_id(self, name: str) -> str:
        return node_id(name, self.namespace)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def running(self) -> bool:
        return self._listening

    def start(self) -> None:
        """Start listening, or listen again on the same port after `stop` (the values stay as they were)."""
        if not self._listening:
            self._call(self._start())

    def stop(self) -> None:
        """Stop listening and close every client connection (sessions and subscriptions are gone)."""
        if self._listening:
            self._call(self._stop())
            _wait_port_closed(self.port)

    def close(self) -> None:
        try:
            self.stop()
            self._call(self._cancel_leftovers())
        finally:
            if self._loop.is_running():
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(10)
            if not self._loop.is_running():
                self._loop.close()

    def freeze(self, seconds: float) -> None:
        """Block the server's event loop for `seconds` (returns at once): connections stay open but
        nothing is answered, as with a hung device or a cut cable without a TCP reset."""
        self._loop.call_soon_threadsafe(time.sleep, seconds)

    @staticmethod
    async def _cancel_leftovers() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def write(self, name: str, value: Any, status: str = "Good", source_time: datetime | None = None) -> None:
        """Set a variable's value, StatusCode (a StatusCodes name) and source timestamp (default now)."""
        self._call(self._write(name, value, status, source_time))

    def read(self, name: str) -> ua.DataValue:
        assert self._server is not None
        return self._server.read_attribute_value(self._nodes[name].nodeid)

    async def _write(self, name: str, value: Any, status: str, source_time: datetime | None) -> None:
        assert self._server is not None
        var = VARIABLES[name]
        dv = ua.DataValue(
            Value=ua.Variant(value, var.variant_type),
            StatusCode=ua.StatusCode(getattr(StatusCodes, status)),
            SourceTimestamp=source_time or datetime.now(UTC),  # type: ignore[arg-type]  # asyncua's DateTime
            ServerTimestamp=datetime.now(UTC),  # type: ignore[arg-type]
        )
        await self._server.write_attribute_value(self._nodes[name].nodeid, dv)

    async def _start(self) -> None:
        if self._server is None:
            self._server = await self._build()
        await self._server.start()
        self._listening = True

    async def _build(self) -> Server:
        server = Server(user_manager=_Users(self.users, self.allow_anonymous))  # type: ignore[arg-type]
        await server.init()
        server.set_endpoint(self.endpoint)
        server.disable_clock()  # its 1 s clock task would make every stop() take a second
        server.set_server_name("TwinEdge asyncua test server")
        await server.set_application_uri(SERVER_APPLICATION_URI)
        tokens: list[type] = [ua.UserNameIdentityToken]
        if self.allow_anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if self.certificates is not None:
            await server.load_certificate(str(self.certificates.server_cert))
            await server.load_private_key(str(self.certificates.server_key))
        if self.secure_only:
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        elif self.certificates is not None:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity,
                                        ua.SecurityPolicyType.Basic256Sha256_Sign,
                                        ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        if self.trusted_clients:
            trusted = {Path(p).read_bytes() for p in self.trusted_clients}

            async def validate(cert: Any, app: ua.ApplicationDescription) -> None:
                if cert.public_bytes(Encoding.DER) not in trusted:
                    self.rejected_certificates += 1
                    raise BadCertificateUntrusted()  # type: ignore[no-untyped-call]

            server.set_certificate_validator(validate)
        idx = await server.register_namespace(self.namespace_uri)
        assert idx == self.namespace, idx
        press = await server.nodes.objects.add_object(f"ns={idx};s=Press1", ua.QualifiedName("Press1", idx))
        self._nodes = {}
        for var in VARIABLES.values():
            node = await press.add_variable(node_id(var.name, idx), ua.QualifiedName(var.name, idx),
                                            ua.Variant(var.value, var.variant_type))
            if var.name == "Pressure":
                await node.add_property(f"ns={idx};s=Press1.Pressure.EURange", ua.QualifiedName("EURange", 0),
                                        ua.Range(Low=EURANGE[0], High=EURANGE[1]))
            self._nodes[var.name] = node
        self._server = server
        for var in VARIABLES.values():
            if var.status != "Good":
                await self._write(var.name, var.value, var.status, None)
        return server

    async def _stop(self) -> None:
        if self._server is not None and self._listening:
            self._listening = False
            await self._server.stop()

    def __enter__(self) -> AsyncuaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- node-opcua server


def peers_dir() -> Path:
    return Path(os.environ.get(PEERS_CACHE_ENV) or Path.home() / ".cache" / "twinedge-peers") / "node"


def _installed_version(folder: Path) -> str | None:
    package = folder / "node_modules" / "node-opcua" / "package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_node_opcua(timeout: float = 600.0) -> tuple[Path | None, str]:
    """(node_modules folder, "") with node-opcua installed, or (None, why not)."""
    node = shutil.which("node")
    if node is None:
        return None, "Node.js is not installed (apt-get install nodejs npm)"
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"node --version failed: {exc}"
    try:
        major = int(version.lstrip("v").split(".")[0])
    except ValueError:
        return None, f"cannot read the Node.js version {version!r}"
    if major < 18:
        return None, f"node-opcua {NODE_OPCUA_VERSION} needs Node.js >= 18, found {version}"
    folder = peers_dir()
    if _installed_version(folder) == NODE_OPCUA_VERSION:
        return folder / "node_modules", ""
    npm = shutil.which("npm")
    if npm is None:
        return None, "npm is not installed (apt-get install npm), so node-opcua cannot be installed"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the Modbus peer installs into the same folder
        if _installed_version(folder) != NODE_OPCUA_VERSION:
            try:
                done = subprocess.run(
                    [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--save-exact",
                     "--loglevel=error", f"node-opcua@{NODE_OPCUA_VERSION}"],
                    capture_output=True, text=True, timeout=timeout, cwd=folder, stdin=subprocess.DEVNULL)
            except (OSError, subprocess.SubprocessError) as exc:
                return None, f"npm install node-opcua@{NODE_OPCUA_VERSION} failed: {exc}"
            if done.returncode != 0 or _installed_version(folder) != NODE_OPCUA_VERSION:
                tail = (done.stderr or done.stdout).strip()[-600:]
                return None, f"npm install node-opcua@{NODE_OPCUA_VERSION} into {folder} failed: {tail}"
    return folder / "node_modules", ""


class NodeOpcuaServer:
    """``tests/peers/opcua_server.js`` on node-opcua, listening on 127.0.0.1:`port`."""

    host = "127.0.0.1"
    namespace = 1

    def __init__(self, node_modules: Path, port: int | None = None, workdir: Path | None = None,
                 pki: Path | None = None) -> None:
        self.node_modules = node_modules
        self.port = port or free_port()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="node-opcua-")
            workdir = Path(self._tmp.name)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        #: node-opcua's certificate stores; reusing one saves generating a server certificate each start.
        self.pki = pki or self.workdir / "pki"
        self.endpoint = f"opc.tcp://{self.host}:{self.port}/twinedge/test"
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._output: list[str] = []
        self._next_id = 0

    def node_id(self, name: str) -> str:
        return node_id(name, self.namespace)

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._output.append(line)
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"node-opcua server: no {prefix!r} within {timeout} s:\n{''.join(self._output)}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"node-opcua server exited:\n{''.join(self._output)}")
            if line.startswith(prefix):
                return line

    def start(self, timeout: float = 60.0) -> None:
        env = dict(os.environ, NODE_PATH=str(self.node_modules))
        self._proc = subprocess.Popen(
            ["node", str(JS_SERVER), "--port", str(self.port), "--pki", str(self.pki)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            cwd=self.workdir)
        threading.Thread(target=self._read, args=(self._proc,), daemon=True).start()
        try:
            self._expect("READY", timeout)
        except BaseException:
            self.stop()
            raise

    def set(self, name: str, value: Any, status: str = "Good", timeout: float = 10.0) -> None:
        """Set a variable's value and status (a StatusCodes name); returns once the server has it."""
        assert self._proc is not None and self._proc.stdin is not None
        self._next_id += 1
        command = {"id": self._next_id, "cmd": "set", "name": name, "value": value, "status": status}
        self._proc.stdin.write(json.dumps(command) + "\n")
        self._proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            line = self._expect("", max(0.01, deadline - time.monotonic()))
            if line == f"ACK {self._next_id}":
                return
            if line.startswith(f"ERR {self._next_id} "):
                raise ValueError(line)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdin is not None:
            proc.stdin.close()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def output(self) -> str:
        return "".join(self._output)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(name="opcua_certificates", scope="module")
def opcua_certificates_fixture(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A self-signed client and server certificate (asyncua's tooling), shared by a module."""
    return make_certificates(tmp_path_factory.mktemp("opcua-pki"))


@pytest.fixture(name="asyncua_server", scope="module")
def asyncua_server_fixture(opcua_certificates: Certificates) -> Iterator[AsyncuaServer]:
    """A running asyncua server shared by a module: security None, and Basic256Sha256 Sign and
    SignAndEncrypt with `opcua_certificates`; anonymous or user operator/secret. A test that stops it
    must start it again."""
    server = AsyncuaServer(certificates=opcua_certificates)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(name="make_asyncua_server")
def make_asyncua_server_fixture() -> Iterator[Callable[..., AsyncuaServer]]:
    """A factory of started asyncua servers (keyword options of AsyncuaServer), closed after the test."""
    servers: list[AsyncuaServer] = []

    def make(**options: Any) -> AsyncuaServer:
        server = AsyncuaServer(**options)
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.close()


@pytest.fixture(name="node_opcua_server", scope="module")
def node_opcua_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeOpcuaServer]:
    """node-opcua running tests/peers/opcua_server.js; skips with the reason when it cannot run."""
    node_modules, reason = ensure_node_opcua()
    if node_modules is None:
        pytest.skip(f"node-opcua peer unavailable: {reason}")
    server = NodeOpcuaServer(node_modules, workdir=tmp_path_factory.mktemp("node-opcua"),
                             pki=node_modules.parent.parent / "node-opcua-pki")
    server.start()
    try:
        yield server
    finally:
        server.close()


def _main() -> int:
    """Install the npm peers ahead of the tests (for CI): python -m tests.opcua_peers"""
    folder, reason = ensure_node_opcua()
    if folder is None:
        print(f"node-opcua not installed: {reason}")
        return 1
    print(f"node-opcua {NODE_OPCUA_VERSION} ready in {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
