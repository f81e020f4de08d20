"""Tests for nnctl.app.training: the shipped configs learn to their stated accuracy, and
train_from_spec records what happened (warnings, callbacks, interruption, init.from)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nnctl.app.errors import DataError, SpecError
from nnctl.app.runs import RunStore, load_npz
from nnctl.app.spec import load_spec
from nnctl.app.training import RunResult, check_spec, train_from_spec
from nnctl.engine.callbacks import Callback

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _train(tmp_path: Path, config: str, overrides=(), **kwargs) -> RunResult:
    spec_path = CONFIGS / f"{config}.yaml"
    spec = load_spec(spec_path, list(overrides))
    return train_from_spec(spec, RunStore(tmp_path / "runs"), base_dirs=[CONFIGS], **kwargs)


# ---------------------------------------------------------------- the shipped configs learn
@pytest.mark.parametrize(
    ("config", "bar"),
    [("iris", 0.95), ("digits", 0.97), ("breast_cancer", 0.96)],
)
def test_shipped_config_reaches_its_test_accuracy(tmp_path: Path, config: str, bar: float) -> None:
    result = _train(tmp_path, config)
    assert result.status == "completed"
    assert result.stop_reason in ("early_stopping", "max_epochs")
    assert result.metrics["test"]["accuracy"] >= bar, result.metrics
    assert result.metrics["train"]["accuracy"] >= bar


def test_xor_is_learned(tmp_path: Path) -> None:
    result = _train(tmp_path, "xor")
    assert result.status == "completed"
    assert result.stop_reason == "loss_below"  # stops well before the 5000-epoch limit
    assert result.epochs < 5000
    assert result.metrics["train"]["accuracy"] == 1.0
    assert result.metrics["train"]["rows"] == 4
    assert result.metrics["validation"] == {} and result.metrics["test"] == {}


def test_regression_learns_something(tmp_path: Path) -> None:
    result = _train(tmp_path, "diabetes")
    assert result.status == "completed" and result.task == "regression"
    test = result.metrics["test"]
    assert 30 < test["rmse"] < 70 and test["r2"] > 0.2


# ---------------------------------------------------------------- what a run records
def test_result_matches_the_run_directory(tmp_path: Path) -> None:
    result = _train(tmp_path, "iris", ["training.epochs=20"])
    run = Path(result.run_dir)
    assert run.parent == tmp_path / "runs" and run.name == result.run_id
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == result.status == "completed"
    assert summary["epochs"] == result.epochs == 20
    assert summary["best_epoch"] == result.best_epoch
    assert summary["metrics"] == json.loads(json.dumps(result.to_dict()["metrics"]))
    json.dumps(result.to_dict())  # serializable as is
    best = load_npz(run / "best.npz")
    assert best["layer1.weight"].dtype == np.float32
    assert str(best["prep.task"]) == "classification"


def test_callbacks_see_every_epoch(tmp_path: Path) -> None:
    class Recorder(Callback):
        def __init__(self) -> None:
            self.epochs: list[int] = []
            self.began = self.ended = 0

        def on_train_begin(self, state) -> None:
            self.began += 1

        def on_epoch_end(self, state, logs) -> None:
            self.epochs.append(int(logs["epoch"]))
            assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"} <= set(logs)

        def on_train_end(self, state) -> None:
            self.ended += 1

    recorder = Recorder()
    result = _train(tmp_path, "iris", ["training.epochs=7"], callbacks=[recorder])
    assert recorder.epochs == list(range(1, 8)) and result.epochs == 7
    assert recorder.began == recorder.ended == 1


def test_warnings_are_passed_on(tmp_path: Path) -> None:
    seen: list[str] = []
    result = _train(tmp_path, "xor", ["training.epochs=3", "data.normalize=none"], on_warning=seen.append)
    assert seen and seen == result.warnings
    assert any(w.startswith("model.layers[0].activation") for w in seen)


def test_interrupt_keeps_a_complete_run(tmp_path: Path) -> None:
    class CtrlC(Callback):
        def on_epoch_end(self, state, logs) -> None:
            if logs["epoch"] == 5:
                raise KeyboardInterrupt

    result = _train(tmp_path, "iris", callbacks=[CtrlC()])
    assert result.status == "interrupted" and result.stop_reason == "interrupted"
    run = Path(result.run_dir)
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    for name in ("best.npz", "last.npz", "spec.yaml", "metrics.csv"):
        assert (run / name).is_file()


def test_bad_data_leaves_no_run(tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "iris.yaml", ["data.target=specis"])
    with pytest.raises(DataError, match="specis"):
        train_from_spec(spec, RunStore(tmp_path / "runs"), base_dirs=[CONFIGS])
    assert not (tmp_path / "runs").exists()


def test_init_from_a_previous_run_starts_where_it_left_off(tmp_path: Path) -> None:
    first = _train(tmp_path, "iris", ["training.epochs=40", "stopping.early_stopping=null"])
    best = Path(first.run_dir) / "best.npz"
    warm = _train(tmp_path, "iris", ["training.epochs=1", f"model.init={{from: '{best}'}}"])
    cold = _train(tmp_path, "iris", ["training.epochs=1"])
    assert warm.metrics["train"]["loss"] < cold.metrics["train"]["loss"]
    assert warm.metrics["train"]["loss"] < 2 * first.metrics["train"]["loss"]


def test_init_from_a_wrong_shape_names_the_key(tmp_path: Path) -> None:
    first = _train(tmp_path, "iris", ["training.epochs=2"])
    best = Path(first.run_dir) / "best.npz"
    spec = load_spec(CONFIGS / "iris.yaml", ["model.layers[0].units=8", f"model.init={{from: '{best}'}}"])
    store = RunStore(tmp_path / "other-runs")
    with pytest.raises(SpecError, match=r"model\.init\.from: layer1\.weight: shape \(4, 16\), expected \(4, 8\)"):
        train_from_spec(spec, store, base_dirs=[CONFIGS])
    assert not store.root.exists()


def test_check_spec_does_not_create_a_run(tmp_path: Path) -> None:
    checked = check_spec(load_spec(CONFIGS / "digits.yaml"), base_dirs=[CONFIGS])
    assert "network 64-128-10" in checked.summary
    assert checked.spec_dict["model"]["output"] == "softmax"
    assert not (tmp_path / "runs").exists()
