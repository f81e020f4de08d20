"""A fit stopped at any minibatch and continued from ``resume.capture`` ends exactly as
one never stopped: parameters, optimizer state, callbacks and every logged number."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.engine.callbacks import (
    BestWeights,
    Callback,
    EarlyStopping,
    GradientNorms,
    NoImprovement,
    ValRising,
)
from nnctl.engine.losses import get_loss
from nnctl.engine.network import MLP
from nnctl.engine.optimizers import make_optimizer
from nnctl.engine.resume import capture
from nnctl.engine.schedules import make_schedule
from nnctl.engine.trainer import FitConfig, fit


class Logs(Callback):
    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, state, logs):
        self.rows.append({k: v for k, v in logs.items() if k != "seconds"})


class StopAfter(Callback):
    """Requests a stop after ``steps`` minibatches, as a signal handler would."""

    def __init__(self, steps: int) -> None:
        self.steps, self.seen = steps, 0

    def on_batch_end(self, state):
        self.seen += 1
        if self.seen == self.steps:
            state.stop_requested = True


def _data(n=70, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    labels = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int) + (x[:, 3] > 1)
    return x, np.eye(3, dtype=np.float32)[labels]


def _setup(optimizer: str):
    net = MLP([4, 8, 6, 3], ["tanh", "relu"], "softmax", dropout=[0.1, 0.3, 0.0], dtype=np.float32)
    net.initialize(np.random.default_rng(0), "xavier", 1.0)
    hyper = {"lr": 0.05} if optimizer != "momentum" else {"lr": 0.05, "mu": 0.9}
    opt = make_optimizer(optimizer, net.params.size, dtype=np.float32, **hyper)
    return net, get_loss("cross_entropy", "softmax"), opt


def _callbacks():
    return [GradientNorms(), NoImprovement("train_loss", patience=50, min_delta=1e-4),
            EarlyStopping("val_loss", patience=50), ValRising(40), BestWeights("val_accuracy", restore=False), Logs()]


CONFIG = FitConfig(epochs=9, batch_size=16, lr=0.05, schedule=make_schedule("step", step_size=3, gamma=0.5))


def fit_capture(net, loss, opt, x, t, xv=None, tv=None, callbacks=(), resume=None):
    """fit, and the resumable state at its end (what the run store saves)."""
    grabbed: dict[str, np.ndarray] = {}

    class Grab(Callback):
        def on_train_end(self, state):
            grabbed.update(capture(state, callbacks))

    result = fit(net, loss, opt, x, t, CONFIG, np.random.default_rng(7), xv, tv, [*callbacks, Grab()], resume=resume)
    return result, grabbed


def _run(optimizer, stops):
    """Fit, stopping after each number of further minibatches in ``stops`` and resuming,
    every time with a freshly built network, optimizer and callbacks."""
    x, t = _data()
    xv, tv = _data(30, seed=4)
    arrays, params = None, None
    rows: list[dict[str, float]] = []
    for steps in [*stops, None]:
        net, loss, opt = _setup(optimizer)
        if params is not None:
            net.params[...] = params
        cbs = _callbacks()
        extra = [StopAfter(steps)] if steps else []
        result, arrays = fit_capture(net, loss, opt, x, t, xv, tv, [*cbs, *extra], resume=arrays)
        params = net.params.copy()
        rows += cbs[-1].rows
        if steps:
            assert result.stop_reason == "interrupted"
    return net, opt, cbs, rows, result


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
@pytest.mark.parametrize("stops", [[3], [5, 5, 1], [4, 1, 7, 2]])
def test_stopped_and_resumed_equals_uninterrupted(optimizer, stops):
    ref_net, ref_opt, ref_cbs, ref_rows, ref_result = _run(optimizer, [])
    net, opt, cbs, rows, result = _run(optimizer, stops)
    assert result.stop_reason == ref_result.stop_reason == "max_epochs" and result.epochs == 9
    assert np.array_equal(net.params, ref_net.params)
    for key, value in ref_opt.state_dict().items():
        assert np.array_equal(opt.state_dict()[key], value), key
    best, ref_best = cbs[4], ref_cbs[4]
    assert best.best_epoch == ref_best.best_epoch and np.array_equal(best.best_params, ref_best.best_params)
    assert rows == ref_rows  # every epoch logged once, with the same numbers


def test_stop_at_an_epoch_boundary_resumes_with_the_next_epoch():
    # 70 rows in batches of 16 are 5 steps an epoch: stopping after 5 steps stops before epoch 2's first.
    ref = _run("adam", [])
    got = _run("adam", [5])
    assert np.array_equal(got[0].params, ref[0].params) and got[3] == ref[3]


def test_restore_names_a_missing_key():
    x, t = _data()
    net, loss, opt = _setup("adam")
    _, arrays = fit_capture(net, loss, opt, x, t, callbacks=[StopAfter(2)])
    del arrays["optimizer.m"]
    with pytest.raises(ValueError, match=r"optimizer\.m: missing"):
        fit(net, loss, opt, x, t, CONFIG, np.random.default_rng(7), resume=arrays)


def test_a_stop_requested_mid_epoch_reports_the_finished_epochs():
    x, t = _data()
    net, loss, opt = _setup("sgd")
    result, arrays = fit_capture(net, loss, opt, x, t, callbacks=[StopAfter(12)])
    # 12 steps of 5 per epoch: two epochs finished, two steps (32 rows) into the third.
    assert result.stop_reason == "interrupted" and result.epochs == 2
    assert int(arrays["fit.epoch"]) == 2 and int(arrays["cursor.position"]) == 32
    assert sorted(arrays["cursor.order"].tolist()) == list(range(70))


def test_a_training_that_had_ended_stays_ended_when_resumed():
    # Saved after early stopping ended it (a process killed before recording that):
    # resuming must not train on past the epoch where it stopped.
    x, t = _data()
    xv, tv = _data(30, seed=4)
    net, loss, opt = _setup("adam")
    stop = [EarlyStopping("val_loss", patience=1, min_delta=10.0)]
    result, arrays = fit_capture(net, loss, opt, x, t, xv, tv, callbacks=stop)
    assert result.stop_reason == "early_stopping" and result.epochs < CONFIG.epochs
    params = net.params.copy()
    again, _ = fit_capture(net, loss, opt, x, t, xv, tv, callbacks=[EarlyStopping("val_loss", patience=1, min_delta=10.0)],
                           resume=arrays)
    assert (again.stop_reason, again.epochs) == (result.stop_reason, result.epochs)
    assert np.array_equal(net.params, params)


def test_keyed_callback_state_goes_back_to_its_key_whatever_the_order() -> None:
    from types import SimpleNamespace

    from nnctl.engine.resume import callback_keys, restore

    def counter(key: str, wait: int) -> NoImprovement:
        cb = NoImprovement("train_loss", 5)
        cb.state_key, cb.best, cb.wait = key, 1.0, wait
        return cb

    state = SimpleNamespace(epoch=3, stop_reason=None, rngs={}, cursor=None,
                            optimizer=make_optimizer("sgd", 4))
    arrays = capture(state, [counter("first", 1), counter("second", 2)])
    assert {k for k in arrays if k.startswith("callback.")} >= {"callback.first.wait", "callback.second.wait"}
    second, first = counter("second", 0), counter("first", 0)
    restore(state, [second, first], arrays)
    assert (first.wait, second.wait) == (1, 2)
    with pytest.raises(ValueError, match="share a state key"):
        callback_keys([counter("same", 0), counter("same", 0)])
