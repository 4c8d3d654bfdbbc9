"""InfluxDB 1.x sink: the same line protocol as the 2.x sink, through 1.x's ``/write`` endpoint.

Requests: ``POST {url}/write?db={database}[&rp={retention_policy}]&precision=ns`` with a line-protocol body
(gzip-compressed with ``gzip: true``), authenticated with HTTP basic auth (``username`` + the password from
``password_env``) or ``Authorization: Token <token>`` (``token_env``; InfluxDB 1.8+ and the 1.x-compatible
APIs of 2.x/3.x). With ``create_database: true`` the sink sends ``CREATE DATABASE`` (``POST /query``) before
its first write (idempotent in InfluxDB; retried until it works if the server is down at start).

Schema, escaping and idempotence: see :mod:`edge_agent.sinks.line_protocol`. Errors: as in
:mod:`edge_agent.sinks.influxdb` (400/413/422 -> SinkRejected, the rest SinkError; a missing database
answers 404 -> SinkError with a hint).

Only the standard library is used (``http.client`` with one kept-alive connection, in a worker thread).

Configuration::

    - type: influxdb_v1
      name: history
      url: http://localhost:8086
      database: twinedge
      username: agent
      password_env: INFLUX_PASSWORD
      create_database: true
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import http.client
import json
import os
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge_agent.sinks.base import SinkError
from edge_agent.sinks.influxdb import (
    InfluxConfigError,
    LineProtocolSink,
    check_url,
    classify_status,
    env_secret,
)
from edge_agent.sinks.line_protocol import LineProtocolError, check_measurement

__all__ = ["InfluxDbV1Sink", "InfluxDbV1SinkConfig", "create"]


class InfluxDbV1SinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["influxdb_v1"]
    name: str = Field(min_length=1)
    url: str
    database: str = Field(min_length=1)
    retention_policy: str | None = Field(default=None, min_length=1)
    username: str | None = Field(default=None, min_length=1)
    #: Name of the environment variable holding the password (with ``username``).
    password_env: str | None = Field(default=None, min_length=1)
    #: Name of the environment variable holding a token (instead of username/password).
    token_env: str | None = Field(default=None, min_length=1)
    create_database: bool = False
    measurement: str = "twinedge"
    batch_size: int = Field(default=5_000, ge=1)
    timeout: float = Field(default=10.0, gt=0)
    gzip: bool = False
    ca_file: Path | None = None
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_url(v)

    @field_validator("measurement")
    @classmethod
    def _measurement(cls, v: str) -> str:
        try:
            return check_measurement(v)
        except LineProtocolError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _auth(self) -> Self:
        if self.token_env is not None and (self.username is not None or self.password_env is not None):
            raise ValueError("give either token_env or username/password_env, not both")
        if self.password_env is not None and self.username is None:
            raise ValueError("password_env needs username")
        return self


class _Http:
    """One kept-alive HTTP(S) connection, used by one thread at a time."""

    def __init__(self, url: str, timeout: float, context: ssl.SSLContext | None) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.https else 80)
        self.base = parts.path.rstrip("/")
        self.timeout = timeout
        self.context = context
        self.url = url
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def request(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """(status, body); raises SinkError when the server cannot be reached or the connection breaks."""
        with self._lock:
            for attempt in (1, 2):
                reused = self._conn is not None
                conn = self._conn or self._connect()
                self._conn = None
                try:
                    conn.request(method, self.base + path, body=body, headers=dict(headers))
                    resp = conn.getresponse()
                    data = resp.read()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                    conn.close()
                    if reused and attempt == 1:  # the server closed an idle kept-alive connection: once more
                        continue
                    raise SinkError(f"cannot reach InfluxDB at {self.url}: {exc}") from None
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    raise SinkError(f"cannot reach InfluxDB at {self.url}: {exc or type(exc).__name__}") from None
                if resp.will_close:
                    conn.close()
                else:
                    self._conn = conn
                return resp.status, data
        raise SinkError(f"cannot reach InfluxDB at {self.url}")  # not reached


class InfluxDbV1Sink(LineProtocolSink):
    """Writes to InfluxDB 1.x (see the module docstring)."""

    def __init__(self, config: InfluxDbV1SinkConfig, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config.name, config.measurement, config.batch_size)
        self.config = config
        env: Mapping[str, str] = os.environ if environ is None else environ
        self._headers: dict[str, str] = {"Content-Type": "text/plain; charset=utf-8"}
        if config.gzip:
            self._headers["Content-Encoding"] = "gzip"
        token = env_secret(env, config.token_env, "token_env")
        password = env_secret(env, config.password_env, "password_env")
        if token is not None:
            self._auth = f"Token {token}"
        elif config.username is not None:
            raw = f"{config.username}:{password or ''}".encode()
            self._auth = "Basic " + base64.b64encode(raw).decode("ascii")
        else:
            self._auth = ""
        if self._auth:
            self._headers["Authorization"] = self._auth
        context: ssl.SSLContext | None = None
        if config.url.startswith("https://"):
            if config.ca_file is not None and not config.ca_file.is_file():
                raise InfluxConfigError(f"ca_file {config.ca_file} does not exist: give a PEM file, or remove it")
            context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
            if not config.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        self._http = _Http(config.url, config.timeout, context)
        params = {"db": config.database, "precision": "ns"}
        if config.retention_policy:
            params["rp"] = config.retention_policy
        self._write_path = "/write?" + urlencode(params)
        self._db_pending = config.create_database

    async def open(self) -> None:
        """Create the database if asked; if the server is down, that is retried before the next write."""
        if self._db_pending:
            with contextlib.suppress(SinkError):
                await asyncio.to_thread(self._create_database)

    async def _ready(self) -> None:
        if self._db_pending:
            await asyncio.to_thread(self._create_database)

    async def close(self) -> None:
        self._http.close()

    def _create_database(self) -> None:
        cfg = self.config
        name = cfg.database.replace("\\", "\\\\").replace('"', '\\"')
        body = urlencode({"q": f'CREATE DATABASE "{name}"'}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self._auth:
            headers["Authorization"] = self._auth
        status, data = self._http.request("POST", "/query", body, headers)
        error = ""
        if status == 200:
            try:
                results = json.loads(data).get("results", [])
                error = next((r["error"] for r in results if isinstance(r, dict) and r.get("error")), "")
            except (ValueError, AttributeError):
                error = f"unexpected answer {data[:200]!r}"
        else:
            error = f"HTTP {status}: {data[:300].decode('utf-8', 'replace')}"
        if error:
            raise SinkError(f"cannot create database {cfg.database!r} on {cfg.url}: {error}")
        self._db_pending = False

    def _post(self, body: bytes) -> None:
        cfg = self.config
        payload = gzip.compress(body, compresslevel=1) if cfg.gzip else body
        status, data = self._http.request("POST", self._write_path, payload, self._headers)
        if status in (200, 204):
            return
        text = data[:300].decode("utf-8", "replace").strip()
        hint = ""
        if status == 404:
            hint = f" (does database {cfg.database!r} exist? create it, or set create_database: true)"
        elif status in (401, 403):
            hint = " (check username/password_env or token_env)"
        raise classify_status(status, f"InfluxDB at {cfg.url} answered {status} to /write: {text}{hint}")


def create(config: InfluxDbV1SinkConfig, environ: Mapping[str, str] | None = None) -> InfluxDbV1Sink:
    """The sink for ``config``; raises InfluxConfigError for a missing password/token variable or CA file."""
    return InfluxDbV1Sink(config, environ)
