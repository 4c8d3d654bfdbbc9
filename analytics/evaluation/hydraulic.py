"""Hydraulic test rig (UCI 447, eight 1 Hz sensors) condition classification under the pinned protocols.

Protocols, one classifier per target (cooler, valve, pump, accumulator, stable flag): stratified 5-fold CV
with shuffle (seed 0), and 5 contiguous blocks without shuffle (neighbouring cycles are near duplicates, so the
shuffled figure is optimistic; the blocked one is closer to "a condition never seen before").

Method through the generic API: the 2205 x 60 matrices become a long table (cycle id, second, 8 signals);
per-cycle features (``FEATURES``): 10 statistics and 12 segment means per sensor, and the whole aligned profile
of SE (the efficiency factor, computed on the rig from pressure and flow, so it carries the valve's switching
lag) with its first differences. Extra-trees, 500 trees, max_features 0.05. These choices were made earlier by
comparing shuffled-CV accuracies on this dataset: treat the shuffled figures as tuned.

Valve (the hardest target) gets **nested** model selection: inside each outer training fold, an inner 3-fold CV
(of the same kind as the outer protocol) picks one of ``VALVE_CANDIDATES``; the pick is refitted on the whole
outer training fold and predicts the outer test fold. Outer test cycles never influence the choice. One
candidate adds derived signals (``DERIVED``: temperature differences between the four sensors, cooling
efficiency per kW of cooling power, vibration per kW), computed per second as extra table columns, so they go
through the same feature builder as the sensors.

Per-cycle features do not depend on the fold (nothing is fitted), so they are computed once and the folds fit
:func:`analytics.model.fit_classifier` on their rows: the same estimator :func:`analytics.model.train` builds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from analytics.errors import DatasetError
from analytics.features import FeatureConfig
from analytics.model import ClassifierConfig, TrainConfig, fit_classifier
from analytics.samples import SampleConfig, build_samples
from analytics.table import Roles, Table

from ._cv import folds

__all__ = ["DERIVED", "SENSORS", "TARGETS", "VALVE_CANDIDATES", "evaluate", "load_table", "with_derived"]

SENSORS = ["TS1", "TS2", "TS3", "TS4", "VS1", "CE", "CP", "SE"]
TARGETS = ["cooler", "valve", "pump", "accumulator", "stable"]
FEATURES = FeatureConfig(segments=12, profile_signals=["SE"], profile_points=60)
CONFIG = TrainConfig(
    task="classify",
    samples=SampleConfig(features=FEATURES),
    classifier=ClassifierConfig(kind="extra_trees", n_estimators=500, max_features=0.05, n_jobs=2),
)
DERIVED = {"TS1-TS2": ("TS1", "-", "TS2"), "TS1-TS3": ("TS1", "-", "TS3"), "TS1-TS4": ("TS1", "-", "TS4"),
           "TS2-TS3": ("TS2", "-", "TS3"), "TS2-TS4": ("TS2", "-", "TS4"), "TS3-TS4": ("TS3", "-", "TS4"),
           "CE/CP": ("CE", "/", "CP"), "VS1/CP": ("VS1", "/", "CP")}
# valve candidates (feature set, max_features), fixed before each nested run. "segments" has means of 30
# two-second parts of every sensor (SE changes every 2 s), the steps between consecutive parts, and the timing of
# each sensor's peak, bottom, steepest rise and drop with their sizes, besides the statistics and SE's profile;
# "derived" is base plus statistics and 12 segment means of the DERIVED signals. Round 3 dropped the candidates
# the inner CV never picked in rounds 1-2 (all eight sensors' 60-point profiles / 0.05; segments / 0.05) and
# added derived / 0.15 (see docs/analytics.md for what was compared, on training cycles only, before)
FEATURE_SETS: dict[str, tuple[list[str], FeatureConfig]] = {
    "base": (SENSORS, FEATURES),
    "segments": (SENSORS, FeatureConfig(segments=30, segment_diffs=True, timing=True, profile_signals=["SE"],
                                        profile_points=60)),
    "derived": ([*SENSORS, *DERIVED], FEATURES),
}
VALVE_CANDIDATES: list[tuple[str, float]] = [("base", 0.05), ("base", 0.15), ("segments", 0.15), ("derived", 0.15)]
INNER_TREES = 100
Array = np.ndarray[Any, Any]


def load_table(data_dir: Path, every: int = 1) -> Table:
    """Long table: one row per (cycle, second), columns cycle, second, the 8 sensors and the 5 targets.
    ``every`` > 1 keeps every n-th cycle (quick runs that still span all conditions)."""
    root = Path(data_dir)
    missing = [s for s in [*SENSORS, "profile"] if not (root / f"{s}.txt").is_file()]
    if missing:
        raise DatasetError(f"{root}: missing {missing} (.txt); pass ../shared/datasets/hydraulic")
    mats = {s: np.loadtxt(root / f"{s}.txt")[::every] for s in SENSORS}
    profile = np.loadtxt(root / "profile.txt")[::every]
    n, length = mats["TS1"].shape
    table: Table = {"second": np.tile(np.arange(length), n)}
    for s in SENSORS:
        table[s] = mats[s].reshape(-1)
    for j, t in enumerate(TARGETS):
        table[t] = np.repeat(profile[:, j].astype(int), length)
    table["cycle"] = np.repeat(np.arange(1, n + 1) * every - every + 1, length)  # original cycle numbers
    return table


def with_derived(table: Table) -> Table:
    """The table with the DERIVED signals as extra columns (per second, like the sensors)."""
    out = dict(table)
    for name, (a, op, b) in DERIVED.items():
        out[name] = table[a] - table[b] if op == "-" else table[a] / table[b]
    return out


def _features(table: Table, features: FeatureConfig, signals: list[str] | None = None) -> Array:
    """Per-cycle feature matrix (cycles in table order) under the generic API's sample builder."""
    roles = Roles(signals=signals or SENSORS, cycle="cycle")
    s = build_samples(table, roles, SampleConfig(features=features), {}, need_label=False)
    return s.x


def _classifier(max_features: float, trees: int) -> ClassifierConfig:
    return CONFIG.classifier.model_copy(update={"max_features": max_features, "n_estimators": trees})


def _inner_folds(y: Array, protocol: str) -> list[tuple[Array, Array]]:
    if protocol == "stratified":
        return list(StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    return list(KFold(3).split(np.zeros(len(y))))


def select_valve(xs: dict[str, Array], y: Array, protocol: str) -> int:
    """Index of the VALVE_CANDIDATES entry with the best inner-CV accuracy on these (training) cycles only."""
    best, best_acc = 0, -1.0
    for c, (feat, mf) in enumerate(VALVE_CANDIDATES):
        x = xs[feat]
        hits = 0
        for tr, te in _inner_folds(y, protocol):
            est = fit_classifier(x[tr], y[tr], _classifier(mf, INNER_TREES))
            hits += int((est.predict(x[te]) == y[te]).sum())
        acc = hits / len(y)
        if acc > best_acc:
            best, best_acc = c, acc
    return best


def evaluate(data_dir: Path, progress: Callable[[str], None] | None = None, every: int = 1,
             targets: list[str] | None = None) -> dict[str, Any]:
    """Accuracy in % per target and protocol; ``every`` thins the cycles and ``targets`` limits them (tests).
    ``valve_choices`` lists, per protocol, the candidate index the inner CV picked in each outer fold."""
    table = with_derived(load_table(data_dir, every))
    first_rows = np.flatnonzero(table["second"] == 0)
    per_cycle = {k: v[first_rows] for k, v in table.items()}
    xs = {name: _features(table, f, sig) for name, (sig, f) in FEATURE_SETS.items()
          if name == "base" or (targets is None or "valve" in targets)}
    x_main = xs["base"]
    out: dict[str, Any] = {"shuffled": {}, "blocked": {}, "confusion": {}, "valve_choices": {}}
    for target in targets or TARGETS:
        y = per_cycle[target]
        for proto, key in (("stratified", "shuffled"), ("blocked", "blocked")):
            pred = np.empty_like(y)
            choices = []
            for k, (tr, te) in enumerate(folds(y, proto)):
                x, cfg = x_main, CONFIG.classifier
                if target == "valve":
                    c = select_valve({f: m[tr] for f, m in xs.items()}, y[tr], proto)
                    choices.append(c)
                    feat, mf = VALVE_CANDIDATES[c]
                    x, cfg = xs[feat], _classifier(mf, CONFIG.classifier.n_estimators)
                pred[te] = fit_classifier(x[tr], y[tr], cfg).predict(x[te])
                if progress:
                    progress(f"hydraulic {target}: {proto} fold {k + 1}/5")
            out[key][target] = round(100.0 * float(np.mean(pred == y)), 2)
            if target == "valve":
                out["valve_choices"][key] = choices
            if key == "shuffled":
                out["confusion"][target] = (y, pred)
    return out
