"""Tests for nnctl.app.selection: folds, the epoch choice, the final model, grid search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nnctl.app.data import load_splits
from nnctl.app.executors import LocalExecutor
from nnctl.app.seeds import seed_sequences
from nnctl.app.runs import RunStore, load_npz
from nnctl.app.selection import (
    choose_epoch,
    crossval,
    parse_grid_option,
    stratified_folds,
)
from nnctl.app.spec import load_spec, parse_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


# ---------------------------------------------------------------- folds
@pytest.mark.parametrize("k", [2, 3, 7])
def test_folds_partition_the_rows_and_are_stratified(k: int) -> None:
    y = np.repeat([0, 1, 2], [23, 11, 9])
    rng = np.random.default_rng(np.random.SeedSequence(5).spawn(1)[0])
    folds = stratified_folds(y, len(y), k, rng)
    assert len(folds) == k
    joined = np.concatenate(folds)
    assert np.array_equal(np.sort(joined), np.arange(len(y)))  # every row exactly once
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for c in range(3):
        n_c = int((y == c).sum())
        counts = [int((y[f] == c).sum()) for f in folds]
        assert set(counts) <= {n_c // k, -(-n_c // k)}, counts  # ⌊n_c/k⌋ or ⌈n_c/k⌉


def test_folds_depend_only_on_the_seed() -> None:
    y = np.repeat([0, 1], [10, 10])

    def make(seed: int):
        return stratified_folds(y, 20, 4, np.random.default_rng(seed))

    assert all(np.array_equal(a, b) for a, b in zip(make(1), make(1)))
    assert not all(np.array_equal(a, b) for a, b in zip(make(1), make(2)))


def test_unstratified_folds_cover_every_row() -> None:
    folds = stratified_folds(None, 10, 3, np.random.default_rng(0))
    assert sorted(len(f) for f in folds) == [3, 3, 4]
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(10))


# ---------------------------------------------------------------- the epoch choice
def test_epoch_choice_is_the_optimum_of_the_mean_curve() -> None:
    # Fold minima are at epochs 2 and 5, but the mean curve is lowest at epoch 4.
    curves = np.array([
        [0.9, 0.1, 0.6, 0.3, 0.5, 0.9],
        [0.9, 0.9, 0.5, 0.3, 0.2, 0.9],
    ])
    epoch, mean, std = choose_epoch(curves, "min")
    assert epoch == 4
    assert mean == pytest.approx(0.3) and std == pytest.approx(0.0)
    epoch, mean, std = choose_epoch(1 - curves, "max")  # accuracy-like: maximized
    assert epoch == 4 and mean == pytest.approx(0.7)


def test_epoch_choice_takes_the_earliest_tie_and_skips_unreached_epochs() -> None:
    curves = np.array([[0.5, 0.2, 0.2, 0.1], [0.5, 0.2, 0.2, np.nan]])  # fold 2 diverged at epoch 4
    epoch, mean, std = choose_epoch(curves, "min")
    assert epoch == 2 and mean == pytest.approx(0.2)
    assert choose_epoch(np.full((2, 3), np.nan), "min")[0] == 0


def test_grid_option_reads_yaml_values() -> None:
    assert parse_grid_option("model.layers[0].units=2,4,8") == ("model.layers[0].units", [2, 4, 8])
    assert parse_grid_option("optimizer={name: sgd, lr: 0.1},{name: adam}") == (
        "optimizer", [{"name": "sgd", "lr": 0.1}, {"name": "adam"}])


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


# ---------------------------------------------------------------- fold data and regression
def test_fold_scaling_is_fitted_on_the_fold_training_rows() -> None:
    from nnctl.app.jobs import fold_arrays

    for config, overrides in (("iris", []), ("diabetes", ["data.scale_target=true"])):
        spec = load_spec(CONFIGS / f"{config}.yaml", ["data.split.validation=0", "stopping.early_stopping=null", *overrides])
        splits = load_splits(spec.data, np.random.default_rng(seed_sequences(0)[0]), dtype=np.float64, base_dirs=[CONFIGS])
        held = np.arange(0, len(splits.y_train), 3)
        X, y, Xv, yv, prep = fold_arrays(splits, held, bool(spec.data.scale_target), np.dtype(np.float64))
        assert len(X) + len(Xv) == len(splits.X_train) and len(Xv) == len(held)
        np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-9)  # standardized on these rows alone
        np.testing.assert_allclose(X.std(axis=0), 1, rtol=1e-9)
        assert np.abs(Xv.mean(axis=0)).max() > 1e-3  # the held-out fold is not part of the fit
        if config == "diabetes":
            np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-9)
            raw = splits.y_train * splits.prep.target_scale + splits.prep.target_mean
            np.testing.assert_allclose(prep.inverse_target(yv), raw[held])


def test_regression_crossval_trains_a_final_model(tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "diabetes.yaml", ["training.epochs=6"])
    cv = crossval(spec, RunStore(tmp_path), folds=3, make_executor=lambda: LocalExecutor(1), base_dirs=[CONFIGS]).cv
    assert cv["metric"] == "val_loss" and 1 <= cv["winner"]["chosen_epochs"] <= 6
    assert sum(f["rows_validation"] for f in cv["combinations"][0]["folds"]) == cv["rows"]["non_test"]
    assert cv["final"]["metrics"]["train"]["rows"] == cv["rows"]["non_test"]
    assert cv["final"]["metrics"]["test"]["rmse"] > 0


def test_stopping_keys_cannot_be_searched() -> None:
    from nnctl.app.errors import UsageError
    from nnctl.app.selection import merge_grid

    with pytest.raises(UsageError, match="stopping.val_rising cannot be searched"):
        merge_grid({}, ["stopping.val_rising=2,4"])
    assert merge_grid({"model.layers[0].units": [2]}, ["model.layers[0].units=4,8"]) == {
        "model.layers[0].units": ("--grid model.layers[0].units", [4, 8])}


def test_jobs_and_runs_share_the_loop_settings_clip_norm_included() -> None:
    """A fold or restart job trains with the settings a run does: clip_norm changes a
    job's training exactly as it changes a run's."""
    from nnctl.app.jobs import Job, run_job
    from nnctl.app.training import prepare

    text = (CONFIGS / "iris.yaml").read_text()
    base = ["training.epochs=3", "data.split.validation=0", "stopping.early_stopping=null",
            "optimizer={name: sgd, lr: 0.5}"]
    specs = [prepare(parse_spec(text, overrides=[*base, *extra])).spec
             for extra in ([], ["training.clip_norm=0.01"])]
    curves = [run_job(Job(spec=s, fixed=True, metric="train_loss")).history for s in specs]
    assert [r["train_loss"] for r in curves[0]] != [r["train_loss"] for r in curves[1]]
    # With plain SGD, a gradient clipped to norm 0.01 moves the weights at most 0.005 a step.
    assert curves[1][-1]["train_loss"] > curves[0][-1]["train_loss"]
