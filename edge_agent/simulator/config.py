"""Simulator configuration (YAML, validated), and the addresses it serves the signals at.

A configuration (see ``press-line.yaml`` next to this module)::

    presses: 3                 # or a list: [{name: Press1, asset_id: press-01, unit_id: 1}, ...]
    rate_hz: 10                # model steps (and publications) per second
    seed: 42
    faults:                    # press name (or 1-based number), kind, severity 0..1, onset s, ramp s
      - {press: Press2, kind: cooler, severity: 0.8, onset: 180, ramp: 300}
      - {press: 3, kind: accumulator, condition: 100}   # or in the UCI data set's terms (100 bar)
    opcua: {host: 127.0.0.1, port: 4840}          # nodes ns=2;s=<Press>.<Signal>; port 0: any free port
    modbus: {host: 127.0.0.1, port: 5020}         # unit id per press, register map below; port 0: any free
    mqtt: {enabled: false, host: 127.0.0.1, port: 1883, topic_prefix: twinedge/sim}
    replay: {files: {Press1: p1.csv}, loop: true}  # serve recorded CSV rows instead of the model

Modbus register map (:func:`register_map`), per press, relative to the press's base address
(``modbus.base_address``, 0 by default): every register is readable as a holding register (function 3)
or an input register (function 4); writes are refused (illegal address).

======  =====  ==================  =========================================================
offset  count  signal              encoding
======  =====  ==================  =========================================================
0       2      RamPosition         float32, big-endian, high word first (ABCD), mm
2       2      HydraulicPressure   float32 ABCD, bar
4       2      PressForce          float32 ABCD, kN
6       2      OilTemperature      float32 ABCD, °C
8       2      MotorCurrent        float32 ABCD, A
10      2      Vibration           float32 ABCD, mm/s
12      2      CycleTime           float32 ABCD, s
14      2      CycleCounter        uint32, big-endian, high word first
16      1      PartQualityCode     uint16: 0 = OK, 1 = NG (65535 while unknown), for PLC-style clients
17      1      PartQuality         string of 1 register: ASCII "OK" or "NG" (0 while unknown), as the spec's
                                   xs:string
18      2      (reserved)          0
======  =====  ==================  =========================================================

With ``layout: units`` (default) each press is its own Modbus unit (device id ``first_unit_id`` + its
index, or its ``unit_id``) with its block at ``base_address``; with ``layout: blocks`` all presses share
unit ``unit_id`` and press *i* (0-based) starts at ``base_address + i * block_stride``. A signal a
replay CSV lacks reads as NaN (floats) or 0. :func:`modbus_points` lists every signal's unit and address.

Port 0 for ``opcua`` or ``modbus`` means a free port picked when the server starts (for tests and
``twinedge demo``); the running :class:`~edge_agent.simulator.servers.Simulator`'s ``config`` then holds
the ports actually bound.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aas_models.errors import field_path
from edge_agent.simulator.model import (
    ANALOG_SIGNALS,
    SIGNALS,
    FaultKind,
    PressParams,
    SignalValue,
    severity_for_condition,
)

#: The protocols the simulator serves on.
ProtocolName = Literal["opcua", "modbus", "mqtt"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class SimulatorConfigError(ValueError):
    """The simulator configuration is unreadable or invalid; each line names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PressConfig(_Model):
    """One press: ``name`` is used in OPC UA node ids, MQTT topics and replay files."""

    name: str
    #: The asset id of the press's twin (default: the name).
    asset_id: str | None = Field(default=None, min_length=1)
    #: Modbus unit (device) id with ``layout: units`` (default: ``first_unit_id`` + index).
    unit_id: int | None = Field(default=None, ge=1, le=247)
    #: CycleCounter at the start (default: a seeded count of past cycles).
    counter_start: int | None = Field(default=None, ge=0, le=2**32 - 1)

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} must start with a letter and hold only letters, digits, '_' and '-' "
                             "(it becomes part of OPC UA node ids and MQTT topics), e.g. 'Press1'")
        return name

    @property
    def asset(self) -> str:
        return self.asset_id or self.name


class FaultConfig(_Model):
    """A fault ramping in: severity 0..1 reached ``ramp`` seconds after ``onset`` (seconds of model time).

    Instead of ``severity``, ``condition`` gives it in the UCI hydraulic data set's terms (its
    ``profile.txt``): cooler efficiency % (100..3), valve condition % (100..73), pump leakage (0..2),
    accumulator pressure bar (130..90).
    """

    press: str | int = Field(description="press name, or its 1-based number")
    kind: FaultKind
    severity: float = Field(ge=0.0, le=1.0)
    onset: float = Field(default=0.0, ge=0.0)
    ramp: float = Field(default=0.0, ge=0.0)

    @model_validator(mode="before")
    @classmethod
    def _condition(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "condition" not in data:
            return data
        data = dict(data)
        condition = data.pop("condition")
        if "severity" in data:
            raise ValueError("give severity (0..1) or condition (the data set's value), not both")
        if isinstance(condition, bool) or not isinstance(condition, int | float):
            raise ValueError(f"condition {condition!r} is not a number (the data set's value, e.g. 20 for a "
                             "cooler at 20 %)")
        try:
            kind = FaultKind(data.get("kind"))
            severity = severity_for_condition(kind, float(condition))
        except (TypeError, ValueError) as exc:  # an unknown kind is reported by the kind field
            if "kind" in data and data.get("kind") in {k.value for k in FaultKind}:
                raise ValueError(str(exc)) from None
            return data
        return {**data, "severity": severity}


class ModelConfig(_Model):
    """Process settings shared by all presses (defaults: :class:`~edge_agent.simulator.model.PressParams`)."""

    set_pressure: float = Field(default=PressParams.set_pressure, gt=50.0, le=250.0)
    load_time: float = Field(default=PressParams.load_time, gt=0.0)
    hold_time: float = Field(default=PressParams.hold_time, gt=0.0)
    ambient: float = Field(default=PressParams.ambient, ge=-20.0, le=50.0)
    #: Seconds for the oil temperature to settle 63 % of the way after a change (faults show sooner
    #: with a shorter one).
    thermal_time_constant: float = Field(default=PressParams.thermal_time_constant, gt=0.0)

    def params(self) -> PressParams:
        return PressParams(**self.model_dump())


class _Protocol(_Model):
    enabled: bool = True
    host: str = Field(default="127.0.0.1", min_length=1)
    #: Publications per second (default: every model step); at most ``rate_hz``.
    rate_hz: float | None = Field(default=None, gt=0.0)


class OpcUaConfig(_Protocol):
    """An OPC UA server (no security, anonymous): variable ``ns=2;s=<Press>.<Signal>`` per signal."""

    #: 0: a free port chosen at start.
    port: int = Field(default=4840, ge=0, le=65535)
    #: The namespace of the nodes (index 2 on the server).
    namespace_uri: str = Field(default="urn:twinedge:simulator:press-line", min_length=1)

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}"


class ModbusConfig(_Protocol):
    """A Modbus TCP server; the register map is in this module's docstring (:func:`register_map`)."""

    #: 0: a free port chosen at start.
    port: int = Field(default=5020, ge=0, le=65535)
    #: units: one unit id per press; blocks: one unit, a register block per press.
    layout: Literal["units", "blocks"] = "units"
    first_unit_id: int = Field(default=1, ge=1, le=247)
    #: The single unit id with ``layout: blocks``.
    unit_id: int = Field(default=1, ge=1, le=247)
    base_address: int = Field(default=0, ge=0, le=60000)
    #: Registers from one press's block to the next with ``layout: blocks``.
    block_stride: int = Field(default=100, ge=20, le=5000)


class MqttConfig(_Protocol):
    """An MQTT publisher: one JSON message per press and tick on ``{topic_prefix}/{press}/telemetry``."""

    port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = "twinedge/sim"
    qos: Literal[0, 1, 2] = 0
    retain: bool = False
    client_id: str | None = None
    username: str | None = None
    #: Name of the environment variable holding the password (never the password itself).
    password_env: str | None = None
    keepalive: int = Field(default=30, ge=5)

    @field_validator("topic_prefix")
    @classmethod
    def _check_prefix(cls, v: str) -> str:
        if not v or v.startswith(("/", "$")) or v.endswith("/") or "//" in v or set(v) & {"+", "#", "\x00"}:
            raise ValueError("topic_prefix must be topic levels like 'twinedge/sim': no wildcards (+ #), "
                             "no leading '$' or '/', no trailing or doubled '/'")
        return v

    def topic(self, press: str) -> str:
        return f"{self.topic_prefix}/{press}/telemetry"


class ReplayConfig(_Model):
    """Serve recorded rows instead of the model: one CSV per press (columns ``time`` + signal names)."""

    #: Press name -> CSV file (relative paths are relative to the configuration file).
    files: dict[str, Path]
    #: Start again from the first row after the last one (else the last row stays).
    loop: bool = True


class SimulatorConfig(_Model):
    """The whole simulator: presses, model, faults, and the protocols it serves them on."""

    presses: list[PressConfig] = Field(min_length=1, max_length=200)
    rate_hz: float = Field(default=10.0, gt=0.0, le=1000.0)
    #: Model seconds per wall-clock second (e.g. 10 to watch slow faults ten times faster).
    time_scale: float = Field(default=1.0, gt=0.0, le=1000.0)
    seed: int = 0
    #: The production line the presses stand in (their twins' specificAssetId ``line``; dashboards group by it).
    line: str | None = Field(default=None, min_length=1, max_length=128)
    model: ModelConfig = Field(default_factory=ModelConfig)
    faults: list[FaultConfig] = []
    opcua: OpcUaConfig | None = None
    modbus: ModbusConfig | None = None
    mqtt: MqttConfig | None = None
    replay: ReplayConfig | None = None

    @field_validator("presses", mode="before")
    @classmethod
    def _count(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("give a number of presses or a list of presses")
        if isinstance(v, int):
            if not 1 <= v <= 200:
                raise ValueError(f"a line has 1 to 200 presses, not {v}")
            return [{"name": f"Press{i + 1}", "asset_id": f"press-{i + 1:02d}"} for i in range(v)]
        return v

    @model_validator(mode="after")
    def _cross_check(self) -> Self:
        names = [p.name for p in self.presses]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"presses: names must be unique; repeated: {', '.join(repeated)}")
        for i, fault in enumerate(self.faults):
            self._fault_press(i, fault)
        if self.replay is not None:
            unknown = sorted(set(self.replay.files) - set(names))
            missing = [n for n in names if n not in self.replay.files]
            if unknown:
                raise ValueError(f"replay.files: {', '.join(unknown)} is not a configured press ({', '.join(names)})")
            if missing:
                raise ValueError(f"replay.files: give a CSV file for every press; missing: {', '.join(missing)}")
            if self.faults:
                raise ValueError("faults: faults act on the model and cannot be combined with replay; remove one")
        for key in ("opcua", "modbus", "mqtt"):
            proto = getattr(self, key)
            if proto is not None and proto.rate_hz is not None and proto.rate_hz > self.rate_hz:
                raise ValueError(f"{key}.rate_hz: {proto.rate_hz} is above rate_hz {self.rate_hz}; "
                                 "a protocol cannot publish more often than the model steps")
        if self.modbus is not None:
            self._check_modbus(self.modbus)
        return self

    def _fault_press(self, i: int, fault: FaultConfig) -> int:
        names = [p.name for p in self.presses]
        if isinstance(fault.press, int):
            if not 1 <= fault.press <= len(names):
                raise ValueError(f"faults[{i}].press: {fault.press} is not a press number 1..{len(names)}")
            return fault.press - 1
        if fault.press not in names:
            raise ValueError(f"faults[{i}].press: {fault.press!r} is not a configured press ({', '.join(names)})")
        return names.index(fault.press)

    def _check_modbus(self, mb: ModbusConfig) -> None:
        if mb.layout == "units":
            units = [u for u, _ in (press_register_base(self, i) for i in range(len(self.presses)))]
            repeated = sorted({u for u in units if units.count(u) > 1})
            if repeated:
                raise ValueError(f"modbus: unit ids must differ between presses; repeated: {repeated}")
            if max(units) > 247:
                raise ValueError(f"modbus.first_unit_id: presses would get unit ids up to {max(units)}; the "
                                 "largest is 247")
            end = mb.base_address + REGISTERS_PER_PRESS
        else:
            end = mb.base_address + mb.block_stride * (len(self.presses) - 1) + REGISTERS_PER_PRESS
        if end > 65536:
            raise ValueError(f"modbus: the register blocks would end at {end}, beyond 65535: lower "
                             "base_address or block_stride")

    def fault_press_index(self, i: int) -> int:
        """0-based press index of ``faults[i]``."""
        return self._fault_press(i, self.faults[i])

    def press_names(self) -> list[str]:
        return [p.name for p in self.presses]


def default_config(presses: int = 3, *, opcua: bool = True, modbus: bool = True,
                   mqtt_broker: tuple[str, int] | None = None, rate_hz: float = 10.0, seed: int = 42,
                   faults: Sequence[Mapping[str, Any]] = (), host: str = "127.0.0.1") -> SimulatorConfig:
    """A press line for running inside another program (``twinedge demo``, tests): presses Press1..N
    (assets press-01..), OPC UA and Modbus TCP on free ports picked at start (port 0), MQTT to
    ``mqtt_broker`` (host, port) when given. ``faults`` as in the YAML, e.g. ``{"press": "Press2",
    "kind": "valve", "severity": 0.8, "onset": 60, "ramp": 120}``."""
    data: dict[str, Any] = {"presses": presses, "rate_hz": rate_hz, "seed": seed, "faults": list(faults)}
    if opcua:
        data["opcua"] = {"host": host, "port": 0}
    if modbus:
        data["modbus"] = {"host": host, "port": 0}
    if mqtt_broker is not None:
        data["mqtt"] = {"host": mqtt_broker[0], "port": mqtt_broker[1]}
    return parse_config(data, "default_config()")


# -- the register map -----------------------------------------------------------------------------

#: Registers of one press's block (18 used, 2 reserved).
REGISTERS_PER_PRESS = 20
_USED = 18
ModbusType = Literal["float32", "uint32", "uint16", "string"]


@dataclass(frozen=True)
class RegisterField:
    """A signal's place in a press's register block (offset relative to the block's start); ``signal`` is a
    signal of the spec, or ``PartQualityCode`` (PartQuality as a number)."""

    signal: str
    offset: int
    count: int
    data_type: ModbusType
    note: str


def register_map() -> tuple[RegisterField, ...]:
    """The register map of one press (see this module's docstring): float32 and uint32 big-endian with
    the high word first (ABCD); PartQuality twice: as uint16 0 = OK / 1 = NG, and as the text itself."""
    floats = tuple(RegisterField(s, 2 * k, 2, "float32", "IEEE 754, big-endian, high word first (ABCD)")
                   for k, s in enumerate(ANALOG_SIGNALS))
    return (*floats,
            RegisterField("CycleCounter", 14, 2, "uint32", "big-endian, high word first"),
            RegisterField("PartQualityCode", 16, 1, "uint16", "0 = OK, 1 = NG, 65535 = unknown"),
            RegisterField("PartQuality", 17, 1, "string", "ASCII 'OK' or 'NG' (2 characters), 0 = unknown"))


_PACK = struct.Struct(">7fIH2s")
_WORDS = struct.Struct(f">{_USED}H")
_RESERVED = [0] * (REGISTERS_PER_PRESS - _USED)
_CODES = {"OK": 0, "NG": 1}


def encode_registers(values: Mapping[str, SignalValue]) -> list[int]:
    """A press's register block (:data:`REGISTERS_PER_PRESS` words) from its signal values; missing
    floats become NaN, a missing counter 0, a missing quality code 65535 and text 0."""
    nan = float("nan")
    floats = [float(values.get(s, nan)) for s in ANALOG_SIGNALS]
    counter = int(values.get("CycleCounter", 0)) & 0xFFFFFFFF
    quality = values.get("PartQuality")
    code = _CODES.get(quality, 0xFFFF) if isinstance(quality, str) else 0xFFFF
    text = quality.encode("ascii") if code != 0xFFFF and isinstance(quality, str) else b""
    return [*_WORDS.unpack(_PACK.pack(*floats, counter, code, text)), *_RESERVED]


def decode_registers(registers: Sequence[int]) -> dict[str, SignalValue]:
    """Signal values from a press's register block (at least its first 18 registers); PartQuality is ""
    while unknown."""
    if len(registers) < _USED:
        raise ValueError(f"a press's block needs {_USED} registers, got {len(registers)}")
    *floats, counter, _code, text = _PACK.unpack(_WORDS.pack(*registers[:_USED]))
    result: dict[str, SignalValue] = dict(zip(ANALOG_SIGNALS, floats, strict=True))
    result["CycleCounter"] = counter
    result["PartQuality"] = text.rstrip(b"\x00").decode("ascii", "replace")
    return {s: result[s] for s in SIGNALS}


def press_register_base(config: SimulatorConfig, press: int) -> tuple[int, int]:
    """(unit id, first register address) of press ``press`` (0-based index) on the Modbus server."""
    mb = config.modbus or ModbusConfig()
    if mb.layout == "blocks":
        return mb.unit_id, mb.base_address + press * mb.block_stride
    unit = config.presses[press].unit_id
    return (unit if unit is not None else mb.first_unit_id + press), mb.base_address


@dataclass(frozen=True)
class ModbusPoint:
    """Where one signal of one press is on the Modbus server."""

    press: str
    signal: str
    unit_id: int
    address: int
    count: int
    data_type: ModbusType


def modbus_points(config: SimulatorConfig) -> list[ModbusPoint]:
    """Every press's every signal with its unit id and absolute register address."""
    points = []
    for i, press in enumerate(config.presses):
        unit, base = press_register_base(config, i)
        points += [ModbusPoint(press.name, f.signal, unit, base + f.offset, f.count, f.data_type)
                   for f in register_map()]
    return points


def opcua_node_id(press: str, signal: str) -> str:
    """The OPC UA node id of a press's signal, e.g. ``ns=2;s=Press1.RamPosition``."""
    return f"ns=2;s={press}.{signal}"


# -- loading --------------------------------------------------------------------------------------



def parse_config(data: Any, name: str = "<config>", base_dir: Path | None = None) -> SimulatorConfig:
    """Validate parsed YAML; relative replay paths are taken relative to ``base_dir``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SimulatorConfigError(f"{name}: expected a mapping of settings at the top level")
    try:
        config = SimulatorConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            where = field_path(e["loc"])
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"{name}: {where}: {msg}" if where else f"{name}: {msg}")
        raise SimulatorConfigError("\n".join(lines)) from None
    if config.replay is not None and base_dir is not None:
        files = {k: (p if p.is_absolute() else base_dir / p) for k, p in config.replay.files.items()}
        config = config.model_copy(update={"replay": config.replay.model_copy(update={"files": files})})
    return config


def load_config(path: Path) -> SimulatorConfig:
    """Read and validate a simulator YAML file; SimulatorConfigError names the file and each bad field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SimulatorConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SimulatorConfigError(f"{path}:{where}: not valid YAML: {exc}") from None
    return parse_config(data, str(path), path.parent)
