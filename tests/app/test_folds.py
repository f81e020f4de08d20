"""Tests for nnctl.app.folds: stratified folds, one fold's rows and scaling, the epoch choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnctl.app.data import load_splits
from nnctl.app.folds import choose_epoch, fold_arrays, stratified_folds
from nnctl.app.seeds import seed_sequences
from nnctl.app.spec import load_spec

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


def test_fold_scaling_is_fitted_on_the_fold_training_rows() -> None:
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
