"""Northbound MQTT sink: publishes each batch of element values to a broker.

Messages
    One message per submodel per batch, on the topic ``{prefix}/twins/{B}/values`` where ``{prefix}`` is
    ``topic_prefix`` (default ``twinedge``) and ``{B}`` the submodel id as base64url of its UTF-8 bytes
    without ``=`` padding (as in the AAS HTTP API paths). The payload is UTF-8 JSON::

        {"submodelId": "urn:twinedge:sm:press-01:OperationalData:1.0",
         "values": [{"idShortPath": "Hydraulics.OilTemperature", "value": 48.7, "quality": "good",
                     "time": "2025-11-25T12:00:00.123456Z"}, ...]}

    ``values`` keeps the batch's order (oldest first, several entries per element if the batch holds
    several samples of it); ``value`` is a number, string, boolean or null (null for BAD samples and
    for NaN/infinite numbers); ``quality`` is ``good``, ``uncertain`` or ``bad``; ``time`` is the
    sample's source time, ISO 8601 UTC with ``Z`` (naive times are taken as UTC).

Delivery
    QoS 1 by default. :meth:`MqttSink.write` returns only when the broker has acknowledged every message
    of the batch (PUBACK; for QoS 2 PUBCOMP; for QoS 0 when written to the socket), so at-least-once
    holds: a consumer can see a value twice (after a retry) but never miss one. It raises SinkError
    when the broker is unreachable (after waiting ``connect_timeout`` for a connection), when the
    connection drops before all acks arrive, or after ``timeout`` seconds without them. paho's network
    thread reconnects by itself (``reconnect_min_delay`` doubling to ``reconnect_max_delay``), so the
    next ``write`` after an outage works without a new sink.

Configuration (one entry of the agent's ``sinks``)::

    - type: mqtt
      name: northbound
      host: broker.local
      topic_prefix: plant1/twinedge
      qos: 1
      username: agent
      password_env: NORTHBOUND_MQTT_PASSWORD
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any, Literal, Self

import orjson
from pydantic import Field, field_validator, model_validator

from aas_models.ids import b64url_encode
from aas_models.timeseries.base import Sample
from edge_agent.connectors.mqtt import MqttConnection, default_client_id, make_client
from edge_agent.sinks.base import Sink, SinkError

if TYPE_CHECKING:
    from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

__all__ = ["MqttSink", "MqttSinkConfig", "create", "values_topic"]

log = logging.getLogger(__name__)

_JSON_OPTS = orjson.OPT_UTC_Z


class MqttSinkConfig(MqttConnection):
    type: Literal["mqtt"]
    name: str = Field(min_length=1)
    topic_prefix: str = "twinedge"
    qos: Literal[0, 1, 2] = 1
    retain: bool = False
    #: Seconds to wait for the broker's acks of one batch.
    timeout: float = Field(default=10.0, gt=0)
    #: Seconds ``write`` waits for a connection before it gives up with SinkError.
    connect_timeout: float = Field(default=2.0, ge=0)
    reconnect_min_delay: int = Field(default=1, ge=1)
    reconnect_max_delay: int = Field(default=30, ge=1)
    #: Messages sent and not yet acknowledged, at most (paho queues the rest).
    max_inflight: int = Field(default=100, ge=1)

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or v.startswith(("/", "$")) or v.endswith("/") or "//" in v or set(v) & {"+", "#", "\x00"}:
            raise ValueError("topic_prefix must be topic levels like 'twinedge' or 'plant1/twinedge': no wildcards "
                             "(+ #), no leading '$' or '/', no trailing or doubled '/'")
        return v

    @model_validator(mode="after")
    def _delays(self) -> Self:
        if self.reconnect_max_delay < self.reconnect_min_delay:
            raise ValueError("reconnect_max_delay must be >= reconnect_min_delay")
        return self


def values_topic(prefix: str, submodel_id: str) -> str:
    return f"{prefix}/twins/{b64url_encode(submodel_id)}/values"


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


def encode_batch(prefix: str, samples: Sequence[Sample]) -> list[tuple[str, bytes]]:
    """The (topic, payload) messages of a batch: one per submodel, in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in samples:
        t = s.time
        if t.tzinfo is not UTC:
            t = t.astimezone(UTC) if t.tzinfo is not None else t.replace(tzinfo=UTC)
        groups.setdefault(s.key.submodel_id, []).append(
            {"idShortPath": s.key.path, "value": _json_value(s.value), "quality": str(s.quality), "time": t})
    return [(values_topic(prefix, sm), orjson.dumps({"submodelId": sm, "values": values}, option=_JSON_OPTS))
            for sm, values in groups.items()]


class MqttSink(Sink):
    """Publishes batches northbound over MQTT (see the module docstring for topics and payloads)."""

    def __init__(self, config: MqttSinkConfig, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config.name)
        self.config = config
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self.client_id = config.client_id or default_client_id("sink", config.name)
        make_client(config, self._environ, client_id=self.client_id, clean=True)  # fail now on config errors
        self._client: Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected: asyncio.Event | None = None
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._connects = 0
        self._last_reason = "not connected yet"
        self.connected = False

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        """Start connecting in the background (returns at once; the broker may be down)."""
        if self._client is not None:
            return
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        self._connected = asyncio.Event()
        client = make_client(cfg, self._environ, client_id=self.client_id, clean=True)
        client.reconnect_delay_set(cfg.reconnect_min_delay, cfg.reconnect_max_delay)
        client.max_inflight_messages_set(cfg.max_inflight)
        client.on_connect = self._cb_connect
        client.on_disconnect = self._cb_disconnect
        client.on_publish = self._cb_publish
        self._client = client
        client.connect_async(cfg.host, cfg.broker_port, cfg.keepalive)
        client.loop_start()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        await asyncio.to_thread(self._shutdown, client)
        self._fail_waiting("the sink was closed")
        self.connected = False

    @staticmethod
    def _shutdown(client: Client) -> None:
        try:
            client.disconnect()
        finally:
            client.loop_stop()

    # -- paho thread ----------------------------------------------------------------------------
    def _call(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # loop closed
                loop.call_soon_threadsafe(fn, *args)

    def _cb_connect(self, client: Client, userdata: Any, flags: ConnectFlags, reason: ReasonCode,
                    properties: Properties | None) -> None:
        self._call(self._on_connect, not reason.is_failure, str(reason))

    def _cb_disconnect(self, client: Client, userdata: Any, flags: DisconnectFlags, reason: ReasonCode,
                       properties: Properties | None) -> None:
        self._call(self._on_disconnect, str(reason))

    def _cb_publish(self, client: Client, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Properties | None) -> None:
        self._call(self._on_published, mid, str(reason) if reason.is_failure else None)

    # -- event loop -----------------------------------------------------------------------------
    def _on_connect(self, ok: bool, reason: str) -> None:
        address = self.config.address
        if not ok:
            self._last_reason = f"{address} refused the connection: {reason}"
            log.warning("mqtt sink %s: %s", self.name, self._last_reason)
            return
        self._connects += 1
        if self._connects > 1:
            self.stats.reconnects += 1
        self.connected = True
        if self._connected is not None:
            self._connected.set()
        log.info("mqtt sink %s: connected to %s", self.name, address)

    def _on_disconnect(self, reason: str) -> None:
        was = self.connected
        self.connected = False
        if self._connected is not None:
            self._connected.clear()
        self._last_reason = f"lost the connection to {self.config.address}: {reason}"
        if was:
            log.warning("mqtt sink %s: %s", self.name, self._last_reason)
        self._fail_waiting(self._last_reason)

    def _on_published(self, mid: int, failure: str | None) -> None:
        fut = self._waiting.pop(mid, None)
        if fut is None or fut.done():
            return
        if failure is None:
            fut.set_result(None)
        else:
            fut.set_exception(SinkError(f"{self.config.address} refused a message: {failure}"))

    def _fail_waiting(self, reason: str) -> None:
        waiting, self._waiting = self._waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(SinkError(reason))

    def _error(self, text: str) -> SinkError:
        self.stats.errors += 1
        self.stats.last_error = text
        return SinkError(text)

    async def write(self, samples: Sequence[Sample]) -> None:
        from paho.mqtt.enums import MQTTErrorCode

        if not samples:
            return
        if self._client is None:
            await self.open()
        client, connected = self._client, self._connected
        assert client is not None and connected is not None and self._loop is not None
        cfg = self.config
        if not self.connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(connected.wait(), cfg.connect_timeout)
            if not self.connected:
                raise self._error(f"not connected to {cfg.address} ({self._last_reason}); retry later")
        messages = encode_batch(cfg.topic_prefix, samples)
        futures: list[asyncio.Future[None]] = []
        try:
            # No await in this loop: the acks are handled on the event loop, so none can arrive before
            # its future is registered.
            for topic, payload in messages:
                info = client.publish(topic, payload, qos=cfg.qos, retain=cfg.retain)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    raise self._error(f"cannot publish to {topic} on {cfg.address}: {info.rc.name}; retry later")
                fut = self._loop.create_future()
                self._waiting[info.mid] = fut
                futures.append(fut)
            try:
                await asyncio.wait_for(asyncio.gather(*futures), cfg.timeout)
            except TimeoutError:
                raise self._error(f"{cfg.address} did not acknowledge {len(messages)} message(s) within "
                                  f"{cfg.timeout} s") from None
            except SinkError as exc:
                raise self._error(str(exc)) from None
        finally:
            for fut in futures:
                if not fut.done():
                    fut.cancel()
                elif not fut.cancelled():
                    fut.exception()  # retrieved: no "exception was never retrieved" warnings
            if self._waiting:
                ours = {id(f) for f in futures}
                self._waiting = {m: f for m, f in self._waiting.items() if id(f) not in ours}
        self.stats.written += len(samples)
        self.stats.batches += 1


def create(config: MqttSinkConfig, environ: Mapping[str, str] | None = None) -> MqttSink:
    """The sink for ``config``; raises MqttConfigError for a missing password variable or TLS file."""
    return MqttSink(config, environ)
