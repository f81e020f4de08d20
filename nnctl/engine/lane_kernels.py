"""Compiled parts of a minibatch step split across lanes (see ``lanes.py``); needs numba.

Each parallel function runs one region: ``for lane in prange(lanes)``, every lane doing
its share of the rows (forward, backward) or of the parameters (gradients, update);
``softmax_steps`` runs whole steps in one region, its lanes meeting at barriers
(``lane_sync``) between the kinds of share, with layer 0 shared out by units
(``_first_layer_forward``, ``_first_layer_update``).  Every lane calls the BLAS
single-threaded through ``nnctl_cblas_sgemm64``, ``…_sgemv64`` and ``…_sdot64``,
the symbols ``lanes.py`` registers for NumPy's own OpenBLAS (64-bit integer interface),
so the products use the same kernels as ``np.matmul``.

Arrays per layer come as homogeneous tuples (all float32, C-contiguous):
``src[l]`` what feeds layer l (the gathered rows for l = 0, else layer l − 1's output,
activated in place), ``masks[l]`` its inverted-dropout mask (drawn by the caller; empty
where ``dropping[l]`` is 0), ``h[l]`` its input (src[l] ⊙ masks[l], or src[l] itself),
``z[l]`` its output, ``d[l]`` its dL/dz (the trainer writes the last),
``w[l]`` / ``dw[l]`` its weights and their gradient (fan_in, fan_out), ``b[l]`` / ``db[l]`` its
bias and gradient.  Hidden activation codes: 0 linear, 1 ReLU, 2 leaky ReLU.
"""

from __future__ import annotations

import os
from pathlib import Path

import numba
import numpy as np
from numba import prange, types

from nnctl.engine.kernels import _adagrad, _adam, _gather_rows, _momentum, _rmsprop, _sgd
from nnctl.engine.lane_sync import barrier
from nnctl.engine.output_kernels import pairwise_sum, softmax_finish, softmax_shift


def _keep_cache_current() -> None:
    """The compiled regions inline kernels.py's update rules, output_kernels.py's softmax
    steps and lane_sync.py's barrier, but numba's on-disk cache checks only the date of
    the file a function is written in: keep this file no older than those, so that a
    changed rule recompiles them (before they are declared)."""
    here = Path(__file__)
    try:
        rules = max(here.with_name(name).stat().st_mtime_ns
                    for name in ("kernels.py", "output_kernels.py", "lane_sync.py"))
        if here.stat().st_mtime_ns < rules:
            os.utime(here, ns=(rules, rules))
    except OSError:  # a read-only install is never edited in place
        pass


_keep_cache_current()

_INT = types.int64
_PTR = types.uintp
_F32 = types.float32
sgemm = types.ExternalFunction(
    "nnctl_cblas_sgemm64",
    types.void(types.int32, types.int32, types.int32, _INT, _INT, _INT, _F32, _PTR, _INT, _PTR, _INT, _F32,
               _PTR, _INT),
)
sgemv = types.ExternalFunction(
    "nnctl_cblas_sgemv64",
    types.void(types.int32, types.int32, _INT, _INT, _F32, _PTR, _INT, _PTR, _INT, _F32, _PTR, _INT),
)
sdot = types.ExternalFunction("nnctl_cblas_sdot64", types.float32(_INT, _PTR, _INT, _PTR, _INT))
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
F4 = 4  # bytes per float32
ALIGN = 16  # rows: the row blocking of OpenBLAS's float32 kernels for AVX-512 and AVX2

_jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
_par = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", parallel=True)

sgd, momentum, adagrad, rmsprop, adam = (_jit(f) for f in (_sgd, _momentum, _adagrad, _rmsprop, _adam))
copy_rows = _jit(_gather_rows)


@_jit
def split(n, lane, lanes):
    """The share [lo, hi) of lane ``lane`` in range(n), in whole blocks of ``ALIGN``: each
    lane's first row is where the undivided product would also start a block of rows."""
    blocks = (n + ALIGN - 1) // ALIGN
    return min(n, blocks * lane // lanes * ALIGN), min(n, blocks * (lane + 1) // lanes * ALIGN)


@_jit
def bias_activation(z, b, lo, hi, c0, c1, kind, slope):
    """z[lo:hi, c0:c1] ← f(z + b) as NumPy computes it: ReLU max(v, 0) and leaky ReLU
    max(v, slope·v), a NaN passing through."""
    for i in range(lo, hi):
        for j in range(c0, c1):
            v = z[i, j] + b[j]
            if kind == 1:
                v = v if (v >= 0 or v != v) else np.float32(0)
            elif kind == 2:
                s = v * slope
                v = v if (v >= s or v != v) else s
            z[i, j] = v


@_jit
def activation_backward(d, a, lo, hi, kind, slope):
    """d[lo:hi] ← d ⊙ f'(z), written from a = f(z): ReLU 1 or 0, leaky ReLU 1 or slope."""
    if kind == 0:
        return
    k = d.shape[1]
    other = np.float32(0) if kind == 1 else slope
    for i in range(lo, hi):
        for j in range(k):
            d[i, j] = d[i, j] * (np.float32(1) if a[i, j] > 0 else other)


@_par
def forward(x, t, idx, tb, src, h, masks, dropping, z, w, b, kinds, slopes, a, zmax, shift, lanes):
    """Region A: lane k gathers rows idx[lo:hi] of x and t into src[0] and tb, then runs its
    rows through every layer (``_rows_forward``); with ``shift``, softmax's first steps on
    its rows of the output: zmax_i = max_k z_ik and a_i = z_i − zmax_i
    (``output_kernels.softmax_shift``)."""
    m = idx.shape[0]
    n_layers = len(w)
    for lane in prange(lanes):
        lo, hi = split(m, lane, lanes)
        _rows_forward(x, t, idx, tb, src, h, masks, dropping, z, w, b, kinds, slopes, 0, lo, hi)
        if shift:
            softmax_shift(z[n_layers - 1][lo:hi], a[lo:hi], zmax[lo:hi])


@_jit
def _rows_forward(x, t, idx, tb, src, h, masks, dropping, z, w, b, kinds, slopes, first, lo, hi):
    """Rows [lo, hi) run through layers ``first``, ``first`` + 1, … (from 0: gathered
    first, x[idx] into src[0] and t[idx] into tb): h_l = src_l ⊙ mask_l where layer l has
    dropout (else h_l is src_l), z_l = h_l W_l + b_l, src_{l+1} = f(z_l) (the output layer
    gets its bias only)."""
    n_layers = len(w)
    if first == 0:
        copy_rows(x, idx, src[0], lo, hi)
        copy_rows(t, idx, tb, lo, hi)
    for l in range(first, n_layers):
        fan_in, fan_out = w[l].shape
        if dropping[l]:
            inp, mask, out = src[l], masks[l], h[l]
            for i in range(lo, hi):
                for j in range(fan_in):
                    out[i, j] = inp[i, j] * mask[i, j]
        sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, hi - lo, fan_out, fan_in, np.float32(1),
              h[l].ctypes.data + lo * fan_in * F4, fan_in, w[l].ctypes.data, fan_out, np.float32(0),
              z[l].ctypes.data + lo * fan_out * F4, fan_out)
        kind = kinds[l] if l < n_layers - 1 else 0
        bias_activation(z[l], b[l], lo, hi, 0, fan_out, kind, slopes[l])


@_par
def backward(d, z, w, masks, dropping, kinds, slopes, a, t, pred, amax, scale, finish, lanes):
    """Region B: lane k backpropagates its rows (``_rows_backward``) from the last layer's
    d, the trainer's, or with ``finish`` the lane's own: softmax's last steps on its rows
    of the exponentials a, their predicted classes and δ = (a − t)·scale
    (``output_kernels.softmax_finish``)."""
    m = d[0].shape[0]
    n_layers = len(w)
    for lane in prange(lanes):
        lo, hi = split(m, lane, lanes)
        if finish:
            softmax_finish(a[lo:hi], t[lo:hi], pred[lo:hi], d[n_layers - 1][lo:hi], amax[lo:hi], scale)
        _rows_backward(d, z, w, masks, dropping, kinds, slopes, lo, hi)


@_jit
def _rows_backward(d, z, w, masks, dropping, kinds, slopes, lo, hi):
    """Rows [lo, hi) backpropagated from the last layer's d down to the first hidden
    layer: d_{l−1} = (d_l W_lᵀ) ⊙ mask_l ⊙ f'(z_{l−1})."""
    n_layers = len(w)
    for l in range(n_layers - 1, 0, -1):
        fan_in, fan_out = w[l].shape
        prev = d[l - 1]
        sgemm(ROW_MAJOR, NO_TRANS, TRANS, hi - lo, fan_in, fan_out, np.float32(1),
              d[l].ctypes.data + lo * fan_out * F4, fan_out, w[l].ctypes.data, fan_out, np.float32(0),
              prev.ctypes.data + lo * fan_in * F4, fan_in)
        if dropping[l]:
            mask = masks[l]
            for i in range(lo, hi):
                for j in range(fan_in):
                    prev[i, j] = prev[i, j] * mask[i, j]
        activation_backward(prev, z[l - 1], lo, hi, kinds[l - 1], slopes[l - 1])


@_jit
def _update(kind, p, g, s1, s2, c):
    """One optimizer rule over a slice, with the scalars ``c`` in the order of kernels.py."""
    if kind == 0:
        sgd(p, g, c[0])
    elif kind == 1:
        momentum(p, g, s1, c[0], c[1])
    elif kind == 2:
        adagrad(p, g, s1, c[0], c[1])
    elif kind == 3:
        rmsprop(p, g, s1, c[0], c[1], c[2], c[3])
    else:
        adam(p, g, s1, s2, c[0], c[1], c[2], c[3], c[4], c[5], c[6])


@_jit
def update(h, d, dw, db, ones, offsets, params, grads, l2, kind, s1, s2, c, sq, norms, rows, bias_lane, lanes):
    """Region C; then the gradient norms (``_norms``)."""
    gradients_update(h, d, dw, db, ones, offsets, params, grads, l2, kind, s1, s2, c, sq, rows, bias_lane, lanes)
    _norms(sq, norms)


@_jit
def _norms(sq, norms):
    """norms[l] = ‖∂W_l‖ = √(Σ_lanes sq[lane, l])."""
    for l in range(norms.shape[0]):
        total = 0.0
        for lane in range(sq.shape[0]):
            total += sq[lane, l]
        norms[l] = np.sqrt(total)


@_par
def gradients_update(h, d, dw, db, ones, offsets, params, grads, l2, kind, s1, s2, c, sq, rows, bias_lane, lanes):
    """Region C: each lane's gradients and update (``_lane_update``)."""
    for lane in prange(lanes):
        _lane_update(h, d, dw, db, ones, offsets, params, grads, l2, kind, s1, s2, c, sq, rows, bias_lane, 0, lane)


@_jit
def _lane_update(h, d, dw, db, ones, offsets, params, grads, l2, kind, s1, s2, c, sq, rows, bias_lane, first, lane):
    """Of layers ``first``, ``first`` + 1, …, lane k owns rows [i0, i1) = rows[l, k:k+2] of
    each W_l, and the biases of the layers with bias_lane[l] = k:
    ∂W_l[i0:i1] = h_l[:, i0:i1]ᵀ d_l, ∂W += λW, sq[lane, l] = ‖∂W_l[i0:i1]‖² (a BLAS dot,
    as NumPy's), ∂b_l = Σ_rows d_l (the GEMV ones @ d_l, whole, as NumPy computes it),
    then the optimizer rule on the parameters it owns."""
    m = d[0].shape[0]
    for l in range(first, len(dw)):
        fan_in, fan_out = dw[l].shape
        i0, i1 = rows[l, lane], rows[l, lane + 1]
        sq[lane, l] = 0.0
        if i1 > i0:
            _gradient_update(h[l], d[l], dw[l], offsets[l], i0, i1, m, params, grads, l2, kind, s1, s2, c, sq,
                             lane, l)
        if bias_lane[l] == lane:
            sgemv(ROW_MAJOR, TRANS, m, fan_out, np.float32(1), d[l].ctypes.data, fan_out,
                  ones.ctypes.data, 1, np.float32(0), db[l].ctypes.data, 1)
            b0 = offsets[l] + fan_in * fan_out
            _update(kind, params[b0:b0 + fan_out], grads[b0:b0 + fan_out], s1[b0:b0 + fan_out],
                    s2[b0:b0 + fan_out], c)


@_jit
def _gradient_update(h, d, dw, offset, i0, i1, m, params, grads, l2, kind, s1, s2, c, sq, lane, l):
    """Rows [i0, i1) of one layer's ∂W = hᵀd, its L2 term, squared norm and optimizer step."""
    fan_in, fan_out = dw.shape
    sgemm(ROW_MAJOR, TRANS, NO_TRANS, i1 - i0, fan_out, m, np.float32(1),
          h.ctypes.data + i0 * F4, fan_in, d.ctypes.data, fan_out, np.float32(0),
          dw.ctypes.data + i0 * fan_out * F4, fan_out)
    w0, w1 = offset + i0 * fan_out, offset + i1 * fan_out
    if l2 != 0:
        for i in range(w0, w1):
            grads[i] += l2 * params[i]
    g_at = grads.ctypes.data + w0 * F4
    sq[lane, l] = sdot(w1 - w0, g_at, 1, g_at, 1)
    _update(kind, params[w0:w1], grads[w0:w1], s1[w0:w1], s2[w0:w1], c)


numpy_exp = types.ExternalFunction("nnctl_numpy_exp_f32", types.void(_PTR, _PTR, _PTR, _PTR))
numpy_log = types.ExternalFunction("nnctl_numpy_log_f32", types.void(_PTR, _PTR, _PTR, _PTR))
"""NumPy's own float32 loops (``numpy_loops``): ``loop(args, dimensions, steps, data)``."""


@_jit
def _loop_call(call, lane, at, n):
    """Lane ``lane``'s row of ``call`` (int64, 8 a row) set to a NumPy inner loop's
    arguments over n contiguous float32 from address ``at``, in place: args (at, at),
    dimensions (n,), steps (4, 4); the address of that row."""
    row = call[lane]
    row[0] = at
    row[1] = at
    row[2] = n
    row[3] = F4
    row[4] = F4
    return call.ctypes.data + lane * call.shape[1] * 8


@_jit
def _first_layer_forward(x, t, idx, xb, tb, mask, dropping, w_own, z, b, kind, slope, lo, hi, c0, c1):
    """Layer 0 for every row, on lane k's units (columns c0:c1): x[idx] gathered whole
    into the lane's own xb (from its first row lo on, so that the rows the other lanes
    just gathered come last, from a cache they may share), and t[idx] on its rows [lo, hi)
    into tb; xb ⊙ mask in place where the layer has dropout; then z[:, c0:c1] =
    f(xb W[:, c0:c1] + b[c0:c1]), the weights from the lane's own block ``w_own``."""
    m = idx.shape[0]
    fan_in, fan_out = xb.shape[1], z.shape[1]
    copy_rows(x, idx, xb, lo, m)
    copy_rows(x, idx, xb, 0, lo)
    copy_rows(t, idx, tb, lo, hi)
    if dropping:
        for i in range(m):
            for j in range(fan_in):
                xb[i, j] = xb[i, j] * mask[i, j]
    sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, c1 - c0, fan_in, np.float32(1), xb.ctypes.data, fan_in,
          w_own.ctypes.data, c1 - c0, np.float32(0), z.ctypes.data + c0 * F4, fan_out)
    bias_activation(z, b, 0, m, c0, c1, kind, slope)


@_jit
def _first_layer_update(xb, d, db, ones, w_own, g_own, s1_own, s2_own, bias_at, params, grads, l2, kind, s1, s2,
                        c, sq, lane, c0, c1):
    """Lane k's units of layer 0: ∂W[:, c0:c1] = xbᵀ d[:, c0:c1] into its block ``g_own``,
    + λW, sq[lane, 0] = its squared norm (a BLAS dot), the optimizer rule on its blocks;
    ∂b[c0:c1] = Σ_rows d[:, c0:c1] (the GEMV ones @ d on those columns) and the rule on
    b[c0:c1], which lies at params[bias_at:]."""
    m, fan_in = xb.shape
    fan_out, width = d.shape[1], c1 - c0
    sgemm(ROW_MAJOR, TRANS, NO_TRANS, fan_in, width, m, np.float32(1), xb.ctypes.data, fan_in,
          d.ctypes.data + c0 * F4, fan_out, np.float32(0), g_own.ctypes.data, width)
    g, p = g_own.ravel(), w_own.ravel()
    if l2 != 0:
        for i in range(g.size):
            g[i] += l2 * p[i]
    sq[lane, 0] = sdot(g.size, g_own.ctypes.data, 1, g_own.ctypes.data, 1)
    _update(kind, p, g, s1_own.ravel(), s2_own.ravel(), c)
    sgemv(ROW_MAJOR, TRANS, m, width, np.float32(1), d.ctypes.data + c0 * F4, fan_out, ones.ctypes.data, 1,
          np.float32(0), db.ctypes.data + c0 * F4, 1)
    lo, hi = bias_at + c0, bias_at + c1
    _update(kind, params[lo:hi], grads[lo:hi], s1[lo:hi], s2[lo:hi], c)


@_jit
def _move_columns(flat, block, fan_out, c0, c1, to_block):
    """block ↔ columns c0:c1 of the row-major (rows × fan_out) matrix ``flat`` (1-d)."""
    for i in range(block.shape[0]):
        at = i * fan_out + c0
        if to_block:
            for j in range(c1 - c0):
                block[i, j] = flat[at + j]
        else:
            for j in range(c1 - c0):
                flat[at + j] = block[i, j]


@_jit
def _move_first_layer(params, grads, s1, s2, n_states, w_own, g_own, s1_own, s2_own, at, fan_out, c0, c1,
                      to_block):
    """Lane k's columns of layer 0's weights (from params[at:]), and of the optimizer's
    ``n_states`` state buffers, into its blocks (``to_block``), or those and its
    gradient back."""
    n = w_own.shape[0] * fan_out
    _move_columns(params[at:at + n], w_own, fan_out, c0, c1, to_block)
    if not to_block:
        _move_columns(grads[at:at + n], g_own, fan_out, c0, c1, to_block)
    if n_states >= 1:
        _move_columns(s1[at:at + n], s1_own, fan_out, c0, c1, to_block)
    if n_states >= 2:
        _move_columns(s2[at:at + n], s2_own, fan_out, c0, c1, to_block)


@_par
def softmax_steps(x, t, idx, m, tb, xbs, src, h, masks, dropping, z, w, b, kinds, slopes, a, zmax, amax, pred, scale,
                  d, dw, db, ones, offsets, params, grads, l2, kind, s1, s2, n_states, c, sq, norms, cols, rows,
                  bias_lane, w_own, g_own, s1_own, s2_own, load, store, flags, call, losses, lanes):
    """Steps on the minibatches idx[s·m:(s+1)·m] for a softmax output with cross-entropy,
    with at least one hidden layer, in one region; returns how many losses it computed
    (the steps taken, and one more where a loss was not finite: that step and those
    after it are not taken).

    Lane k owns units cols[k]:cols[k+1] of layer 0 (the first, widest as a rule): their
    weights, gradients and optimizer state stay in its own blocks (``w_own[k]``, … :
    moved there from ``params`` with ``load``, and back with ``store``), so that those
    never pass between the cores; of the later layers it owns rows as in ``update``.

    Step s, lane k: layer 0 for every row on its units (``_first_layer_forward``);
    a barrier (``lane_sync``); on its rows the later layers (``_rows_forward``),
    softmax's first steps, NumPy's exp, softmax's last steps with the predicted classes
    (pred[s·m + i]) and δ_L = (a − t)·scale (``output_kernels``), backpropagation down to
    δ_0 (``_rows_backward``), and NumPy's log of its rows' largest probabilities:
    r_i = zmax_i − log amax_i.  Past a second barrier every lane sums the loss
    Σ_i r_i − ⟨t, z_L⟩ (NumPy's pairwise order, the BLAS dot as NumPy's ``vdot``) into
    losses[s] and, where it is finite, updates what it owns (``_first_layer_update``,
    ``_lane_update``; the optimizer's scalars c[s]); past a third barrier lane 0 writes
    the step's gradient norms into norms[s] (``_norms``)."""
    n_layers = len(w)
    fan_out0 = w[0].shape[1]
    bias_at = offsets[0] + w[0].size
    k_out = w[n_layers - 1].shape[1]
    zero = scale - scale
    n_steps = losses.shape[0]
    taken = np.zeros(1, np.int64)
    for lane in prange(lanes):
        lo, hi = split(m, lane, lanes)
        c0, c1 = cols[lane], cols[lane + 1]
        xb, mine, g_mine, s1_mine, s2_mine = xbs[lane], w_own[lane], g_own[lane], s1_own[lane], s2_own[lane]
        if load:
            _move_first_layer(params, grads, s1, s2, n_states, mine, g_mine, s1_mine, s2_mine, offsets[0],
                              fan_out0, c0, c1, True)
        z_out, d_out = z[n_layers - 1], d[n_layers - 1]
        for step in range(n_steps):
            first = step * m
            ids = idx[first:first + m]
            _first_layer_forward(x, t, ids, xb[:m], tb, masks[0], dropping[0], mine, z[0], b[0], kinds[0],
                                 slopes[0], lo, hi, c0, c1)
            barrier(flags, lane, lanes)
            _rows_forward(x, t, ids, tb, src, h, masks, dropping, z, w, b, kinds, slopes, 1, lo, hi)
            softmax_shift(z_out[lo:hi], a[lo:hi], zmax[lo:hi])
            at = _loop_call(call, lane, a.ctypes.data + lo * k_out * F4, (hi - lo) * k_out)
            numpy_exp(at, at + 16, at + 24, 0)
            softmax_finish(a[lo:hi], tb[lo:hi], pred[first + lo:first + hi], d_out[lo:hi], amax[lo:hi], scale)
            _rows_backward(d, z, w, masks, dropping, kinds, slopes, lo, hi)
            at = _loop_call(call, lane, amax.ctypes.data + lo * F4, hi - lo)
            numpy_log(at, at + 16, at + 24, 0)
            for i in range(lo, hi):
                amax[i] = zmax[i] - amax[i]
            barrier(flags, lane, lanes)
            loss = pairwise_sum(amax, 0, m, zero) - sdot(m * k_out, tb.ctypes.data, 1, z_out.ctypes.data, 1)
            if lane == 0:
                losses[step] = loss
                taken[0] = step + 1
            if not np.isfinite(loss):
                break
            _first_layer_update(xb[:m], d[0], db[0], ones, mine, g_mine, s1_mine, s2_mine, bias_at, params, grads,
                                l2, kind, s1, s2, c[step], sq, lane, c0, c1)
            _lane_update(h, d, dw, db, ones, offsets, params, grads, l2, kind, s1, s2, c[step], sq, rows,
                         bias_lane, 1, lane)
            barrier(flags, lane, lanes)
            if lane == 0:
                _norms(sq, norms[step])
        if store:
            _move_first_layer(params, grads, s1, s2, n_states, mine, g_mine, s1_mine, s2_mine, offsets[0],
                              fan_out0, c0, c1, False)
    return taken[0]
