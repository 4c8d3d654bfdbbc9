"""`twinedge demo`: the main job on embedded defaults, in one process and one event loop.

A simulated press line serves real OPC UA and Modbus TCP on loopback; the edge agent reads it,
writes live values into each press's twin on the twin server and history into the embedded store.
Every part talks to the others over the network exactly as in a real installation; the demo only
starts them together and writes the configs it used into the data folder, so a user can start
each part on its own later (`twinedge simulate`, `twinedge agent run`, `twinedge server`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import orjson
import uvicorn
import yaml

from aas_models.equipment import SPECS_DIR, load_spec
from aas_models.errors import AasError
from aas_models.files import save
from aas_models.package import AasPackage
from aas_models.timeseries.sqlite import SqliteTimeSeries, stored_count
from aas_models.twin import build_twin
from aas_models.validation import validate_package
from edge_agent.assembly import build_agent
from edge_agent.config import parse_config
from edge_agent.runtime import Agent
from edge_agent.simulator import SimulatorConfig
from edge_agent.simulator import load_config as load_simulator_config
from edge_agent.simulator.bindings import agent_config as simulator_bindings
from edge_agent.simulator.config import ProtocolName
from edge_agent.simulator.servers import Simulator
from twin_server.app import create_app
from twin_server.config import ServerConfig
from twin_server.uvicorn_server import TwinUvicornServer

DEFAULT_LINE = Path(__file__).resolve().parents[1] / "edge_agent" / "simulator" / "press-line.yaml"
#: The repository's reference-model catalogue (absent in an installed wheel: then none is served).
CATALOGUE = Path(__file__).resolve().parents[1] / "reference_models"


class _Server(TwinUvicornServer):
    """uvicorn inside the demo's loop: Ctrl-C stops the whole demo in order (sources, drain, server),
    so the server must not take the signal for itself and quit while the agent still delivers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def simulator_config(path: Path) -> SimulatorConfig:
    """The press line on free loopback ports (the file's ports may be taken on a user's PC)."""
    config = load_simulator_config(path)
    update: dict[str, Any] = {}
    for name in ("opcua", "modbus"):
        served = getattr(config, name)
        if served is not None:
            update[name] = served.model_copy(update={"host": "127.0.0.1", "port": 0})
    return config.model_copy(update=update)


def agent_config(sim: SimulatorConfig, server_url: str, data_dir: Path) -> dict[str, Any]:
    """An agent config (as YAML data) binding every simulated signal to its press's twin: odd presses
    over OPC UA subscriptions, even ones over Modbus TCP polling, to show both."""
    both: tuple[ProtocolName, ...] = ("opcua", "modbus")
    served = [name for name in both if getattr(sim, name) is not None and getattr(sim, name).enabled]
    if not served:
        raise click.ClickException("the simulator configuration serves neither OPC UA nor Modbus")
    protocols: dict[str, ProtocolName] = {p.name: served[i % len(served)] for i, p in enumerate(sim.presses)}
    return simulator_bindings(sim, protocols) | {
        "sinks": [{"type": "twin", "url": server_url},
                  {"type": "timeseries", "path": str(data_dir / "timeseries.db")}],
        "buffer": {"path": str(data_dir / "agent-buffer.db")},
        "metrics": {"port": 0},
        "flush_interval": 0.2,
    }


def write_twins(sim: SimulatorConfig, data_dir: Path, endpoint: str) -> list[Path]:
    """Build, validate and write each press's twin (JSON for the server, AASX to hand on)."""
    spec = load_spec(SPECS_DIR / "hydraulic-press.yaml")
    folder = data_dir / "twins"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for press in sim.presses:
        environment = build_twin(spec, press.asset, serial_number=f"SN-{press.asset}", timeseries_endpoint=endpoint,
                                 line=sim.line)
        package = AasPackage(environment)
        problems = [p for p in validate_package(package, f"twin of {press.asset}") if p.severity == "error"]
        if problems:
            raise click.ClickException("the built twin is not valid:\n" + "\n".join(map(str, problems)))
        for suffix in (".json", ".aasx"):
            save(package, folder / f"{press.asset}{suffix}")
        files.append(folder / f"{press.asset}.json")
    return files


def ensure_port_free(port: int) -> None:
    """Fail with advice before anything starts (uvicorn would exit the whole process instead)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise click.ClickException(f"port {port} on 127.0.0.1 is in use (another demo or twin server?): "
                                       "stop it, or pick another port with --port") from None


def stored_samples(path: Path) -> int:
    return stored_count(path)


@dataclass
class Totals:
    samples_read: int
    samples_stored: int
    twin_updates: int
    lost: int


def totals(agent: Agent, stored_before: int, stored_after: int) -> Totals:
    snapshot = agent.snapshot()
    read = sum(int(s["readings"]) for s in snapshot["sources"].values())
    twin = sum(int(s["written"]) for name, s in snapshot["sinks"].items() if name == "twin")
    not_delivered = max((int(s["depth"]) for s in snapshot["sinks"].values()), default=0)
    stored = stored_after - stored_before
    lost = int(snapshot["buffer"]["dropped"]) + not_delivered + max(0, agent.appended - not_delivered - stored)
    return Totals(read, stored, twin, lost)


async def run_demo(data_dir: Path, port: int, duration: float | None, line: Path, quiet: bool, *,
                   cycle_seconds: float = 10.0, train_cycles: int = 18) -> Totals:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    sim_config = simulator_config(line)
    base = f"http://127.0.0.1:{port}"
    api = f"{base}/api/v3.0"
    twins = write_twins(sim_config, data_dir, f"{api}/timeseries")
    server_config = ServerConfig(host="127.0.0.1", port=port, data_dir=data_dir / "server", load=twins,
                                 timeseries=data_dir / "timeseries.db",
                                 catalogue=CATALOGUE if CATALOGUE.is_dir() else None)
    stored_before = stored_samples(data_dir / "timeseries.db")

    def say(text: str) -> None:
        if not quiet:
            click.echo(text, err=True)

    ensure_port_free(port)
    # Ctrl-C from here on (even while the parts start) means an orderly stop, never a traceback.
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted.set)
    server = _Server(uvicorn.Config(create_app(server_config, environ={}), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on", timeout_graceful_shutdown=2))
    server_task = asyncio.create_task(server.serve())
    while not server.started:
        if server_task.done():
            server_task.result()
            raise click.ClickException(f"the twin server could not start on port {port} (is it in use? try --port)")
        await asyncio.sleep(0.05)

    simulator = Simulator(sim_config)
    await simulator.start()  # binds free ports: simulator.config has the real ones
    agent_data = agent_config(simulator.config, api, data_dir)
    (data_dir / "agent.yaml").write_text(yaml.safe_dump(agent_data, sort_keys=False), encoding="utf-8")
    agent = build_agent(parse_config(agent_data, str(data_dir / "agent.yaml")), {}, str(data_dir / "agent.yaml"))
    stop_sim, stop_agent, stop_live = asyncio.Event(), asyncio.Event(), asyncio.Event()
    sim_task = asyncio.create_task(simulator.run(stop_sim))
    agent_task = asyncio.create_task(agent.run(stop_agent))
    from analytics.live import LiveConfig, LiveStats, run_live  # numpy/scikit-learn: only when the demo runs

    history = SqliteTimeSeries(data_dir / "timeseries.db")
    await history.open()
    live = LiveConfig(api=api, store=data_dir / "timeseries.db", assets=[p.asset for p in sim_config.presses],
                      cycle_seconds=cycle_seconds, train_cycles=train_cycles, models_dir=data_dir / "models")
    live_stats = LiveStats()
    live_task = asyncio.create_task(run_live(live, history, stop_live, live_stats))
    say(f"press line: {len(sim_config.presses)} presses on " + ", ".join(simulator.endpoints().values()))
    say(f"dashboards:  {base}/ui")
    say(f"twin server: {api} (twins of {', '.join(p.asset for p in sim_config.presses)})")
    say(f"history:     {api}/timeseries  store {data_dir / 'timeseries.db'}")
    say(f"configs:     {data_dir / 'agent.yaml'} (run parts alone with `twinedge agent run --config ...`)")
    stroke = sim_config.model.params().nominal_cycle_time() / sim_config.time_scale
    say(f"analytics:   learning normal operation from the first {train_cycles} strokes of each press (about "
        f"{train_cycles * stroke / 60:.1f} min), then scoring every stroke into its twin's ConditionMonitoring")
    faults = ", ".join(f"{f.press} {f.kind.value} from {f.onset:g} s" for f in sim_config.faults)
    if faults:
        say(f"faults:      {faults} (watch the health index drop)")
    say("running " + (f"for {duration:g} s" if duration else "until Ctrl-C") + " ...")
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(interrupted.wait(), duration)
        if interrupted.is_set():
            say("stopping: delivering what is buffered ...")
    finally:
        stop_live.set()
        await live_task
        await history.close()
        await agent.stop_sources()
        stop_sim.set()
        await sim_task
        await simulator.stop()
        if not await agent.drain(30):
            say("warning: some samples were still buffered at shutdown; they are kept for the next run")
        result = totals(agent, stored_before, stored_samples(data_dir / "timeseries.db"))
        stop_agent.set()
        await agent_task
        server.should_exit = True
        await server_task
    say(f"analytics: {live_stats.scored} cycles scored, {live_stats.alarms} alarms"
        + (f" (last problem: {live_stats.last_error})" if live_stats.last_error else ""))
    return result


@click.command()
@click.option("--port", default=8081, show_default=True, help="Port of the twin server (API under /api/v3.0).")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("twinedge-data"),
              show_default=True, help="Twins, history, buffer and the generated configs.")
@click.option("--duration", type=click.FloatRange(min=1), default=None,
              help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option("--json", "as_json", is_flag=True, help='End with one JSON line: {"samples_read", "samples_stored", '
              '"twin_updates", "lost"}.')
@click.option("--line", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=DEFAULT_LINE,
              show_default="the built-in three-press line", help="Simulator configuration (YAML).")
def demo(port: int, data_dir: Path, duration: float | None, as_json: bool, line: Path) -> None:
    """Run a simulated hydraulic-press line through the edge agent into live AAS twins and history.

    Nothing to install: the simulator (OPC UA + Modbus TCP), agent, twin server and time-series
    store all run here on loopback.
    """
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # the agent reports connection trouble itself
    try:
        result = asyncio.run(run_demo(data_dir, port, duration, line, quiet=False))
    except AasError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        sys.stdout.write(orjson.dumps(result.__dict__).decode() + "\n")
    else:
        click.echo(f"read {result.samples_read} samples, stored {result.samples_stored}, "
                   f"{result.twin_updates} twin updates, lost {result.lost}")
