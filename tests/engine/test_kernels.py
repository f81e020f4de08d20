"""The compiled optimizer kernels give bit-identical results to the NumPy code."""

import numpy as np
import pytest

from nnctl.engine import kernels
from nnctl.engine.optimizers import OPTIMIZERS, make_optimizer

pytest.importorskip("numba")

HYPER = {
    "sgd": {"lr": 0.05},
    "momentum": {"lr": 0.05, "mu": 0.8},
    "adagrad": {"lr": 0.05, "eps": 1e-6},
    "rmsprop": {"lr": 0.01, "alpha": 0.9, "eps": 1e-7},
    "adam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.95, "eps": 1e-7},
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_kernel_matches_numpy_bit_for_bit(name: str, dtype) -> None:
    size = kernels.MIN_SIZE + 3
    rng = np.random.default_rng(7)
    w0 = rng.normal(size=size).astype(dtype)
    grads = [rng.normal(scale=s, size=size).astype(dtype) for s in (1.0, 1e-3, 30.0, 0.5)]
    fused = make_optimizer(name, size, dtype=dtype, **HYPER[name])
    plain = make_optimizer(name, size, dtype=dtype, **HYPER[name])
    assert fused._fused is not None
    plain._fused = None
    w_fused, w_plain = w0.copy(), w0.copy()
    for g in grads:
        fused.step(w_fused, g)
        plain.step(w_plain, g)
        np.testing.assert_array_equal(w_fused, w_plain)
    assert not np.array_equal(w_fused, w0)
    for key, value in plain.state_dict().items():
        np.testing.assert_array_equal(fused.state_dict()[key], value)


def test_small_buffers_and_the_switch_stay_on_numpy(monkeypatch) -> None:
    assert make_optimizer("adam", kernels.MIN_SIZE - 1)._fused is None
    monkeypatch.setenv("NNCTL_NUMBA", "0")
    assert make_optimizer("adam", kernels.MIN_SIZE * 2)._fused is None


def _relu_net(dtype):
    from nnctl.engine.network import MLP

    net = MLP([300, 128, 128, 10], ["relu", "relu"], "softmax", dtype=dtype)
    net.initialize(np.random.default_rng(3), "he")
    assert net.params.size >= kernels.MIN_SIZE
    return net


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_relu_layers_match_numpy_bit_for_bit(dtype) -> None:
    fused, plain = _relu_net(dtype), _relu_net(dtype)
    assert fused._fused is not None
    plain._fused = None
    rng = np.random.default_rng(4)
    x = rng.normal(size=(64, 300)).astype(dtype)
    x[0, :5] = [np.nan, np.inf, -np.inf, -0.0, 0.0]  # NaN and signed zeros take NumPy's path
    delta = rng.normal(size=(64, 10)).astype(dtype)
    outs = []
    for net in (fused, plain):
        with np.errstate(invalid="ignore", over="ignore"):
            z, a = net.forward_train(x, None)
            net.backward(delta)
        outs.append((z.copy(), net.grads.copy(), [h[:64].copy() for h in net._work.z]))
    (z1, g1, h1), (z2, g2, h2) = outs
    np.testing.assert_array_equal(z1, z2)
    np.testing.assert_array_equal(g1, g2)
    for a, b in zip(h1, h2):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(z1[0]).all() and np.isfinite(z1[1:]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_row_gather_equals_take(dtype) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 37)).astype(dtype)
    x[3, :4] = [np.nan, np.inf, -0.0, -np.inf]
    idx = rng.permutation(500)[:129]
    idx[:3] = 3  # repeated rows
    gather = kernels.load().gather_rows  # also the lanes' copy_rows
    out = np.full((129, 37), 7.0, dtype)
    gather(x, idx, out, 0, 129)
    np.testing.assert_array_equal(out, np.take(x, idx, axis=0))
    part = np.full((129, 37), 7.0, dtype)
    gather(x, idx, part, 16, 80)
    np.testing.assert_array_equal(part[16:80], x[idx[16:80]])
    assert (part[:16] == 7).all() and (part[80:] == 7).all()
