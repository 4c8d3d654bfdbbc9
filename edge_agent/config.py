"""Agent configuration (YAML): sources, assets with their bindings, sinks, buffer, metrics.

Validated with Pydantic; every error names the file, the path of the field and what was
expected. Secrets come from environment variables (`*_env` fields), never from the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aas_models import ids
from aas_models.builders import operational_data
from aas_models.equipment import SPECS_DIR, EquipmentSpec, load_spec
from aas_models.errors import AasError, field_path
from aas_models.timeseries.base import SeriesKey
from aas_models.twin import submodel_id_for
from edge_agent.buffer import BufferConfig
from edge_agent.connectors.modbus import ModbusSourceConfig
from edge_agent.connectors.mqtt import MqttSourceConfig
from edge_agent.connectors.opcua_config import OpcUaSourceConfig
from edge_agent.mapping import CONVERSIONS, Binding
from edge_agent.metrics import MetricsConfig
from edge_agent.sinks.influxdb import InfluxDbSinkConfig
from edge_agent.sinks.influxdb_v1 import InfluxDbV1SinkConfig
from edge_agent.sinks.mqtt import MqttSinkConfig
from edge_agent.sinks.timeseries import TimeSeriesSinkConfig
from edge_agent.sinks.twin import TwinSinkConfig

SourceConfig = Annotated[OpcUaSourceConfig | ModbusSourceConfig | MqttSourceConfig, Field(discriminator="type")]
SinkConfig = Annotated[
    TwinSinkConfig | TimeSeriesSinkConfig | InfluxDbSinkConfig | InfluxDbV1SinkConfig | MqttSinkConfig,
    Field(discriminator="type"),
]


class BindingConfig(BaseModel):
    """One source signal into one element. `element` names a signal of the asset's OperationalData
    (its value goes to `<element>.Value`); or give `submodel` (id) and `path` for any element."""

    model_config = ConfigDict(extra="forbid")
    source: str
    signal: str
    element: str | None = None
    submodel: str | None = None
    path: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    convert: str | None = None
    deadband: float | None = Field(default=None, ge=0)
    deadband_percent: float | None = Field(default=None, ge=0, le=100)
    heartbeat: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _target(self) -> BindingConfig:
        if (self.element is None) == (self.submodel is None or self.path is None):
            raise ValueError("give either `element` (an OperationalData signal) or both `submodel` and `path`")
        if self.convert is not None and self.convert not in CONVERSIONS:
            raise ValueError(f"convert: unknown conversion {self.convert!r}; one of {', '.join(CONVERSIONS)}")
        if self.deadband is not None and self.deadband_percent is not None:
            raise ValueError("give `deadband` or `deadband_percent`, not both")
        return self


class AssetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: The asset id the twin was built for (see aas_models.ids).
    id: str = Field(min_length=1)
    #: Equipment spec (YAML) the twin follows; the built-in hydraulic press by default.
    spec: Path = SPECS_DIR / "hydraulic-press.yaml"
    id_base: str = ids.DEFAULT_ID_BASE
    bindings: list[BindingConfig] = []


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[SourceConfig] = []
    assets: list[AssetConfig] = []
    sinks: list[SinkConfig] = [TwinSinkConfig(), TimeSeriesSinkConfig()]
    buffer: BufferConfig = BufferConfig()
    metrics: MetricsConfig = MetricsConfig()
    flush_interval: float = Field(default=0.5, gt=0)

    @model_validator(mode="after")
    def _names(self) -> AgentConfig:
        for label, items in (("sources", self.sources), ("sinks", self.sinks)):
            names = [item.name for item in items]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{label}: names must be unique, {', '.join(dupes)} used twice")
        return self


class ConfigError(Exception):
    """The agent configuration cannot be used; one line per problem, each naming file and field."""




def parse_config(data: Any, name: str, base_dir: Path | None = None) -> AgentConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping with sources, assets, sinks")
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
            lines.append(f"{name}: {field_path(loc)}: {error['msg']}")
        raise ConfigError("\n".join(lines)) from None
    if base_dir is not None:
        config = _resolve_paths(config, base_dir)
    return config


_UNION_TAGS = {"opcua", "modbus", "mqtt", "twin", "timeseries", "influxdb", "influxdb_v1"}


def _resolve_paths(config: AgentConfig, base: Path) -> AgentConfig:
    def fix(path: Path) -> Path:
        return path if path.is_absolute() else base / path

    assets = [a.model_copy(update={"spec": fix(a.spec)}) for a in config.assets]
    sinks = [s.model_copy(update={"path": fix(s.path)}) if isinstance(s, TimeSeriesSinkConfig) else s
             for s in config.sinks]
    buffer = config.buffer.model_copy(update={"path": fix(config.buffer.path)})
    return config.model_copy(update={"assets": assets, "sinks": sinks, "buffer": buffer})


def load_config(path: Path) -> AgentConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {exc}") from None
    return parse_config(data, str(path), path.parent)


def bindings(config: AgentConfig, signals: Mapping[str, Callable[[str], bool]], name: str = "config") \
        -> list[Binding]:
    """Resolve every binding to its element; `signals` tells, per source, whether it delivers a signal.

    Checks what YAML validation cannot: the source exists, the signal is one it delivers, the
    element is a signal of the asset's equipment spec.
    """
    problems: list[str] = []
    out: list[Binding] = []
    specs: dict[Path, EquipmentSpec] = {}
    for a, asset in enumerate(config.assets):
        try:
            spec = specs.get(asset.spec) or specs.setdefault(asset.spec, load_spec(asset.spec))
        except AasError as exc:
            problems.append(f"{name}: assets[{a}].spec: {exc}")
            continue
        known = {s.name for s in spec.signals}
        for b, binding in enumerate(asset.bindings):
            where = f"{name}: assets[{a}].bindings[{b}]"
            if binding.source not in signals:
                problems.append(f"{where}.source: no source named {binding.source!r} "
                                f"(sources: {', '.join(sorted(signals)) or 'none'})")
                continue
            if not signals[binding.source](binding.signal):
                problems.append(f"{where}.signal: source {binding.source!r} has no signal {binding.signal!r}")
                continue
            if binding.element is not None:
                if binding.element not in known:
                    problems.append(f"{where}.element: {binding.element!r} is not a signal of "
                                    f"{spec.equipment_type} (one of {', '.join(sorted(known))})")
                    continue
                key = SeriesKey(submodel_id_for(asset.id, operational_data.ID_SHORT, id_base=asset.id_base),
                                operational_data.value_path(binding.element))
            else:
                assert binding.submodel is not None and binding.path is not None
                key = SeriesKey(binding.submodel, binding.path)
            out.append(Binding(binding.source, binding.signal, key, binding.scale, binding.offset, binding.convert,
                               binding.deadband, binding.deadband_percent, binding.heartbeat))
    if problems:
        raise ConfigError("\n".join(problems))
    return out
