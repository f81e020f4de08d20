"""Steps split across lanes train the same network as the one-thread step: bit for bit
at shapes whose products OpenBLAS splits cleanly, to float32 rounding elsewhere, and
identically from run to run."""

from __future__ import annotations

import os

import numpy as np
import pytest

from nnctl.engine import lanes
from nnctl.engine.callbacks import Callback, GradientNorms
from nnctl.engine.losses import get_loss
from nnctl.engine.network import MLP
from nnctl.engine.optimizers import make_optimizer
from nnctl.engine.resume import capture
from nnctl.engine.trainer import FitConfig, fit

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture(autouse=True)
def _needs_lanes():
    if not lanes.available():
        pytest.skip("lanes need numba with OpenMP threads and NumPy on its ILP64 OpenBLAS")


def _task(sizes, rows, loss, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, sizes[0]), dtype=np.float32)
    if loss == "cross_entropy":
        t = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], rows)]
    elif loss == "log_loss":
        t = (x[:, :1] > 0).astype(np.float32)
    else:
        t = rng.random((rows, sizes[-1]), dtype=np.float32)
    return x, t


def _fit(sizes, acts, output, loss, batch, rows, n_lanes, optimizer="adam", l2=0.0, epochs=2, callbacks=(),
         resume=None, params=None, dropout=None):
    x, t = _task(sizes, rows, loss)
    net = MLP(sizes, acts, output, dropout=dropout)
    net.initialize(np.random.default_rng(0), "he")
    if params is not None:
        net.params[...] = params
    opt = make_optimizer(optimizer, net.params.size, lr=0.01)
    config = FitConfig(epochs=epochs, batch_size=batch, lr=0.01, l2=l2, lanes=n_lanes,
                       metric="accuracy" if loss != "squared" else "rmse")
    logs: list[dict[str, float]] = []

    class Logs(Callback):
        def on_epoch_end(self, state, row):
            logs.append({k: v for k, v in row.items() if k != "seconds"})

    with threadpoolctl.threadpool_limits(1):
        result = fit(net, get_loss(loss, output), opt, x, t, config, np.random.default_rng(1),
                     callbacks=[*callbacks, Logs()], resume=resume)
    return net, opt, logs, result


BIG = ((784, 256, 256, 10), ["relu", "relu"], "softmax", "cross_entropy")


@pytest.mark.parametrize("optimizer, l2, dropout", [
    ("adam", 0.0, None), ("momentum", 1e-3, None), ("rmsprop", 0.0, None), ("adam", 1e-4, [0.2, 0.5, 0.5]),
])
def test_two_lanes_equal_one_thread_bit_for_bit(optimizer, l2, dropout):
    # 300 rows in batches of 128: two full batches and one of 44 rows (16 + 28).
    one, opt1, logs1, _ = _fit(*BIG, batch=128, rows=300, n_lanes=1, optimizer=optimizer, l2=l2, dropout=dropout)
    two, opt2, logs2, _ = _fit(*BIG, batch=128, rows=300, n_lanes=2, optimizer=optimizer, l2=l2, dropout=dropout)
    assert lanes.plan(two, opt2, 2, 128, *_task(BIG[0], 300, "cross_entropy"), l2, None, None) is not None
    np.testing.assert_array_equal(two.params, one.params)
    for key, value in opt1.state_dict().items():
        np.testing.assert_array_equal(opt2.state_dict()[key], value)
    assert logs2 == logs1
    assert not np.array_equal(one.params, MLP(BIG[0], BIG[1], BIG[2]).params)


ODD = [
    ((300, 130, 70, 3), ["relu", "leaky_relu"], "softmax", "cross_entropy", 50, None),
    ((97, 301, 33, 1), ["linear", "relu"], "sigmoid", "log_loss", 37, [0.0, 0.3, 0.1]),
    ((513, 129, 7), ["leaky_relu"], "linear", "squared", 40, None),
]


@pytest.mark.parametrize("sizes, acts, output, loss, batch, dropout", ODD)
def test_odd_shapes_agree_to_rounding_and_repeat_exactly(sizes, acts, output, loss, batch, dropout):
    kw = dict(rows=233, optimizer="sgd", dropout=dropout)
    one, _, logs1, _ = _fit(sizes, acts, output, loss, batch, n_lanes=1, **kw)
    two, _, logs2, _ = _fit(sizes, acts, output, loss, batch, n_lanes=2, **kw)
    again, _, logs3, _ = _fit(sizes, acts, output, loss, batch, n_lanes=2, **kw)
    np.testing.assert_allclose(two.params, one.params, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(again.params, two.params)
    assert logs3 == logs2
    for a, b in zip(logs1, logs2):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize("sizes, acts, output, loss, batch, dropout", ODD)
def test_one_step_gradients_match_the_plain_backward(sizes, acts, output, loss, batch, dropout):
    """With η = 0 the parameters stay put and ``grads`` holds the step's gradient (the
    same dropout masks: both draw them from the same generator in the same order)."""
    x, t = _task(sizes, 100, loss)
    nets = []
    for n_lanes in (1, 2):
        net = MLP(sizes, acts, output, dropout=dropout)
        net.initialize(np.random.default_rng(0), "he")
        opt = make_optimizer("sgd", net.params.size, lr=0.0)
        config = FitConfig(epochs=1, batch_size=batch, lr=0.0, shuffle=False, lanes=n_lanes,
                           metric="accuracy" if loss != "squared" else "rmse")
        with threadpoolctl.threadpool_limits(1):
            fit(net, get_loss(loss, output), opt, x[:batch], t[:batch], config, np.random.default_rng(1))
        nets.append(net)
    plain, laned = nets
    assert np.abs(plain.grads).max() > 0
    np.testing.assert_allclose(laned.grads, plain.grads, rtol=1e-5, atol=1e-7)


def test_gradient_norms_come_from_the_lanes():
    norms = [GradientNorms(), GradientNorms()]
    _, _, logs1, _ = _fit(*BIG, batch=64, rows=200, n_lanes=1, epochs=1, callbacks=[norms[0]])
    _, _, logs2, _ = _fit(*BIG, batch=64, rows=200, n_lanes=2, epochs=1, callbacks=[norms[1]])
    for layer in (1, 2, 3):
        key = f"grad_norm.layer{layer}"
        assert logs1[0][key] > 0
        assert logs2[0][key] == pytest.approx(logs1[0][key], rel=1e-5)


@pytest.mark.parametrize("observer", [False, True])
def test_a_stop_mid_epoch_resumes_to_the_same_result(observer):
    """A stop requested after step 7 (the second of epoch 2) takes effect there, or, when
    steps run ahead of the callback (``observer``), after the region under way."""
    class StopAfter(Callback):
        def __init__(self, steps):
            self.steps, self.seen = steps, 0

        def on_batch_end(self, state):
            self.seen += 1
            if self.seen == self.steps:
                state.stop_requested = True

    StopAfter.observer = observer

    grabbed: dict[str, np.ndarray] = {}

    class Grab(Callback):
        def on_train_end(self, state):
            grabbed.update(capture(state, []))

    ref, _, ref_logs, _ = _fit(*BIG, batch=64, rows=300, n_lanes=2, epochs=3)
    first, _, logs_a, result = _fit(*BIG, batch=64, rows=300, n_lanes=2, epochs=3, callbacks=[StopAfter(7), Grab()])
    assert result.stop_reason == "interrupted"
    second, _, logs_b, result = _fit(*BIG, batch=64, rows=300, n_lanes=2, epochs=3, resume=dict(grabbed),
                                     params=first.params)
    assert result.stop_reason == "max_epochs"
    np.testing.assert_array_equal(second.params, ref.params)
    assert logs_a + logs_b == ref_logs


def test_divergence_stops_the_training():
    x, t = _task(BIG[0], 256, "cross_entropy")
    x *= 1e6
    net = MLP(*BIG[:3])
    net.initialize(np.random.default_rng(0), "he")
    opt = make_optimizer("sgd", net.params.size, lr=1e6)
    config = FitConfig(epochs=5, batch_size=64, lr=1e6, lanes=2)
    result = fit(net, get_loss("cross_entropy", "softmax"), opt, x, t, config, np.random.default_rng(1))
    assert result.stop_reason == "diverged" and result.epochs <= 1


def _plan(**change):
    settings = dict(sizes=BIG[0], acts=BIG[1], output=BIG[2], dropout=None, dtype=np.float32, lanes=2, batch=64,
                    clip_norm=None, max_norm=None, optimizer="adam")
    settings.update(change)
    net = MLP(settings["sizes"], settings["acts"], settings["output"], dropout=settings["dropout"],
              dtype=settings["dtype"])
    opt = make_optimizer(settings["optimizer"], net.params.size, dtype=settings["dtype"])
    x, t = _task(settings["sizes"], 100, "cross_entropy")
    x, t = x.astype(settings["dtype"]), t.astype(settings["dtype"])
    return lanes.plan(net, opt, settings["lanes"], settings["batch"], x, t, 0.0, settings["clip_norm"],
                      settings["max_norm"])


@pytest.mark.parametrize("sizes, n_lanes", [
    ((784, 256, 256, 10), 2), ((784, 256, 256, 10), 3), ((300, 128, 10), 2), ((64, 512, 512, 512, 10), 2),
    ((100, 40, 7), 4),
])
def test_update_shares_cover_every_parameter_once_and_balance(sizes, n_lanes):
    rows, bias_lane = lanes.shares(sizes, n_lanes)
    fans = list(zip(sizes[:-1], sizes[1:]))
    owned = np.zeros(n_lanes)
    for l, (fan_in, fan_out) in enumerate(fans):
        assert rows[l, 0] == 0 and rows[l, -1] == fan_in and (np.diff(rows[l]) >= 0).all()
        for k in range(n_lanes):
            lo, hi = rows[l, k], rows[l, k + 1]
            assert lo == hi or lo % 16 == 0  # cuts at OpenBLAS's row blocks
            owned[k] += (hi - lo) * fan_out
        owned[bias_lane[l]] += fan_out
        assert rows[l, bias_lane[l]] < fan_in <= rows[l, bias_lane[l] + 1]  # with the layer's last row
    total = sum(fi * fo + fo for fi, fo in fans)
    assert owned.sum() == total
    # Each cut is within half a row block (and a bias) of its target, so each lane's share is
    # within one block of the even share.
    widest = max(fo for _, fo in fans)
    assert np.abs(owned - total / n_lanes).max() <= 17 * widest


def test_plan_serves_the_supported_cases_only(monkeypatch):
    assert isinstance(_plan(), lanes.LaneStep)
    assert isinstance(_plan(acts=["leaky_relu", "linear"], optimizer="adagrad"), lanes.LaneStep)
    assert _plan(lanes=1) is None
    assert _plan(batch=31) is None  # fewer than 16 rows a lane
    assert _plan(sizes=(20, 30, 3), acts=["relu"]) is None  # under MIN_PARAMS
    assert _plan(dtype=np.float64) is None
    assert isinstance(_plan(dropout=[0.2, 0.5, 0.0]), lanes.LaneStep)
    assert _plan(acts=["sigmoid", "relu"]) is None
    assert _plan(clip_norm=1.0) is None and _plan(max_norm=3.0) is None
    monkeypatch.setenv("NNCTL_LANES", "0")
    assert _plan() is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_process_forked_after_lanes_ran_trains_on_the_plain_path():
    """GNU OpenMP does not survive fork(): numba stops a child that starts a parallel
    region, so the child must not plan lanes."""
    parent, _, _, _ = _fit(*BIG, batch=64, rows=128, n_lanes=2, epochs=1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: train, report whether lanes were planned, exit without cleanup
        code = 1
        try:
            planned = _plan() is not None
            child, _, _, _ = _fit(*BIG, batch=64, rows=128, n_lanes=2, epochs=1)
            same = np.array_equal(child.params, parent.params)
            os.write(write, f"{planned} {same}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    report = os.read(read, 100).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == "False True"  # plain path, and (one BLAS thread) the same numbers
    assert _plan() is not None  # the parent keeps its lanes


def _steps(n_steps, whole, dropout=None, l2=0.0, poison=False, per_region=1, hold=False, then_three=0):
    """n_steps of batch 64 on BIG, ``per_region`` steps a region (``softmax_steps``, the
    lanes holding layer 0 between regions with ``hold``) or the three regions a step,
    then ``then_three`` more steps in three regions; the network, optimizer, step,
    losses, gradient norms of each step taken, and the predicted classes."""
    total = n_steps + then_three
    x, t = _task(BIG[0], 64 * total, "cross_entropy")
    if poison:
        x[64 * poison + 3, 5] = np.nan  # a NaN in step ``poison``
    net = MLP(*BIG[:3], dropout=dropout)
    net.initialize(np.random.default_rng(0), "he")
    opt = make_optimizer("adam", net.params.size, lr=0.01)
    step = lanes.plan(net, opt, 2, 64, x, t, l2, None, None)
    rng = np.random.default_rng(1)
    zmax, amax, pred = np.empty(64, np.float32), np.empty(64, np.float32), np.full(64 * total, -1, np.int64)
    losses, norms = [], []
    with threadpoolctl.threadpool_limits(1), step.running():
        assert step.whole
        three_from = n_steps if whole else 0
        for s in range(0, n_steps, per_region if whole else 1):
            if whole:
                count = 64 * min(per_region, n_steps - s)
                part = slice(64 * s, 64 * s + count)
                loss, norm = step.softmax_steps(x, t, np.arange(64 * total)[part], 64, rng, l2, pred[part],
                                                zmax, amax, hold=hold)
                losses += loss.tolist()
                norms += list(norm)
                if len(norm) < len(loss):
                    break
        for s in range(three_from, total):
            step.forward(x, t, np.arange(64 * s, 64 * (s + 1)), rng, zmax=zmax)
            losses.append(step.softmax_cross_entropy(pred[64 * s:64 * (s + 1)], zmax, amax))
            if not np.isfinite(losses[-1]):
                break
            opt.begin()
            step.update(l2)
            norms.append(step.norms.copy())
    return net, opt, step, losses, norms, pred


@pytest.mark.parametrize("dropout, l2, per_region, hold", [
    (None, 0.0, 1, False), (None, 0.0, 3, False), (None, 0.0, 2, True), ([0.2, 0.5, 0.5], 1e-4, 4, False),
    ([0.2, 0.5, 0.5], 1e-4, 1, True),
])
def test_whole_step_regions_equal_the_three_regions_bit_for_bit(dropout, l2, per_region, hold):
    """Weights, gradients, optimizer state, losses and classes bit for bit; the gradient
    norms to float rounding (layer 0's squares are summed per block of units there, per
    block of rows in the three regions, and the later layers' rows are shared out
    among those layers alone).  Held between regions, layer 0 comes back at the end of
    ``running``."""
    one = _steps(5, whole=True, dropout=dropout, l2=l2, per_region=per_region, hold=hold)
    three = _steps(5, whole=False, dropout=dropout, l2=l2)
    np.testing.assert_array_equal(one[0].params, three[0].params)
    np.testing.assert_array_equal(one[0].grads, three[0].grads)
    for key, value in three[1].state_dict().items():
        np.testing.assert_array_equal(one[1].state_dict()[key], value)
    np.testing.assert_allclose(one[2].norms, three[2].norms, rtol=1e-6)
    assert one[3] == three[3] and len(one[3]) == 5 and all(np.isfinite(one[3]))
    np.testing.assert_allclose(np.array(one[4]), np.array(three[4]), rtol=1e-6)
    np.testing.assert_array_equal(one[5], three[5])


def test_three_regions_after_held_whole_steps_start_from_the_current_weights():
    """``forward`` moves the held layer 0 back before its region."""
    mixed = _steps(4, whole=True, per_region=2, hold=True, then_three=2)
    three = _steps(6, whole=False)
    np.testing.assert_array_equal(mixed[0].params, three[0].params)
    for key, value in three[1].state_dict().items():
        np.testing.assert_array_equal(mixed[1].state_dict()[key], value)
    assert mixed[3] == three[3]


def test_buffers_that_lanes_share_start_cache_lines():
    """Where two lanes write neighbouring rows or column blocks, no cache line holds both."""
    x, t = _task(BIG[0], 128, "cross_entropy")
    net = MLP(*BIG[:3])
    step = lanes.plan(net, make_optimizer("adam", net.params.size), 2, 64, x, t, 0.0, None, None)
    _, *blocks = step._blocks(2)
    arrays = [step.xb, *step.z_rows, *step.d_rows, *(b for group in blocks for b in group)]
    assert all(a.ctypes.data % 64 == 0 and a.flags.c_contiguous for a in arrays)
    assert list(step.cols) == [0, 128, 256]  # 128 float32 columns: 8 whole cache lines a row


def test_held_weights_are_the_lanes_until_released():
    x, t = _task(BIG[0], 128, "cross_entropy")
    net = MLP(*BIG[:3])
    net.initialize(np.random.default_rng(0), "he")
    opt = make_optimizer("adam", net.params.size, lr=0.01)
    step = lanes.plan(net, opt, 2, 64, x, t, 0.0, None, None)
    before = net.params.copy()
    first = net.layer_slices[0]
    w0 = slice(first.start, first.start + BIG[0][0] * BIG[0][1])
    scratch = np.empty(64, np.float32), np.empty(64, np.float32)
    with threadpoolctl.threadpool_limits(1), step.running():
        step.softmax_steps(x, t, np.arange(128), 64, None, 0.0, np.empty(128, np.int64), *scratch, hold=True)
        np.testing.assert_array_equal(net.params[w0], before[w0])  # layer 0 is in the lanes' blocks
        assert not np.array_equal(net.params[w0.stop:], before[w0.stop:])
        step.release()
        assert not np.array_equal(net.params[w0], before[w0])
        moved = net.params.copy()
        step.release()  # nothing held: nothing moves
        np.testing.assert_array_equal(net.params, moved)


@pytest.mark.parametrize("per_region", [1, 4])
def test_a_non_finite_loss_ends_the_whole_steps_there(per_region):
    """Step 2 of 4 meets a NaN: steps 0 and 1 are taken, step 2 and 3 are not."""
    net, opt, step, losses, norms, pred = _steps(4, whole=True, poison=2, per_region=per_region)
    ref = _steps(4, whole=False, poison=2)  # the three regions stop there too
    assert len(losses) == len(ref[3]) == 3 and losses[:2] == ref[3][:2] and np.isnan(losses[2])
    np.testing.assert_array_equal(net.params, ref[0].params)
    assert opt.t == ref[1].t == 2
    np.testing.assert_array_equal(opt.m, ref[1].m)
    np.testing.assert_allclose(step.norms, ref[2].norms, rtol=1e-6)
    assert len(norms) == 2 and (pred[192:] == -1).all()


def test_fit_runs_softmax_cross_entropy_as_whole_steps(monkeypatch):
    calls = []
    original = lanes.LaneStep.softmax_steps

    def counted(self, x, t, idx, m, *rest, **kw):
        calls.append((len(idx), m, kw.get("hold")))
        return original(self, x, t, idx, m, *rest, **kw)

    monkeypatch.setattr(lanes.LaneStep, "softmax_steps", counted)
    _fit(*BIG, batch=64, rows=200, n_lanes=2, epochs=1, callbacks=[GradientNorms()])
    assert calls == [(192, 64, True), (8, 8, True)]  # three minibatches in one region, then the last 8 rows
    calls.clear()

    class Watch(Callback):
        def on_batch_end(self, state):
            pass

    _fit(*BIG, batch=64, rows=200, n_lanes=2, epochs=1, callbacks=[Watch()])
    assert calls == []  # a callback that may act sees each step: three regions a step


def test_whole_steps_need_each_lane_in_a_thread_of_its_own(monkeypatch):
    x, t = _task(BIG[0], 64, "cross_entropy")
    net = MLP(*BIG[:3])
    step = lanes.plan(net, make_optimizer("adam", net.params.size), 2, 64, x, t, 0.0, None, None)
    with step.running():
        assert step.whole
    assert not step.whole
    monkeypatch.setenv("OMP_DYNAMIC", "true")  # a region may get fewer threads than lanes
    with step.running():
        assert not step.whole


THREE_LANES = """
import numpy as np, threadpoolctl
from nnctl.engine import lanes
from nnctl.engine.losses import get_loss
from nnctl.engine.network import MLP
from nnctl.engine.optimizers import make_optimizer
from nnctl.engine.trainer import FitConfig, fit
rng = np.random.default_rng(0)
x = rng.standard_normal((288, 784), dtype=np.float32)
t = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 288)]
params = []
for n in (1, 3):
    net = MLP([784, 256, 256, 10], ["relu", "relu"], "softmax")
    net.initialize(np.random.default_rng(0), "he")
    opt = make_optimizer("adam", net.params.size, lr=0.01)
    with threadpoolctl.threadpool_limits(1):
        fit(net, get_loss("cross_entropy", "softmax"), opt, x, t,
            FitConfig(epochs=2, batch_size=96, lr=0.01, lanes=n), np.random.default_rng(1))
    params.append(net.params)
step = lanes.plan(net, opt, 3, 96, x, t, 0.0, None, None)
with step.running():
    whole = step.whole
print(whole, bool(np.array_equal(params[0], params[1])))
"""


def test_three_lanes_run_whole_steps_and_give_the_numbers_of_one_thread():
    """Three threads on this machine's cores: the barriers hold for any number of lanes.
    Three whole minibatches an epoch: a last one of a few rows would give three lanes
    products small enough for OpenBLAS to run other kernels than on the whole batch
    (float32 rounding apart, as ``test_odd_shapes_agree_to_rounding_and_repeat_exactly``)."""
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", THREE_LANES], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True"]
