"""The seam: ``make_step`` gives a compiled step where it pays, and a fit gives the same
numbers, bit for bit, whichever step it takes."""

import warnings

import numpy as np
import pytest

from tests.engine.accel import require_numba

require_numba()

from nnctl.engine import accel  # noqa: E402
from nnctl.engine.callbacks import Callback, GradientNorms  # noqa: E402
from nnctl.engine.losses import get_loss  # noqa: E402
from nnctl.engine.network import MLP  # noqa: E402
from nnctl.engine.optimizers import SGD, make_optimizer  # noqa: E402
from nnctl.engine.step import Regularization  # noqa: E402
from nnctl.engine.trainer import FitConfig, fit  # noqa: E402

BIG = [300, 128, 64, 10]  # 47,498 parameters


class _Logs(Callback):
    def __init__(self):
        self.rows = []

    def on_epoch_end(self, state, logs):
        self.rows.append({k: v for k, v in logs.items() if k != "seconds"})


@pytest.fixture(autouse=True)
def _short_fits_count(monkeypatch):
    """The fits here are short; the compiled step serves them all the same."""
    monkeypatch.setattr(accel, "FIXED_COST", 0.0)


def _fit(monkeypatch, numba: str, *, optimizer="adam", output="softmax", loss="cross_entropy", hidden=("relu", "relu"),
         dtype=np.float32, batch=64, **config):
    monkeypatch.setenv("NNCTL_NUMBA", numba)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 300)).astype(dtype)
    classes = x[:, :10].argmax(axis=1)
    t = np.eye(10, dtype=dtype)[classes] if output == "softmax" else x[:, :10].astype(dtype)
    net = MLP(BIG, list(hidden), output, dropout=[0.2, 0.5, 0.0], dtype=dtype)
    net.initialize(np.random.default_rng(0), "he")
    opt = make_optimizer(optimizer, net.params.size, dtype=dtype, lr=0.01)
    logs = _Logs()
    metric = "accuracy" if output == "softmax" else "rmse"
    result = fit(net, get_loss(loss, output), opt, x, t,
                 FitConfig(epochs=3, batch_size=batch, lr=0.01, metric=metric, **config), np.random.default_rng(1),
                 x_val=x[:50], t_val=t[:50], callbacks=[GradientNorms(), logs])
    return result, net.params.copy(), logs.rows, opt.state_dict()


CASES = [
    {},
    {"optimizer": "sgd", "l2": 1e-3},
    {"optimizer": "momentum", "max_norm": 2.0},
    {"optimizer": "rmsprop", "clip_norm": 0.5},
    {"optimizer": "adagrad", "hidden": ("tanh", "leaky_relu")},
    {"output": "linear", "loss": "squared"},
    {"dtype": np.float64, "batch": 1},
    {"batch": 77},  # a short last minibatch
]


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_a_fit_gives_the_same_numbers_whichever_step(monkeypatch, case):
    compiled = _fit(monkeypatch, "1", **case)
    plain = _fit(monkeypatch, "0", **case)
    assert compiled[0].step == "compiled" and plain[0].step == "numpy"
    np.testing.assert_array_equal(compiled[1], plain[1])
    assert compiled[2] == plain[2]
    for key, value in plain[3].items():
        np.testing.assert_array_equal(compiled[3][key], value)
    assert len(compiled[2]) == 3 and "val_loss" in compiled[2][0]


def _make(monkeypatch, sizes, optimizer=None, numba="1", epochs=1):
    monkeypatch.setenv("NNCTL_NUMBA", numba)
    net = MLP(sizes, ["relu"] * (len(sizes) - 2), "softmax")
    opt = optimizer or make_optimizer("adam", net.params.size)
    return accel.make_step(net, get_loss("cross_entropy", "softmax"), opt, Regularization(),
                           accel.FitShape(batch=128, rows=10_000, epochs=epochs))


def test_make_step_obeys_the_switch(monkeypatch):
    assert _make(monkeypatch, BIG).name == "compiled"
    assert _make(monkeypatch, BIG, numba="0") is None


def _fewest_epochs(sizes, optimizer) -> int:
    """The fewest epochs of 10,000 rows in minibatches of 128 for which ``saved_seconds``
    reaches twice ``FIXED_COST``, counted from the formula by hand."""
    net = MLP(sizes, ["relu"] * (len(sizes) - 2), "softmax")
    params, units = net.params.size, sum(sizes[1:])
    passes = {"sgd": 1, "momentum": 6, "adam": 11}[optimizer]
    per_step = params * passes * accel.PASS_SECONDS + 128 * units * accel.ELEMENT_SECONDS
    steps_per_epoch = -(-10_000 // 128)
    return int(np.ceil(2 * accel.FIXED_COST / (per_step * steps_per_epoch)))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("sizes", [BIG, [64, 32, 10], [784, 1024, 1024, 10]], ids=str)
def test_make_step_leaves_short_fits_to_the_plain_step(monkeypatch, sizes, optimizer):
    monkeypatch.setattr(accel, "FIXED_COST", 0.5)
    epochs = _fewest_epochs(sizes, optimizer)
    net_size = MLP(sizes, ["relu"] * (len(sizes) - 2), "softmax").params.size
    opt = lambda: make_optimizer(optimizer, net_size)  # noqa: E731
    assert _make(monkeypatch, sizes, opt(), epochs=epochs - 1) is None
    assert _make(monkeypatch, sizes, opt(), epochs=epochs).name == "compiled"


def test_small_networks_take_the_plain_step_in_any_fit_a_user_runs(monkeypatch):
    monkeypatch.setattr(accel, "FIXED_COST", 0.5)
    assert _fewest_epochs([64, 32, 10], "sgd") > 1000  # 64-32-10 with SGD: never in practice
    assert _fewest_epochs([784, 1024, 1024, 10], "adam") <= 10  # a wide network: from a few epochs


def test_an_optimizer_without_a_compiled_rule_takes_the_plain_step(monkeypatch):
    class Nesterov(SGD):
        pass

    assert _make(monkeypatch, BIG, optimizer=Nesterov(47_498)) is None


def test_a_failed_self_check_falls_back_with_one_warning(monkeypatch):
    from nnctl.engine.accel import output

    accel.self_check.cache_clear()
    monkeypatch.setattr(output, "cross_entropy_total", lambda z, t, zmax, amax: 0.125)  # a wrong number
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert _make(monkeypatch, BIG) is None
            assert _make(monkeypatch, BIG) is None  # checked once
        assert len(caught) == 1 and "plain step" in str(caught[0].message)
    finally:
        accel.self_check.cache_clear()
