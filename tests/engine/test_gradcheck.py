"""engine.gradcheck: the per-layer comparison, its block error and the ReLU kink rule."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.engine.gradcheck import STEP, block_error, check_gradients
from nnctl.engine.losses import get_loss
from nnctl.engine.network import MLP


def case(hidden, dropout=None):
    net = MLP([3, 5, 4, 2], hidden, "softmax", dropout=dropout, dtype=np.float64)
    net.initialize(np.random.default_rng(0), "normal", 0.8)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3))
    t = np.eye(2)[rng.integers(0, 2, size=6)]
    return net, get_loss("cross_entropy", "softmax"), x, t


def test_block_error_formula():
    assert block_error(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert block_error(np.array([3.0, 4.0]), np.array([0.0, 0.0])) == pytest.approx(1.0)
    assert block_error(np.array([1e-6]), np.array([0.0])) == pytest.approx(1e-6 / 1e-3)  # below the floor: absolute
    assert block_error(np.array([]), np.array([])) == 0.0


@pytest.mark.parametrize("hidden, dropout", [(["tanh", "sigmoid"], None), (["relu", "leaky_relu"], [0.0, 0.3, 0.3])])
def test_every_layer_passes_and_every_entry_is_checked(hidden, dropout):
    net, loss, x, t = case(hidden, dropout)
    before = net.params.copy()
    checks = check_gradients(net, loss, x, t, mask_seed=3, samples=None)
    assert [c.layer for c in checks] == [1, 2, 3]
    assert (checks[2].weights_checked, checks[2].biases_checked) == (8, 2)
    assert all(c.max_error < 1e-6 and c.grad_norm > 0 for c in checks)
    np.testing.assert_array_equal(net.params, before)  # every perturbation undone


def test_an_entry_whose_step_crosses_a_relu_kink_is_skipped():
    net, loss, x, t = case(["relu", "relu"])
    z1 = x @ net.weights[0] + net.biases[0]
    net.biases[0][0] -= z1[0, 0] + STEP / 4  # row 0, unit 0 sits just below the kink
    checks = check_gradients(net, loss, x, t, samples=None)
    assert checks[0].skipped >= 1
    assert all(c.max_error < 1e-6 for c in checks)


def test_a_wrong_backward_pass_is_caught(monkeypatch):
    net, loss, x, t = case(["tanh", "tanh"])
    real = net.backward

    def wrong(delta):
        real(delta)
        net.weight_grads[0][...] *= 1.001

    monkeypatch.setattr(net, "backward", wrong)
    checks = check_gradients(net, loss, x, t, samples=None)
    assert checks[0].weight_error > 1e-4 and checks[1].max_error < 1e-6
