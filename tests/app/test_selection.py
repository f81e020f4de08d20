"""Tests for nnctl.app.selection: cross-validation, grid search and the final model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nnctl.app.data import load_splits
from nnctl.app.executors import LocalExecutor
from nnctl.app.runs import RunStore, load_npz
from nnctl.app.seeds import seed_sequences
from nnctl.app.selection import crossval
from nnctl.app.spec import load_spec, parse_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


# ---------------------------------------------------------------- the final model
def test_final_model_trains_on_all_non_test_rows_for_the_chosen_epochs(tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "iris.yaml", ["training.epochs=12"])
    store = RunStore(tmp_path)
    result = crossval(spec, store, folds=3, make_executor=lambda: LocalExecutor(1), base_dirs=[CONFIGS])
    cv = result.cv
    run = tmp_path / cv["run_id"]
    assert cv["status"] == "completed" and cv["final"]["run_id"] == cv["run_id"]
    (combo,) = cv["combinations"]
    assert combo["winner"] and sum(f["rows_validation"] for f in combo["folds"]) == 120
    assert all(f["rows_train"] + f["rows_validation"] == 120 for f in combo["folds"])
    chosen = cv["winner"]["chosen_epochs"]
    # the choice is the argmin of the mean of the fold curves written to disk
    curves = np.array([[float(r.split(",")[4]) for r in (run / f"crossval/fold-{f:02d}/metrics.csv").read_text().split()[1:]]
                       for f in (1, 2, 3)])
    assert curves.shape == (3, 12)
    assert chosen == int(np.argmin(curves.mean(axis=0))) + 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["rows"] == {"train": 120, "validation": 0, "test": 30}
    assert summary["epochs"] == chosen and summary["stop_reason"] == "max_epochs"
    assert len((run / "metrics.csv").read_text().split()) == chosen + 1
    final_spec = parse_spec((run / "spec.yaml").read_text())
    assert final_spec.training.epochs == chosen and final_spec.data.split.validation == 0
    assert final_spec.stopping.early_stopping is None
    # best.npz is the network after the last epoch, and the test rows are those of a plain run
    assert all(np.array_equal(a, b) for a, b in zip(load_npz(run / "best.npz").values(),
                                                     load_npz(run / "last.npz").values()))
    plain = load_splits(spec.data, np.random.default_rng(seed_sequences(1)[0]), base_dirs=[CONFIGS])
    assert cv["final"]["metrics"]["test"]["rows"] == len(plain.y_test)
    assert json.loads((run / "crossval/cv.json").read_text()) == json.loads(json.dumps(cv))


# ---------------------------------------------------------------- grid search
def _noisy_xor(path: Path, per_corner: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for a in (0, 1):
        for b in (0, 1):
            for x1, x2 in rng.normal([a, b], 0.08, size=(per_corner, 2)):
                rows.append(f"{x1:.4f},{x2:.4f},{a ^ b}")
    path.write_text("x1,x2,y\n" + "\n".join(rows) + "\n")
    return path


XOR_SPEC = """
name: noisy-xor
seed: 0
data: {source: %s, target: y, task: classification, normalize: standard,
       split: {validation: 0.2, test: 0.2}}
model:
  layers: [{units: 4, activation: tanh}]
  output: sigmoid
  init: {scheme: xavier}
loss: log_loss
optimizer: {name: adam, lr: 0.05}
training: {epochs: 60, batch_size: 16}
stopping: {early_stopping: {metric: val_accuracy, patience: 20}}
"""


def test_grid_search_finds_that_one_hidden_unit_cannot_learn_xor(tmp_path: Path) -> None:
    data = _noisy_xor(tmp_path / "xor.csv")
    spec = parse_spec(XOR_SPEC % data)
    result = crossval(spec, RunStore(tmp_path / "runs"), folds=3, grid=["model.layers[0].units=1,8,4"],
                      make_executor=lambda: LocalExecutor(1))
    cv = result.cv
    scores = {c["settings"]["model.layers[0].units"]: c["score"]["mean"] for c in cv["combinations"]}
    assert cv["metric"] == "val_accuracy" and cv["mode"] == "max"
    assert scores[1] <= 0.8  # one tanh unit separates at most three of the four corners
    assert scores[4] == scores[8] == 1.0  # both learn XOR: a tie, which goes to the smaller network
    assert cv["winner"]["settings"] == {"model.layers[0].units": 4}
    assert [c["winner"] for c in cv["combinations"]] == [False, False, True]
    final_spec = parse_spec((tmp_path / "runs" / cv["run_id"] / "spec.yaml").read_text())
    assert final_spec.model.layers[0].units == 4
    assert cv["final"]["metrics"]["test"]["accuracy"] == 1.0


def test_regression_crossval_trains_a_final_model(tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "diabetes.yaml", ["training.epochs=6"])
    cv = crossval(spec, RunStore(tmp_path), folds=3, make_executor=lambda: LocalExecutor(1), base_dirs=[CONFIGS]).cv
    assert cv["metric"] == "val_loss" and 1 <= cv["winner"]["chosen_epochs"] <= 6
    assert sum(f["rows_validation"] for f in cv["combinations"][0]["folds"]) == cv["rows"]["non_test"]
    assert cv["final"]["metrics"]["train"]["rows"] == cv["rows"]["non_test"]
    assert cv["final"]["metrics"]["test"]["rmse"] > 0
