"""training.clip_norm: the global gradient norm is scaled to at most c before each step."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.engine.losses import get_loss
from nnctl.engine.network import MLP
from nnctl.engine.optimizers import make_optimizer
from nnctl.engine.step import clip_global_norm
from nnctl.engine.trainer import FitConfig, fit


def test_clip_global_norm_scales_down_to_c_and_returns_the_old_norm():
    g = np.array([3.0, 0.0, 4.0])
    assert clip_global_norm(g, 2.0) == pytest.approx(5.0)
    np.testing.assert_allclose(g, [1.2, 0.0, 1.6])
    assert np.linalg.norm(g) == pytest.approx(2.0)


def test_clip_global_norm_leaves_a_small_gradient_alone():
    g = np.array([0.3, -0.4], dtype=np.float32)
    before = g.copy()
    assert clip_global_norm(g, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(g, before)


@pytest.mark.parametrize("sizes", [[3, 4, 1], [3, 200, 200, 1]])  # small: the plain step; large: also compiled
def test_one_sgd_step_uses_the_clipped_gradient(sizes):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3))
    t = rng.normal(size=(10, 1)) * 5
    lr = 0.1

    def step(clip):
        net = MLP(sizes, ["tanh"] * (len(sizes) - 2), "linear", dtype=np.float64)
        net.initialize(np.random.default_rng(1), "xavier", 1.0)
        before = net.params.copy()
        z, a = net.forward_train(x, None)
        net.backward(get_loss("squared", "linear").delta(z, a, t, net.activations[-1], np.empty_like(a)) / len(x))
        grad = net.grads.copy()
        opt = make_optimizer("sgd", net.params.size, dtype=np.float64, lr=lr)
        fit(net, get_loss("squared", "linear"), opt, x, t,
            FitConfig(epochs=1, batch_size=10, lr=lr, shuffle=False, metric="rmse", clip_norm=clip),
            np.random.default_rng(0))
        return before, grad, net.params

    before, grad, _ = step(None)
    norm = np.linalg.norm(grad)
    c = norm / 4
    _, _, clipped = step(c)
    np.testing.assert_allclose(clipped, before - lr * grad * (c / norm), rtol=1e-10, atol=1e-14)
    assert np.linalg.norm((before - clipped) / lr) == pytest.approx(c)
    _, _, unclipped = step(norm * 2)  # above the norm: the same step as without clipping
    _, _, free = step(None)
    np.testing.assert_allclose(unclipped, free, rtol=1e-12, atol=1e-15)
