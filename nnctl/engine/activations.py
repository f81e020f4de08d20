"""Activation functions and their derivatives, side by side.

Each derivative is written in terms of the forward *output* ``a = f(z)``, so the
backward pass needs only the activations cached by the forward pass.  Forward
functions take an optional ``out`` (pass ``out=z`` to work in place).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

Array = np.ndarray


def sigmoid(z: Array, out: Array | None = None) -> Array:
    """σ(z) = 1 / (1 + e^(−z))."""
    out = np.negative(z, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def sigmoid_grad(a: Array) -> Array:
    """σ'(z) = a (1 − a), with a = σ(z)."""
    return a * (1.0 - a)


def tanh(z: Array, out: Array | None = None) -> Array:
    """tanh(z)."""
    return np.tanh(z, out=out)


def tanh_grad(a: Array) -> Array:
    """tanh'(z) = 1 − a², with a = tanh(z)."""
    return 1.0 - a * a


def relu(z: Array, out: Array | None = None) -> Array:
    """max(0, z)."""
    return np.maximum(z, 0.0, out=out)


def relu_grad(a: Array) -> Array:
    """1 where a > 0, else 0 (the subgradient at 0 is taken as 0)."""
    return (a > 0).astype(a.dtype)


def leaky_relu(z: Array, out: Array | None = None, slope: float = 0.01) -> Array:
    """z for z > 0, slope·z otherwise (0 ≤ slope < 1, so max(z, slope·z))."""
    if out is None:
        out = np.empty_like(z)
    scaled = z * slope
    return np.maximum(z, scaled, out=out)


def leaky_relu_grad(a: Array, slope: float = 0.01) -> Array:
    """1 where a > 0, else slope."""
    return np.where(a > 0, 1.0, slope).astype(a.dtype)


def linear(z: Array, out: Array | None = None) -> Array:
    """The identity, f(z) = z."""
    if out is None:
        return z.copy()
    if out is not z:
        out[...] = z
    return out


def linear_grad(a: Array) -> Array:
    """1 everywhere."""
    return np.ones_like(a)


def softmax(z: Array, out: Array | None = None) -> Array:
    """softmax(z)_k = e^(z_k − max z) / Σ_j e^(z_j − max z), row-wise."""
    out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def softmax_backward(a: Array, grad_a: Array) -> Array:
    """Vector–Jacobian product of softmax: dz_k = a_k (g_k − Σ_j g_j a_j), row-wise."""
    return a * (grad_a - np.sum(grad_a * a, axis=1, keepdims=True))


@dataclass(frozen=True)
class Activation:
    """An activation: ``forward(z, out)`` and ``grad(a)`` = f'(z) written from a = f(z).

    ``grad`` is None for softmax, whose derivative is a Jacobian (see softmax_backward).
    """

    name: str
    forward: Callable[..., Array]
    grad: Callable[[Array], Array] | None

    def backward(self, a: Array, grad_a: Array) -> Array:
        """dL/dz from dL/da, in place on ``grad_a`` where the derivative is elementwise."""
        if self.grad is None:
            return softmax_backward(a, grad_a)
        if self.name == "relu":
            grad_a *= a > 0
        elif self.name != "linear":
            grad_a *= self.grad(a)
        return grad_a


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_grad),
    "tanh": Activation("tanh", tanh, tanh_grad),
    "relu": Activation("relu", relu, relu_grad),
    "leaky_relu": Activation("leaky_relu", leaky_relu, leaky_relu_grad),
    "linear": Activation("linear", linear, linear_grad),
    "softmax": Activation("softmax", softmax, None),
}


def get_activation(name: str, slope: float = 0.01) -> Activation:
    """Look up an activation by name; ``slope`` configures leaky_relu."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    if name == "leaky_relu" and slope != 0.01:
        return Activation(
            name, partial(leaky_relu, slope=slope), partial(leaky_relu_grad, slope=slope)
        )
    return ACTIVATIONS[name]
