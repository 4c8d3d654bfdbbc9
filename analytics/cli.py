"""``twinedge analytics``: train, score and evaluate models (mounted by twinedge/cli.py).

``evaluate`` prints exactly one JSON object on stdout (the pinned protocol's metrics); progress goes to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from .errors import AnalyticsError
from .spc import SpcError
from .table import Roles, read_csv

DATASETS = ("skab", "ai4i", "hydraulic", "steel", "spc")


def _progress(message: str) -> None:
    click.echo(f"[{time.strftime('%H:%M:%S')}] {message}", err=True)


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()] if text else []


def _tolerances(items: tuple[str, ...]) -> dict[str, float]:
    """``--tolerance SIGNAL=VALUE`` options as a dict; a malformed one is a usage error naming it."""
    out: dict[str, float] = {}
    for item in items:
        signal, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not sep or not signal.strip() or not number >= 0:
            raise click.BadParameter(f"{item!r}: expected SIGNAL=VALUE with a value >= 0 in the signal's units, "
                                     "e.g. OilTemperature=1.0", param_hint="--tolerance")
        out[signal.strip()] = number
    return out


TOLERANCE_HELP = ("SIGNAL=VALUE: the smallest change of that signal that matters, in its units (repeatable); "
                  "its features get no finer scale. For slow signals that wander in normal operation.")


@click.group("analytics")
def analytics() -> None:
    """Anomaly detection, fault/quality classification, health and SPC on tables of machine data."""


@analytics.command("train")
@click.option("--data", "data", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="CSV with a header row (',' or ';')")
@click.option("--task", type=click.Choice(["anomaly", "classify"]), required=True)
@click.option("--signals", required=True, help="comma-separated numeric sensor columns")
@click.option("--time", "time_col", help="timestamp column (rows are ordered by it)")
@click.option("--cycle", help="cycle id column: one sample per cycle")
@click.option("--label", help="class column (classify), or normal/abnormal marker (anomaly: trains on normal rows)")
@click.option("--categorical", help="comma-separated text input columns (one-hot)")
@click.option("--window", type=int, default=1, show_default=True, help="rows per window when there is no cycle")
@click.option("--method", type=click.Choice(["pca", "mcd", "iforest", "zmax", "forecast"]), default="pca",
              show_default=True, help="anomaly detector; 'forecast' for row streams (no --cycle, --window 1)")
@click.option("--far", type=float, default=0.01, show_default=True, help="anomaly: target false-alarm rate")
@click.option("--lags", type=int, default=5, show_default=True, help="forecast: rows of history it predicts from")
@click.option("--score-window", type=int, default=10, show_default=True,
              help="forecast: trailing rows its residual score averages")
@click.option("--calibration", type=click.Choice(["theory", "loo"]), default="theory", show_default=True,
              help="anomaly limit: from theory, or widened by leave-one-out scores (few training samples)")
@click.option("--tolerance", "tolerance", multiple=True, help=TOLERANCE_HELP)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="model file")
def train_cmd(data: Path, task: str, signals: str, time_col: str | None, cycle: str | None, label: str | None,
              categorical: str | None, window: int, method: str, far: float, lags: int, score_window: int,
              calibration: str, tolerance: tuple[str, ...], out: Path) -> None:
    """Train a model on a CSV and save it with its metadata."""
    from .model import TrainConfig, train
    from .persistence import save

    try:
        roles = Roles(signals=_split(signals), time=time_col, cycle=cycle, label=label,
                      categorical=_split(categorical))
        config = TrainConfig.model_validate({"task": task, "samples": {"window": window},
                                             "tolerance": _tolerances(tolerance),
                                             "anomaly": {"method": method, "far": far, "lags": lags,
                                                         "score_window": score_window, "calibration": calibration}})
        model = train(read_csv(data), roles, config, protocol=f"trained on all rows of {data.name}")
        save(model, out)
    except (AnalyticsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"model": str(out), "features": len(model.features), **model.metadata}, default=str))


@analytics.command("score")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--data", "data", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
def score_cmd(model_path: Path, data: Path) -> None:
    """Score a CSV with a saved model; one JSON object (per-sample results) on stdout."""
    from .persistence import load

    try:
        result = load(model_path).score(read_csv(data))
    except AnalyticsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(result.to_dict(), default=str))


def _run(dataset: str, data_dir: Path, report: Path | None) -> dict[str, Any]:
    """Run one evaluation; returns the JSON object to print (and writes the report PNGs)."""
    if report:
        from .evaluation import report as rep
    if dataset == "skab":
        from .evaluation import skab

        res = skab.evaluate(data_dir, _progress)
        if report:
            _progress(f"wrote {rep.skab_png(res['runs'], report)}")
        return {k: res[k] for k in ("f1", "far", "mar")}
    if dataset == "ai4i":
        from .evaluation import ai4i

        res = ai4i.evaluate(data_dir, _progress)
        if report:
            panels = {"AI4I machine failure": (res["truth"], res["pred"])}
            _progress(f"wrote {rep.confusion_png(panels, report, 'ai4i')}")
        return {k: res[k] for k in ("f1", "precision", "recall", "roc_auc")}
    if dataset == "hydraulic":
        from .evaluation import hydraulic

        res = hydraulic.evaluate(data_dir, _progress)
        if report:
            _progress(f"wrote {rep.confusion_png(res['confusion'], report, 'hydraulic')}")
        return {"shuffled": res["shuffled"], "blocked": res["blocked"]}
    if dataset == "steel":
        from .evaluation import steel

        res = steel.evaluate(data_dir, _progress)
        if report:
            _progress(f"wrote {rep.confusion_png({'steel plates': (res['truth'], res['pred'])}, report, 'steel')}")
        return {k: res[k] for k in ("accuracy", "macro_f1")}
    from .evaluation import spc

    res = spc.evaluate(data_dir)
    if report:
        _progress(f"wrote {rep.spc_png(spc.load_pistonrings(data_dir), res, report)}")
    return res


@analytics.command("evaluate")
@click.option("--dataset", type=click.Choice(DATASETS), required=True)
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="the dataset's folder, e.g. ../shared/datasets/skab")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object (the default output format too)")
@click.option("--report", type=click.Path(file_okay=False, path_type=Path), help="write PNG pictures here")
def evaluate_cmd(dataset: str, data_dir: Path, as_json: bool, report: Path | None) -> None:
    """Run a dataset's pinned protocol (see docs/analytics.md) and print its metrics."""
    start = time.perf_counter()
    _progress(f"{dataset}: pinned protocol on {data_dir}")
    try:
        result = _run(dataset, data_dir, report)
    except (AnalyticsError, SpcError) as exc:
        raise click.ClickException(str(exc)) from exc
    _progress(f"{dataset}: done in {time.perf_counter() - start:.1f} s")
    sys.stdout.write(json.dumps(result, default=str) + "\n")


@analytics.command("run")
@click.option("--asset", "assets", multiple=True, required=True, help="Asset id to watch; repeatable.")
@click.option("--api", default="http://127.0.0.1:8081/api/v3.0", show_default=True, help="AAS API of the twin server.")
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), default=Path("twinedge-data/timeseries.db"),
              show_default=True, help="The embedded time-series store the agent writes.")
@click.option("--signals", help="OperationalData signals the model watches (comma-separated).  "
              "[default: HydraulicPressure,PressForce,OilTemperature,MotorCurrent,Vibration]")
@click.option("--spc-signal", default="Vibration", show_default=True,
              help="Signal whose cycle means go on the SPC chart ('' for none).")
@click.option("--spc-tolerance", type=click.FloatRange(min=0), default=0.05, show_default=True,
              help="Smallest shift of the SPC signal's cycle mean that matters, in its units (the default is for "
              "Vibration, mm/s): the control limits are never closer to the centre.")
@click.option("--cycle-signal", default="CycleCounter", show_default=True,
              help="Cycle counter: each change starts a cycle (a stroke). '' for time slices of --cycle-seconds.")
@click.option("--cycle-seconds", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Length of a time slice; with a cycle counter, about one stroke: how long a value is held "
              "and how often to look.")
@click.option("--train-cycles", type=click.IntRange(min=8), default=24, show_default=True,
              help="First cycles after start taken as healthy operation to learn from.")
@click.option("--far", type=click.FloatRange(min=0, max=0.5, min_open=True, max_open=True), default=0.002,
              show_default=True, help="False-alarm target per cycle (sets the alarm limit).")
@click.option("--tolerance", "tolerance", multiple=True,
              help=TOLERANCE_HELP + "  [default: OilTemperature=1.0]")
@click.option("--token-env", help="Environment variable holding a writer token for the twin server.")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), help="Save each trained model here.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds.")
def run_cmd(assets: tuple[str, ...], api: str, store: Path, signals: str | None, spc_signal: str,
            spc_tolerance: float, cycle_signal: str, cycle_seconds: float, train_cycles: int, far: float,
            tolerance: tuple[str, ...], token_env: str | None, models_dir: Path | None, duration: float | None) -> None:
    """Score every new cycle of each asset live and write its ConditionMonitoring submodel.

    Learns normal operation from the first --train-cycles cycles after start (start it while the
    machines are in good condition), then writes health index, anomaly score, remaining life and
    SPC state per cycle through the AAS API; alarms are logged. Runs until Ctrl-C or --duration.
    """
    import asyncio
    import logging
    import os
    import signal

    from aas_models.timeseries.sqlite import SqliteTimeSeries

    from .live import PRESS_SIGNALS, LiveConfig, LiveStats, run_live

    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise click.ClickException(f"--token-env {token_env}: the variable is not set")
    tolerances = {"tolerance": _tolerances(tolerance)} if tolerance else {}  # else LiveConfig's default
    if not store.exists():
        raise click.ClickException(f"{store} does not exist: point --store at the agent's time-series store")
    try:
        config = LiveConfig.model_validate({
            "api": api, "store": store, "assets": list(assets), "signals": _split(signals) or list(PRESS_SIGNALS),
            "spc_signal": spc_signal or None, "spc_tolerance": spc_tolerance, "cycle_signal": cycle_signal or None,
            "cycle_seconds": cycle_seconds,
            "train_cycles": train_cycles,
            "far": far, "token": token, "models_dir": models_dir, **tolerances})
    except ValidationError as exc:
        raise click.ClickException("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> LiveStats:
        history = SqliteTimeSeries(store)
        await history.open()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if duration:
            loop.call_later(duration, stop.set)
        cycles = f"strokes (changes of {cycle_signal})" if cycle_signal else f"cycles of {cycle_seconds:g} s"
        _progress(f"learning from the first {train_cycles} {cycles} of "
                  f"{', '.join(assets)} ...")
        try:
            return await run_live(config, history, stop)
        finally:
            await history.close()

    stats = asyncio.run(main())
    _progress(f"scored {stats.scored} cycles, skipped {stats.skipped}, alarms {stats.alarms}"
              + (f"; last problem: {stats.last_error}" if stats.last_error else ""))
