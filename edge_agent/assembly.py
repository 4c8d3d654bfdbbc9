"""Build a runnable Agent from its configuration: one connector per source, one sink per target."""

from __future__ import annotations

from collections.abc import Mapping

from edge_agent.buffer import Buffer
from edge_agent.config import AgentConfig, ConfigError, bindings
from edge_agent.connectors import modbus, mqtt
from edge_agent.connectors.base import Connector
from edge_agent.connectors.opcua_config import OpcUaSourceConfig
from edge_agent.mapping import Mapper
from edge_agent.runtime import Agent, Pace
from edge_agent.sinks import influxdb, influxdb_v1
from edge_agent.sinks import mqtt as mqtt_sink
from edge_agent.sinks.base import Sink
from edge_agent.sinks.influxdb import InfluxDbSinkConfig
from edge_agent.sinks.influxdb_v1 import InfluxDbV1SinkConfig
from edge_agent.sinks.mqtt import MqttSinkConfig
from edge_agent.sinks.timeseries import TimeSeriesSink, TimeSeriesSinkConfig
from edge_agent.sinks.twin import TwinSink, TwinSinkConfig


def connectors(config: AgentConfig, environ: Mapping[str, str]) -> list[Connector]:
    out: list[Connector] = []
    for source in config.sources:
        try:
            if isinstance(source, OpcUaSourceConfig):
                from edge_agent.connectors import opcua  # asyncua only for OPC UA sources

                out.append(opcua.create(source, environ))
            elif isinstance(source, modbus.ModbusSourceConfig):
                out.append(modbus.create(source, environ))
            else:
                out.append(mqtt.create(source, environ))
        except ValueError as exc:
            raise ConfigError(f"sources.{source.name}: {exc}") from None
    return out


def sinks(config: AgentConfig, environ: Mapping[str, str]) -> list[Sink]:
    out: list[Sink] = []
    for sink in config.sinks:
        try:
            if isinstance(sink, TwinSinkConfig):
                out.append(TwinSink(sink, environ))
            elif isinstance(sink, TimeSeriesSinkConfig):
                out.append(TimeSeriesSink(sink))
            elif isinstance(sink, InfluxDbSinkConfig):
                out.append(influxdb.create(sink, environ))
            elif isinstance(sink, InfluxDbV1SinkConfig):
                out.append(influxdb_v1.create(sink, environ))
            elif isinstance(sink, MqttSinkConfig):
                out.append(mqtt_sink.create(sink, environ))
        except ValueError as exc:
            raise ConfigError(f"sinks.{sink.name}: {exc}") from None
    return out


def build_agent(config: AgentConfig, environ: Mapping[str, str], name: str = "config") -> Agent:
    parts = connectors(config, environ)
    signals = {c.name: c.accepts for c in parts}
    try:
        mapper = Mapper(bindings(config, signals, name))
    except ValueError as exc:
        raise ConfigError(f"{name}: assets: {exc}") from None
    return Agent(parts, mapper, Buffer(config.buffer), sinks(config, environ),
                 pace=Pace(flush_interval=config.flush_interval), metrics=config.metrics)
