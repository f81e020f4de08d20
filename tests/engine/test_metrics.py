"""Evaluation metrics against scikit-learn's (skipped where it is not installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnctl.engine.metrics import (
    accuracy,
    confusion_matrix,
    mae,
    predicted_classes,
    r2,
    rmse,
)


def test_predicted_classes_argmax_and_single_unit_threshold():
    assert predicted_classes(np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])).tolist() == [1, 0]
    assert predicted_classes(np.array([[0.49], [0.5], [0.9]])).tolist() == [0, 1, 1]


def test_metrics_match_sklearn():
    m = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, size=50), rng.integers(0, 4, size=50)
    assert accuracy(y_true, y_pred) == pytest.approx(m.accuracy_score(y_true, y_pred))
    assert np.array_equal(confusion_matrix(y_true, y_pred, 4), m.confusion_matrix(y_true, y_pred, labels=range(4)))
    t, p = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    assert rmse(t, p) == pytest.approx(math.sqrt(m.mean_squared_error(t, p)))
    assert mae(t, p) == pytest.approx(m.mean_absolute_error(t, p))
    t1, p1 = t[:, 0], t[:, 0] + 0.3 * rng.normal(size=30)
    assert r2(t1, p1) == pytest.approx(m.r2_score(t1, p1))


def test_empty_and_constant_inputs_give_nan():
    assert math.isnan(accuracy(np.array([]), np.array([])))
    assert math.isnan(rmse(np.array([]), np.array([])))
    assert math.isnan(r2(np.ones(5), np.zeros(5)))
