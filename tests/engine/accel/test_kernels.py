"""The compiled kernels and optimizer rules give bit-identical results to the NumPy code."""

import numpy as np
import pytest

from tests.engine.accel import require_numba

require_numba()

from nnctl.engine.accel import kernels  # noqa: E402
from nnctl.engine.accel.updates import UPDATES  # noqa: E402
from nnctl.engine.network import MLP  # noqa: E402
from nnctl.engine.optimizers import OPTIMIZERS, make_optimizer  # noqa: E402

HYPER = {
    "sgd": {"lr": 0.05},
    "momentum": {"lr": 0.05, "mu": 0.8},
    "adagrad": {"lr": 0.05, "eps": 1e-6},
    "rmsprop": {"lr": 0.01, "alpha": 0.9, "eps": 1e-7},
    "adam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.95, "eps": 1e-7},
}


def test_every_optimizer_has_a_compiled_rule() -> None:
    assert set(UPDATES) == set(OPTIMIZERS.values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_compiled_rule_matches_numpy_bit_for_bit(name: str, dtype) -> None:
    size = 40_003
    rng = np.random.default_rng(7)
    w0 = rng.normal(size=size).astype(dtype)
    grads = [rng.normal(scale=s, size=size).astype(dtype) for s in (1.0, 1e-3, 30.0, 0.5)]
    compiled = make_optimizer(name, size, dtype=dtype, **HYPER[name])
    plain = make_optimizer(name, size, dtype=dtype, **HYPER[name])
    update = UPDATES[type(compiled)]
    w_compiled, w_plain = w0.copy(), w0.copy()
    for g in grads:
        update(compiled, w_compiled, g)
        plain.step(w_plain, g)
        np.testing.assert_array_equal(w_compiled, w_plain)
    assert not np.array_equal(w_compiled, w0)
    for key, value in plain.state_dict().items():
        np.testing.assert_array_equal(compiled.state_dict()[key], value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_relu_kernels_match_numpy_bit_for_bit(dtype) -> None:
    net = MLP([30, 20, 10], ["relu"], "softmax", dtype=dtype)
    rng = np.random.default_rng(4)
    z = rng.normal(size=(64, 20)).astype(dtype)
    z[0, :5] = [np.nan, np.inf, -np.inf, -0.0, 0.0]  # NaN and signed zeros take NumPy's path
    b = rng.normal(size=20).astype(dtype)
    relu = net.activations[0]
    expected = relu.forward(z + b, out=np.empty_like(z))
    got = z.copy()
    kernels.bias_relu(got, b)
    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))  # −0 stays −0
    d = rng.normal(size=(64, 20)).astype(dtype)
    d[1, :3] = [np.inf, np.nan, -np.inf]
    expected_d = d.copy()
    with np.errstate(invalid="ignore"):
        relu.backward(expected, expected_d)
        got_d = d.copy()
        kernels.relu_backward(got_d, expected)
    np.testing.assert_array_equal(got_d, expected_d)
