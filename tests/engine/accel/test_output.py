"""The compiled softmax cross-entropy step gives the NumPy path's numbers bit for bit."""

import numpy as np
import pytest

from tests.engine.accel import require_numba

require_numba()

from nnctl.engine.accel.output import pairwise_sum, softmax_cross_entropy  # noqa: E402
from nnctl.engine.activations import softmax  # noqa: E402
from nnctl.engine.losses import cross_entropy, cross_entropy_delta  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pairwise_sum_is_numpys_sum(dtype):
    rng = np.random.default_rng(2)
    for n in [*range(0, 300), 1000, 4097, 8192, 8193, 100_001]:
        x = (rng.standard_normal(n) * rng.uniform(1, 1e4)).astype(dtype)
        assert pairwise_sum(x, 0, n, dtype(0)) == x.sum(), n
    rows = rng.standard_normal((7, 1000)).astype(dtype)
    for i in range(7):
        assert pairwise_sum(rows[i], 0, 1000, dtype(0)) == rows.sum(axis=1)[i]


def _numpy_step(z, t):
    m = len(z)
    a = softmax(z, out=np.empty_like(z))
    loss = cross_entropy(z, a, t)
    delta = cross_entropy_delta(z, a, t, None, np.empty_like(z))
    delta *= 1.0 / m
    return a, loss, a.argmax(axis=1), delta


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k", [(128, 10), (96, 10), (1, 2), (17, 3), (64, 100), (5, 1000), (300, 7)])
def test_step_matches_numpy_bit_for_bit(dtype, m, k):
    rng = np.random.default_rng(m * k)
    for scale in (1.0, 30.0, 1e3):
        z = (rng.standard_normal((m, k)) * scale).astype(dtype)
        t = np.eye(k, dtype=dtype)[rng.integers(0, k, m)]
        a, pred, delta = np.empty_like(z), np.empty(m, np.int64), np.empty_like(z)
        loss = softmax_cross_entropy(z, a, t, pred, delta, np.empty(m, dtype), np.empty(m, dtype))
        ref_a, ref_loss, ref_pred, ref_delta = _numpy_step(z, t)
        np.testing.assert_array_equal(a, ref_a)
        np.testing.assert_array_equal(pred, ref_pred)
        np.testing.assert_array_equal(delta, ref_delta)
        assert loss == ref_loss
        assert np.isfinite(loss)


def test_non_finite_logits_give_a_non_finite_loss_as_numpy_does():
    z = np.array([[0.0, 1.0, 2.0], [np.nan, 0.0, 1.0], [np.inf, 0.0, 1.0]], np.float32)
    t = np.eye(3, dtype=np.float32)
    a, pred, delta = np.empty_like(z), np.empty(3, np.int64), np.empty_like(z)
    with np.errstate(invalid="ignore"):
        loss = softmax_cross_entropy(z, a, t, pred, delta, np.empty(3, np.float32), np.empty(3, np.float32))
        ref_a, ref_loss, ref_pred, _ = _numpy_step(z, t)
    assert np.isnan(loss) and np.isnan(ref_loss)
    np.testing.assert_array_equal(a, ref_a)
    np.testing.assert_array_equal(pred, ref_pred)  # argmax: the first NaN counts as largest
