"""Optional compiled kernels (numba): optimizer updates in one pass over the parameters,
the bias + ReLU steps of a hidden layer in one pass over its activations, the row
gather of a minibatch that runs in a second thread without the interpreter lock, and
(``output_kernels.py``) a softmax output's cross-entropy step.

An optimizer step in NumPy is 2 to 11 whole-buffer passes (Adam: 11), and for a
network of a few hundred thousand parameters those passes cost as much as the
matrix products of a small minibatch.  Each kernel here does the same arithmetic as
the NumPy code in ``optimizers.py``, operation for operation in the same order and
precision (no fused multiply-add, no fast-math), so both paths give bit-identical
results; ``tests/engine/test_kernels.py`` checks this.

numba is optional (``pip install nnctl[fast]``).  The kernels are used for buffers of
at least ``MIN_SIZE`` parameters when numba is importable and ``NNCTL_NUMBA`` is not
``0``; compiled code is cached on disk after the first use.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from types import SimpleNamespace

MIN_SIZE = 32_768
"""Smaller buffers stay on NumPy: their passes are cheap and importing numba is not."""


def enabled(size: int) -> bool:
    """Whether the compiled kernels serve a buffer of ``size`` parameters."""
    return size >= MIN_SIZE and active()


def active() -> bool:
    """Whether numba is installed and not switched off (``NNCTL_NUMBA=0``)."""
    return os.environ.get("NNCTL_NUMBA", "1") != "0" and load() is not None


@lru_cache(maxsize=1)
def load() -> SimpleNamespace | None:
    """The compiled kernels, or None when numba is not installed."""
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
    return SimpleNamespace(
        sgd=jit(_sgd), momentum=jit(_momentum), adagrad=jit(_adagrad),
        rmsprop=jit(_rmsprop), adam=jit(_adam),
        bias_relu=jit(_bias_relu), relu_backward=jit(_relu_backward), gather_rows=jit(_gather_rows),
    )


def output_step(size: int, loss_name: str, output: str, n_outputs: int, metric: str):
    """The compiled output step of ``output_kernels.py`` (softmax, cross-entropy, predicted
    classes and δ of a minibatch, the NumPy path's numbers) where it serves a network of
    ``size`` parameters with this loss, output activation, width and metric; else None."""
    if loss_name != "cross_entropy" or output != "softmax" or n_outputs < 2 or metric != "accuracy":
        return None
    if not enabled(size):
        return None
    from nnctl.engine import output_kernels

    return output_kernels.softmax_cross_entropy


def _sgd(w, g, lr):
    """w ← w − (g·η)."""
    for i in range(w.size):
        w[i] -= g[i] * lr


def _momentum(w, g, v, mu, c):
    """v ← v·μ + g·c with c = (1 − μ)η ;  w ← w − v."""
    for i in range(w.size):
        vi = v[i] * mu + g[i] * c
        v[i] = vi
        w[i] -= vi


def _adagrad(w, g, s, lr, eps):
    """s ← s + g·g ;  w ← w − (g / (√s + ε))·η."""
    for i in range(w.size):
        gi = g[i]
        si = s[i] + gi * gi
        s[i] = si
        w[i] -= (gi / (math.sqrt(si) + eps)) * lr


def _rmsprop(w, g, v, alpha, c, lr, eps):
    """v ← v·α + (g·g)·c with c = 1 − α ;  w ← w − (g / (√v + ε))·η."""
    for i in range(w.size):
        gi = g[i]
        vi = v[i] * alpha + (gi * gi) * c
        v[i] = vi
        w[i] -= (gi / (math.sqrt(vi) + eps)) * lr


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


def _bias_relu(z, b):
    """z ← max(z + b, 0) row-wise, as np.maximum: NaN and −0 pass through unchanged."""
    n, k = z.shape
    for i in range(n):
        for j in range(k):
            v = z[i, j] + b[j]
            z[i, j] = v if (v >= 0 or v != v) else 0


def _relu_backward(d, h):
    """d ← d · [h > 0], multiplying by 1 or 0 as NumPy does (so inf · 0 is NaN)."""
    n, k = d.shape
    for i in range(n):
        for j in range(k):
            d[i, j] = d[i, j] * (1 if h[i, j] > 0 else 0)


def _gather_rows(x, idx, out, lo, hi):
    """out[i] ← x[idx[i]] for lo ≤ i < hi (as x.take(idx[lo:hi], axis=0, out=out[lo:hi]),
    releasing the interpreter lock while it copies), element by element: numba's copy
    of a row slice (out[i, :] = x[r, :]) runs about three times slower."""
    n = x.shape[1]
    for i in range(lo, hi):
        r = idx[i]
        for j in range(n):
            out[i, j] = x[r, j]
