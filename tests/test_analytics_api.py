"""The generic analytics API on small synthetic tables: train/score, save/load identity, bad input."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from analytics.anomaly import AnomalyConfig
from analytics.cli import analytics
from analytics.errors import DataError, ModelFileError
from analytics.features import FeatureConfig
from analytics.model import TrainConfig, train
from analytics.persistence import load, read_metadata, save
from analytics.samples import SampleConfig
from analytics.table import Roles, as_table

CYCLE_LEN = 50


def press_table(cycles: int = 60, seed: int = 0, fault_from: int | None = None) -> dict[str, Any]:
    """Cycles of a press: pressure ramp + vibration; a fault adds a 0.9 mm/s vibration bump and a pressure drop."""
    rng = np.random.default_rng(seed)
    t = np.tile(np.arange(CYCLE_LEN), cycles)
    cyc = np.repeat(np.arange(cycles), CYCLE_LEN)
    fault = np.zeros(cycles, dtype=int)
    if fault_from is not None:
        fault[fault_from:] = 1
    else:
        fault = rng.integers(0, 2, cycles)
    f = np.repeat(fault, CYCLE_LEN)
    pressure = 200 * np.sin(np.pi * t / CYCLE_LEN) - 15 * f + rng.normal(0, 2, t.size)
    vib = 1.0 + 0.9 * f * np.sin(2 * np.pi * t / 5) + rng.normal(0, 0.1, t.size)
    temp = 40 + 0.01 * np.arange(t.size) + rng.normal(0, 0.2, t.size)
    mould = np.repeat(np.where(np.arange(cycles) % 3 == 0, "A", "B"), CYCLE_LEN)
    return {"cycle": cyc, "t": np.arange(t.size), "pressure": pressure, "vibration": vib, "temp": temp,
            "fault": f, "mould": mould}


ROLES = Roles(signals=["pressure", "vibration", "temp"], cycle="cycle", time="t", label="fault")
UNLABELLED = Roles(signals=["pressure", "vibration", "temp"], cycle="cycle", time="t")
FEATURES = SampleConfig(features=FeatureConfig(segments=4, bands=3, envelope=True))


def test_classify_on_cycles_learns_the_fault() -> None:
    table = press_table(80)
    cfg = TrainConfig(task="classify", samples=FEATURES)
    model = train({k: v[: 60 * CYCLE_LEN] for k, v in table.items()}, ROLES, cfg)
    res = model.score({k: v[60 * CYCLE_LEN :] for k, v in table.items()})
    truth = table["fault"][60 * CYCLE_LEN :: CYCLE_LEN]
    assert res.ids == list(range(60, 80))
    assert res.label is not None and res.probability is not None
    assert np.mean(np.asarray(res.label) == truth) >= 0.95
    assert len(model.features) == 3 * (10 + 4 + 3 + 3)


@pytest.mark.parametrize("method", ["pca", "mcd", "iforest", "zmax"])
def test_anomaly_trained_on_normal_rows_flags_the_fault(method: str) -> None:
    table = press_table(200, fault_from=160)
    roles = Roles(signals=["pressure", "vibration"], cycle="cycle", label="fault")
    few = SampleConfig(features=FeatureConfig(statistics=["mean", "std", "kurtosis"]))  # n >> p for the limits
    detector = AnomalyConfig.model_validate({"method": method, "far": 0.01})
    cfg = TrainConfig(task="anomaly", samples=few, anomaly=detector)
    model = train({k: v[: 120 * CYCLE_LEN] for k, v in table.items()}, roles, cfg)
    res = model.score(table)
    assert res.alarm is not None and res.health is not None
    assert res.alarm[160:].mean() >= 0.9  # faulty cycles alarm
    assert res.alarm[120:160].mean() <= 0.1  # unseen normal cycles mostly do not
    assert np.all((res.health > 0) & (res.health <= 1))


def test_window_mode_and_row_mode_with_categoricals() -> None:
    table = press_table(20)
    roles = Roles(signals=["pressure", "vibration"], time="t")
    model = train(table, roles, TrainConfig(task="anomaly", samples=SampleConfig(window=25, step=5),
                                            anomaly=AnomalyConfig.model_validate({"method": "zmax"})))
    res = model.score(table)
    assert res.ids[0] == 24 and res.ids[1] == 29
    rows = Roles(signals=["pressure", "vibration"], categorical=["mould"], label="fault")
    clf = train(table, rows, TrainConfig(task="classify"))
    assert clf.features == ["pressure", "vibration", "mould=A", "mould=B"]
    assert len(clf.score(table).ids) == len(table["t"])


def test_save_load_identity(tmp_path: Path) -> None:
    table = press_table(80)
    forest = AnomalyConfig(method="iforest")
    for roles, cfg in ((ROLES, TrainConfig(task="classify", samples=FEATURES)),
                       (UNLABELLED, TrainConfig(task="anomaly", samples=FEATURES, anomaly=forest))):
        model = train(table, roles, cfg, protocol="synthetic", metrics={"f1": 1.0})
        path = save(model, tmp_path / "m.tem")
        back = load(path)
        a, b = model.score(table).to_dict(), back.score(table).to_dict()
        assert json.dumps(a, default=str) == json.dumps(b, default=str)
        assert back.metadata == json.loads(json.dumps(model.metadata, default=str))
        assert back.features == model.features and back.config == model.config and back.roles == model.roles
        meta = read_metadata(path)["metadata"]
        assert meta["protocol"] == "synthetic" and meta["metrics"] == {"f1": 1.0}
        assert set(meta["libraries"]) >= {"numpy", "scipy", "scikit-learn", "python", "twinedge"}
        assert meta["training"]["samples"] == 80


def _rewrite(path: Path, out: Path, edit: Any) -> None:
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("metadata.json"))
        state = zf.read("state.pkl")
    edit(meta)
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("metadata.json", json.dumps(meta))
        zf.writestr("state.pkl", state)


def test_model_file_from_another_version_is_refused(tmp_path: Path) -> None:
    path = save(train(press_table(20), ROLES, TrainConfig(task="classify")), tmp_path / "m.tem")
    old = tmp_path / "old.tem"
    _rewrite(path, old, lambda m: m["metadata"]["libraries"].update({"scikit-learn": "0.24.2"}))
    with pytest.raises(ModelFileError, match=r"scikit-learn 0\.24\.2 \(file\).*retrain"):
        load(old)
    fmt = tmp_path / "fmt.tem"
    _rewrite(path, fmt, lambda m: m.update({"format": "twinedge-analytics-model/0"}))
    with pytest.raises(ModelFileError, match="model format"):
        load(fmt)
    (tmp_path / "junk.tem").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a TwinEdge analytics model"):
        load(tmp_path / "junk.tem")


def test_bad_inputs_give_clear_errors() -> None:
    table = press_table(80)
    cfg = TrainConfig(task="anomaly", samples=FEATURES)
    model = train(table, UNLABELLED, cfg)
    missing = {k: v for k, v in table.items() if k != "vibration"}
    with pytest.raises(DataError, match=r"missing columns \['vibration'\]"):
        model.score(missing)
    nan = dict(table)
    nan["pressure"] = table["pressure"].copy()
    nan["pressure"][70] = np.nan
    with pytest.raises(DataError, match=r"NaN/inf in signals \['pressure'\].*nan_policy='drop'"):
        model.score(nan)
    const = dict(table, temp=np.full(table["t"].size, 20.0))
    with pytest.raises(DataError, match="'temp' is constant"):
        train(const, UNLABELLED, cfg)
    short = {k: v[:1] for k, v in table.items()}
    with pytest.raises(DataError, match="shorter than min_length"):
        model.score(short)
    rows = Roles(signals=["pressure"], categorical=["mould"], label="fault")
    clf = train(table, rows, TrainConfig(task="classify"))
    unseen = dict(table, mould=np.full(table["t"].size, "C"))
    with pytest.raises(DataError, match=r"categories \['C'\] not seen in training"):
        clf.score(unseen)
    with pytest.raises(DataError, match="fewer than the window"):
        train({k: v[:5] for k, v in table.items()}, Roles(signals=["pressure"]),
              TrainConfig(task="anomaly", samples=SampleConfig(window=10)))
    with pytest.raises(DataError, match="one class only"):
        train(dict(table, fault=np.zeros(table["t"].size)), rows, TrainConfig(task="classify"))


def test_flagged_handling_drops_bad_cycles_and_unseen_categories() -> None:
    table = press_table(60)
    drop = SampleConfig(features=FeatureConfig(), nan_policy="drop", unseen_category="ignore")
    model = train(table, UNLABELLED, TrainConfig(task="anomaly", samples=drop))
    nan = dict(table, pressure=table["pressure"].copy())
    nan["pressure"][CYCLE_LEN * 3 + 5] = np.nan  # cycle 3
    res = model.score(nan)
    assert res.dropped == [3] and 3 not in res.ids and len(res.ids) == 59
    assert any("skipped 1 cycles" in f for f in res.flags)
    rows = Roles(signals=["pressure"], categorical=["mould"], label="fault")
    clf = train(table, rows, TrainConfig(task="classify", samples=drop))
    res2 = clf.score(dict(table, mould=np.full(table["t"].size, "C")))
    assert res2.label is not None and any("unseen categories" in f for f in res2.flags)


def test_dataframe_like_input() -> None:
    class Frame:  # the two things as_table needs from a pandas DataFrame (pandas is not a dependency)
        def __init__(self, data: dict[str, Any]) -> None:
            self.data, self.columns = data, list(data)

        def __getitem__(self, key: str) -> Any:
            return self.data[key]

    table = press_table(5)
    assert sorted(as_table(Frame(table))) == sorted(table)


def test_cli_train_and_score(tmp_path: Path) -> None:
    table = press_table(30)
    csv_path = tmp_path / "press.csv"
    cols = ["cycle", "t", "pressure", "vibration", "temp", "fault", "mould"]
    lines = [",".join(cols)] + [",".join(str(table[c][i]) for c in cols) for i in range(table["t"].size)]
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    out = runner.invoke(analytics, ["train", "--data", str(csv_path), "--task", "classify", "--signals",
                                    "pressure,vibration", "--cycle", "cycle", "--label", "fault", "--out",
                                    str(tmp_path / "m.tem")])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["task"] == "classify"
    scored = runner.invoke(analytics, ["score", "--model", str(tmp_path / "m.tem"), "--data", str(csv_path)])
    assert scored.exit_code == 0, scored.output
    assert len(json.loads(scored.stdout)["label"]) == 30
    bad = runner.invoke(analytics, ["train", "--data", str(csv_path), "--task", "classify", "--signals", "nope",
                                    "--label", "fault", "--out", str(tmp_path / "x.tem")])
    assert bad.exit_code != 0 and "missing columns ['nope']" in bad.output


def test_cli_train_anomaly_with_loo_calibration_and_tolerance(tmp_path: Path) -> None:
    from analytics.persistence import load

    table = press_table(40, fault_from=40)  # all normal
    csv_path = tmp_path / "press.csv"
    cols = ["cycle", "pressure", "vibration", "temp"]
    lines = [",".join(cols)] + [",".join(str(table[c][i]) for c in cols) for i in range(table["cycle"].size)]
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    args = ["train", "--data", str(csv_path), "--task", "anomaly", "--signals", "pressure,vibration,temp",
            "--cycle", "cycle", "--calibration", "loo", "--out", str(tmp_path / "m.tem")]
    out = runner.invoke(analytics, [*args, "--tolerance", "temp=0.5"])
    assert out.exit_code == 0, out.output
    model = load(tmp_path / "m.tem")
    assert model.config.tolerance == {"temp": 0.5} and model.config.anomaly.calibration == "loo"
    assert model.estimator.state["widen"] >= 1.0
    kept = [str(n) for n in np.array(model.features)[model.estimator.keep]]
    floored = [j for j, name in enumerate(kept) if name in ("temp.mean", "temp.std", "temp.max", "temp.rms")]
    assert len(floored) == 4 and all(model.estimator.scale[j] >= 0.5 for j in floored)
    assert model.estimator.scale[kept.index("temp.kurtosis")] < 0.5  # dimensionless: no floor
    for bad_value in ("temp", "temp=-1", "=2", "temp=warm"):
        bad = runner.invoke(analytics, [*args, "--tolerance", bad_value])
        assert bad.exit_code == 2 and "--tolerance" in bad.output and "SIGNAL=VALUE" in bad.output, bad.output


def test_health_index_and_remaining_life() -> None:
    from analytics.health import health_index, remaining_life

    assert health_index(np.array([0.0, 1.0, 3.0])).tolist() == [1.0, 0.5, 0.25]
    falling = np.linspace(0.9, 0.7, 11)  # -0.02 per cycle: 0.5 is reached 10 cycles after the last one
    assert remaining_life(falling) == pytest.approx(10.0)
    assert remaining_life(np.full(10, 0.9)) is None  # no trend, no finite estimate
    assert remaining_life(np.array([0.9, 0.4])) == 0.0  # already past the failure level
    noisy = 0.85 + np.random.default_rng(3).normal(0, 0.05, 20)  # healthy, noisy, no real decline
    noisy[-1] = 0.45  # one bad cycle is not an end of life
    assert remaining_life(noisy) is None
