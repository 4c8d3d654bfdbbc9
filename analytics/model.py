"""The generic API: table + column roles -> trained model -> ``score(table)``.

::

    roles = Roles(signals=["TS1", "VS1"], cycle="cycle", label="valve")
    model = train(table, roles, TrainConfig(task="classify"))
    result = model.score(new_cycles)          # ScoreResult: one entry per cycle/window/row
    save(model, "press.tem"); model2 = load("press.tem")

Tasks: ``anomaly`` (learns normal operation only: rows whose label is in ``normal_labels``, or all rows if
there is no label; gives score, alarm, health index, remaining life), ``classify`` (fault class or quality
OK/NG with probability; categoricals one-hot encoded). Anomaly method ``forecast`` works on row streams (no
cycle column, window 1): a one-row-ahead forecaster of all signals (:mod:`analytics.forecast`) fitted on the
contiguous stretches of normal rows. The same model object is what a live runner keeps
in memory: ``score`` on one cycle costs a feature pass plus one detector/classifier call.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, model_validator
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

from .anomaly import AnomalyConfig, Detector, fit_detector
from .errors import DataError
from .fastforest import PackedForest
from .features import in_signal_units
from .forecast import ForecastConfig, ForecastDetector, fit_forecast
from .health import health_index, remaining_life
from .samples import SampleConfig, Samples, build_samples, sample_feature_names
from .table import Roles, Table, as_table

__all__ = ["ClassifierConfig", "Model", "ScoreResult", "TrainConfig", "fit_classifier", "train"]

Array = np.ndarray[Any, np.dtype[np.float64]]
Estimator: TypeAlias = Detector | ForecastDetector | ExtraTreesClassifier | RandomForestClassifier
FAST_BATCH = 8  # up to this many samples per call, trees are walked in numpy (live runner: one cycle)


class ClassifierConfig(BaseModel):
    """Tree ensemble for fault / quality classes (no scaling needed, robust to mixed units)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["extra_trees", "random_forest"] = "random_forest"
    n_estimators: int = Field(default=300, ge=1)
    max_features: float | Literal["sqrt"] = "sqrt"
    min_samples_leaf: int = Field(default=1, ge=1)
    class_weight: Literal["balanced"] | None = None
    threshold: float | None = Field(default=None, gt=0, lt=1, description="binary tasks: probability of the positive "
                                    "(second sorted) class above which it is predicted; default argmax")
    seed: int = 0
    n_jobs: int = 1


class TrainConfig(BaseModel):
    """Everything that decides a model besides the data; stored in the model's metadata."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Literal["anomaly", "classify"]
    samples: SampleConfig = Field(default_factory=SampleConfig)
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    normal_labels: list[Any] = Field(default_factory=lambda: [0, 0.0, "0", "normal", "ok", "OK"])
    tolerance: dict[str, NonNegativeFloat] = Field(
        default_factory=dict,
        description="anomaly: per signal, the smallest change that matters (in its units); the features in the "
        "signal's units never get a finer scale. Default and minimum: the signal's measured quantisation step. "
        "Set it for slow signals that wander in normal operation (oil temperature) when training is short")
    exclude_drifting: bool = Field(
        default=False,
        description="anomaly: drop signals whose trend over the training range exceeds their residual spread (they "
        "cannot get stable limits); listed in metadata",
    )

    @model_validator(mode="after")
    def _forecast_scores_rows(self) -> TrainConfig:
        rows = (self.samples.window, self.samples.step) == (1, 1)
        if self.task == "anomaly" and self.anomaly.method == "forecast" and not rows:
            raise ValueError("anomaly.method 'forecast' scores every row of a stream: samples.window and "
                             "samples.step must be 1 (its history is anomaly.lags, its averaging anomaly.score_window)")
        return self


@dataclass
class ScoreResult:
    """Per sample (cycle id / last row index): anomaly score, alarm, health, life, or class and probability."""

    ids: list[Any]
    score: Array | None = None
    alarm: np.ndarray[Any, Any] | None = None
    health: Array | None = None
    remaining_life: float | None = None
    label: list[Any] | None = None
    probability: Array | None = None
    probabilities: Array | None = None  # (samples, classes) in the order of Model.classes
    dropped: list[Any] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def conv(v: Any) -> Any:
            return v.tolist() if isinstance(v, np.ndarray) else v

        return {k: conv(v) for k, v in self.__dict__.items()}


def _drifting(table: Table, roles: Roles) -> list[str]:
    out = []
    for s in roles.signals:
        x = table[s].astype(np.float64)
        x = x[np.isfinite(x)]
        if x.size < 3:
            continue
        t = np.arange(x.size, dtype=np.float64)
        slope, icpt = np.polyfit(t, x, 1)
        resid = float(np.std(x - (slope * t + icpt)))
        if abs(slope) * x.size > resid:
            out.append(s)
    return out


class Model:
    """A trained model; build with :func:`train`, persist with :func:`analytics.persistence.save`."""

    def __init__(self, roles: Roles, config: TrainConfig, categories: dict[str, list[str]], features: list[str],
                 estimator: Estimator, metadata: dict[str, Any]) -> None:
        self.roles = roles
        self.config = config
        self.categories = categories
        self.features = features
        self.estimator = estimator
        self.metadata = metadata
        self._packed: PackedForest | None = None  # built on first few-sample score, never saved

    @property
    def classes(self) -> list[Any]:
        return [c.item() if hasattr(c, "item") else c for c in getattr(self.estimator, "classes_", [])]

    def features_of(self, table: Any) -> tuple[Array, ScoreResult]:
        """Feature matrix of a table under this model's roles (label not needed) and an empty result."""
        s = build_samples(as_table(table), self.roles, self.config.samples, self.categories, need_label=False)
        return s.x, ScoreResult(ids=s.ids, dropped=s.dropped, flags=s.flags)

    def score(self, table: Any) -> ScoreResult:
        """Score every cycle/window/row of ``table``. Bad cycles are skipped and flagged when nan_policy='drop'."""
        x, res = self.features_of(table)
        return self.score_features(x, res)

    def score_features(self, x: Array, res: ScoreResult) -> ScoreResult:
        if x.shape[0] == 0:
            res.flags.append("no usable samples")
            return res
        est = self.estimator
        if isinstance(est, ForecastDetector):
            need = est.config.lags + 1
            if x.shape[0] < need:
                raise DataError(f"{x.shape[0]} usable rows to score; the forecaster needs at least {need} (lags "
                                f"{est.config.lags} of history and one row to score): pass the preceding rows too")
            warm = min(x.shape[0], est.config.lags + est.config.window - 1)
            res.flags.append(f"the first {warm} rows have a partial history (warm-up): score a stream together with "
                             f"its preceding {est.config.lags + est.config.window - 1} rows for full scores")
        if isinstance(est, (Detector, ForecastDetector)):
            res.score = est.score(x)
            res.alarm = res.score > 1.0
            res.health = health_index(res.score)
            res.remaining_life = remaining_life(res.health)
        else:
            if x.shape[0] <= FAST_BATCH:
                if self._packed is None:
                    self._packed = PackedForest(est)
                proba = self._packed.predict_proba(x)
            else:
                proba = np.asarray(est.predict_proba(x), dtype=np.float64)
            thr = self.config.classifier.threshold
            idx = (proba[:, 1] >= thr).astype(int) if thr is not None and proba.shape[1] == 2 else proba.argmax(1)
            classes = self.classes
            res.label = [classes[i] for i in idx]
            res.probability = proba[np.arange(len(idx)), idx]
            res.probabilities = proba
        return res


def _is_normal(values: list[Any], normal: list[Any]) -> Array:
    keys = {str(v).strip().lower() for v in normal}
    return np.array([str(v).strip().lower() in keys or v in normal for v in values], dtype=bool)


def fit_classifier(x: Array, y: np.ndarray[Any, Any], config: ClassifierConfig,
                   sample_weight: Array | None = None) -> ExtraTreesClassifier | RandomForestClassifier:
    """The tree ensemble of a ``classify`` model fitted on a feature matrix (what :func:`train` uses; cross-
    validation reuses it on features computed once, since per-sample features do not depend on the fold)."""
    cls = ExtraTreesClassifier if config.kind == "extra_trees" else RandomForestClassifier
    est = cls(n_estimators=config.n_estimators, max_features=config.max_features,
              min_samples_leaf=config.min_samples_leaf, class_weight=config.class_weight, random_state=config.seed,
              n_jobs=config.n_jobs)
    return est.fit(x, y, sample_weight=sample_weight)


def _fit_forecast(s: Samples, roles: Roles, config: TrainConfig) -> ForecastDetector:
    """Fit the forecaster on the contiguous stretches of normal rows (a gap from a dropped or abnormal row starts
    a new stretch, so the history of a row never reaches across it)."""
    if roles.cycle is not None or roles.categorical:
        raise DataError("anomaly method 'forecast' models a row stream of signals: remove roles.cycle and "
                        "roles.categorical, or use pca/mcd/iforest/zmax on cycles")
    assert s.rows is not None
    normal = np.ones(len(s.ids), dtype=bool) if s.labels is None else _is_normal(s.labels, config.normal_labels)
    pos = s.rows[normal]
    if pos.size == 0:
        raise DataError(f"no normal rows to learn from (normal labels {config.normal_labels})")
    breaks = np.flatnonzero(np.diff(pos) != 1) + 1
    x = s.x[normal]
    blocks = np.split(x, breaks) if breaks.size else [x]
    a = config.anomaly
    det = fit_forecast(blocks, ForecastConfig(lags=a.lags, window=a.score_window, far=a.far), names=roles.signals)
    if a.limit is not None:
        det.limit = a.limit
    return det


def _resolution(values: Array) -> float:
    """Smallest step between distinct values: a register's quantisation; tiny for a continuous signal."""
    levels = np.unique(values[np.isfinite(values)])
    if levels.size < 2:
        return 0.0
    steps = np.diff(levels)
    steps = steps[steps > 1e-6 * max(1.0, float(np.abs(levels).max()))]  # float32 round-off is not a step
    return float(steps.min()) if steps.size else 0.0


def _resolution_floor(tab: Table, signals: list[str], names: list[str], tolerance: dict[str, float]) -> Array:
    """Per feature: the resolution (or larger tolerance) of the signal whose units it carries, else 0."""
    res = {s: max(_resolution(tab[s].astype(np.float64)), tolerance.get(s, 0.0))
           for s in signals if s in tab and tab[s].dtype.kind in "fiub"}
    floor = np.zeros(len(names))
    for i, name in enumerate(names):
        signal, _, kind = name.rpartition(".")
        if name in res:  # raw signal columns (window 1)
            floor[i] = res[name]
        elif signal in res and in_signal_units(kind):
            floor[i] = res[signal]
    return floor


def train(table: Any, roles: Roles, config: TrainConfig, protocol: str = "", metrics: dict[str, Any] | None = None,
          sample_weight: Array | None = None) -> Model:
    """Train a model on ``table``. ``protocol`` and ``metrics`` are stored as metadata for later readers."""
    tab = as_table(table)
    drift: list[str] = []
    if config.task == "anomaly" and config.exclude_drifting:
        drift = _drifting(tab, roles)
        kept = [s for s in roles.signals if s not in drift]
        if not kept:
            raise DataError(f"every signal drifts over the training range ({drift}); train on a steadier range")
        roles = roles.model_copy(update={"signals": kept})
    for sig in roles.signals:
        if sig in tab and tab[sig].dtype.kind in "fiub":
            col = tab[sig].astype(np.float64)
            fin = col[np.isfinite(col)]
            if fin.size and np.ptp(fin) == 0:
                raise DataError(f"signal {sig!r} is constant ({fin[0]}) in the training data; it carries no "
                                "information: remove it from roles.signals or check the sensor")
    categories = {c: sorted(set(tab[c].astype(str).tolist())) for c in roles.categorical if c in tab}
    need_label = config.task == "classify" or roles.label is not None
    if config.task == "classify" and roles.label is None:
        raise DataError("task 'classify' needs roles.label (the column holding the class of each row/cycle)")
    s = build_samples(tab, roles, config.samples, categories, need_label=need_label)
    names = sample_feature_names(roles, config.samples, categories)
    estimator: Estimator
    if config.task == "anomaly" and config.anomaly.method == "forecast":
        estimator = _fit_forecast(s, roles, config)
    elif config.task == "anomaly":
        x = s.x
        if s.labels is not None:
            x = x[_is_normal(s.labels, config.normal_labels)]
        estimator = fit_detector(x, config.anomaly, _resolution_floor(tab, roles.signals, names, config.tolerance))
    else:
        assert s.labels is not None
        if len(set(map(str, s.labels))) < 2:
            raise DataError(f"the label column {roles.label!r} has one class only; a classifier needs two or more")
        estimator = fit_classifier(s.x, np.asarray(s.labels), config.classifier, sample_weight)
    time_range: list[Any] | None = None
    if roles.time is not None and roles.time in tab:
        tcol = tab[roles.time]
        time_range = [str(np.min(tcol)), str(np.max(tcol))]
    from .persistence import library_versions

    metadata = {
        "task": config.task,
        "created": dt.datetime.now(dt.UTC).isoformat(),
        "training": {"samples": int(s.x.shape[0]), "rows": len(next(iter(tab.values()))),
                     "time_range": time_range, "first_id": str(s.ids[0]) if s.ids else None,
                     "last_id": str(s.ids[-1]) if s.ids else None, "dropped": len(s.dropped),
                     "excluded_drifting_signals": drift},
        "protocol": protocol,
        "metrics": metrics or {},
        "libraries": library_versions(),
    }
    return Model(roles, config, categories, names, estimator, metadata)
