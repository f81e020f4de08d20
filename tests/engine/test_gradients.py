"""Gradient checks: backpropagation against central differences, in float64.

The oracle is the loss itself: ∂L/∂θ_i ≈ (L(θ + h e_i) − L(θ − h e_i)) / 2h.  Dropout
masks are held fixed by handing ``forward_train`` a freshly seeded generator on every
evaluation, so the loss is one smooth function of the parameters.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnctl.engine.activations import get_activation, softmax, softmax_backward
from nnctl.engine.losses import get_loss
from nnctl.engine.network import MLP

H = 1e-6
# Rounding in a central difference is about eps·|L| / h ≈ 1e-10 per entry; a block whose
# gradient norm is below this floor is compared in absolute terms instead.
NORM_FLOOR = 1e-3
TOL = 1e-6
KINK_MARGIN = 1e-4
KINKED = {"relu", "leaky_relu"}

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "linear"]
PAIRS = [
    ("softmax", "cross_entropy"),
    ("sigmoid", "log_loss"),
    ("linear", "squared"),
    ("sigmoid", "squared"),
    ("softmax", "squared"),
    ("tanh", "squared"),
]
LEAKY_SLOPE = 0.2  # not the default 0.01, so a slope that is ignored shows


def targets(output: str, loss: str, rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Targets of the kind each (output, loss) pair is meant for."""
    if output == "softmax":
        return np.eye(k)[rng.integers(0, k, size=n)]
    if loss == "log_loss":
        return rng.integers(0, 2, size=(n, k)).astype(np.float64)
    if output == "sigmoid":
        return rng.uniform(0.0, 1.0, size=(n, k))
    if output == "tanh":
        return rng.uniform(-1.0, 1.0, size=(n, k))
    return rng.normal(size=(n, k))


def mean_loss(net: MLP, loss, x, t, mask_seed: int) -> float:
    z, a = net.forward_train(x, np.random.default_rng(mask_seed))
    return loss.value(z, a, t) / len(x)


def analytic_grads(net: MLP, loss, x, t, mask_seed: int) -> np.ndarray:
    z, a = net.forward_train(x, np.random.default_rng(mask_seed))
    delta = loss.delta(z, a, t, net.activations[-1], np.empty_like(a)) / len(x)
    net.backward(delta)
    return net.grads.copy()


def numeric_grads(net: MLP, loss, x, t, mask_seed: int) -> np.ndarray:
    g = np.empty_like(net.params)
    for i in range(net.params.size):
        old = net.params[i]
        net.params[i] = old + H
        plus = mean_loss(net, loss, x, t, mask_seed)
        net.params[i] = old - H
        minus = mean_loss(net, loss, x, t, mask_seed)
        net.params[i] = old
        g[i] = (plus - minus) / (2 * H)
    return g


def block_errors(net: MLP, analytic: np.ndarray, numeric: np.ndarray) -> dict[str, float]:
    """Relative error ‖g_a − g_n‖ / max(‖g_a‖ + ‖g_n‖, floor) for each weight and bias."""
    errors, offset = {}, 0
    for i, (w, b) in enumerate(zip(net.weights, net.biases), start=1):
        for name, size in ((f"layer{i}.weight", w.size), (f"layer{i}.bias", b.size)):
            ga, gn = analytic[offset : offset + size], numeric[offset : offset + size]
            denom = max(np.linalg.norm(ga) + np.linalg.norm(gn), NORM_FLOOR)
            errors[name] = float(np.linalg.norm(ga - gn) / denom)
            offset += size
    return errors


def pre_activations(net: MLP, x: np.ndarray, layer: int, mask_seed: int) -> np.ndarray:
    """z of hidden layer ``layer`` (0-based) under the same dropout masks as ``net``.

    A copy of the network cut after that layer, with a linear output, returns z
    directly; it draws the same masks because masks are drawn layer by layer.
    """
    cut = MLP(
        net.sizes[: layer + 2],
        [a.name for a in net.activations[:layer]],
        "linear",
        dropout=net.dropout[: layer + 1],
        slopes=[LEAKY_SLOPE] * layer,
        dtype=np.float64,
    )
    state = net.state_dict()
    cut.load_state_dict({k: v for k, v in state.items() if int(k[5 : k.index(".")]) <= layer + 1})
    z, _ = cut.forward_train(x, np.random.default_rng(mask_seed))
    return z.copy()


def away_from_kinks(net: MLP, x: np.ndarray, mask_seed: int) -> bool:
    for layer, act in enumerate(net.activations[:-1]):
        if act.name in KINKED:
            z = pre_activations(net, x, layer, mask_seed)
            if np.min(np.abs(z)) < KINK_MARGIN:
                return False
    return True


def build_case(sizes, hidden, output, loss_name, dropout=None, n=7):
    """A network, inputs and targets whose kinked units all sit clear of their kinks."""
    loss = get_loss(loss_name, output)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        net = MLP(sizes, hidden, output, dropout=dropout, slopes=[LEAKY_SLOPE] * len(hidden), dtype=np.float64)
        net.initialize(rng, "normal", 0.7)
        x = rng.normal(size=(n, sizes[0]))
        t = targets(output, loss_name, rng, n, sizes[-1])
        if away_from_kinks(net, x, mask_seed=seed + 100):
            return net, loss, x, t, seed + 100
    raise AssertionError("no seed keeps every pre-activation clear of the kink")


def assert_gradients_match(net, loss, x, t, mask_seed):
    analytic = analytic_grads(net, loss, x, t, mask_seed)
    numeric = numeric_grads(net, loss, x, t, mask_seed)
    assert np.all(np.isfinite(analytic))
    errors = block_errors(net, analytic, numeric)
    assert max(errors.values()) < TOL, errors
    # The check is only worth something if the gradient is not trivially zero.
    assert np.linalg.norm(numeric) > 1e-3


@pytest.mark.parametrize("output,loss_name", PAIRS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_backprop_matches_central_differences(hidden, output, loss_name):
    net, loss, x, t, mask_seed = build_case([4, 6, 5, 3], [hidden, hidden], output, loss_name)
    assert_gradients_match(net, loss, x, t, mask_seed)


@pytest.mark.parametrize("output,loss_name", [("softmax", "cross_entropy"), ("linear", "squared")])
def test_backprop_with_dropout_on_input_and_hidden_layers(output, loss_name):
    net, loss, x, t, mask_seed = build_case(
        [5, 7, 6, 5, 3],
        ["sigmoid", "relu", "leaky_relu"],
        output,
        loss_name,
        dropout=[0.3, 0.5, 0.25, 0.4],
        n=9,
    )
    assert_gradients_match(net, loss, x, t, mask_seed)


def test_dropout_masks_actually_drop_in_the_gradient_check():
    """The fixed-mask gradient check above is only meaningful if masks change the loss."""
    net, loss, x, t, mask_seed = build_case(
        [5, 7, 6, 5, 3], ["sigmoid", "relu", "leaky_relu"], "softmax", "cross_entropy",
        dropout=[0.3, 0.5, 0.25, 0.4], n=9,
    )
    assert mean_loss(net, loss, x, t, mask_seed) == mean_loss(net, loss, x, t, mask_seed)
    assert mean_loss(net, loss, x, t, mask_seed) != mean_loss(net, loss, x, t, mask_seed + 1)


def test_single_layer_network_gradients():
    """No hidden layer: the input-layer branch of backward on its own."""
    net, loss, x, t, mask_seed = build_case([4, 3], [], "softmax", "cross_entropy")
    assert_gradients_match(net, loss, x, t, mask_seed)


# ---- activations ---------------------------------------------------------------------


ACTIVATION_CASES = [("sigmoid", 0.01), ("tanh", 0.01), ("relu", 0.01), ("leaky_relu", LEAKY_SLOPE), ("linear", 0.01)]


@pytest.mark.parametrize("name,slope", ACTIVATION_CASES)
def test_activation_derivative_matches_numerical_derivative(name, slope):
    act = get_activation(name, slope)
    z = np.random.default_rng(0).normal(scale=3.0, size=(40, 5))
    z = np.where(np.abs(z) < 1e-2, 0.5, z)  # clear of the kink of relu and leaky_relu
    numeric = (act.forward(z + H) - act.forward(z - H)) / (2 * H)
    analytic = act.grad(act.forward(z))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name,slope", ACTIVATION_CASES)
def test_activation_backward_is_grad_times_upstream(name, slope):
    act = get_activation(name, slope)
    rng = np.random.default_rng(1)
    z = rng.normal(size=(10, 4))
    upstream = rng.normal(size=(10, 4))
    a = act.forward(z)
    np.testing.assert_allclose(act.backward(a, upstream.copy()), upstream * act.grad(a), rtol=1e-15)


def test_activation_forward_formulas():
    z = np.linspace(-4.0, 4.0, 17).reshape(1, -1)
    expected = {
        "sigmoid": [1.0 / (1.0 + math.exp(-v)) for v in z[0]],
        "tanh": [math.tanh(v) for v in z[0]],
        "relu": [max(v, 0.0) for v in z[0]],
        "leaky_relu": [v if v > 0 else LEAKY_SLOPE * v for v in z[0]],
        "linear": list(z[0]),
    }
    for name, values in expected.items():
        act = get_activation(name, LEAKY_SLOPE)
        np.testing.assert_allclose(act.forward(z)[0], values, rtol=1e-14, atol=1e-300, err_msg=name)
        in_place = z.copy()
        act.forward(in_place, out=in_place)
        np.testing.assert_allclose(in_place[0], values, rtol=1e-14, atol=1e-300, err_msg=name)


def test_leaky_relu_default_slope_is_001():
    act = get_activation("leaky_relu")
    np.testing.assert_allclose(act.forward(np.array([[-2.0, 3.0]])), [[-0.02, 3.0]])


def test_sigmoid_saturates_without_nan():
    a = get_activation("sigmoid").forward(np.array([[-1000.0, 1000.0]]))
    assert a.tolist() == [[0.0, 1.0]]


def test_softmax_rows_sum_to_one_and_survive_large_logits():
    z = np.array([[1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]])
    a = softmax(z)
    e = math.exp(-1.0)
    np.testing.assert_allclose(a[0], [1 / (1 + e), e / (1 + e), 0.0], atol=1e-15)
    np.testing.assert_allclose(a[1], [1 / 3] * 3, rtol=1e-15)


def test_softmax_backward_matches_numerical_vector_jacobian_product():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(6, 4))
    g = rng.normal(size=(6, 4))
    numeric = np.empty_like(z)
    for idx in np.ndindex(*z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += H
        zm[idx] -= H
        # Rows are independent, so the scalar Σ g·softmax(z) differentiates row-wise.
        numeric[idx] = (np.sum(g * softmax(zp)) - np.sum(g * softmax(zm))) / (2 * H)
    np.testing.assert_allclose(softmax_backward(softmax(z), g), numeric, rtol=1e-7, atol=1e-9)


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="sigmoid.*tanh.*relu"):
        get_activation("swish")


# ---- losses --------------------------------------------------------------------------


def test_cross_entropy_equals_naive_negative_log_softmax():
    rng = np.random.default_rng(3)
    z = rng.normal(scale=2.0, size=(8, 4))
    t = np.eye(4)[rng.integers(0, 4, size=8)]
    naive = -np.mean(np.sum(t * np.log(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)), axis=1))
    loss = get_loss("cross_entropy", "softmax")
    assert loss.value(z, softmax(z), t) / len(z) == pytest.approx(naive, rel=1e-12)


def test_cross_entropy_finite_for_huge_logits():
    z = np.array([[1000.0, 0.0]])
    t = np.array([[0.0, 1.0]])
    # −log softmax(z)_1 = log(e^1000 + 1) − 0 = 1000 + log(1 + e^−1000)
    assert get_loss("cross_entropy", "softmax").value(z, softmax(z), t) == pytest.approx(1000.0, rel=1e-15)


def sigmoid_np(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_log_loss_equals_naive_formula_on_moderate_logits():
    rng = np.random.default_rng(4)
    z = rng.normal(scale=2.0, size=(10, 3))
    t = rng.integers(0, 2, size=(10, 3)).astype(np.float64)
    s = sigmoid_np(z)
    naive = -np.sum(t * np.log(s) + (1 - t) * np.log(1 - s))
    assert get_loss("log_loss", "sigmoid").value(z, s, t) == pytest.approx(naive, rel=1e-12)


def test_log_loss_correct_where_naive_formula_overflows():
    z = np.array([[500.0, 500.0, -500.0, -500.0]])
    t = np.array([[0.0, 1.0, 1.0, 0.0]])
    with np.errstate(all="ignore"):
        s = sigmoid_np(z)
        naive = -np.sum(t * np.log(s) + (1 - t) * np.log(1 - s))
    assert not np.isfinite(naive)  # the reason the loss works from logits
    # −log σ(z) = log(1 + e^−z) = logaddexp(0, −z);  −log(1 − σ(z)) = logaddexp(0, z)
    expected = float(np.sum(t * np.logaddexp(0, -z) + (1 - t) * np.logaddexp(0, z)))
    value = get_loss("log_loss", "sigmoid").value(z, s, t)
    assert math.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-15)
    assert value == pytest.approx(1000.0, rel=1e-15)


def test_squared_loss_is_half_sum_of_squares():
    a = np.array([[1.0, 2.0], [0.5, -1.0]])
    t = np.array([[0.0, 2.5], [0.5, 1.0]])
    expected = 0.5 * (1.0**2 + 0.5**2 + 0.0 + 2.0**2)
    assert get_loss("squared", "linear").value(a, a, t) == pytest.approx(expected, rel=1e-15)


def test_loss_output_pairing_is_checked():
    with pytest.raises(ValueError, match="softmax"):
        get_loss("cross_entropy", "sigmoid")
    with pytest.raises(ValueError, match="squared"):
        get_loss("hinge", "linear")
