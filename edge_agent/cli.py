"""`twinedge agent run|check|status`: the edge agent from the command line."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

import click
import orjson

from edge_agent.config import ConfigError, load_config
from edge_agent.discovery_cli import discover_group

ConfigFile = click.Path(path_type=Path, dir_okay=False, exists=True)


@click.group(name="agent")
def agent_group() -> None:
    """Read OPC UA, Modbus and MQTT signals into AAS twins and the time-series store."""


def _load(config_file: Path) -> Any:
    from edge_agent.assembly import build_agent

    try:
        return build_agent(load_config(config_file), os.environ, str(config_file))
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise click.ClickException(f"{config_file}: not usable; fix the fields named above") from None


@agent_group.command()
@click.option("--config", "config_file", type=ConfigFile, required=True, help="Agent configuration (YAML).")
@click.option("-v", "--verbose", is_flag=True, help="Log every reconnect and retry.")
def run(config_file: Path, verbose: bool) -> None:
    """Run the agent until interrupted (Ctrl-C or SIGTERM). Reconnects and retries by itself;
    samples wait in the durable buffer while a sink is down."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    agent = _load(config_file)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(agent.run(stop))
        await asyncio.sleep(0.2)
        click.echo(f"agent running: {len(agent.connectors)} sources, {len(agent.sinks)} sinks, "
                   f"{len(agent.mapper.bindings())} bindings", err=True)
        if agent.metrics_port:
            click.echo(f"health: http://{agent.metrics.host}:{agent.metrics_port}/metrics (and /status)", err=True)
        await task

    asyncio.run(main())


@agent_group.command()
@click.option("--config", "config_file", type=ConfigFile, required=True, help="Agent configuration (YAML).")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for each source.")
def check(config_file: Path, timeout: float) -> None:
    """Validate the config, connect to every source, read each bound signal once, print a table.

    Exits 1 if a source is unreachable or a signal has an error.
    """
    agent = _load(config_file)
    bound = {(b.source, b.signal): f"{b.key.path} @ {b.key.submodel_id}" for b in agent.mapper.bindings()}

    async def read_all() -> list[tuple[str, list[Any]]]:
        return [(c.name, await c.read_once(timeout)) for c in agent.connectors]

    failed = False
    rows = []
    for connector, (name, readings) in zip(agent.connectors, asyncio.run(read_all()), strict=True):
        got = {r.signal: r for r in readings}
        names = list(dict.fromkeys([*connector.signals(), *(s for (n, s) in bound if n == name)]))
        if connector.stats.last_error and not readings:
            failed = True
        for sig in names:
            reading = got.get(sig)
            problem = connector.stats.signal_errors.get(sig)
            if reading is None or problem or reading.quality.value == "bad":
                failed = True
            value = "-" if reading is None else repr(reading.value)
            quality = "no answer" if reading is None else reading.quality.value
            rows.append((name, sig, value, quality, problem or bound.get((name, sig), "(not bound)")))
        if connector.stats.last_error:
            click.echo(f"{name}: {connector.stats.last_error}", err=True)
    widths = [max(len(str(r[i])) for r in [("source", "signal", "value", "quality", "element"), *rows])
              for i in range(5)]
    for row in [("source", "signal", "value", "quality", "element / problem"), *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if failed:
        sys.exit(1)


@agent_group.command()
@click.option("--url", default="http://127.0.0.1:9464", show_default=True, help="The agent's metrics address.")
def status(url: str) -> None:
    """Show a running agent's counters: per source and sink, buffer depth, dropped, problems."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/status", timeout=5) as response:
            snapshot = orjson.loads(response.read())
    except OSError as exc:
        raise click.ClickException(f"no agent answers at {url}: {exc}") from None
    for name, stats in snapshot["sources"].items():
        state = "connected" if stats.get("connected") else "DISCONNECTED"
        click.echo(f"source {name:<16} {state:<12} readings {stats['readings']:>10}  errors {stats['errors']:>6}  "
                   f"reconnects {stats['reconnects']:>4}")
    for name, stats in snapshot["sinks"].items():
        click.echo(f"sink   {name:<16} written {stats['written']:>10}  depth {stats['depth']:>8}  "
                   f"errors {stats['errors']:>6}  rejected {stats['rejected']:>6}")
    buffer = snapshot["buffer"]
    click.echo(f"buffer appended {buffer['appended']}, dropped {buffer['dropped']}")
    for source, problems in snapshot.get("problems", {}).items():
        for sig, text in problems.items():
            click.echo(f"problem {source}/{sig}: {text}")


agent_group.add_command(discover_group)
