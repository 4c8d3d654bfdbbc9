"""A real Mosquitto broker for tests (Debian's ``mosquitto`` package: ``apt-get install mosquitto``).

Use the fixture from any test module by importing it (the import is what registers it)::

    from tests.mqtt_broker import MosquittoBroker, mosquitto_broker_fixture  # noqa: F401

    def test_something(mosquitto_broker: MosquittoBroker) -> None:
        ... connect to mosquitto_broker.host, mosquitto_broker.port ...

The fixture skips the test when the ``mosquitto`` binary is absent. The broker listens on
127.0.0.1 on a free port, allows anonymous clients and persists sessions to its temporary folder,
so ``stop()`` then ``start()`` restarts it on the same port with the subscribers' persistent
sessions (``clean_session=False``) intact. :class:`MosquittoBroker` also works without pytest, as a
context manager.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

__all__ = ["MosquittoBroker", "free_port", "mosquitto_binary", "mosquitto_broker_fixture"]


def mosquitto_binary() -> str | None:
    """Path of the mosquitto executable, or None (Debian installs it in /usr/sbin)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry (containers): only root's switch matters
        return "root"


class MosquittoBroker:
    """One mosquitto process on 127.0.0.1:``port`` with its config, log and persistence in ``workdir``."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path | None = None, port: int | None = None, *, persistence: bool = True,
                 binary: str | None = None) -> None:
        exe = binary or mosquitto_binary()
        if exe is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = exe
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="mosquitto-")
            workdir = Path(self._tmp.name)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.persistence = persistence
        self.config_file = self.workdir / "mosquitto.conf"
        self.log_file = self.workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 0",
            # Keep what a persistent-session client misses while it restarts (Mosquitto's default of
            # 1,000 queued messages per client is 9 s at the fault tests' 112 messages/s).
            "max_queued_messages 1000000",
            # Run as the invoking user: as root, mosquitto would otherwise switch to the `mosquitto`
            # user, which cannot write the persistence file into our temporary folder.
            f"user {_user_name()}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        self.config_file.write_text("\n".join(lines) + "\n")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def start(self, timeout: float = 10.0) -> None:
        """Start (or restart) the broker on the same port; returns once it accepts connections."""
        if self.running:
            return
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen([self.binary, "-c", str(self.config_file)], stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode} on port {self.port}:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not accept connections on port {self.port} within {timeout} s:\n"
                           f"{self.log()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker gracefully (SIGTERM: it saves the sessions), killing it after ``timeout``."""
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

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@pytest.fixture(name="mosquitto_broker")
def mosquitto_broker_fixture(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A running Mosquitto broker on a free loopback port, stopped after the test."""
    if mosquitto_binary() is None:
        pytest.skip("the mosquitto binary is absent: install Debian's broker with `apt-get install mosquitto`")
    broker = MosquittoBroker(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.close()
