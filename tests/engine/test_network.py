"""The MLP: evaluation and training forward passes, inverted dropout, the flat and named
parameter forms, and the initializers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnctl.engine.initializers import INITIALIZERS, get_initializer
from nnctl.engine.network import MLP


def manual_forward(state, x, hidden, output):
    """The network written out from its named weights, with textbook activations."""
    fns = {
        "tanh": np.tanh,
        "relu": lambda z: np.where(z > 0, z, 0.0),
        "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
        "linear": lambda z: z,
        "softmax": lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True),
    }
    h = x
    names = hidden + [output]
    for i, name in enumerate(names, start=1):
        h = fns[name](h @ state[f"layer{i}.weight"] + state[f"layer{i}.bias"])
    return h


def make_net(dropout=None, dtype=np.float64, seed=0):
    net = MLP([4, 6, 5, 3], ["tanh", "relu"], "softmax", dropout=dropout, dtype=dtype)
    net.initialize(np.random.default_rng(seed), "normal", 0.5)
    return net


# ---- evaluation ----------------------------------------------------------------------


def test_predict_equals_manual_forward_and_never_drops():
    net = make_net(dropout=[0.5, 0.5, 0.5])
    x = np.random.default_rng(1).normal(size=(20, 4))
    expected = manual_forward(net.state_dict(), x, ["tanh", "relu"], "softmax")
    first = net.predict(x)
    np.testing.assert_allclose(first, expected, rtol=1e-12)
    assert np.array_equal(net.predict(x), first)


def test_logits_in_chunks_equal_one_pass():
    net = make_net()
    x = np.random.default_rng(2).normal(size=(11, 4))
    z_all, a_all = net.logits(x)
    z_chunked, a_chunked = net.logits(x, chunk=3)
    np.testing.assert_allclose(z_chunked, z_all, rtol=1e-14)
    np.testing.assert_allclose(a_chunked, a_all, rtol=1e-14)
    state = net.state_dict()
    h = np.maximum(np.tanh(x @ state["layer1.weight"] + state["layer1.bias"]) @ state["layer2.weight"] + state["layer2.bias"], 0)
    np.testing.assert_allclose(z_all, h @ state["layer3.weight"] + state["layer3.bias"], rtol=1e-12)


def test_forward_train_without_dropout_equals_predict():
    net = make_net()
    x = np.random.default_rng(3).normal(size=(9, 4))
    _, a = net.forward_train(x, None)
    np.testing.assert_allclose(a, net.predict(x), rtol=1e-14)


def test_predict_does_not_modify_input():
    net = make_net()
    x = np.random.default_rng(4).normal(size=(5, 4))
    before = x.copy()
    net.predict(x)
    net.forward_train(x, None)
    assert np.array_equal(x, before)


# ---- dropout -------------------------------------------------------------------------


def identity_net(d, dropout, hidden_layers=0):
    """Linear layers with identity weights, so the output shows the dropout mask itself."""
    net = MLP([d] * (hidden_layers + 2), ["linear"] * hidden_layers, "linear", dropout=dropout, dtype=np.float64)
    for w, b in zip(net.weights, net.biases):
        w[...] = np.eye(d)
        b[...] = 0.0
    return net


@pytest.mark.parametrize("p", [0.5, 0.2])
@pytest.mark.parametrize("where", ["input", "hidden"])
def test_training_dropout_is_inverted_and_keeps_the_mean(p, where):
    n, d = 200, 100
    if where == "input":
        net = identity_net(d, [p])
    else:
        net = identity_net(d, [0.0, p], hidden_layers=1)
    _, a = net.forward_train(np.ones((n, d)), np.random.default_rng(7))
    dropped = a == 0.0
    # 20,000 Bernoulli draws: the fraction's standard deviation is ≤ 0.0036, so 0.02 is > 5σ.
    assert abs(dropped.mean() - p) < 0.02
    np.testing.assert_allclose(a[~dropped], 1.0 / (1.0 - p), rtol=1e-15)
    assert abs(a.mean() - 1.0) < 0.04
    # Every unit and every row is dropped independently, not a whole column or row.
    assert 0 < dropped.sum(axis=0).min() and dropped.sum(axis=0).max() < n
    assert 0 < dropped.sum(axis=1).min() and dropped.sum(axis=1).max() < d


def test_same_seed_same_mask_other_seed_other_mask():
    net = identity_net(50, [0.5])
    x = np.ones((40, 50))
    a1 = net.forward_train(x, np.random.default_rng(11))[1].copy()
    a2 = net.forward_train(x, np.random.default_rng(11))[1].copy()
    a3 = net.forward_train(x, np.random.default_rng(12))[1].copy()
    assert np.array_equal(a1, a2)
    assert not np.array_equal(a1, a3)


def test_dropout_in_training_needs_an_rng():
    net = identity_net(3, [0.5])
    with pytest.raises(ValueError, match="rng"):
        net.forward_train(np.ones((2, 3)), None)


def test_successive_calls_draw_fresh_masks():
    net = identity_net(50, [0.5])
    rng = np.random.default_rng(13)
    a1 = net.forward_train(np.ones((40, 50)), rng)[1].copy()
    a2 = net.forward_train(np.ones((40, 50)), rng)[1].copy()
    assert not np.array_equal(a1, a2)


@pytest.mark.parametrize("rates", [[1.0, 0.0], [-0.1, 0.0], [0.5]])
def test_bad_dropout_rates_rejected(rates):
    with pytest.raises(ValueError, match="dropout"):
        MLP([3, 4, 2], ["tanh"], "linear", dropout=rates)


def test_constructor_checks_sizes_and_activations():
    with pytest.raises(ValueError, match="sizes"):
        MLP([3], [], "linear")
    with pytest.raises(ValueError, match="hidden activations"):
        MLP([3, 4, 2], [], "linear")
    with pytest.raises(ValueError, match="sigmoid"):
        MLP([3, 4, 2], ["swish"], "linear")


# ---- parameters and checkpoints --------------------------------------------------------


def test_state_dict_names_and_shapes():
    net = MLP([3, 5, 4, 2], ["tanh", "tanh"], "linear", dtype=np.float64)
    state = net.state_dict()
    assert {k: v.shape for k, v in state.items()} == {
        "layer1.weight": (3, 5), "layer1.bias": (5,),
        "layer2.weight": (5, 4), "layer2.bias": (4,),
        "layer3.weight": (4, 2), "layer3.bias": (2,),
    }


def test_state_dict_is_the_flat_buffer_in_layer_order():
    net = make_net()
    state = net.state_dict()
    flat = np.concatenate([state[f"layer{i}.{kind}"].ravel() for i in (1, 2, 3) for kind in ("weight", "bias")])
    assert np.array_equal(flat, net.params)
    assert net.params.size == 4 * 6 + 6 + 6 * 5 + 5 + 5 * 3 + 3


def test_state_dict_holds_copies():
    net = make_net()
    state = net.state_dict()
    state["layer1.weight"][...] = 99.0
    assert not np.any(net.weights[0] == 99.0)


def test_weight_views_share_the_flat_buffer():
    """Writing to ``params`` must change the layers (the optimizer updates only ``params``)."""
    net = make_net()
    x = np.random.default_rng(5).normal(size=(3, 4))
    before = net.predict(x)
    net.params -= 0.1
    assert net.weights[0][0, 0] == net.params[0]
    assert not np.allclose(net.predict(x), before)


def test_load_state_dict_round_trip():
    source = make_net(seed=1)
    target = make_net(seed=2)
    x = np.random.default_rng(6).normal(size=(7, 4))
    assert not np.allclose(source.predict(x), target.predict(x))
    target.load_state_dict(source.state_dict())
    assert np.array_equal(target.params, source.params)
    assert np.array_equal(target.predict(x), source.predict(x))


def test_load_state_dict_names_the_missing_key():
    net = make_net()
    state = net.state_dict()
    del state["layer2.bias"]
    with pytest.raises(ValueError, match=r"layer2\.bias.*missing"):
        net.load_state_dict(state)


def test_load_state_dict_names_the_wrong_shape_key():
    net = make_net()
    state = net.state_dict()
    state["layer3.weight"] = state["layer3.weight"].T  # (3, 5) instead of (5, 3)
    with pytest.raises(ValueError, match=r"layer3\.weight.*\(3, 5\).*\(5, 3\)"):
        net.load_state_dict(state)


# ---- initializers -------------------------------------------------------------------------


def test_xavier_bound_and_spread():
    fan_in, fan_out = 200, 300
    for scale in (1.0, 2.0):
        w, b = get_initializer("xavier")(np.random.default_rng(0), fan_in, fan_out, scale)
        r = scale * math.sqrt(6.0 / (fan_in + fan_out))
        assert w.shape == (fan_in, fan_out) and b.shape == (fan_out,)
        assert np.abs(w).max() <= r
        assert np.abs(w).max() > 0.999 * r
        # U(−r, r) has variance r²/3; 60,000 draws pin it to about ±1%.
        assert w.var() == pytest.approx(r * r / 3, rel=0.03)
        assert abs(w.mean()) < 0.01 * r
        assert np.all(b == 0.0)


def test_he_std():
    fan_in, fan_out = 150, 400
    w, b = get_initializer("he")(np.random.default_rng(1), fan_in, fan_out, 1.0)
    sigma = math.sqrt(2.0 / fan_in)
    assert w.std() == pytest.approx(sigma, rel=0.02)
    assert abs(w.mean()) < 0.02 * sigma
    assert np.all(b == 0.0)
    w3, _ = get_initializer("he")(np.random.default_rng(1), fan_in, fan_out, 3.0)
    assert w3.std() == pytest.approx(3 * sigma, rel=0.02)


def test_uniform_within_scale():
    w, b = get_initializer("uniform")(np.random.default_rng(2), 100, 80, 0.3)
    for arr in (w, b):
        assert np.abs(arr).max() <= 0.3
    assert np.abs(w).max() > 0.29
    assert w.var() == pytest.approx(0.3**2 / 3, rel=0.05)


def test_normal_std():
    w, _ = get_initializer("normal")(np.random.default_rng(3), 100, 300, 0.2)
    assert w.std() == pytest.approx(0.2, rel=0.02)


@pytest.mark.parametrize("scheme", list(INITIALIZERS))
def test_same_seed_same_weights(scheme):
    def draw(seed):
        net = MLP([5, 7, 3], ["relu"], "softmax", dtype=np.float64)
        net.initialize(np.random.default_rng(seed), scheme, 0.5)
        return net.params.copy()

    assert np.array_equal(draw(8), draw(8))
    assert not np.array_equal(draw(8), draw(9))


@pytest.mark.parametrize("scheme", list(INITIALIZERS))
def test_float32_and_float64_start_from_the_same_numbers(scheme):
    nets = {}
    for dtype in (np.float32, np.float64):
        net = MLP([5, 7, 3], ["relu"], "softmax", dtype=dtype)
        net.initialize(np.random.default_rng(4), scheme, 0.5)
        nets[dtype] = net
    assert nets[np.float32].params.dtype == np.float32
    assert nets[np.float64].params.dtype == np.float64
    assert np.array_equal(nets[np.float32].params, nets[np.float64].params.astype(np.float32))


def test_unknown_initializer_lists_valid_names():
    with pytest.raises(ValueError, match="uniform.*xavier.*he"):
        get_initializer("orthogonal")
