"""A real twin server for tests: uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from twin_server.app import create_app
from twin_server.config import ServerConfig
from twin_server.fastlane import FastLane
from twin_server.http_protocol import protocol_for
from twin_server.storage.base import Storage
from twin_server.uvicorn_server import TwinUvicornServer

REPRESENTATIVE = Path(__file__).resolve().parent / "cases" / "server" / "representative.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    base: str
    """e.g. http://127.0.0.1:PORT/api/v3.0"""
    config: ServerConfig
    lane: FastLane


@contextmanager
def run_server(config: ServerConfig, *, storage: Storage | None = None, environ: dict[str, str] | None = None,
               keep_alive: int = 5) -> Iterator[RunningServer]:
    """`keep_alive`: seconds an idle connection stays open (uvicorn's default)."""
    config = config.model_copy(update={"host": "127.0.0.1", "port": free_port()})
    app = create_app(config, storage=storage, environ=environ or {})
    assert app.fast_lane is not None
    # The HTTP protocol `twinedge server` runs (the fast lane's calls answered without ASGI).
    server = TwinUvicornServer(uvicorn.Config(app, host=config.host, port=config.port, log_level="warning",
                                              lifespan="on", timeout_graceful_shutdown=2,
                                              timeout_keep_alive=keep_alive,
                                              http=protocol_for(app.fast_lane)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield RunningServer(f"http://127.0.0.1:{config.port}/api/v3.0", config, app.fast_lane)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
