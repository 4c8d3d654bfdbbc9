"""`twinedge simulate`: serve a virtual press line on OPC UA, Modbus TCP and MQTT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import click

from edge_agent.simulator.config import (
    SimulatorConfig,
    SimulatorConfigError,
    load_config,
    modbus_points,
    parse_config,
    register_map,
)
from edge_agent.simulator.model import FaultKind
from edge_agent.simulator.replay import ReplayError
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
def simulate(config_file: Path | None, duration: float | None, status_every: float, faults: tuple[str, ...],
             seed: int | None, show_map: bool) -> None:
    """Simulate a line of hydraulic presses and serve its signals on real protocols.

    Each press runs stroke cycles (approach, press, hold, return) and reports RamPosition,
    HydraulicPressure, PressForce, OilTemperature, MotorCurrent, Vibration, CycleCounter, CycleTime
    and PartQuality. Faults (cooler, valve, pump, accumulator) ramp in as configured. OPC UA nodes are
    ns=2;s=<Press>.<Signal>; Modbus units and registers are listed by --register-map; MQTT messages
    go to <topic_prefix>/<Press>/telemetry.
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
    try:
        asyncio.run(_run(config, duration, status_every))
    except (SimulatorError, ReplayError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass


async def _run(config: SimulatorConfig, duration: float | None, status_every: float) -> None:
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

    def ready(sim: Simulator) -> None:
        started.append(sim)
        if not sim.servers:
            click.echo("no protocol enabled: enable opcua, modbus or mqtt in the configuration", err=True)
        for text in sim.endpoints().values():
            click.echo(text)
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
        for sim in started:
            click.echo(f"stopped after {sim.source.time:.1f} s of model time ({sim.ticks} ticks)")
