"""Optimizers against hand-worked steps of their documented rules, and against torch.optim.

The references below are written per element in plain Python floats, straight from the
update rules in each class's docstring, so they share no code with the vectorised,
in-place implementations they check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnctl.engine.optimizers import OPTIMIZERS, make_optimizer

W0 = [0.5, -1.25, 2.0, 0.0]
GRADS = [
    [0.1, -0.3, 0.02, 1.5],
    [-0.2, -0.1, 0.05, 0.7],
    [0.4, 0.25, -0.01, -0.9],
]


def ref_sgd(lr):
    w = list(W0)
    history = []
    for g in GRADS:
        w = [wi - lr * gi for wi, gi in zip(w, g)]
        history.append(w)
    return history


def ref_momentum(lr, mu):
    w, v = list(W0), [0.0] * len(W0)
    history = []
    for g in GRADS:
        v = [mu * vi + (1 - mu) * lr * gi for vi, gi in zip(v, g)]
        w = [wi - vi for wi, vi in zip(w, v)]
        history.append(w)
    return history


def ref_adagrad(lr, eps):
    w, s = list(W0), [0.0] * len(W0)
    history = []
    for g in GRADS:
        s = [si + gi * gi for si, gi in zip(s, g)]
        w = [wi - lr * gi / (math.sqrt(si) + eps) for wi, gi, si in zip(w, g, s)]
        history.append(w)
    return history


def ref_rmsprop(lr, alpha, eps):
    w, v = list(W0), [0.0] * len(W0)
    history = []
    for g in GRADS:
        v = [alpha * vi + (1 - alpha) * gi * gi for vi, gi in zip(v, g)]
        w = [wi - lr * gi / (math.sqrt(vi) + eps) for wi, gi, vi in zip(w, g, v)]
        history.append(w)
    return history


def ref_adam(lr, beta1, beta2, eps):
    """torch.optim.Adam's form: step = lr / (1 − β₁ᵗ), denom = √v / √(1 − β₂ᵗ) + ε."""
    w, m, v = list(W0), [0.0] * len(W0), [0.0] * len(W0)
    history = []
    for t, g in enumerate(GRADS, start=1):
        m = [beta1 * mi + (1 - beta1) * gi for mi, gi in zip(m, g)]
        v = [beta2 * vi + (1 - beta2) * gi * gi for vi, gi in zip(v, g)]
        step = lr / (1 - beta1**t)
        w = [wi - step * mi / (math.sqrt(vi) / math.sqrt(1 - beta2**t) + eps) for wi, mi, vi in zip(w, m, v)]
        history.append(w)
    return history


# Hyperparameters away from the defaults, with eps large enough that where it is added
# (after the square root, not inside it) changes the result well beyond rounding.
CASES = {
    "sgd": ({"lr": 0.3}, lambda: ref_sgd(0.3)),
    "momentum": ({"lr": 0.3, "mu": 0.7}, lambda: ref_momentum(0.3, 0.7)),
    "adagrad": ({"lr": 0.2, "eps": 0.05}, lambda: ref_adagrad(0.2, 0.05)),
    "rmsprop": ({"lr": 0.05, "alpha": 0.8, "eps": 0.05}, lambda: ref_rmsprop(0.05, 0.8, 0.05)),
    "adam": ({"lr": 0.1, "beta1": 0.7, "beta2": 0.9, "eps": 0.05}, lambda: ref_adam(0.1, 0.7, 0.9, 0.05)),
}

DEFAULTS = {
    "sgd": lambda: ref_sgd(0.01),
    "momentum": lambda: ref_momentum(0.01, 0.9),
    "adagrad": lambda: ref_adagrad(0.01, 1e-10),
    "rmsprop": lambda: ref_rmsprop(0.01, 0.99, 1e-8),
    "adam": lambda: ref_adam(0.001, 0.9, 0.999, 1e-8),
}


def run_steps(opt, grads=GRADS, w0=W0):
    w = np.array(w0, dtype=np.float64)
    buffer = w
    history = []
    for g in grads:
        assert opt.step(w, np.array(g, dtype=np.float64)) is None
        assert w is buffer  # updated in place: the network's views must see the step
        history.append(w.copy())
    return history


def test_every_registered_optimizer_is_checked():
    assert set(OPTIMIZERS) == set(CASES) == set(DEFAULTS)


@pytest.mark.parametrize("name", list(CASES))
def test_three_steps_match_the_hand_worked_rule(name):
    hyper, reference = CASES[name]
    opt = make_optimizer(name, len(W0), dtype=np.float64, **hyper)
    for got, want in zip(run_steps(opt), reference()):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_defaults_are_the_documented_ones(name):
    opt = make_optimizer(name, len(W0), dtype=np.float64)
    for got, want in zip(run_steps(opt), DEFAULTS[name]()):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_lr_set_between_steps_takes_effect():
    """The trainer sets ``opt.lr`` every epoch from the schedule."""
    opt = make_optimizer("sgd", 1, dtype=np.float64, lr=1.0)
    w = np.array([1.0])
    opt.step(w, np.array([0.5]))
    opt.lr = 0.1
    opt.step(w, np.array([0.5]))
    assert w[0] == pytest.approx(1.0 - 0.5 - 0.05, rel=1e-15)


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_round_trip_continues_identically(name):
    hyper, _ = CASES[name]
    first = make_optimizer(name, len(W0), dtype=np.float64, **hyper)
    w = np.array(W0)
    for g in GRADS[:2]:
        first.step(w, np.array(g))
    state = first.state_dict()
    second = make_optimizer(name, len(W0), dtype=np.float64, **hyper)
    second.load_state_dict(state)
    w1, w2 = w.copy(), w.copy()
    for g in (GRADS[2], GRADS[0]):
        first.step(w1, np.array(g))
        second.step(w2, np.array(g))
    assert np.array_equal(w1, w2)


@pytest.mark.parametrize("name", ["momentum", "adagrad", "rmsprop", "adam"])
def test_state_dict_is_a_copy(name):
    opt = make_optimizer(name, len(W0), dtype=np.float64)
    w = np.array(W0)
    opt.step(w, np.array(GRADS[0]))
    state = opt.state_dict()
    snapshot = {k: np.array(v, copy=True) for k, v in state.items()}
    opt.step(w, np.array(GRADS[1]))
    for key, value in state.items():
        assert np.array_equal(value, snapshot[key]), key


@pytest.mark.parametrize("name,key", [("momentum", "v"), ("adagrad", "s"), ("rmsprop", "v"), ("adam", "m")])
def test_load_state_dict_names_missing_and_misshapen_keys(name, key):
    opt = make_optimizer(name, 4, dtype=np.float64)
    state = opt.state_dict()
    missing = {k: v for k, v in state.items() if k != key}
    with pytest.raises(ValueError, match=rf"optimizer\.{key}: missing"):
        opt.load_state_dict(missing)
    wrong = dict(state, **{key: np.zeros(5)})
    with pytest.raises(ValueError, match=rf"optimizer\.{key}: shape"):
        opt.load_state_dict(wrong)


def test_unknown_optimizer_lists_valid_names():
    with pytest.raises(ValueError, match="sgd.*adam"):
        make_optimizer("lbfgs", 3)


# ---- torch reference --------------------------------------------------------------------

TORCH_CASES = {
    "sgd": ("SGD", {"lr": 0.3}),
    "adagrad": ("Adagrad", {"lr": 0.2, "eps": 0.05}),
    "rmsprop": ("RMSprop", {"lr": 0.05, "alpha": 0.8, "eps": 0.05}),
    "adam": ("Adam", {"lr": 0.1, "betas": (0.7, 0.9), "eps": 0.05}),
}
ENGINE_HYPER = {name: CASES[name][0] for name in TORCH_CASES}


@pytest.mark.parametrize("name", list(TORCH_CASES))
@pytest.mark.parametrize("defaults", [False, True], ids=["custom", "defaults"])
def test_matches_torch_optim(name, defaults):
    torch = pytest.importorskip("torch")
    cls_name, torch_hyper = TORCH_CASES[name]
    if defaults:
        # torch's SGD has no default lr; every other default is meant to agree.
        torch_hyper = {"lr": 0.01} if name == "sgd" else {}
    rng = np.random.default_rng(5)
    w0 = rng.normal(size=6)
    grads = [rng.normal(scale=0.5, size=6) for _ in range(5)]

    param = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    torch_opt = getattr(torch.optim, cls_name)([param], **torch_hyper)
    expected = []
    for g in grads:
        torch_opt.zero_grad()
        param.grad = torch.tensor(g, dtype=torch.float64)
        torch_opt.step()
        expected.append(param.detach().numpy().copy())

    ours = make_optimizer(name, 6, dtype=np.float64, **({} if defaults else ENGINE_HYPER[name]))
    got = run_steps(ours, grads, w0)
    for step, (g_ours, g_torch) in enumerate(zip(got, expected), start=1):
        np.testing.assert_allclose(g_ours, g_torch, rtol=1e-12, atol=1e-14, err_msg=f"step {step}")
