"""`twinedge simulate`: serve a virtual press line on OPC UA, Modbus TCP and MQTT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import click
import yaml

from edge_agent.simulator.bindings import agent_config
from edge_agent.simulator.config import (
    ProtocolName,
    SimulatorConfig,
    SimulatorConfigError,
    load_config,
    modbus_points,
    parse_config,
    register_map,
)
from edge_agent.simulator.model import FaultKind
from edge_agent.simulator.replay import CsvRecorder, ReplayError
from edge_agent.simulator.servers import Simulator, SimulatorError, run_simulator

#: The configuration used without --config: 3 presses, OPC UA on 4840, Modbus on 5020, MQTT off.
DEFAULT_CONFIG = Path(__file__).with_name("press-line.yaml")


def _parse_fault(text: str) -> dict[str, object]:
    parts = text.split(":")
    if not 3 <= len(parts) <= 5:
        raise click.BadParameter(f"{text!r}: use PRESS:KIND:SEVERITY[:ONSET[:RAMP]], e.g. Press2:pump:0.6:60:120")
    keys = ("press", "kind", "severity", "onset", "ramp")
    fault: dict[str, object] = dict(zip(keys, parts, strict=False))
    if parts[0].isdigit():
        fault["press"] = int(parts[0])  # a press number
    return fault


def _status_line(sim: Simulator, start_counts: list[int]) -> str:
    model_time = sim.source.time
    parts = []
    for i, name in enumerate(sim.source.names):
        values = sim.values(i)
        count = values.get("CycleCounter")
        text = f"{name} {count - start_counts[i]} cycles" if isinstance(count, int) else name
        temp = values.get("OilTemperature")
        if isinstance(temp, float):
            text += f" {temp:.1f}°C"
        parts.append(text)
    return f"{model_time:8.1f} s  " + "  ".join(parts)


def _register_map_text(config: SimulatorConfig) -> str:
    lines = ["offset  count  type     signal              encoding"]
    lines += [f"{f.offset:>6}  {f.count:>5}  {f.data_type:<7}  {f.signal:<18}  {f.note}" for f in register_map()]
    lines.append("")
    lines.append("press      signal              unit  address")
    lines += [f"{p.press:<10} {p.signal:<19} {p.unit_id:>4}  {p.address:>7}" for p in modbus_points(config)]
    return "\n".join(lines)


@click.command(name="simulate")
@click.option("--config", "-c", "config_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Simulator YAML (presses, faults, protocols).  [default: the packaged press-line.yaml: 3 presses, "
                   "OPC UA on 127.0.0.1:4840, Modbus on 127.0.0.1:5020, MQTT off]")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), metavar="S",
              help="Stop after S seconds.  [default: run until Ctrl-C]")
@click.option("--status-every", type=click.FloatRange(min=0), default=10.0, show_default=True, metavar="N",
              help="Print the cycle counts every N seconds (0: never).")
@click.option("--fault", "faults", multiple=True, metavar="PRESS:KIND:SEVERITY[:ONSET[:RAMP]]",
              help="Add a fault (kinds: cooler, valve, pump, accumulator; severity 0..1; onset and ramp in "
                   "seconds), e.g. Press2:pump:0.6:60:120. Repeatable.")
@click.option("--seed", type=int, help="Random seed (overrides the configuration's).")
@click.option("--register-map", "show_map", is_flag=True, help="Print the Modbus register map and exit.")
@click.option("--agent-config", "agent_file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Once the servers listen, write the sources and assets of an agent configuration that binds "
                   "every signal of every press to its twin (edit, add sinks, then `twinedge agent run`).")
@click.option("--agent-protocol", type=click.Choice(["opcua", "modbus", "mqtt"]),
              help="Protocol the --agent-config reads.  [default: the first served of opcua, modbus, mqtt]")
@click.option("--record", "record_dir", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
              help="Write every tick to DIR/<Press>.csv and a DIR/replay.yaml that replays them.")
def simulate(config_file: Path | None, duration: float | None, status_every: float, faults: tuple[str, ...],
             seed: int | None, show_map: bool, agent_file: Path | None, agent_protocol: ProtocolName | None,
             record_dir: Path | None) -> None:
    """Simulate a line of hydraulic presses and serve its signals on real protocols.

    Each press runs stroke cycles (approach, press, hold, return) and reports RamPosition,
    HydraulicPressure, PressForce, OilTemperature, MotorCurrent, Vibration, CycleCounter, CycleTime
    and PartQuality. Faults (cooler, valve, pump, accumulator) ramp in as configured. OPC UA nodes are
    ns=2;s=<Press>.<Signal>; Modbus units and registers are listed by --register-map; MQTT messages
    go to <topic_prefix>/<Press>/telemetry. With `replay:` in the configuration it serves recorded CSV
    rows instead of the model (--record writes them).
    """
    path = config_file or DEFAULT_CONFIG
    try:
        config = load_config(path)
    except SimulatorConfigError as exc:
        raise click.ClickException(str(exc)) from None
    updates: dict[str, object] = {}
    if seed is not None:
        updates["seed"] = seed
    if faults:
        data = config.model_dump(mode="json", exclude_none=True)
        data["faults"] = [*data.get("faults", []), *(_parse_fault(f) for f in faults)]
        data.update(updates)
        try:
            config = parse_config(data, f"{path} with --fault")
        except SimulatorConfigError as exc:
            raise click.ClickException(str(exc)) from None
    elif updates:
        config = config.model_copy(update=updates)
    if show_map:
        click.echo(_register_map_text(config))
        return
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)  # its no-security notices on every start
    click.echo(f"press line: {', '.join(config.press_names())} at {config.rate_hz:g} Hz"
               + (f", replaying {len(config.press_names())} CSV files" if config.replay else "")
               + (f", time x{config.time_scale:g}" if config.time_scale != 1 else ""))
    for i, fault in enumerate(config.faults):
        click.echo(f"fault: {config.press_names()[config.fault_press_index(i)]} {FaultKind(fault.kind).value} "
                   f"severity {fault.severity:g} from {fault.onset:g} s over {fault.ramp:g} s")
    served = [p for p in ("opcua", "modbus", "mqtt") if (c := getattr(config, p)) is not None and c.enabled]
    if agent_file is not None and agent_protocol is None:
        if not served:
            raise click.ClickException("--agent-config: no protocol is enabled in the configuration")
        agent_protocol = served[0]  # type: ignore[assignment]
    if agent_protocol is not None and agent_protocol not in served:
        raise click.ClickException(f"--agent-protocol {agent_protocol}: the configuration does not serve it; "
                                   f"it serves {', '.join(served) or 'nothing'}")
    agent = (agent_file, agent_protocol) if agent_file is not None and agent_protocol is not None else None
    try:
        asyncio.run(_run(config, duration, status_every, agent, record_dir))
    except (SimulatorError, SimulatorConfigError, ReplayError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass


def _write_agent_config(sim: Simulator, path: Path, protocol: ProtocolName) -> None:
    data = agent_config(sim.config, protocol)
    text = ("# Agent sources and assets for the simulated press line (written by `twinedge simulate`);\n"
            "# add sinks (default: the twin server and the embedded time-series store) as needed.\n")
    try:
        path.write_text(text + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    except OSError as exc:
        raise SimulatorError(f"--agent-config: cannot write {path}: {exc.strerror}") from None
    click.echo(f"agent config ({protocol}): {path}")


def _write_replay_config(config: SimulatorConfig, directory: Path) -> Path:
    """A configuration like ``config`` that replays the recording in ``directory`` (faults are in the data)."""
    data = config.model_dump(mode="json", exclude_none=True, exclude={"faults", "replay"})
    data["replay"] = {"files": {name: f"{name}.csv" for name in config.press_names()}, "loop": True}
    parse_config(data, "the replay configuration", directory)  # it must load as written
    path = directory / "replay.yaml"
    text = "# Replays the recording next to this file (written by `twinedge simulate --record`).\n"
    try:
        path.write_text(text + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    except OSError as exc:
        raise SimulatorError(f"--record: cannot write {path}: {exc.strerror}") from None
    return path


async def _run(config: SimulatorConfig, duration: float | None, status_every: float,
               agent: tuple[Path, ProtocolName] | None = None, record: Path | None = None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):  # not on Windows
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    tasks: list[asyncio.Task[None]] = []

    async def report(sim: Simulator) -> None:
        start = [v if isinstance(v := sim.values(i).get("CycleCounter"), int) else 0
                 for i in range(len(sim.source.names))]
        while True:
            await asyncio.sleep(status_every)
            click.echo(_status_line(sim, start))

    started: list[Simulator] = []
    recorders: list[CsvRecorder] = []

    def ready(sim: Simulator) -> None:
        started.append(sim)
        if record is not None:
            recorders.append(CsvRecorder(record, sim.config.press_names()))
            sim.listeners.append(recorders[-1])
            click.echo(f"recording to {record}; replay with: twinedge simulate --config "
                       f"{_write_replay_config(config, record)}")
        if not sim.servers:
            click.echo("no protocol enabled: enable opcua, modbus or mqtt in the configuration", err=True)
        for text in sim.endpoints().values():
            click.echo(text)
        if agent is not None:
            _write_agent_config(sim, *agent)
        click.echo("running" + (f" for {duration:g} s" if duration else "; Ctrl-C stops"))
        if duration is not None:
            loop.call_later(duration, stop.set)
        if status_every > 0:
            tasks.append(asyncio.create_task(report(sim)))

    try:
        await run_simulator(config, stop, ready)
    finally:  # also on Ctrl-C, which cancels this task once every server has stopped
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for recorder in recorders:
            recorder.close()
            click.echo(f"recorded {recorder.rows} ticks")
        for sim in started:
            click.echo(f"stopped after {sim.source.time:.1f} s of model time ({sim.ticks} ticks)")
