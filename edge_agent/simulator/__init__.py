"""Virtual hydraulic presses serving their signals on real OPC UA, Modbus TCP and MQTT, for demos and tests.

- :mod:`.model`: the seeded press-line model and its faults (pure numpy, no I/O)
- :mod:`.replay`: recorded CSV rows instead of the model
- :mod:`.config`: the YAML configuration, the Modbus register map and OPC UA node ids
- :mod:`.servers`: :class:`Simulator` and :func:`run_simulator` (asyncua, pymodbus, paho-mqtt)
- :mod:`.bindings`: where each signal is served, and an agent configuration that binds them all
- :mod:`.cli`: the ``simulate`` command (``twinedge simulate``)
"""

from edge_agent.simulator.bindings import (
    ModbusAddress,
    MqttAddress,
    OpcUaAddress,
    SignalPoint,
    agent_config,
    signal_points,
)
from edge_agent.simulator.config import (
    REGISTERS_PER_PRESS,
    ModbusPoint,
    ProtocolName,
    RegisterField,
    SimulatorConfig,
    SimulatorConfigError,
    decode_registers,
    default_config,
    encode_registers,
    load_config,
    modbus_points,
    opcua_node_id,
    parse_config,
    register_map,
)
from edge_agent.simulator.model import (
    SIGNALS,
    Fault,
    FaultKind,
    PressLine,
    PressParams,
    SignalSource,
    UnknownPressError,
    dataset_condition,
    severity_for_condition,
)
from edge_agent.simulator.replay import CsvReplay, ReplayError
from edge_agent.simulator.servers import Simulator, SimulatorError, build_source, run_simulator

__all__ = [
    "REGISTERS_PER_PRESS",
    "SIGNALS",
    "CsvReplay",
    "Fault",
    "FaultKind",
    "ModbusAddress",
    "ModbusPoint",
    "MqttAddress",
    "OpcUaAddress",
    "PressLine",
    "PressParams",
    "ProtocolName",
    "RegisterField",
    "ReplayError",
    "SignalPoint",
    "SignalSource",
    "Simulator",
    "SimulatorConfig",
    "SimulatorConfigError",
    "SimulatorError",
    "UnknownPressError",
    "agent_config",
    "build_source",
    "dataset_condition",
    "decode_registers",
    "default_config",
    "encode_registers",
    "load_config",
    "modbus_points",
    "opcua_node_id",
    "parse_config",
    "register_map",
    "run_simulator",
    "severity_for_condition",
    "signal_points",
]
