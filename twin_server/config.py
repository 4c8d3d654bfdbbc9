"""Server configuration (YAML, validated; command-line options override the file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twin_server.auth import AuthConfig
from twin_server.events import MqttConfig

#: Default largest request body: a 16 MiB AASX or environment is large for one machine's twin.
DEFAULT_MAX_BODY = 16 * 1024 * 1024


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=1, le=65535)
    data_dir: Path = Path("twinedge-data")
    #: A PostgreSQL DSN (postgresql://...) to use instead of the embedded SQLite file.
    db: str | None = None
    #: normal: a committed write survives a crash of the server; fsync: also a power cut (slower).
    durability: Literal["normal", "fsync"] = "normal"
    load: list[Path] = []
    #: A reference-model catalogue (reference_models/): its released versions are served as templates.
    catalogue: Path | None = None
    #: The embedded time-series store the agent writes (default: DATA_DIR/timeseries.db).
    timeseries: Path | None = None
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, ge=1024)
    cors_origins: list[str] = []
    insecure: bool = False
    auth: AuthConfig = AuthConfig()
    #: Publish every change to this MQTT broker (docs/events.md); off when absent.
    mqtt: MqttConfig | None = None


class ConfigError(Exception):
    """The configuration file is unreadable or invalid; the message names the file and field."""


def load_config(path: Path) -> ServerConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    try:
        config = ServerConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    base = path.parent
    return config.model_copy(update={
        "data_dir": base / config.data_dir,
        "load": [base / p for p in config.load],
        "catalogue": base / config.catalogue if config.catalogue else None,
        "timeseries": base / config.timeseries if config.timeseries else None,
    })
