"""Where each press's signals are served, so that an agent configuration can bind them without typing.

:func:`signal_points` lists, for every press and every signal of the hydraulic-press spec, its OPC UA
node, Modbus register and MQTT topic + JSON path (for the protocols the configuration enables);
:func:`agent_config` turns that into the ``sources`` and ``assets`` sections of an agent configuration
(plain data, as in the YAML) with each signal bound to the OperationalData element of the same name.
Give them a running simulator's ``config`` when ports were 0 (picked at start).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from edge_agent.simulator.config import ModbusType, ProtocolName, SimulatorConfig, modbus_points, opcua_node_id
from edge_agent.simulator.model import SIGNALS


@dataclass(frozen=True)
class OpcUaAddress:
    endpoint: str
    #: ``ns=2;s=<Press>.<Signal>`` (the simulator's namespace is always index 2).
    node_id: str
    namespace_uri: str


@dataclass(frozen=True)
class ModbusAddress:
    host: str
    port: int
    unit_id: int
    #: 0-based protocol address; readable as holding or input register.
    address: int
    #: Registers: 2 for float32/uint32, 1 for uint16 and the 2-character string.
    count: int
    data_type: ModbusType
    #: Both big: float32 ABCD, high word first.
    byte_order: Literal["big"] = "big"
    word_order: Literal["big"] = "big"


@dataclass(frozen=True)
class MqttAddress:
    host: str
    port: int
    topic: str
    #: Key of the signal in the JSON message (``{"time": ..., "<Signal>": value, ...}``).
    json_path: str
    #: Key of the message's source timestamp (ISO 8601, UTC).
    time_path: str = "time"


@dataclass(frozen=True)
class SignalPoint:
    """One signal of one press and where each enabled protocol serves it (None: not served there)."""

    asset_id: str
    press: str
    #: The spec's signal name, which is also the OperationalData element's idShort.
    signal: str
    opcua: OpcUaAddress | None
    modbus: ModbusAddress | None
    mqtt: MqttAddress | None


def signal_points(config: SimulatorConfig) -> list[SignalPoint]:
    """Every press's every signal (press order, then spec order) with its addresses."""
    registers = {(p.press, p.signal): p for p in modbus_points(config)}
    op = config.opcua if config.opcua is not None and config.opcua.enabled else None
    mb = config.modbus if config.modbus is not None and config.modbus.enabled else None
    mq = config.mqtt if config.mqtt is not None and config.mqtt.enabled else None
    points = []
    for press in config.presses:
        for signal in SIGNALS:
            opcua = OpcUaAddress(op.endpoint, opcua_node_id(press.name, signal), op.namespace_uri) if op else None
            modbus = None
            if mb is not None:
                reg = registers[press.name, signal]
                modbus = ModbusAddress(mb.host, mb.port, reg.unit_id, reg.address, reg.count, reg.data_type)
            mqtt = MqttAddress(mq.host, mq.port, mq.topic(press.name), signal) if mq else None
            points.append(SignalPoint(press.asset, press.name, signal, opcua, modbus, mqtt))
    return points


def _rate(config: SimulatorConfig, protocol: ProtocolName) -> float:
    proto = getattr(config, protocol)
    return float(proto.rate_hz or config.rate_hz)


def agent_config(config: SimulatorConfig, protocol: ProtocolName | Mapping[str, ProtocolName] = "opcua",
                 *, source_prefix: str = "sim") -> dict[str, Any]:
    """``{"sources": [...], "assets": [...]}`` of an agent configuration reading the simulated line.

    ``protocol`` is the one every press is read over, or press name -> protocol (e.g. one press per
    protocol). One source per protocol used, named ``<source_prefix>-<protocol>``; its signals are named
    ``<Press>.<Signal>``; each press becomes an asset (its ``asset_id``) whose OperationalData elements are
    bound to its signals. ValueError if a press's protocol is not enabled in ``config``.
    """
    chosen = {p.name: protocol if isinstance(protocol, str) else protocol.get(p.name) for p in config.presses}
    for press, proto in chosen.items():
        if proto is None:
            raise ValueError(f"no protocol given for press {press!r}")
        served = getattr(config, proto)
        if served is None or not served.enabled:
            raise ValueError(f"press {press!r}: the simulator does not serve {proto}; enable it or pick another")
        if getattr(served, "port", None) == 0:
            raise ValueError(f"{proto}.port is 0 (picked at start): pass the running simulator's config")
    nodes: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    topics: dict[str, dict[str, Any]] = {}
    assets: dict[str, dict[str, Any]] = {}
    for point in signal_points(config):
        proto = chosen[point.press]
        name = f"{point.press}.{point.signal}"
        if proto == "opcua" and point.opcua is not None:
            nodes.append({"signal": name, "node_id": point.opcua.node_id,
                          "sampling_interval": round(1000.0 / _rate(config, "opcua"), 3)})
        elif proto == "modbus" and point.modbus is not None:
            m = point.modbus
            tag: dict[str, Any] = {"signal": name, "address": m.address, "unit_id": m.unit_id,
                                   "data_type": m.data_type}
            if m.data_type == "string":
                tag["length"] = m.count
            tags.append(tag)
        elif proto == "mqtt" and point.mqtt is not None:
            topic = topics.setdefault(point.mqtt.topic, {"filter": point.mqtt.topic, "payload": "json",
                                                         "time_path": point.mqtt.time_path, "signals": []})
            topic["signals"].append({"signal": name, "path": point.mqtt.json_path})
        asset = assets.setdefault(point.asset_id, {"id": point.asset_id, "bindings": []})
        asset["bindings"].append({"source": f"{source_prefix}-{proto}", "signal": name, "element": point.signal})
    sources: list[dict[str, Any]] = []
    if nodes:
        assert config.opcua is not None
        sources.append({"type": "opcua", "name": f"{source_prefix}-opcua", "endpoint": config.opcua.endpoint,
                        "nodes": nodes})
    if tags:
        assert config.modbus is not None
        sources.append({"type": "modbus", "name": f"{source_prefix}-modbus", "host": config.modbus.host,
                        "port": config.modbus.port, "poll_interval": round(1.0 / _rate(config, "modbus"), 3),
                        "tags": tags})
    if topics:
        assert config.mqtt is not None
        sources.append({"type": "mqtt", "name": f"{source_prefix}-mqtt", "host": config.mqtt.host,
                        "port": config.mqtt.port, "topics": list(topics.values())})
    return {"sources": sources, "assets": list(assets.values())}
