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
