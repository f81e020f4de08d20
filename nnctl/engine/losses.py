"""Loss functions on a minibatch, computed from the output layer's logits z and outputs a.

Each ``value`` returns the loss *summed* over the rows of the batch (the trainer
divides by the number of rows, so a mean over examples is what is reported and
differentiated).  Each ``delta`` returns the summed loss's gradient with respect
to the logits, dL/dz, for the output activation it is paired with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from nnctl.engine.activations import Activation

Array = np.ndarray


def squared(z: Array, a: Array, t: Array) -> float:
    """Σ_rows ½ Σ_k (a_k − t_k)²  (the mean over rows is the squared error ½(y − y*)²)."""
    diff = a - t
    return 0.5 * float(np.vdot(diff, diff))


def squared_delta(z: Array, a: Array, t: Array, act: Activation, out: Array) -> Array:
    """dL/dz = (a − t) ⊙ f'(z), or the softmax Jacobian applied to (a − t)."""
    np.subtract(a, t, out=out)
    if act.grad is None:
        out[...] = act.backward(a, out)
        return out
    return act.backward(a, out)


def log_loss(z: Array, a: Array, t: Array) -> float:
    """Σ_rows Σ_k −[t log σ(z) + (1 − t) log(1 − σ(z))], computed stably from the logits as
    max(z, 0) − z t + log(1 + e^(−|z|))."""
    return float(np.sum(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))))


def log_loss_delta(z: Array, a: Array, t: Array, act: Activation, out: Array) -> Array:
    """dL/dz = σ(z) − t (sigmoid output)."""
    return np.subtract(a, t, out=out)


def cross_entropy(z: Array, a: Array, t: Array) -> float:
    """Σ_rows −Σ_k t_k log softmax(z)_k for rows of t summing to 1, i.e. Σ_rows lse(z) − Σ t·z
    with the stable log-sum-exp lse(z) = m − log softmax(z)_m at the row's largest logit m
    (read off the softmax output a, whose largest entry is at least 1/K, so no underflow)."""
    lse = z.max(axis=1)
    lse -= np.log(a.max(axis=1))
    return float(lse.sum() - np.vdot(t, z))


def cross_entropy_delta(z: Array, a: Array, t: Array, act: Activation, out: Array) -> Array:
    """dL/dz = softmax(z) − t (softmax output, rows of t summing to 1)."""
    return np.subtract(a, t, out=out)


@dataclass(frozen=True)
class Loss:
    """A loss: its value and its logit gradient, and the output activations it accepts."""

    name: str
    value: Callable[[Array, Array, Array], float]
    delta: Callable[[Array, Array, Array, Activation, Array], Array]
    outputs: tuple[str, ...]


LOSSES: dict[str, Loss] = {
    "squared": Loss(
        "squared", squared, squared_delta, ("linear", "sigmoid", "tanh", "relu", "softmax", "leaky_relu")
    ),
    "log_loss": Loss("log_loss", log_loss, log_loss_delta, ("sigmoid",)),
    "cross_entropy": Loss("cross_entropy", cross_entropy, cross_entropy_delta, ("softmax",)),
}


def get_loss(name: str, output: str) -> Loss:
    """Look up a loss and check it can be paired with the output activation."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}")
    loss = LOSSES[name]
    if output not in loss.outputs:
        raise ValueError(
            f"loss {name!r} needs a {' or '.join(loss.outputs)} output, not {output!r}"
        )
    return loss
