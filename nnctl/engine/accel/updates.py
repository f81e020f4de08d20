"""The optimizers' update rules (``optimizers.py``) as compiled one-pass loops.

In NumPy an update is 2 to 11 whole-buffer passes (Adam: 11); for a network of a few
hundred thousand parameters those passes cost as much as the matrix products of a
small minibatch.  Each loop here does, per parameter, the operations of the NumPy rule
in the same order and precision, so the results are bit-identical.  ``UPDATES`` maps an
optimizer class to its compiled step ``update(optimizer, w, g)``; an optimizer without
an entry takes the plain step.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from nnctl.engine.accel.kernels import jit
from nnctl.engine.optimizers import SGD, AdaGrad, Adam, Momentum, RMSProp


@jit
def _sgd(w, g, lr):
    """w ← w − (g·η)."""
    for i in range(w.size):
        w[i] -= g[i] * lr


@jit
def _momentum(w, g, v, mu, c):
    """v ← v·μ + g·c with c = (1 − μ)η ;  w ← w − v."""
    for i in range(w.size):
        vi = v[i] * mu + g[i] * c
        v[i] = vi
        w[i] -= vi


@jit
def _adagrad(w, g, s, lr, eps):
    """s ← s + g·g ;  w ← w − (g / (√s + ε))·η."""
    for i in range(w.size):
        gi = g[i]
        si = s[i] + gi * gi
        s[i] = si
        w[i] -= (gi / (math.sqrt(si) + eps)) * lr


@jit
def _rmsprop(w, g, v, alpha, c, lr, eps):
    """v ← v·α + (g·g)·c with c = 1 − α ;  w ← w − (g / (√v + ε))·η."""
    for i in range(w.size):
        gi = g[i]
        vi = v[i] * alpha + (gi * gi) * c
        v[i] = vi
        w[i] -= (gi / (math.sqrt(vi) + eps)) * lr


@jit
def _adam(w, g, m, v, b1, c1, b2, c2, inv_bc2, eps, step_size):
    """m ← m·β₁ + g·c₁ ;  v ← v·β₂ + (g·g)·c₂ ;  w ← w − (m / (√v · r + ε))·s,
    with c₁ = 1 − β₁, c₂ = 1 − β₂, r = 1 / √(1 − β₂ᵗ) and s = η / (1 − β₁ᵗ)."""
    for i in range(w.size):
        gi = g[i]
        mi = m[i] * b1 + gi * c1
        vi = v[i] * b2 + (gi * gi) * c2
        m[i] = mi
        v[i] = vi
        w[i] -= (mi / (math.sqrt(vi) * inv_bc2 + eps)) * step_size


def sgd(opt: SGD, w, g) -> None:
    _sgd(w, g, w.dtype.type(opt.lr))


def momentum(opt: Momentum, w, g) -> None:
    f = w.dtype.type
    _momentum(w, g, opt.v, f(opt.mu), f((1.0 - opt.mu) * opt.lr))


def adagrad(opt: AdaGrad, w, g) -> None:
    f = w.dtype.type
    _adagrad(w, g, opt.s, f(opt.lr), f(opt.eps))


def rmsprop(opt: RMSProp, w, g) -> None:
    f = w.dtype.type
    _rmsprop(w, g, opt.v, f(opt.alpha), f(1.0 - opt.alpha), f(opt.lr), f(opt.eps))


def adam(opt: Adam, w, g) -> None:
    opt.t += 1
    step_size, inv_bc2 = opt.corrections()
    f, b1, b2 = w.dtype.type, opt.beta1, opt.beta2
    _adam(w, g, opt.m, opt.v, f(b1), f(1.0 - b1), f(b2), f(1.0 - b2), f(inv_bc2), f(opt.eps), f(step_size))


UPDATES: dict[type, Callable[[SGD, np.ndarray, np.ndarray], None]] = {
    SGD: sgd, Momentum: momentum, AdaGrad: adagrad, RMSProp: rmsprop, Adam: adam,
}
