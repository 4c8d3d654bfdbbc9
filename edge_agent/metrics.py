"""Health: counters of sources, sinks, mapping and buffer as Prometheus text (`/metrics`) and JSON
(`/status`), served by a tiny HTTP server so a factory PC needs nothing else to watch the agent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

Snapshot = Callable[[], dict[str, Any]]


class MetricsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(snapshot: dict[str, Any]) -> str:
    """Snapshot -> exposition format. Sections: sources, sinks (dicts by name), mapping, buffer."""
    lines: list[str] = []
    for section, label in (("sources", "source"), ("sinks", "sink")):
        names: dict[str, list[str]] = {}
        for name, stats in snapshot.get(section, {}).items():
            for key, value in stats.items():
                if isinstance(value, bool | int | float):
                    names.setdefault(key, []).append(f'twinedge_{label}_{key}{{{label}="{_label(name)}"}} '
                                                     f"{int(value) if isinstance(value, bool) else value}")
        for key, rows in names.items():
            lines.append(f"# TYPE twinedge_{label}_{key} {'gauge' if key in _GAUGES else 'counter'}")
            lines.extend(rows)
    for section in ("mapping", "buffer"):
        for key, value in snapshot.get(section, {}).items():
            if isinstance(value, bool | int | float):
                kind = "gauge" if key in _GAUGES else "counter"
                lines.append(f"# TYPE twinedge_{section}_{key} {kind}")
                lines.append(f"twinedge_{section}_{key} {value}")
    return "\n".join(lines) + "\n"


_GAUGES = {"connected", "depth", "buffered"}


async def serve(config: MetricsConfig, snapshot: Snapshot) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path.startswith("/metrics"):
                body, kind, status = prometheus(snapshot()).encode(), "text/plain; version=0.0.4", "200 OK"
            elif path.startswith("/status"):
                body, kind, status = orjson.dumps(snapshot(), default=str), "application/json", "200 OK"
            else:
                body, kind, status = b"try /metrics or /status\n", "text/plain", "404 Not Found"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, config.host, config.port)
