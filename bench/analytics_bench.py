#!/usr/bin/env python3
"""Benchmark analytics: per-cycle scoring latency (live runner path) and training time on the hydraulic set.

Goals (issue 6): p99 scoring latency per cycle < 5 ms on one core; training on the hydraulic set < 60 s.

* Scoring: a model is trained on the hydraulic data (2205 cycles x 60 s x 8 sensors), then ``Model.score`` is
  called on ONE cycle table at a time (60 rows, as the runner does for each new cycle), ``--repeat`` times:
  features + detector / classifier. Cases: the anomaly model (PCA T²/Q on the same features) and the valve
  classifier (extra-trees, 500 trees, as evaluated; predicted with n_jobs=1).
* Training: the five condition classifiers as in ``evaluate --dataset hydraulic`` on all 2205 cycles, one
  core (n_jobs=1) and two.
* Streaming rows (SKAB, when ``--skab-dir`` exists): the forecasting-residual detector (lags 5, window 10, as
  the SKAB evaluation mostly picks) trained on a run's first 400 rows, then scoring each new row from the last
  ``lags + window`` rows, as a live runner at 1 Hz would; once on the detector (``fit_forecast``) and once through
  the generic API (``train`` with anomaly method ``forecast``, ``Model.score`` on a 15-row table: adds the table
  and sample layer).

Run from the repository root: ``python bench/analytics_bench.py [--data-dir ../shared/datasets/hydraulic]
[--skab-dir ../shared/datasets/skab] [--repeat 500] [--json]``. Pins the process to CPU 0
(os.sched_setaffinity) for the one-core figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.anomaly import AnomalyConfig  # noqa: E402
from analytics.evaluation import hydraulic, skab  # noqa: E402
from analytics.forecast import ForecastConfig, fit_forecast  # noqa: E402
from analytics.model import ClassifierConfig, TrainConfig, train  # noqa: E402
from analytics.samples import SampleConfig  # noqa: E402
from analytics.table import Roles  # noqa: E402


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _latency(model: Any, table: dict[str, Any], cycles: int, repeat: int) -> dict[str, float]:
    length = 60
    times = []
    for i in range(repeat):
        c = i % cycles
        one = {k: v[c * length : (c + 1) * length] for k, v in table.items()}
        t0 = time.perf_counter()
        model.score(one)
        times.append((time.perf_counter() - t0) * 1000)
    arr = np.asarray(times[10:])  # first calls warm caches
    return {"p50_ms": round(float(np.percentile(arr, 50)), 3), "p99_ms": round(float(np.percentile(arr, 99)), 3),
            "max_ms": round(float(arr.max()), 3)}


def _row_latency(skab_dir: Path, repeat: int, api: bool) -> dict[str, float]:
    """Forecast detector: score the newest row from the last lags + window rows of one SKAB run (``api``: as a
    model from :func:`train` scoring a table of those rows)."""
    _, run = skab.load_runs(skab_dir)[0]
    x = np.column_stack([run[c] for c in skab.SIGNALS]).astype(np.float64)
    cfg = ForecastConfig(lags=5, window=10)
    det = fit_forecast(x[: skab.TRAIN_ROWS], cfg)
    rows = {c: x[:, j] for j, c in enumerate(skab.SIGNALS)}
    model = train({c: v[: skab.TRAIN_ROWS] for c, v in rows.items()}, Roles(signals=skab.SIGNALS),
                  TrainConfig(task="anomaly", anomaly=AnomalyConfig(method="forecast", lags=5, score_window=10)))
    tail = cfg.lags + cfg.window
    times = []
    for i in range(repeat):
        end = skab.TRAIN_ROWS + i % (x.shape[0] - skab.TRAIN_ROWS)
        t0 = time.perf_counter()
        if api:
            model.score({c: v[end - tail : end + 1] for c, v in rows.items()})
        else:
            det.score(x[end - tail : end + 1])[-1]
        times.append((time.perf_counter() - t0) * 1000)
    arr = np.asarray(times[10:])
    return {"p50_ms": round(float(np.percentile(arr, 50)), 3), "p99_ms": round(float(np.percentile(arr, 99)), 3),
            "max_ms": round(float(arr.max()), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets" / "hydraulic")
    ap.add_argument("--skab-dir", type=Path, default=ROOT.parent / "shared" / "datasets" / "skab")
    ap.add_argument("--repeat", type=int, default=500)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not args.data_dir.is_dir():
        sys.exit(f"{args.data_dir}: hydraulic dataset not found; pass --data-dir")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    table = hydraulic.load_table(args.data_dir)
    cycles = int(table["cycle"].max())
    out: dict[str, Any] = {"cycles": cycles, "one_core": hasattr(os, "sched_setaffinity")}

    train_s = {}
    for jobs in (1, 2):
        if jobs == 2 and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        cfg = hydraulic.CONFIG.model_copy(update={"classifier": hydraulic.CONFIG.classifier.model_copy(
            update={"n_jobs": jobs})})
        t0 = time.perf_counter()
        models = {}
        for target in hydraulic.TARGETS:
            sub = {k: v for k, v in table.items() if k not in hydraulic.TARGETS or k == target}
            models[target] = train(sub, Roles(signals=hydraulic.SENSORS, cycle="cycle", label=target), cfg)
        train_s[f"n_jobs={jobs}"] = round(time.perf_counter() - t0, 2)
        _progress(f"trained 5 hydraulic classifiers with n_jobs={jobs} in {train_s[f'n_jobs={jobs}']} s")
    out["train_5_classifiers_s"] = train_s
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})

    valve = models["valve"]
    valve.estimator.set_params(n_jobs=1)  # type: ignore[union-attr]
    scoring_table = {k: v for k, v in table.items() if k not in hydraulic.TARGETS}
    normal = {k: v for k, v in scoring_table.items()}
    anomaly = train(normal, Roles(signals=hydraulic.SENSORS, cycle="cycle"),
                    TrainConfig(task="anomaly", samples=SampleConfig(features=hydraulic.FEATURES)))
    out["score_latency_per_cycle"] = {
        "anomaly_pca": _latency(anomaly, scoring_table, cycles, args.repeat),
        "valve_extra_trees_500": _latency(valve, scoring_table, cycles, args.repeat),
    }
    small = train({k: v for k, v in table.items() if k not in hydraulic.TARGETS or k == "valve"},
                  Roles(signals=hydraulic.SENSORS, cycle="cycle", label="valve"),
                  hydraulic.CONFIG.model_copy(update={"classifier": ClassifierConfig(
                      kind="extra_trees", n_estimators=100, max_features=0.05, n_jobs=1)}))
    out["score_latency_per_cycle"]["valve_extra_trees_100"] = _latency(small, scoring_table, cycles, args.repeat)
    if args.skab_dir.is_dir():
        out["score_latency_per_cycle"]["skab_forecast_row"] = _row_latency(args.skab_dir, args.repeat, False)
        out["score_latency_per_cycle"]["skab_forecast_row_api"] = _row_latency(args.skab_dir, args.repeat, True)
    out["goals"] = {"p99_ms": 5.0, "train_s": 60.0}
    if args.json:
        print(json.dumps(out))
        return
    print(f"hydraulic set: {cycles} cycles; one core pinned: {out['one_core']}")
    for k, v in train_s.items():
        print(f"training, 5 classifiers ({k}): {v:8.2f} s   (goal < 60 s)")
    for name, lat in out["score_latency_per_cycle"].items():
        print(f"score one cycle, {name:24s} p50 {lat['p50_ms']:7.3f} ms  p99 {lat['p99_ms']:7.3f} ms  "
              f"max {lat['max_ms']:7.3f} ms  (goal p99 < 5 ms)")


if __name__ == "__main__":
    main()
