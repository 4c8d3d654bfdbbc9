"""OPC UA connector on the asyncua client: subscriptions with deadband, batched polling, own reconnects.

Configuration (one source of an agent config)::

    type: opcua
    name: press1
    endpoint: opc.tcp://10.0.0.5:4840
    security_policy: Basic256Sha256        # None | Basic256Sha256
    security_mode: SignAndEncrypt          # None | Sign | SignAndEncrypt
    certificate: pki/agent-cert.der        # client certificate (DER or PEM) and its key
    private_key: pki/agent-key.pem
    server_certificate: pki/press1.der     # optional: pin the server's certificate
    username: agent
    password_env: PRESS1_PASSWORD          # the password comes from this environment variable
    nodes:
      - {signal: oil_temp, node_id: "ns=2;s=Press1.OilTemperature", sampling_interval: 500,
         deadband: absolute, deadband_value: 0.5}
      - {signal: strokes, node_id: "ns=2;i=1001", mode: poll, poll_interval: 5}

How it works:

* One subscription carries every `subscribe` node, one monitored item each with its sampling
  interval, queue size and data-change filter (absolute or percent deadband). The deadband is also
  checked here against the last value passed on, so a server that ignores the filter (asyncua's
  own server ignores percent deadbands) still does not flood the agent; a percent deadband needs
  the node's EURange property, as the standard says.
* `poll` nodes are read in one Read request per distinct poll interval.
* Backpressure instead of silent loss: asyncua's publish loop awaits the subscription's
  `publish_callback`, which here waits while too many readings are waiting for `emit`. The
  client then stops asking for notifications and the server keeps them in its monitored-item
  queues; what a full queue discards there is reported by the server (the Overflow bit) and
  counted in `stats.overflows`. asyncua's async-iterator mode, which drops the oldest
  notifications from a 1,000-item queue, is not used.
* Reconnects are done here, not by asyncua (its `auto_reconnect` is off): a lost transport,
  a failed keep-alive probe, a subscription the server ended, a failed read, or a subscription
  that went silent ends the session; every signal is then reported once with quality BAD, the
  connector backs off (`backoff`), connects a new session, re-creates the subscription and
  counts `stats.reconnects`.
* The StatusCode of each value becomes its quality (Good, Uncertain, Bad); a Bad value is passed
  on as None with quality BAD, never as the previous good value. The timestamp is the source
  timestamp, else the server timestamp, else the receive time (UTC).
* A node that cannot be read as configured (unknown node id, not readable, an array or a type
  that is not a number, boolean or string, a filter the server refuses) gets a message in
  `stats.signal_errors[signal]` naming the node id and endpoint, logged once; the other signals
  keep running.
* `OpcUaConnection` (endpoint, security, user) and `open_client` are shared with tag discovery
  (`edge_agent.discovery`), so both connect the same way.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import Subscription
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from aas_models.timeseries.base import Quality, Value
from edge_agent.connectors.base import Connector, ConnectorStats, Emit, Reading
from edge_agent.connectors.opcua_config import (
    DEFAULT_APPLICATION_URI,
    OpcUaConfigError,
    OpcUaConnection,
    OpcUaNode,
    OpcUaSourceConfig,
    prepare,
)

__all__ = [
    "OpcUaConfigError",
    "OpcUaConnection",
    "OpcUaConnector",
    "OpcUaNode",
    "OpcUaSourceConfig",
    "OpcUaStats",
    "close_client",
    "create",
    "describe_error",
    "open_client",
    "prepare",
    "quality_of",
]

log = logging.getLogger(__name__)

#: Readings waiting for `emit` before the subscription and the polls wait (backpressure).
OUTBOX_LIMIT = 10_000
#: Largest batch handed to one `emit` call.
EMIT_BATCH = 5_000
#: Nodes per Read request (servers limit MaxNodesPerRead).
READ_CHUNK = 500
#: A keep-alive from the subscription at least this often (ms), so a silent server is noticed.
KEEPALIVE_MS = 5_000.0
#: How long the server keeps the session (ms) when the agent vanishes.
SESSION_TIMEOUT_MS = 60_000

#: Operation results that mean "this node cannot be read as configured": a per-signal error for
#: the user to fix, not the quality of a value.
_NODE_ERRORS = frozenset({
    StatusCodes.BadNodeIdUnknown,
    StatusCodes.BadNodeIdInvalid,
    StatusCodes.BadAttributeIdInvalid,
    StatusCodes.BadNotReadable,
    StatusCodes.BadUserAccessDenied,
    StatusCodes.BadIndexRangeInvalid,
    StatusCodes.BadDataEncodingUnsupported,
})
_AUTH_ERRORS = frozenset({
    StatusCodes.BadUserAccessDenied,
    StatusCodes.BadIdentityTokenInvalid,
    StatusCodes.BadIdentityTokenRejected,
    StatusCodes.BadUserSignatureInvalid,
})
_INTEGER_TYPES = frozenset({
    ua.VariantType.SByte, ua.VariantType.Byte, ua.VariantType.Int16, ua.VariantType.UInt16,
    ua.VariantType.Int32, ua.VariantType.UInt32, ua.VariantType.Int64, ua.VariantType.UInt64,
})
#: InfoType "DataValue" plus the Overflow bit of a StatusCode (Part 4, 7.39.1).
_OVERFLOW = 0x0400 | 0x0080


def create(config: OpcUaSourceConfig, environ: Mapping[str, str] | None = None) -> OpcUaConnector:
    """The connector for `config`, its password taken from `environ` (default: the process environment)."""
    password, application_uri = prepare(config, environ, f"opcua source {config.name!r}")
    return OpcUaConnector(config, password=password, application_uri=application_uri)


# --------------------------------------------------------------------------- values


@dataclass
class OpcUaStats(ConnectorStats):
    #: Values the server discarded because a monitored item's queue was full (reported by the
    #: Overflow bit): raise `queue_size` or lower the publishing interval if this grows.
    overflows: int = 0
    #: Subscribed values the server delivered although they were within the node's deadband, held
    #: back here: non-zero means the server ignores that filter (asyncua's server ignores percent).
    held_back: int = 0


def quality_of(status: ua.StatusCode | None) -> Quality:
    """Good -> GOOD, Uncertain* -> UNCERTAIN, Bad* -> BAD (from the severity bits)."""
    if status is None or status.is_good():
        return Quality.GOOD
    if status.is_uncertain():
        return Quality.UNCERTAIN
    return Quality.BAD


def _scalar(variant: ua.Variant | None) -> tuple[Value, str | None]:
    """The Python value of a variant, or (None, what it is) when it is not a supported scalar."""
    if variant is None or variant.VariantType in (None, ua.VariantType.Null):
        return None, None
    kind = variant.VariantType
    if variant.is_array or variant.Dimensions:
        return None, f"an array of {kind.name}"
    value = variant.Value
    if kind == ua.VariantType.Boolean:
        return bool(value), None
    if kind in _INTEGER_TYPES:
        return int(value), None
    if kind in (ua.VariantType.Float, ua.VariantType.Double):
        return float(value), None
    if kind == ua.VariantType.String:
        return (None if value is None else str(value)), None
    return None, f"a {kind.name} value"


def _timestamp(dv: ua.DataValue, received: datetime) -> datetime:
    """Source timestamp, else server timestamp, else the receive time; aware UTC."""
    for ts in (dv.SourceTimestamp, dv.ServerTimestamp):
        if ts is not None and ts.year > 1601:  # some servers send 0 (1601-01-01) for "none"
            return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return received


def _status_text(status: ua.StatusCode) -> str:
    try:
        return status.name
    except Exception:  # an unknown code
        return f"0x{status.value:08X}"


@dataclass
class _Signal:
    """Runtime state of one configured node."""

    node: OpcUaNode
    node_id: ua.NodeId
    #: Width of the deadband in the value's unit, checked here too; None: no check.
    band: float | None = None
    #: The last numeric value passed on, the deadband's reference.
    last: float | None = None

    @property
    def name(self) -> str:
        return self.node.signal


class _Outbox:
    """Readings waiting for `emit`, in arrival order. `put` waits while `limit` readings are waiting."""

    def __init__(self, limit: int) -> None:
        self._batches: deque[list[Reading]] = deque()
        self._size = 0
        self._limit = limit
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
        self.closed = False

    def __len__(self) -> int:
        return self._size

    async def put(self, batch: list[Reading]) -> None:
        """Queue `batch` once there is room. If cancelled while waiting, the batch is queued anyway
        (beyond the limit): what the server already delivered is never dropped here."""
        try:
            while self._size >= self._limit:
                await self._not_full.wait()
        except asyncio.CancelledError:
            self.put_nowait(batch)
            raise
        self.put_nowait(batch)

    def put_nowait(self, batch: list[Reading]) -> None:
        if not batch:
            return
        self._batches.append(batch)
        self._size += len(batch)
        self._not_empty.set()
        if self._size >= self._limit:
            self._not_full.clear()

    async def take(self, most: int) -> list[Reading]:
        """The oldest waiting readings (at least one batch, about `most`); [] once closed and empty."""
        while not self._batches:
            if self.closed:
                return []
            await self._not_empty.wait()
        out: list[Reading] = []
        while self._batches and (not out or len(out) + len(self._batches[0]) <= most):
            out.extend(self._batches.popleft())
        self._size -= len(out)
        if not self._batches:
            self._not_empty.clear()
        if self._size < self._limit:
            self._not_full.set()
        return out

    def close(self) -> None:
        self.closed = True
        self._not_empty.set()


def _end(lost: asyncio.Future[str], reason: str) -> None:
    """End one session (the first reason wins)."""
    if not lost.done():
        lost.set_result(reason)


class _Subscription(Subscription):
    """An asyncua subscription whose publish callback converts the notifications itself and waits
    for room in the connector's outbox, so asyncua's publish loop (which awaits this callback) asks
    the server for more only when the agent keeps up."""

    def __init__(self, session: Any, params: ua.CreateSubscriptionParameters, connector: OpcUaConnector,
                 handles: dict[int, _Signal], lost: asyncio.Future[str]) -> None:
        super().__init__(session, params)
        self._connector = connector
        self._handles = handles
        self._lost = lost
        #: True while waiting for room in the outbox: silence is then the agent's, not the server's.
        self.waiting = False

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        self.last_publish_at = time.monotonic()
        message = publish_result.NotificationMessage
        if not message.NotificationData:
            return  # keep-alive
        self.last_sequence_number = int(message.SequenceNumber)
        received = datetime.now(UTC)
        readings: list[Reading] = []
        for notification in message.NotificationData:
            if isinstance(notification, ua.DataChangeNotification):
                for item in notification.MonitoredItems:
                    signal = self._handles.get(item.ClientHandle)
                    if signal is None:
                        continue
                    reading = self._connector._convert(signal, item.Value, received)
                    if reading is not None:
                        readings.append(reading)
            elif isinstance(notification, ua.StatusChangeNotification):
                status = notification.Status
                if status is not None and not status.is_good():
                    _end(self._lost, f"the server ended the subscription ({_status_text(status)})")
        if readings:
            self.waiting = True
            try:
                await self._connector._outbox.put(readings)
            finally:
                self.waiting = False
                self.last_publish_at = time.monotonic()


# --------------------------------------------------------------------------- connector


class OpcUaConnector(Connector):
    """Reads the configured nodes of one OPC UA server; see the module docstring."""

    stats: OpcUaStats

    def __init__(self, config: OpcUaSourceConfig, *, password: str | None = None,
                 application_uri: str = DEFAULT_APPLICATION_URI) -> None:
        super().__init__(config.name)
        self.stats = OpcUaStats()
        self.config = config
        self._password = password
        self._application_uri = application_uri
        self._signals = [_Signal(node, ua.NodeId.from_string(node.node_id)) for node in config.nodes]
        self._outbox = _Outbox(OUTBOX_LIMIT)
        self._logged_errors: dict[str, str] = {}
        self._overflow_logged: set[str] = set()

    def signals(self) -> Sequence[str]:
        return [s.name for s in self._signals]

    # ---- run loop

    async def run(self, emit: Emit) -> None:
        self._outbox = _Outbox(OUTBOX_LIMIT)
        pump = asyncio.create_task(self._pump(emit), name=f"opcua-{self.name}-emit")
        supervisor = asyncio.create_task(self._supervise(), name=f"opcua-{self.name}-session")
        try:
            await asyncio.wait({pump, supervisor}, return_when=asyncio.FIRST_COMPLETED)
            for task in (pump, supervisor):
                if task.done():
                    task.result()  # re-raises what ended it (a bug: neither ends by itself)
            raise RuntimeError("opcua connector stopped unexpectedly")
        finally:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
            # Hand on what the server already delivered before stopping.
            self._outbox.close()
            if not pump.done():
                try:
                    await asyncio.wait_for(asyncio.shield(pump), 5.0)
                except BaseException:  # cancelled again, or emit is stuck: stop now
                    pump.cancel()
                    await asyncio.gather(pump, return_exceptions=True)

    async def _pump(self, emit: Emit) -> None:
        while True:
            batch = await self._outbox.take(EMIT_BATCH)
            if not batch:
                return
            await emit(batch)
            self.stats.readings += len(batch)

    async def _supervise(self) -> None:
        delays = self.config.backoff.delays()
        connected_once = False
        bad_sent = False
        last_failure = ""
        while True:
            try:
                client = await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = self._describe(exc)
                self.stats.errors += 1
                if reason != last_failure:  # a device that stays down is logged once, not per attempt
                    log.warning("opcua source %s: %s; retrying", self.name, reason)
                    last_failure = reason
                if not bad_sent:
                    self._outbox.put_nowait(self.bad_readings(reason))
                    bad_sent = True
                self.stats.last_error = reason
                await asyncio.sleep(next(delays))
                continue
            if connected_once:
                self.stats.reconnects += 1
            connected_once = True
            delays = self.config.backoff.delays()
            bad_sent = False
            last_failure = ""
            try:
                reason = await self._serve(client)
            except asyncio.CancelledError:
                self.stats.connected = False
                await self._close(client)
                raise
            except Exception as exc:
                reason = self._describe(exc)
            self.stats.connected = False
            self.stats.errors += 1
            for signal in self._signals:
                signal.last = None
            # Report the outage first: closing a session on a hung server can take the full timeout.
            self._outbox.put_nowait(self.bad_readings(reason))
            bad_sent = True
            log.warning("opcua source %s: session with %s ended: %s; reconnecting", self.name,
                        self.config.endpoint, reason)
            await self._close(client)
            await asyncio.sleep(next(delays))

    # ---- connection

    async def _connect(self) -> Client:
        return await open_client(self.config, self._password, self._application_uri,
                                 f"TwinEdge edge agent ({self.name})")

    async def _close(self, client: Client | None) -> None:
        if client is not None:
            await close_client(client, self.config.timeout)

    async def _serve(self, client: Client) -> str:
        """Set up the subscription and polls on a connected client; returns why the session ended."""
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[str] = loop.create_future()

        async def on_connection_lost(exc: Exception) -> None:
            _end(lost, f"connection lost ({self._describe(exc)})")

        client.connection_lost_callback = on_connection_lost
        unusable: list[_Signal] = []
        subscribed = [s for s in self._signals if s.node.mode == "subscribe"]
        polled = [s for s in self._signals if s.node.mode == "poll"]
        for signal in self._signals:
            signal.band = None
        await self._set_deadbands(client, unusable)
        subscribed = [s for s in subscribed if s not in unusable]
        polled = [s for s in polled if s not in unusable]
        tasks: list[asyncio.Task[None]] = []
        try:
            subscription: _Subscription | None = None
            if subscribed:
                subscription = await self._subscribe(client, subscribed, unusable, lost)
                tasks.append(asyncio.create_task(self._watch(subscription, lost)))
            groups: dict[float, list[_Signal]] = {}
            for signal in polled:
                groups.setdefault(signal.node.poll_interval, []).append(signal)
            for interval, group in groups.items():
                tasks.append(asyncio.create_task(self._poll(client, interval, group, lost)))
            self.stats.connected = True
            log.info("opcua source %s: connected to %s (%d of %d signals usable)", self.name,
                     self.config.endpoint, len(self._signals) - len(unusable), len(self._signals))
            if unusable:
                now = datetime.now(UTC)
                self._outbox.put_nowait([Reading(s.name, None, now, Quality.BAD, now) for s in unusable])
            for task in tasks:
                task.add_done_callback(lambda task: self._task_ended(task, lost))
            return await lost
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _task_ended(self, task: asyncio.Task[None], lost: asyncio.Future[str]) -> None:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            log.error("opcua source %s: reader failed", self.name, exc_info=exc)
            _end(lost, self._describe(exc))

    async def _set_deadbands(self, client: Client, unusable: list[_Signal]) -> None:
        for signal in self._signals:
            node = signal.node
            if node.deadband == "absolute":
                signal.band = node.deadband_value
            elif node.deadband == "percent":
                try:
                    child = await client.get_node(signal.node_id).get_child("0:EURange")
                    eurange = await child.read_value()
                except UaStatusCodeError as exc:
                    if exc.code in (StatusCodes.BadNodeIdUnknown, StatusCodes.BadNodeIdInvalid):
                        continue  # reported when it is subscribed or read
                    self._signal_error(signal, "has no EURange property, which a percent deadband needs: use an "
                                               "absolute deadband for this node")
                    unusable.append(signal)
                    continue
                if not isinstance(eurange, ua.Range):
                    self._signal_error(signal, "has an EURange that is not a Range, which a percent deadband "
                                               "needs: use an absolute deadband for this node")
                    unusable.append(signal)
                    continue
                signal.band = node.deadband_value / 100.0 * abs(eurange.High - eurange.Low)

    async def _subscribe(self, client: Client, signals: list[_Signal], unusable: list[_Signal],
                         lost: asyncio.Future[str]) -> _Subscription:
        interval = self.config.publishing_interval or max(min(s.node.sampling_interval for s in signals), 10.0)
        keepalive = max(1, math.ceil(KEEPALIVE_MS / interval))
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=interval,
            RequestedLifetimeCount=max(3 * keepalive, math.ceil(SESSION_TIMEOUT_MS / interval)),
            RequestedMaxKeepAliveCount=keepalive,
            MaxNotificationsPerPublish=EMIT_BATCH,
            PublishingEnabled=True,
            Priority=0,
        )
        handles = {index: signal for index, signal in enumerate(signals, start=1)}
        subscription = _Subscription(client.uaclient.session, params, self, handles, lost)
        result = await subscription.init()
        subscription.last_publish_at = time.monotonic()
        subscription.parameters.RequestedPublishingInterval = result.RevisedPublishingInterval
        subscription.parameters.RequestedMaxKeepAliveCount = result.RevisedMaxKeepAliveCount
        requests = [self._monitored_item(handle, signal) for handle, signal in handles.items()]
        results = await subscription.create_monitored_items(requests)
        for (_handle, signal), outcome in zip(handles.items(), results, strict=True):
            if isinstance(outcome, ua.StatusCode):
                self._node_error(signal, outcome)
                unusable.append(signal)
        return subscription

    @staticmethod
    def _monitored_item(handle: int, signal: _Signal) -> ua.MonitoredItemCreateRequest:
        node = signal.node
        data_filter: ua.DataChangeFilter | None = None
        if node.deadband != "none":
            data_filter = ua.DataChangeFilter(
                Trigger=ua.DataChangeTrigger.StatusValue,
                DeadbandType=ua.DeadbandType.Absolute if node.deadband == "absolute" else ua.DeadbandType.Percent,
                DeadbandValue=node.deadband_value,
            )
        return ua.MonitoredItemCreateRequest(
            ItemToMonitor=ua.ReadValueId(NodeId=signal.node_id, AttributeId=AttributeIds.Value),
            MonitoringMode=ua.MonitoringMode.Reporting,
            RequestedParameters=ua.MonitoringParameters(
                ClientHandle=handle,
                SamplingInterval=node.sampling_interval,
                Filter=data_filter,
                QueueSize=node.queue_size,
                DiscardOldest=True,
            ),
        )

    async def _watch(self, subscription: _Subscription, lost: asyncio.Future[str]) -> None:
        """End the session when the subscription goes silent (no data and no keep-alive)."""
        params = subscription.parameters
        silent = params.RequestedPublishingInterval / 1000.0 * max(1, params.RequestedMaxKeepAliveCount) * 2
        silent += self.config.timeout
        while True:
            await asyncio.sleep(min(1.0, silent / 4))
            last = subscription.last_publish_at
            if last is None or subscription.waiting:
                continue  # the agent is the slow one: the server waits for our next publish request
            if time.monotonic() - last > silent:
                _end(lost, f"no publish response (data or keep-alive) from the server for {silent:.0f} s")
                return

    async def _poll(self, client: Client, interval: float, signals: list[_Signal],
                    lost: asyncio.Future[str]) -> None:
        active = list(signals)
        next_at = time.monotonic()
        while active:
            readings: list[Reading] = []
            for start in range(0, len(active), READ_CHUNK):
                chunk = active[start:start + READ_CHUNK]
                params = ua.ReadParameters(
                    MaxAge=0,
                    TimestampsToReturn=ua.TimestampsToReturn.Both,
                    NodesToRead=[ua.ReadValueId(NodeId=s.node_id, AttributeId=AttributeIds.Value) for s in chunk],
                )
                try:
                    results = await client.uaclient.read(params)
                except (ConnectionError, OSError, TimeoutError, UaError) as exc:
                    _end(lost, f"read failed ({self._describe(exc)})")
                    return
                received = datetime.now(UTC)
                for signal, dv in zip(chunk, results, strict=True):
                    reading = self._convert(signal, dv, received)
                    if reading is not None:
                        readings.append(reading)
                    if dv.StatusCode is not None and dv.StatusCode.value in _NODE_ERRORS:
                        active.remove(signal)  # reported once; read again after the next reconnect
            if readings:
                await self._outbox.put(readings)
            next_at += interval
            now = time.monotonic()
            if next_at < now:  # fell behind (slow server or backpressure): skip the missed ticks
                next_at = now + interval - (now - next_at) % interval
            await asyncio.sleep(next_at - now)

    # ---- values and errors

    def _convert(self, signal: _Signal, dv: ua.DataValue | None, received: datetime) -> Reading | None:
        """The Reading for one delivered DataValue, or None when the deadband holds it back."""
        if dv is None:
            signal.last = None
            return Reading(signal.name, None, received, Quality.BAD, received)
        status = dv.StatusCode
        if status is not None and status.value & _OVERFLOW == _OVERFLOW:
            self.stats.overflows += 1
            if signal.name not in self._overflow_logged:
                self._overflow_logged.add(signal.name)
                log.warning("opcua source %s: the server's queue for %s (%s) overflowed and dropped values: raise "
                            "queue_size or lower the publishing interval (counted in stats.overflows)",
                            self.name, signal.name, signal.node.node_id)
        quality = quality_of(status)
        stamp = _timestamp(dv, received)
        if quality is Quality.BAD:
            if status is not None and status.value in _NODE_ERRORS:  # e.g. the node was deleted
                self._node_error(signal, status)
            signal.last = None
            return Reading(signal.name, None, stamp, Quality.BAD, received)
        value, problem = _scalar(dv.Value)
        if problem is not None:
            self._signal_error(signal, f"delivers {problem}; only single numbers, booleans and strings can be "
                                       "read: point the signal at a scalar variable")
            signal.last = None
            return Reading(signal.name, None, stamp, Quality.BAD, received)
        if value is None and quality is Quality.GOOD:
            quality = Quality.UNCERTAIN  # a Good status without a value is not a good value
        self._clear_signal_error(signal)
        if (signal.band is not None and quality is Quality.GOOD and isinstance(value, int | float)
                and not isinstance(value, bool)):
            if signal.last is not None and abs(value - signal.last) <= signal.band:
                if signal.node.mode == "subscribe":
                    self.stats.held_back += 1
                return None
            signal.last = float(value)
        else:
            signal.last = None
        return Reading(signal.name, value, stamp, quality, received)

    def _node_error(self, signal: _Signal, status: ua.StatusCode) -> None:
        code = status.value
        name = _status_text(status)
        if code == StatusCodes.BadNodeIdUnknown:
            text = f"is unknown to the server ({name}): check the node id (browse the server for it)"
        elif code in (StatusCodes.BadFilterNotAllowed, StatusCodes.BadDeadbandFilterInvalid,
                      StatusCodes.BadMonitoredItemFilterUnsupported, StatusCodes.BadMonitoredItemFilterInvalid):
            text = (f"refused the {signal.node.deadband} deadband ({name}): deadbands need a numeric node, and a "
                    "percent deadband an EURange; set deadband: none or absolute")
        elif code in (StatusCodes.BadNotReadable, StatusCodes.BadUserAccessDenied):
            text = f"may not be read by this user ({name}): grant read access on the server or use another user"
        elif code == StatusCodes.BadAttributeIdInvalid:
            text = f"is not a variable ({name}): point the signal at a variable node"
        else:
            text = f"cannot be read ({name})"
        self._signal_error(signal, text)

    def _signal_error(self, signal: _Signal, text: str) -> None:
        message = f"node {signal.node.node_id} on {self.config.endpoint} {text}"
        self.stats.signal_errors[signal.name] = message
        if self._logged_errors.get(signal.name) != message:
            self._logged_errors[signal.name] = message
            self.stats.errors += 1
            log.error("opcua source %s, signal %s: %s", self.name, signal.name, message)

    def _clear_signal_error(self, signal: _Signal) -> None:
        if signal.name in self.stats.signal_errors:
            del self.stats.signal_errors[signal.name]
            self._logged_errors.pop(signal.name, None)

    def _describe(self, exc: BaseException) -> str:
        return describe_error(self.config, exc)


# --------------------------------------------------------------------------- client helpers


async def open_client(conn: OpcUaConnection, password: str | None, application_uri: str, name: str) -> Client:
    """A connected asyncua client (auto_reconnect stays off: callers reconnect themselves)."""
    client = Client(conn.endpoint, timeout=conn.timeout, watchdog_intervall=max(1.0, min(conn.timeout, 5.0)))
    client.name = client.description = name
    client.application_uri = application_uri
    client.product_uri = DEFAULT_APPLICATION_URI
    client.session_timeout = SESSION_TIMEOUT_MS
    if conn.username is not None:
        client.set_user(conn.username)
        client.set_password(password or "")
    try:
        async with asyncio.timeout(conn.timeout * 2 + 1):
            if conn.security_policy == "Basic256Sha256":
                assert conn.certificate is not None and conn.private_key is not None
                await client.set_security(
                    SecurityPolicyBasic256Sha256,
                    certificate=str(conn.certificate),
                    private_key=str(conn.private_key),
                    server_certificate=None if conn.server_certificate is None else str(conn.server_certificate),
                    mode=getattr(ua.MessageSecurityMode, conn.security_mode),
                )
            await client.connect()
    except BaseException:
        await close_client(client, conn.timeout)
        raise
    return client


async def close_client(client: Client, timeout: float) -> None:
    """Close the session politely within `timeout`, then the socket in any case."""
    client.connection_lost_callback = None
    try:
        async with asyncio.timeout(timeout):
            await client.disconnect()
    except asyncio.CancelledError:
        client.disconnect_socket()
        raise
    except Exception:
        log.debug("opcua: disconnect from %s failed", client.server_url.geturl(), exc_info=True)
    client.disconnect_socket()


def describe_error(conn: OpcUaConnection, exc: BaseException) -> str:
    """A one-line message for a failed connect or request that says what to check."""
    endpoint = conn.endpoint
    if isinstance(exc, UaStatusCodeError):
        status = ua.StatusCode(exc.code)
        name = _status_text(status)
        if exc.code in _AUTH_ERRORS:
            who = f"user {conn.username!r}" if conn.username else "anonymous access"
            hint = (f"check username and the password in ${conn.password_env}" if conn.password_env
                    else "set username and password_env")
            return f"{endpoint} rejected {who} ({name}): {hint}"
        if name.startswith(("BadCertificate", "BadSecurity")):
            return (f"{endpoint} refused the secure channel ({name}): make the server trust the client "
                    f"certificate {conn.certificate} and check security_policy/security_mode")
        return f"{endpoint}: {name}"
    if isinstance(exc, TimeoutError):
        return f"no answer from {endpoint} within the timeout ({conn.timeout} s)"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {endpoint}: connection refused (is the server running?)"
    if isinstance(exc, OSError | ConnectionError):
        return f"cannot reach {endpoint}: {exc or type(exc).__name__}"
    if isinstance(exc, UaError) and "endpoint" in str(exc).lower():
        return (f"{endpoint} offers no endpoint with security {conn.security_policy}/"
                f"{conn.security_mode}: {exc}")
    return f"{endpoint}: {type(exc).__name__}: {exc}"
