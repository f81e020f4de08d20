"""The output layer's work of a training step for a softmax output with cross-entropy,
compiled (numba): softmax, the summed loss, the predicted classes
and δ of a minibatch in five calls instead of about fifteen NumPy calls of a few µs each.

The numbers are those of the NumPy path bit for bit: ``activations.softmax``,
``losses.cross_entropy``, ``argmax`` and ``losses.cross_entropy_delta`` scaled by 1/m.
The exponentials and logarithms are NumPy's own (one call each on the whole batch,
since numba's round differently), the sums run in NumPy's pairwise order
(``pairwise_sum``), ⟨t, z⟩ is NumPy's ``vdot``, and every other operation is the same
single IEEE operation in the same precision (no fused multiply-add, no fast-math).
"""

from __future__ import annotations

import numpy as np

from nnctl.engine.accel.kernels import jit as _jit

Array = np.ndarray

PAIRWISE_BLOCK = 128
"""NumPy sums up to this many terms with eight running sums, longer runs by halves."""


@_jit
def _block_sum(a, lo, n, zero):
    """Σ a[lo:lo+n] for n ≤ ``PAIRWISE_BLOCK``, as NumPy sums such a run: fewer than 8 terms
    one by one from 0; else eight running sums r_j over a[j::8], combined as
    ((r₀+r₁)+(r₂+r₃))+((r₄+r₅)+(r₆+r₇)), then the remaining n mod 8 terms one by one."""
    if n < 8:
        res = zero
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    end = n - n % 8
    while i < end:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@_jit
def pairwise_sum(a, lo, n, zero):
    """Σ a[lo:lo+n] (``zero`` the 0 of a's type) in NumPy's order for a contiguous run
    (``np.sum``, ``sum(axis=-1)``): runs of up to ``PAIRWISE_BLOCK`` terms as ``_block_sum``,
    longer runs as (sum of the first half) + (sum of the rest), the half rounded down to a
    multiple of 8.  The halving is walked with explicit stacks (numba's on-disk cache does
    not keep recursive functions)."""
    if n <= PAIRWISE_BLOCK:
        return _block_sum(a, lo, n, zero)
    # Post-order walk of the halving tree: a run is pushed again (state 1) under its two
    # halves, and is summed from their two results once both are on the value stack.
    starts = np.empty(192, np.int64)
    lengths = np.empty(192, np.int64)
    states = np.empty(192, np.int64)
    values = np.empty_like(a[:96])
    top, nv = 1, 0
    starts[0], lengths[0], states[0] = lo, n, 0
    while top > 0:
        top -= 1
        s, k, state = starts[top], lengths[top], states[top]
        if k <= PAIRWISE_BLOCK:
            values[nv] = _block_sum(a, s, k, zero)
            nv += 1
        elif state == 1:
            nv -= 1
            values[nv - 1] = values[nv - 1] + values[nv]
        else:
            half = k // 2
            half -= half % 8
            starts[top], lengths[top], states[top] = s, k, 1
            starts[top + 1], lengths[top + 1], states[top + 1] = s + half, k - half, 0
            starts[top + 2], lengths[top + 2], states[top + 2] = s, half, 0
            top += 3
    return values[0]


@_jit
def softmax_shift(z, a, zmax):
    """zmax_i = max_k z_ik (NaN if the row has one) and a_ik = z_ik − zmax_i: softmax's
    first steps, before the exponential."""
    m, k = z.shape
    for i in range(m):
        top = z[i, 0]
        for j in range(1, k):
            v = z[i, j]
            if v != v:
                top = v
                break
            if v > top:
                top = v
        zmax[i] = top
        for j in range(k):
            a[i, j] = z[i, j] - top


@_jit
def softmax_finish(a, t, pred, delta, amax, scale):
    """From the exponentials e = a: a_ik = e_ik / Σ_j e_ij (the sum in NumPy's order), the
    row's largest a in amax_i and its first index in pred_i (a NaN counting as largest, as
    in ``argmax``), and δ_ik = (a_ik − t_ik)·scale."""
    m, k = a.shape
    zero = scale - scale
    for i in range(m):
        s = zero + pairwise_sum(a[i], 0, k, zero)
        best = a[i, 0] / s
        a[i, 0] = best
        at = 0
        for j in range(1, k):
            v = a[i, j] / s
            a[i, j] = v
            if best == best and (v > best or v != v):
                best, at = v, j
        pred[i] = at
        amax[i] = best
        for j in range(k):
            delta[i, j] = (a[i, j] - t[i, j]) * scale


@_jit
def log_sum_exp_total(zmax, log_amax, zero):
    """Σ_i (zmax_i − log amax_i), the sum in NumPy's order; log_amax is overwritten."""
    m = zmax.shape[0]
    for i in range(m):
        log_amax[i] = zmax[i] - log_amax[i]
    return pairwise_sum(log_amax, 0, m, zero)


def softmax_cross_entropy(z: Array, a: Array, t: Array, pred: Array, delta: Array, zmax: Array,
                          amax: Array) -> float:
    """a = softmax(z); pred = argmax of each row of a; δ = (a − t)/m; returns the summed
    loss Σ_rows lse(z) − Σ t·z, lse(z) = max z − log max a (``losses.cross_entropy``).
    ``zmax`` and ``amax`` are scratch vectors of m entries."""
    m = z.shape[0]
    scale = z.dtype.type(1.0 / m)
    softmax_shift(z, a, zmax)
    np.exp(a, out=a)
    softmax_finish(a, t, pred, delta, amax, scale)
    return cross_entropy_total(z, t, zmax, amax)


def cross_entropy_total(z: Array, t: Array, zmax: Array, amax: Array) -> float:
    """Σ_rows lse(z) − Σ t·z from the row maxima of z and of a = softmax(z) (``losses.cross_entropy``);
    amax is overwritten."""
    np.log(amax, out=amax)
    zero = z.dtype.type(0)
    return float(z.dtype.type(log_sum_exp_total(zmax, amax, zero)) - np.vdot(t, z))  # numba returns a Python float
