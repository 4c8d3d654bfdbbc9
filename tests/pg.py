"""A throwaway PostgreSQL server for tests (a helper module and pytest plugin, not a test file).

Use it with `pytest_plugins = ("tests.pg",)` in a test module, then request the session fixture
`postgres_dsn`. It runs Debian's PostgreSQL binaries (package `postgresql`, found under
/usr/lib/postgresql/*/bin or on PATH) in a temporary directory, listening on a free loopback port
and on a unix socket in that directory, with durability switched off for speed; it is stopped and
removed at the end of the session. Tests skip when no PostgreSQL binaries are installed.

Set TWINEDGE_TEST_REQUIRE_POSTGRES=1 (CI) to make a missing PostgreSQL a failure instead of a skip.
Set TWINEDGE_TEST_POSTGRES_DSN to use an existing server instead: its tables named in
`twin_server.storage.postgres.TABLES` are dropped by the tests, so point it at a scratch database.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

DSN_ENV = "TWINEDGE_TEST_POSTGRES_DSN"
#: Set (e.g. in CI) to fail instead of skipping when PostgreSQL cannot be run.
REQUIRE_ENV = "TWINEDGE_TEST_REQUIRE_POSTGRES"
DATABASE = "twinedge_test"

_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 100
logging_collector = off
"""


def find_bin_dir() -> Path | None:
    """The directory holding `initdb` and `pg_ctl`, newest PostgreSQL version first."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.parent.name))

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path))
    for initdb in candidates:
        if (initdb.parent / "pg_ctl").exists() and (initdb.parent / "postgres").exists():
            return initdb.parent
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: PostgreSQL refuses to run as root, so root hands it to `postgres`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    _unavailable("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


class PostgresServer:
    """One initdb'd cluster in a temporary directory; `start()`, `dsn`, `stop()`."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.user = _server_user()
        # Not pytest's tmp_path: as root that lies under a 0700 directory the server user cannot enter.
        self.root = Path(tempfile.mkdtemp(prefix="twinedge-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.started = False

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user.pw_name, "--", *command]
        result = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} exited with {result.returncode}\n{result.stdout}\n{result.stderr}\n{log}"
            )

    def start(self) -> None:
        self.sockets.mkdir()
        if self.user is not None:
            for path in (self.root, self.sockets):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(_SETTINGS.format(port=self.port, sockets=self.sockets))
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        self.started = True

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
                self.started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a throwaway server with an empty database `twinedge_test`, yield its DSN, then stop it."""
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed: pip install 'psycopg[binary]'")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _unavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH: "
            f"install Debian's 'postgresql' package, or set {DSN_ENV}"
        )
    server = PostgresServer(bin_dir)
    try:
        server.start()
        with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        yield server.dsn(DATABASE)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of an empty PostgreSQL database for this test session."""
    external = os.environ.get(DSN_ENV)
    if external:
        yield external
        return
    with running_postgres() as dsn:
        yield dsn
