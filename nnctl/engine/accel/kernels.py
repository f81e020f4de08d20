"""Compiled (numba) kernels of a hidden layer: bias + ReLU in one pass over the
activations, and the ReLU derivative in one pass over δ.  Each does the arithmetic of
the NumPy code (``network.py``, ``activations.py``) in the same order and precision (no
fused multiply-add, no fast-math), so the results are bit-identical."""

from __future__ import annotations

import numba

jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
"""How every kernel of this package is compiled: cached on disk (numba's cache directory),
free of the interpreter lock, IEEE arithmetic, NumPy's division semantics."""


@jit
def bias_relu(z, b):
    """z ← max(z + b, 0) row-wise, as np.maximum: NaN and −0 pass through unchanged."""
    n, k = z.shape
    for i in range(n):
        for j in range(k):
            v = z[i, j] + b[j]
            z[i, j] = v if (v >= 0 or v != v) else 0


@jit
def relu_backward(d, h):
    """d ← d · [h > 0], multiplying by 1 or 0 as NumPy does (so inf · 0 is NaN)."""
    n, k = d.shape
    for i in range(n):
        for j in range(k):
            d[i, j] = d[i, j] * (1 if h[i, j] > 0 else 0)
