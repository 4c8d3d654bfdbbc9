"""Serve the press line on real protocols: OPC UA (asyncua), Modbus TCP (pymodbus), MQTT (paho-mqtt).

One asyncio program: :class:`Simulator` steps the model (or a CSV replay) ``rate_hz`` times a second
and hands every tick's values, stamped with the wall-clock time (UTC), to each enabled protocol:

- **OPC UA**: variables ``ns=2;s=<Press>.<Signal>`` (Double; CycleCounter Int64; PartQuality String)
  under the object ``ns=2;s=<Press>`` (which also has the property ``<Press>.AssetId``). A variable
  is written when its value changes, with that tick's source and server timestamps; until the first
  value it has the status BadWaitingForInitialData. Each variable has the spec's description, and the
  analog ones the properties EngineeringUnits (UN/CEFACT) and EURange, for discovery and percent deadbands.
- **Modbus TCP**: each press's register block (:func:`~edge_agent.simulator.config.register_map`),
  readable with function 3 or 4 and refreshed every tick; an unknown unit id is answered with
  exception 0x0B (gateway target failed to respond), a write with 0x02 (illegal address).
- **MQTT**: ``{"time": "<ISO 8601 UTC>", "RamPosition": ..., ...}`` on ``{prefix}/<Press>/telemetry``
  per press and tick; ``{prefix}/status`` is ``online`` while connected and ``offline`` after (retained,
  also the last will).

Inside another asyncio program (``twinedge demo``, tests)::

    async with Simulator(default_config()) as sim:   # servers listen, the model ticks in a task
        points = signal_points(sim.config)          # sim.config holds the ports actually bound
        sim.inject("Press2", "valve", 0.8)
    # every server stopped

``await run_simulator(config, stop)`` does the same until ``stop`` is set (or the task is cancelled).
:meth:`Simulator.inject` changes a fault while running; :meth:`Simulator.stop_protocol` /
:meth:`Simulator.start_protocol` take one protocol away and back
(a device outage); :meth:`Simulator.pause` freezes the values; ``Simulator.listeners`` get every tick
(:class:`~edge_agent.simulator.replay.CsvRecorder` records them for replay).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import orjson

from aas_models.equipment import SPECS_DIR, load_spec
from edge_agent.simulator.config import (
    REGISTERS_PER_PRESS,
    ModbusConfig,
    MqttConfig,
    OpcUaConfig,
    PressConfig,
    ProtocolName,
    SimulatorConfig,
    encode_registers,
    press_register_base,
)
from edge_agent.simulator.model import (
    ANALOG_SIGNALS,
    RANGES,
    SIGNALS,
    UNITS,
    Fault,
    FaultKind,
    PressLine,
    SignalSource,
    SignalValue,
    severity_for_condition,
)
from edge_agent.simulator.replay import CsvReplay

log = logging.getLogger(__name__)

PROTOCOLS: tuple[ProtocolName, ...] = ("opcua", "modbus", "mqtt")


class SimulatorError(Exception):
    """The simulator cannot do what was asked (a port in use, a fault on a replay...); the message says
    what to change."""


@dataclass(frozen=True)
class Tick:
    """One publication: the wall-clock time, every press's values (in press order), the model time (s)."""

    time: datetime
    values: Sequence[dict[str, SignalValue]]
    model_time: float = 0.0


#: Called with every tick the simulator publishes (e.g. :class:`~edge_agent.simulator.replay.CsvRecorder`).
Listener = Callable[[Tick], None]


def build_source(config: SimulatorConfig) -> PressLine | CsvReplay:
    """The model with the configured faults, or the CSV replay when ``replay`` is configured."""
    names = config.press_names()
    if config.replay is not None:
        return CsvReplay.from_files({n: config.replay.files[n] for n in names}, loop=config.replay.loop)
    faults = [Fault(config.fault_press_index(i), f.kind, f.severity, onset=f.onset, ramp=f.ramp)
              for i, f in enumerate(config.faults)]
    return PressLine(names, seed=config.seed, params=config.model.params(), faults=faults,
                     counter_start=[p.counter_start for p in config.presses])


class ProtocolServer(ABC):
    """One protocol the simulator serves on; ``publish`` gets every tick's values while running."""

    name: ProtocolName

    def __init__(self) -> None:
        self.running = False
        self.publications = 0
        self.errors = 0

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def publish(self, tick: Tick) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """Where and how it serves, for people."""


# -- OPC UA ---------------------------------------------------------------------------------------

#: UN/CEFACT common codes of the signals' units (OPC UA Part 8: EUInformation).
_UNECE = {"mm": "MMT", "bar": "BAR", "kN": "B47", "°C": "CEL", "A": "AMP", "mm/s": "C16", "s": "SEC"}


def _eu_information(unit: str) -> Any:
    from asyncua import ua

    code = _UNECE[unit]
    unit_id = 0
    for char in code:
        unit_id = unit_id << 8 | ord(char)
    return ua.EUInformation(NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact", UnitId=unit_id,
                            DisplayName=ua.LocalizedText(unit, "en"), Description=ua.LocalizedText(unit, "en"))


class OpcUaServer(ProtocolServer):
    name: ProtocolName = "opcua"

    def __init__(self, cfg: OpcUaConfig, presses: Sequence[PressConfig]) -> None:
        super().__init__()
        self.cfg = cfg
        self.presses = list(presses)
        self._server: Any = None
        self._nodes: list[list[Any]] = []  # [press][signal] node ids
        self._last: list[list[SignalValue | None]] = []

    @property
    def endpoint(self) -> str:
        return self.cfg.endpoint

    def describe(self) -> str:
        return (f"OPC UA  {self.cfg.endpoint}  nodes ns=2;s=<Press>.<Signal> "
                f"(namespace {self.cfg.namespace_uri})")

    async def _build(self) -> Any:
        from asyncua import ua
        from asyncua.server.server import Server
        from asyncua.ua.attribute_ids import AttributeIds
        from asyncua.ua.object_ids import ObjectIds
        from asyncua.ua.status_codes import StatusCodes

        def node_id(text: str) -> ua.NodeId:
            return ua.NodeId(ua.String(text), ua.Int16(idx))

        server = Server()
        await server.init()
        server.set_endpoint(self.cfg.endpoint)
        server.set_server_name("TwinEdge press-line simulator")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.AnonymousIdentityToken])  # as advertised; no plaintext-password warnings
        idx = await server.register_namespace(self.cfg.namespace_uri)
        if idx != 2:
            raise SimulatorError(f"opcua: the namespace {self.cfg.namespace_uri} got index {idx}, not 2; "
                                 "choose a namespace_uri other than the server's own")
        types = {s: ua.VariantType.Double for s in ANALOG_SIGNALS}
        types |= {"CycleCounter": ua.VariantType.Int64, "PartQuality": ua.VariantType.String}
        initial: dict[str, SignalValue] = {s: 0.0 for s in ANALOG_SIGNALS}
        initial.update(CycleCounter=0, PartQuality="")
        waiting = ua.DataValue(StatusCode=ua.StatusCode(ua.UInt32(StatusCodes.BadWaitingForInitialData)))
        self._vtypes = [types[s] for s in SIGNALS]
        spec = load_spec(SPECS_DIR / "hydraulic-press.yaml")
        descriptions = {sig.name: sig.description if isinstance(sig.description, str) else sig.description["en"]
                        for sig in spec.signals}
        self._nodes = []
        for press in self.presses:
            obj = await server.nodes.objects.add_object(node_id(press.name), ua.QualifiedName(press.name, idx))
            await obj.add_property(node_id(f"{press.name}.AssetId"), ua.QualifiedName("AssetId", idx),
                                   press.asset, ua.VariantType.String)
            ids = []
            for signal in SIGNALS:
                name = f"{press.name}.{signal}"
                var = await obj.add_variable(node_id(name), ua.QualifiedName(signal, idx), initial[signal],
                                             types[signal])
                await var.write_attribute(AttributeIds.Description,
                                          ua.DataValue(ua.Variant(ua.LocalizedText(descriptions[signal], "en"))))
                if signal in RANGES:  # what discovery and percent deadbands read
                    low, high = RANGES[signal]
                    await var.add_property(node_id(f"{name}.EURange"), ua.QualifiedName("EURange", 0),
                                           ua.Range(low, high), datatype=ua.NodeId(ua.Int32(ObjectIds.Range)))
                    await var.add_property(node_id(f"{name}.EngineeringUnits"),
                                           ua.QualifiedName("EngineeringUnits", 0), _eu_information(UNITS[signal]),
                                           datatype=ua.NodeId(ua.Int32(ObjectIds.EUInformation)))
                await server.write_attribute_value(var.nodeid, waiting)
                ids.append(var.nodeid)
            self._nodes.append(ids)
        return server

    async def start(self) -> None:
        if self.running:
            return
        if self._server is None:
            self._server = await self._build()
        else:
            self._server.iserver.endpoints.clear()  # a restart describes its endpoints again
        self._last = [[None] * len(SIGNALS) for _ in self.presses]  # write everything after a (re)start
        try:
            await self._server.start()
        except OSError as exc:
            raise SimulatorError(f"opcua: cannot listen on {self.cfg.host}:{self.cfg.port} ({exc.strerror}); "
                                 "is another server using it? Set opcua.port") from None
        if self.cfg.port == 0:
            self._bound(int(self._server.bserver.port))
        self.running = True

    def _bound(self, port: int) -> None:
        """Keep the port picked for port 0 (a restart binds it again) and advertise it in the endpoints."""
        self.cfg = self.cfg.model_copy(update={"port": port})
        url = self.cfg.endpoint
        self._server.set_endpoint(url)
        for endpoint in self._server.iserver.endpoints:
            endpoint.EndpointUrl = url
            endpoint.Server.DiscoveryUrls = [url]

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        await self._server.stop()

    async def publish(self, tick: Tick) -> None:
        from asyncua import ua

        server = self._server
        stamp = cast("ua.DateTime", tick.time)  # asyncua takes any aware datetime
        for nodes, last, values in zip(self._nodes, self._last, tick.values, strict=True):
            for k, signal in enumerate(SIGNALS):
                value = values.get(signal)
                if value is None or value == last[k]:
                    continue
                last[k] = value
                dv = ua.DataValue(ua.Variant(value, self._vtypes[k]), SourceTimestamp=stamp, ServerTimestamp=stamp)
                await server.write_attribute_value(nodes[k], dv)
        self.publications += 1


# -- Modbus TCP -----------------------------------------------------------------------------------

class ModbusServer(ProtocolServer):
    name: ProtocolName = "modbus"

    def __init__(self, cfg: ModbusConfig, config: SimulatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.presses = [p.name for p in config.presses]
        self.bases = [press_register_base(config, i) for i in range(len(self.presses))]
        nan_block = encode_registers({})
        self._images: list[list[int]] = [list(nan_block) for _ in self.presses]
        self._server: Any = None

    def describe(self) -> str:
        if self.cfg.layout == "units":
            where = ", ".join(f"{name}=unit {u}" for name, (u, _) in zip(self.presses, self.bases, strict=True))
            where += f"; registers {self.cfg.base_address}..{self.cfg.base_address + REGISTERS_PER_PRESS - 1}"
        else:
            where = f"unit {self.cfg.unit_id}; " + ", ".join(
                f"{name}@{base}" for name, (_, base) in zip(self.presses, self.bases, strict=True))
        return f"Modbus  tcp://{self.cfg.host}:{self.cfg.port}  {where} (holding/input registers, float32 ABCD)"

    def registers(self, press: int) -> list[int]:
        """The register block press ``press`` serves now."""
        return list(self._images[press])

    async def _fill(self, presses: Sequence[tuple[int, int]], function_code: int, start_address: int, address: int,
                    count: int, registers: list[int], set_values: Any) -> Any:
        """pymodbus action on every request: copy the current images into the device's registers."""
        for press, offset in presses:
            registers[offset:offset + REGISTERS_PER_PRESS] = self._images[press]
        return None

    @staticmethod
    async def _no_such_unit(function_code: int, start_address: int, address: int, count: int,
                            registers: list[int], set_values: Any) -> Any:
        from pymodbus.constants import ExcCodes

        return ExcCodes.GATEWAY_NO_RESPONSE

    def _devices(self) -> list[Any]:
        from pymodbus.simulator import DataType, SimData, SimDevice

        def block(address: int) -> Any:
            return SimData(address, count=REGISTERS_PER_PRESS, datatype=DataType.REGISTERS, readonly=True)

        devices = []
        if self.cfg.layout == "units":
            for i, (unit, base) in enumerate(self.bases):
                action = functools.partial(self._fill, [(i, 0)])
                devices.append(SimDevice(id=unit, simdata=[block(base)], action=action))
        else:
            first = self.bases[0][1]
            spans = [(i, base - first) for i, (_, base) in enumerate(self.bases)]
            devices.append(SimDevice(id=self.cfg.unit_id, simdata=[block(base) for _, base in self.bases],
                                     action=functools.partial(self._fill, spans)))
        # Unit 0 stands for every other unit id: answer like a gateway whose target is missing.
        devices.append(SimDevice(id=0, simdata=[SimData(0, count=65536, datatype=DataType.REGISTERS)],
                                 action=self._no_such_unit))
        return devices

    async def start(self) -> None:
        if self.running:
            return
        from pymodbus.pdu.device import ModbusDeviceIdentification
        from pymodbus.server import ModbusTcpServer

        identity = ModbusDeviceIdentification(info_name={  # type: ignore[no-untyped-call]
            "VendorName": "TwinEdge", "ProductName": "press-line simulator", "ModelName": "HP-200"})
        server = ModbusTcpServer(self._devices(), address=(self.cfg.host, self.cfg.port), identity=identity)
        try:
            await server.serve_forever(background=True)
        except RuntimeError:
            raise SimulatorError(f"modbus: cannot listen on {self.cfg.host}:{self.cfg.port}; is another server "
                                 "using it? Set modbus.port") from None
        if self.cfg.port == 0:  # keep the port picked, so that a restart binds it again
            port = cast(asyncio.Server, server.transport).sockets[0].getsockname()[1]
            self.cfg = self.cfg.model_copy(update={"port": int(port)})
        self._server = server
        self.running = True

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        server, self._server = self._server, None
        await server.shutdown()

    async def publish(self, tick: Tick) -> None:
        for i, values in enumerate(tick.values):
            self._images[i] = encode_registers(values)
        self.publications += 1


# -- MQTT -----------------------------------------------------------------------------------------

class MqttPublisher(ProtocolServer):
    name: ProtocolName = "mqtt"

    def __init__(self, cfg: MqttConfig, presses: Sequence[PressConfig], connect_timeout: float = 3.0) -> None:
        super().__init__()
        self.cfg = cfg
        self.topics = [cfg.topic(p.name) for p in presses]
        self.status_topic = f"{cfg.topic_prefix}/status"
        self.connect_timeout = connect_timeout
        self.connected = threading.Event()
        self.dropped = 0
        self._client: Any = None

    def describe(self) -> str:
        state = "connected" if self.connected.is_set() else "not connected yet, retrying"
        return (f"MQTT    mqtt://{self.cfg.host}:{self.cfg.port}  topics {self.cfg.topic_prefix}/<Press>/telemetry "
                f"(JSON, QoS {self.cfg.qos}; {state})")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s:%s refused the simulator: %s", self.cfg.host, self.cfg.port, reason)
            return
        client.publish(self.status_topic, "online", qos=1, retain=True)
        self.connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected.clear()

    async def start(self) -> None:
        if self.running:
            return
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion

        cfg = self.cfg
        client_id = cfg.client_id or f"twinedge-sim-{socket.gethostname()}-{os.getpid()}"
        client = Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if cfg.username is not None:
            password = None
            if cfg.password_env is not None:
                password = os.environ.get(cfg.password_env)
                if password is None:
                    raise SimulatorError(f"mqtt.password_env names {cfg.password_env!r}, which is not set: "
                                         "export it or remove password_env")
            client.username_pw_set(cfg.username, password)
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(1, 10)
        client.max_queued_messages_set(10_000)
        client.connect_async(cfg.host, cfg.port, cfg.keepalive)
        client.loop_start()
        self._client = client
        self.running = True
        connected = await asyncio.to_thread(self.connected.wait, self.connect_timeout)
        if not connected:
            log.warning("MQTT broker %s:%s not reachable yet; the simulator keeps trying", cfg.host, cfg.port)

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        client, self._client = self._client, None
        if self.connected.is_set():
            info = client.publish(self.status_topic, "offline", qos=1, retain=True)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(info.wait_for_publish, 2.0)
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)
        self.connected.clear()

    async def publish(self, tick: Tick) -> None:
        client = self._client
        if not self.connected.is_set():
            self.dropped += len(self.topics)
            return
        stamp = tick.time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for topic, values in zip(self.topics, tick.values, strict=True):
            payload = orjson.dumps({"time": stamp, **values})
            info = client.publish(topic, payload, qos=self.cfg.qos, retain=self.cfg.retain)
            if info.rc:
                self.dropped += 1
        self.publications += 1


# -- the simulator --------------------------------------------------------------------------------

class Simulator:
    """The model (or replay) and the protocol servers, ticking in one asyncio program.

    Either ``async with Simulator(config) as sim:`` (start, tick in a background task, stop at the end),
    or :meth:`start`, :meth:`run` (until its event is set) and :meth:`stop` by hand. After :meth:`start`,
    ``config`` holds the ports actually bound (see port 0 in :mod:`~edge_agent.simulator.config`).
    """

    def __init__(self, config: SimulatorConfig, source: SignalSource | None = None) -> None:
        self.config = config
        self.source: SignalSource = source if source is not None else build_source(config)
        if tuple(self.source.names) != tuple(config.press_names()):
            raise SimulatorError("the source's presses differ from the configuration's presses")
        self.servers: dict[ProtocolName, ProtocolServer] = {}
        if config.opcua is not None and config.opcua.enabled:
            self.servers["opcua"] = OpcUaServer(config.opcua, config.presses)
        if config.modbus is not None and config.modbus.enabled:
            self.servers["modbus"] = ModbusServer(config.modbus, config)
        if config.mqtt is not None and config.mqtt.enabled:
            self.servers["mqtt"] = MqttPublisher(config.mqtt, config.presses)
        self._every: dict[ProtocolName, int] = {}
        for name in self.servers:
            rate = getattr(config, name).rate_hz or config.rate_hz
            self._every[name] = max(1, round(config.rate_hz / rate))
        self.ticks = 0
        #: Model steps dropped because the event loop fell more than a second behind.
        self.skipped_steps = 0
        self.paused = False
        self.started_at: datetime | None = None
        self._stop_event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        #: Called with every published tick (add before :meth:`start` to get the initial values too).
        self.listeners: list[Listener] = []
        self.listener_errors = 0

    async def __aenter__(self) -> Simulator:
        await self.start()
        self._stop_event = asyncio.Event()
        self._task = asyncio.create_task(self.run(self._stop_event), name="press-line-simulator")
        self._task.add_done_callback(_log_failure)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the background ticking started by ``async with`` (if any) and every server."""
        task, self._task = self._task, None
        try:
            if task is not None:
                assert self._stop_event is not None
                self._stop_event.set()
                await task
        finally:
            await self.stop()

    @property
    def model(self) -> PressLine | None:
        """The model, or None when replaying."""
        return self.source if isinstance(self.source, PressLine) else None

    def values(self, press: int | str) -> dict[str, SignalValue]:
        """The press's current values (what the next tick publishes, unless the model steps first)."""
        return self.source.values(press)

    def endpoints(self) -> dict[ProtocolName, str]:
        return {name: server.describe() for name, server in self.servers.items()}

    # -- control ---------------------------------------------------------------------------------

    def inject(self, press: int | str, kind: FaultKind | str, severity: float | None = None, *,
               condition: float | None = None, ramp: float = 0.0) -> Fault:
        """Set a fault on a press from now, ramping from its current severity over ``ramp`` model seconds:
        ``severity`` 0..1 (0 clears it), or ``condition`` in the UCI data set's terms (e.g. cooler 20 %).
        UnknownPressError for a press the line does not have."""
        model = self.model
        if model is None:
            raise SimulatorError("faults act on the model; this simulator replays CSV files")
        try:
            kind = FaultKind(kind)
        except ValueError:
            raise SimulatorError(f"{kind!r} is not a fault kind; use {', '.join(k.value for k in FaultKind)}") from None
        if (severity is None) == (condition is None):
            raise SimulatorError("give a fault's severity (0..1) or its condition (the data set's value), one of them")
        if condition is not None:
            try:
                severity = severity_for_condition(kind, condition)
            except ValueError as exc:
                raise SimulatorError(str(exc)) from None
        assert severity is not None
        if not 0.0 <= severity <= 1.0:
            raise SimulatorError(f"fault severity {severity} is outside 0..1")
        return model.inject(press, kind, severity, ramp=ramp)

    def pause(self) -> None:
        """Freeze: the model stops stepping and nothing is published; servers keep the last values."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def _server(self, name: str) -> ProtocolServer:
        try:
            return self.servers[name]  # type: ignore[index]
        except KeyError:
            raise SimulatorError(f"{name!r} is not served; configured: {', '.join(self.servers) or 'none'}") from None

    async def stop_protocol(self, name: ProtocolName) -> None:
        """Take one protocol away (its clients lose the connection), e.g. to test an agent's reconnect."""
        await self._server(name).stop()

    async def start_protocol(self, name: ProtocolName) -> None:
        """Bring a protocol stopped with :meth:`stop_protocol` back on the same address."""
        server = self._server(name)
        await server.start()
        if self.started_at is not None:
            await self._publish_to(server, self._tick())

    # -- running ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every enabled protocol and publish the initial values."""
        started: list[ProtocolServer] = []
        try:
            for server in self.servers.values():
                await server.start()
                started.append(server)
        except BaseException:
            for server in reversed(started):
                with contextlib.suppress(Exception):
                    await server.stop()
            raise
        self._sync_config()
        self.started_at = datetime.now(UTC)
        tick = self._tick()
        self._notify(tick)
        for server in self.servers.values():
            await self._publish_to(server, tick)

    def _sync_config(self) -> None:
        """Put the ports the servers bound (for port 0) into ``config``."""
        update: dict[str, Any] = {}
        for name in ("opcua", "modbus"):
            server = self.servers.get(name)
            if isinstance(server, OpcUaServer | ModbusServer):
                update[name] = server.cfg
        if update:
            self.config = self.config.model_copy(update=update)

    async def stop(self) -> None:
        """Stop every protocol (errors are logged, every server gets its turn)."""
        for server in self.servers.values():
            try:
                await server.stop()
            except Exception:
                log.exception("stopping the %s server failed", server.name)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Tick until ``stop`` is set (or the task is cancelled); call :meth:`start` first."""
        stop = stop if stop is not None else asyncio.Event()
        loop = asyncio.get_running_loop()
        period = 1.0 / self.config.rate_hz
        dt = period * self.config.time_scale
        max_steps = max(1, round(self.config.rate_hz))  # one second's worth of catching up
        deadline = loop.time()
        while not stop.is_set():
            late = loop.time() - deadline
            steps = 1 + int(late // period) if late > 0 else 1
            if steps > max_steps:
                self.skipped_steps += steps - 1
                deadline = loop.time()
                steps = 1
            deadline += steps * period
            if not self.paused:
                for _ in range(steps):
                    self.source.step(dt)
                await self.publish()
            self.ticks += 1
            delay = deadline - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            else:
                await asyncio.sleep(0)

    async def step(self, dt: float | None = None) -> None:
        """Advance the source by one step (default: one tick's model time) and publish now (for tests
        and scripted demos; works while paused)."""
        self.source.step(dt if dt is not None else self.config.time_scale / self.config.rate_hz)
        await self.publish()

    async def publish(self, *, force: bool = False) -> None:
        """Publish the current values to every running protocol whose turn it is (``force``: to every one,
        e.g. after :meth:`pause`, so that all show the frozen values), and tell the listeners."""
        tick = self._tick()
        self._notify(tick)
        for name, server in self.servers.items():
            if server.running and (force or self.ticks % self._every[name] == 0):
                await self._publish_to(server, tick)

    def _tick(self) -> Tick:
        return Tick(datetime.now(UTC), [self.source.values(i) for i in range(len(self.source.names))],
                    self.source.time)

    def _notify(self, tick: Tick) -> None:
        for listener in self.listeners:
            try:
                listener(tick)
            except Exception:
                self.listener_errors += 1
                if self.listener_errors == 1 or self.listener_errors % 1000 == 0:
                    log.exception("a simulator listener failed (%d times so far)", self.listener_errors)

    async def _publish_to(self, server: ProtocolServer, tick: Tick) -> None:
        if not server.running:
            return
        try:
            await server.publish(tick)
        except Exception:
            server.errors += 1
            if server.errors == 1 or server.errors % 1000 == 0:
                log.exception("publishing to %s failed (%d times so far)", server.name, server.errors)


def _log_failure(task: asyncio.Task[None]) -> None:
    """Say at once when the background ticking dies (``close`` raises it again later)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("the press-line simulator stopped ticking", exc_info=task.exception())


OnReady = Callable[[Simulator], Awaitable[None] | None]


async def run_simulator(config: SimulatorConfig, stop: asyncio.Event | None = None,
                        on_ready: OnReady | None = None) -> Simulator:
    """Serve the configured press line until ``stop`` is set or the task is cancelled, then shut
    every server down. ``on_ready(simulator)`` (plain or async) runs once every server listens."""
    sim = Simulator(config)
    await sim.start()
    try:
        if on_ready is not None:
            result = on_ready(sim)
            if inspect.isawaitable(result):
                await result
        await sim.run(stop)
    finally:
        await sim.stop()
    return sim
