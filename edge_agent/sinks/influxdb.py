"""InfluxDB 2.x / 3.x sink: writes samples as line protocol through ``/api/v2/write``.

Uses ``influxdb-client`` (its WriteApi in synchronous mode, called in a worker thread so the event loop
never blocks; the client's own retries are off because the agent's buffer retries). InfluxDB 3 takes the
same endpoint with ``bucket`` = database (``org`` is ignored there). InfluxDB 1.x has no such endpoint
before 1.8: use :mod:`edge_agent.sinks.influxdb_v1` for it.

The schema (measurement, tags ``path`` and ``submodel_id``, fields ``value``/``value_bool``/``value_str``
and ``quality``, nanosecond time from the sample's source time) is described in
:mod:`edge_agent.sinks.line_protocol`; a sample written twice overwrites itself, so retried batches never
duplicate points.

Configuration::

    - type: influxdb
      name: history
      url: http://influxdb.local:8086
      org: acme
      bucket: twinedge
      token_env: INFLUX_TOKEN     # the variable's name; the token never goes in the file
      measurement: twinedge
      batch_size: 5000            # points per HTTP request
      timeout: 10                 # seconds per request

Errors: 400, 413 and 422 (bad line protocol, field type conflict, too large) raise SinkRejected (a retry
cannot help; the runtime logs and skips the batch); everything else (down, timeout, 5xx, 401/403/404 that
a fix of the server or config will cure) raises SinkError, so nothing is dropped meanwhile. Samples that
line protocol cannot carry (see line_protocol) are skipped, counted in ``skipped`` and logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aas_models.timeseries.base import Sample
from edge_agent.sinks.base import Sink, SinkError, SinkRejected
from edge_agent.sinks.line_protocol import LineProtocolError, check_measurement, encode_samples

if TYPE_CHECKING:
    from influxdb_client.client.influxdb_client import InfluxDBClient
    from influxdb_client.client.write_api import WriteApi

__all__ = ["InfluxConfigError", "InfluxDbSink", "InfluxDbSinkConfig", "LineProtocolSink", "classify_status", "create"]

log = logging.getLogger(__name__)

#: HTTP statuses a retry cannot fix: the batch itself is wrong.
REJECT_STATUSES = frozenset({400, 413, 422})


class InfluxConfigError(ValueError):
    """An InfluxDB sink configuration that cannot work as given; the message says what to change."""


def check_url(v: str) -> str:
    if not v.startswith(("http://", "https://")):
        raise ValueError("url must start with http:// or https://, e.g. http://localhost:8086")
    return v.rstrip("/")


def classify_status(status: int, text: str) -> SinkError:
    """SinkRejected for statuses a retry cannot fix, SinkError for the rest."""
    if status in REJECT_STATUSES:
        return SinkRejected(text)
    return SinkError(text)


def env_secret(environ: Mapping[str, str], name: str | None, what: str) -> str | None:
    if name is None:
        return None
    value = environ.get(name)
    if value is None:
        raise InfluxConfigError(f"{what} names the environment variable {name!r}, which is not set: export it, "
                                f"or remove {what}")
    return value


class InfluxDbSinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["influxdb"]
    name: str = Field(min_length=1)
    url: str
    #: InfluxDB 2 organisation (ignored by InfluxDB 3).
    org: str = ""
    #: InfluxDB 2 bucket, or InfluxDB 3 database.
    bucket: str = Field(min_length=1)
    #: Name of the environment variable holding the API token.
    token_env: str | None = Field(default=None, min_length=1)
    measurement: str = "twinedge"
    #: Points per HTTP request.
    batch_size: int = Field(default=5_000, ge=1)
    #: Seconds per request.
    timeout: float = Field(default=10.0, gt=0)
    gzip: bool = False
    #: CA bundle (PEM) for https; None uses the system's trusted CAs.
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


class LineProtocolSink(Sink):
    """What the InfluxDB sinks share: batching, error accounting, skipped samples."""

    def __init__(self, name: str, measurement: str, batch_size: int) -> None:
        super().__init__(name)
        self.measurement = measurement
        self.batch_size = batch_size
        #: Samples left out because line protocol cannot carry them (see line_protocol).
        self.skipped = 0

    def _post(self, body: bytes) -> None:
        """Send one request body (blocking, in a worker thread); raise SinkError/SinkRejected."""
        raise NotImplementedError

    async def _ready(self) -> None:
        """Make sure the client exists (and the database, for 1.x); raise SinkError if it cannot."""

    def _write_sync(self, samples: Sequence[Sample]) -> tuple[int, list[tuple[Sample, str]]]:
        points = 0
        skipped: list[tuple[Sample, str]] = []
        size = self.batch_size
        for i in range(0, len(samples), size):
            encoded = encode_samples(samples[i:i + size], self.measurement)
            skipped.extend(encoded.skipped)
            if encoded.points:
                self._post(encoded.body)
                points += encoded.points
        return points, skipped

    async def write(self, samples: Sequence[Sample]) -> None:
        if not samples:
            return
        try:
            await self._ready()
            points, skipped = await asyncio.to_thread(self._write_sync, samples)
        except SinkError as exc:
            self.stats.errors += 1
            if isinstance(exc, SinkRejected):
                self.stats.rejected += 1
            self.stats.last_error = str(exc)
            raise
        if skipped:
            self.skipped += len(skipped)
            self.stats.last_error = (f"skipped {len(skipped)} sample(s) that line protocol cannot carry, "
                                     f"e.g. {skipped[0][1]}")
            log.warning("influxdb sink %s: %s", self.name, self.stats.last_error)
        self.stats.written += points
        self.stats.batches += 1


class InfluxDbSink(LineProtocolSink):
    """Writes to InfluxDB 2.x/3.x (see the module docstring)."""

    def __init__(self, config: InfluxDbSinkConfig, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config.name, config.measurement, config.batch_size)
        self.config = config
        env: Mapping[str, str] = os.environ if environ is None else environ
        self._token = env_secret(env, config.token_env, "token_env")
        if config.ca_file is not None and not config.ca_file.is_file():
            raise InfluxConfigError(f"ca_file {config.ca_file} does not exist: give a PEM file, or remove ca_file")
        self._client: InfluxDBClient | None = None
        self._write_api: WriteApi | None = None

    async def open(self) -> None:
        if self._client is None:
            self._client, self._write_api = await asyncio.to_thread(self._make_client)

    async def _ready(self) -> None:
        if self._write_api is None:
            try:
                await self.open()
            except Exception as exc:  # the client itself cannot be built (bad URL, TLS file)
                raise SinkError(f"cannot create the InfluxDB client for {self.config.url}: {exc}") from exc

    def _make_client(self) -> tuple[InfluxDBClient, WriteApi]:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        cfg = self.config
        kwargs: dict[str, Any] = {"verify_ssl": cfg.verify_tls}
        if cfg.ca_file is not None:
            kwargs["ssl_ca_cert"] = str(cfg.ca_file)
        # An empty token sends no Authorization header (InfluxDB 3 Core without auth, tests).
        client = InfluxDBClient(url=cfg.url, token=self._token or "", org=cfg.org,
                                timeout=int(cfg.timeout * 1000), enable_gzip=cfg.gzip, **kwargs)
        return client, client.write_api(write_options=SYNCHRONOUS)

    async def close(self) -> None:
        client, self._client, self._write_api = self._client, None, None
        if client is not None:
            await asyncio.to_thread(client.close)

    def _post(self, body: bytes) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        cfg = self.config
        assert self._write_api is not None
        try:
            self._write_api.write(bucket=cfg.bucket, org=cfg.org, record=body,
                                  write_precision=cast(WritePrecision, WritePrecision.NS))
        except ApiException as exc:
            detail = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body or "")
            raise classify_status(int(exc.status or 0), f"InfluxDB at {cfg.url} answered {exc.status} "
                                  f"{exc.reason}: {detail[:300]}") from None
        except (HTTPError, OSError) as exc:
            raise SinkError(f"cannot reach InfluxDB at {cfg.url}: {exc}") from None


def create(config: InfluxDbSinkConfig, environ: Mapping[str, str] | None = None) -> InfluxDbSink:
    """The sink for ``config``; raises InfluxConfigError for a missing token variable or CA file."""
    return InfluxDbSink(config, environ)
