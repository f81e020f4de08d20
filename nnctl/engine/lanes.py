"""Minibatch steps split across cores ("lanes"), for large networks when the BLAS may use
several threads.

With a multi-threaded BLAS only the matrix products of a step use every core; the row
gather, bias and activation, gradient norms and the optimizer update run on one core
between them, and the BLAS threads share packed blocks of every product.  Here instead
each core is a lane that does its share of everything, calling the BLAS
single-threaded, in three parallel regions per step (compiled by numba,
``lane_kernels.py`` and ``output_kernels.py``; OpenMP threads, a few µs to start a region):

A  rows        lane k gathers its rows of the minibatch and runs them forward:
               z_l = (h_l ⊙ mask_l) W_l + b_l, h_{l+1} = f(z_l); for a softmax output
               with cross-entropy also a = z_L − max z_L on its rows
   (then NumPy's exp of a on the whole batch; with another output or loss, the
   trainer applies the output activation, the loss and δ_L = (1/n) ∂L/∂z_L on the
   whole batch, as on the plain path)
B  rows        softmax's division by the row sum, the predicted classes and
               δ_L = (a − t)/n on its rows (softmax with cross-entropy), then
               δ_{l−1} = (δ_l W_lᵀ) ⊙ mask_l ⊙ f'(z_{l−1}) on its rows
   (the loss is summed and checked: a non-finite one stops before C)
C  parameters  lane k owns a run of weight rows (``shares``): ∂W_l = h_lᵀ δ_l on its rows,
               + λW_l, ‖∂W_l‖² of them, then the optimizer rule (``kernels.py``) on
               them; and the biases of the layers whose last row it owns:
               ∂b_l = Σ_rows δ_l and their update

For a softmax output with cross-entropy and at least one hidden layer, many steps run
in one region (``softmax_steps``): the lanes take NumPy's own exp and log loops on their
rows (``numpy_loops``), sum the loss, and wait for each other at barriers
(``lane_sync``), which saves three region starts a step, the calls' arguments and the
NumPy calls between them.  There layer 0 is shared out by units, not by rows: lane k
gathers every row of the minibatch itself and computes its units' columns of z_0, and
it alone updates their weights, which it keeps, with their gradient and optimizer
state, in blocks of its own (moved back into ``params`` at the end of ``running``, or
before a three-region step).  Layer 0's weights, the largest part of the network as a
rule, then never pass between the cores: where the two cores share no cache (this
machine's slow 2-thread mode, README "Speed") a step takes about a fifth less time.  A
barrier after layer 0, then the later layers as above.

No sum is split between lanes: every entry of every product is one BLAS call's dot over
the same terms as on the one-thread path, and rows are shared out in blocks of 16,
where OpenBLAS's kernels start their blocks too.  Where each lane's share of a product
runs the same OpenBLAS kernel as the whole product (the benchmark's shapes, for
example; OpenBLAS picks other kernels for small products), the numbers are bit for bit
those of one thread; otherwise they agree to float32 rounding.  They are identical from
run to run for the same number of lanes.

Used for float32 networks of at least ``MIN_PARAMS`` parameters with ReLU, leaky ReLU
or linear hidden layers (dropout included: the masks are drawn as on the plain path,
then applied by the lanes), without max-norm or gradient-norm clipping, on
NumPy's own OpenBLAS with the 64-bit integer interface, and numba with its OpenMP
threading layer; anything else takes the plain path.
"""

from __future__ import annotations

import ctypes
import math
import os
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator, Sequence

import numpy as np

from nnctl.engine.network import MLP

Array = np.ndarray

MIN_PARAMS = 32_768
"""Smaller networks' steps are too short for a region's start-up to pay."""

MIN_ROWS_PER_LANE = 16
"""Rows are shared out in blocks of 16 (``lane_kernels.ALIGN``): a smaller minibatch
would leave a lane without rows."""

_ACTIVATION_KIND = {"linear": 0, "relu": 1, "leaky_relu": 2}


class _Blas:
    """NumPy's OpenBLAS: its thread count, get and set through the library itself."""

    def __init__(self, lib: ctypes.CDLL, get_threads, set_threads) -> None:
        self.lib, self._get, self._set = lib, get_threads, set_threads

    @contextmanager
    def single_threaded(self) -> Iterator[None]:
        """Each BLAS call runs in its caller's thread while the block runs."""
        old = int(self._get())
        self._set(1)
        try:
            yield
        finally:
            self._set(old)


@lru_cache(maxsize=1)
def _blas() -> _Blas | None:
    """Register NumPy's OpenBLAS sgemm, sgemv and sdot under the names the kernels call;
    None where NumPy's BLAS is not an ILP64 OpenBLAS (its path is found through
    threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
        import llvmlite.binding as llvm
    except ImportError:
        return None
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    paths = [p["filepath"] for p in threadpool_info()
             if p.get("internal_api") == "openblas" and "numpy" in os.path.relpath(p["filepath"], numpy_dir)]
    if not paths:
        return None
    lib = ctypes.CDLL(paths[0])
    for prefix in ("scipy_", ""):
        try:
            sgemm = getattr(lib, f"{prefix}cblas_sgemm64_")
            sgemv = getattr(lib, f"{prefix}cblas_sgemv64_")
            sdot = getattr(lib, f"{prefix}cblas_sdot64_")
            get_threads = getattr(lib, f"{prefix}openblas_get_num_threads64_")
            set_threads = getattr(lib, f"{prefix}openblas_set_num_threads64_")
        except AttributeError:
            continue
        get_threads.restype = ctypes.c_int
        set_threads.argtypes = [ctypes.c_int]
        set_threads.restype = None
        for name, fn in (("nnctl_cblas_sgemm64", sgemm), ("nnctl_cblas_sgemv64", sgemv), ("nnctl_cblas_sdot64", sdot)):
            llvm.add_symbol(name, ctypes.cast(fn, ctypes.c_void_p).value)
        return _Blas(lib, get_threads, set_threads)
    return None


@lru_cache(maxsize=1)
def _kernels():
    """The compiled lane kernels, or None when numba, OpenBLAS or OpenMP threads are missing."""
    if _blas() is None:
        return None
    try:
        import numba

        from nnctl.engine import lane_kernels, lane_sync
    except ImportError:
        return None
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "omp"  # workqueue threads start a region 40× slower
    try:
        lane_sync.thread_ids(np.zeros(2, np.int64), 2)  # starts the OpenMP threads
    except Exception:  # noqa: BLE001 - no OpenMP runtime: the plain path serves
        return None
    if numba.threading_layer() != "omp":
        return None
    global _omp_pid
    _omp_pid = os.getpid()
    return lane_kernels


@lru_cache(maxsize=1)
def _whole_step_ready() -> bool:
    """Whether ``softmax_steps`` can run: NumPy's exp and log loops found and checked, and
    the barrier's yield available."""
    from nnctl.engine import lane_sync, numpy_loops

    return lane_sync.HAS_YIELD and numpy_loops.register()


_omp_pid = 0
"""The process whose OpenMP threads run the lanes.  GNU OpenMP does not survive fork():
numba stops a forked child that starts a parallel region, so a child trains on the
plain path."""


def available() -> bool:
    """Whether lanes can run here (numba with OpenMP, NumPy on an ILP64 OpenBLAS, not a
    process forked after they ran) and are not switched off (``NNCTL_LANES=0``, or
    ``NNCTL_NUMBA=0`` for every compiled path)."""
    if "0" in (os.environ.get("NNCTL_NUMBA", "1"), os.environ.get("NNCTL_LANES", "1")):
        return False
    return _kernels() is not None and _omp_pid == os.getpid()


class LaneStep:
    """The lane form of one training step of ``model``: ``forward``, then ``backward`` (or
    ``softmax_cross_entropy``, which includes it), then ``update``."""

    def __init__(self, model: MLP, optimizer, lanes: int, batch_size: int) -> None:
        self.k = _kernels()
        assert self.k is not None
        from nnctl.engine.output_kernels import cross_entropy_total

        self._cross_entropy_total = cross_entropy_total
        self.model, self.optimizer, self.lanes = model, optimizer, lanes
        self.blas = _blas()
        self.work = model._workspace(batch_size)
        self.batch_size = batch_size
        dtype, sizes = model.dtype, model.sizes
        self.xb = _aligned((batch_size, sizes[0]), dtype)
        self.tb = np.empty((batch_size, sizes[-1]), dtype)
        # Lanes write different rows, and (layer 0, whole steps) different columns, of
        # these: each row, and each run of 16 columns, starts a cache line of its own.
        self.z_rows = [_aligned((batch_size, k), dtype) for k in sizes[1:]]
        self.d_rows = [_aligned((batch_size, k), dtype) for k in sizes[1:]]
        self.kinds = np.array([_ACTIVATION_KIND[a.name] for a in model.activations[:-1]] + [0], np.int64)
        self.slopes = np.array([*model.slopes, 0.0], np.float32)
        self.offsets = np.array([sl.start for sl in model.layer_slices], np.int64)
        self.dropping = np.array([p > 0.0 for p in model.dropout], np.int64)
        self.rows, self.bias_lane = shares(model.sizes, lanes)
        # Whole steps: lane k owns units cols[k]:cols[k+1] of layer 0, and of the later
        # layers the rows ``shares`` gives it among those layers alone.
        self.cols = np.array([self.k.split(sizes[1], k, lanes)[0] for k in range(lanes)] + [sizes[1]], np.int64)
        self.upper_rows = np.zeros_like(self.rows)
        self.upper_bias_lane = np.zeros_like(self.bias_lane)
        if model.n_layers >= 2:
            self.upper_rows[1:], self.upper_bias_lane[1:] = shares(sizes[1:], lanes)
        self._own: tuple | None = None
        self._held = False
        """Whether the lanes' blocks, not ``params``, hold layer 0's current weights,
        optimizer state and gradient (``softmax_steps(hold=True)``; ``release`` moves
        them back)."""
        self._dropout = [(l, p) for l, p in enumerate(model.dropout) if p > 0.0]
        self.sq = np.zeros((lanes, model.n_layers))
        self.norms = np.zeros(model.n_layers)
        """‖∂L/∂W_l‖ of the last step, per layer (``TrainingState.grad_norms``)."""
        self._views: dict[int, _Views] = {}
        self.flags = np.zeros(lanes * 8, np.int64)
        self.call = np.zeros((lanes, 8), np.int64)
        self.whole = False
        """Whether ``softmax_steps`` may run now (inside ``running``)."""
        self._scalars = np.empty((0, 0), np.float32)

    @contextmanager
    def running(self) -> Iterator[None]:
        """Hold the BLAS at one thread (each lane calls it) and numba at ``lanes`` threads;
        ``whole`` tells whether each lane then runs in a thread of its own, as the
        barriers of ``softmax_steps`` need."""
        import numba

        old = numba.get_num_threads()
        numba.set_num_threads(min(self.lanes, numba.config.NUMBA_NUM_THREADS))
        try:
            with self.blas.single_threaded():
                self.whole = self.model.n_layers >= 2 and _whole_step_ready() and self._own_threads()
                try:
                    yield
                finally:
                    self.release()
        finally:
            self.whole = False
            numba.set_num_threads(old)

    def _own_threads(self) -> bool:
        """Whether every lane runs in a thread of its own: the ids of the threads of one
        region are distinct, and OpenMP may not give a region fewer threads than asked
        (``OMP_DYNAMIC``), which would leave a lane waiting at a barrier for one that
        runs after it in the same thread."""
        from nnctl.engine.lane_sync import thread_ids

        if os.environ.get("OMP_DYNAMIC", "false").strip().lower() not in ("false", "0", "no", ""):
            return False
        ids = np.full(self.lanes, -1, np.int64)
        thread_ids(ids, self.lanes)
        return len(set(ids.tolist())) == self.lanes and ids.min() >= 0

    def softmax_steps(self, x: Array, t: Array, idx: Array, m: int, rng: np.random.Generator | None, l2: float,
                      pred: Array, zmax: Array, amax: Array, hold: bool = False) -> tuple[Array, Array]:
        """Whole steps for a softmax output with cross-entropy (``whole``) on the
        minibatches of m rows idx[s·m:(s+1)·m], one region for them all: forward,
        softmax, the predicted classes (into ``pred``, len(idx) entries), the loss,
        backward, the gradients and the optimizer's step, as ``forward``,
        ``softmax_cross_entropy`` and ``update`` give them (the norm of layer 0's
        gradient to float rounding: its squares are summed per unit block, not per row
        block).  Returns each step's summed loss and its gradient norms per layer (rows
        of ``norms``), up to the first non-finite loss, whose step and those after it are
        not taken.  With dropout a region a step (its masks are drawn before it).
        ``zmax`` and ``amax`` are scratch vectors of m entries.

        With ``hold`` layer 0's weights, optimizer state and gradient stay in the lanes'
        blocks after the region (``params`` and the optimizer's buffers do not show them)
        until ``release``, the three-region methods, or the end of ``running``, saving the
        next region the move."""
        n_steps = len(idx) // m
        if n_steps == 0 or n_steps * m != len(idx):
            raise ValueError("softmax_steps takes one or more whole minibatches of m rows")
        if self._dropout and n_steps > 1:  # each step's masks are drawn before it
            losses, norms = [], []
            for s in range(n_steps):
                part = slice(s * m, (s + 1) * m)
                loss, norm = self.softmax_steps(x, t, idx[part], m, rng, l2, pred[part], zmax, amax, hold)
                losses.append(loss)
                norms.append(norm)
                if len(norm) == 0:
                    break
            return np.concatenate(losses), np.concatenate(norms)
        v = self._views_for(m)
        self._draw_masks(v, rng)
        optimizer, model = self.optimizer, self.model
        for s in range(n_steps):
            optimizer.begin()
            kind, s1, s2, c = optimizer.kernel_args()
            if s == 0:
                if self._scalars.shape[0] < n_steps or self._scalars.shape[1] != len(c):
                    self._scalars = np.empty((n_steps, len(c)), np.float32)
                scalars = self._scalars[:n_steps]
            scalars[s] = c
        losses = np.empty(n_steps)
        norms = np.zeros((n_steps, model.n_layers))
        done = self._whole_region(v, x, t, idx, m, l2, pred, zmax, amax, scalars, norms, losses, hold)
        taken = done if done == 0 or math.isfinite(losses[done - 1]) else done - 1
        for _ in range(n_steps - taken):
            optimizer.rewind()
        if taken:
            self.norms[...] = norms[taken - 1]
        self._last = v
        return losses[:done], norms[:taken]

    def _whole_region(self, v: "_Views", x, t, idx, m, l2, pred, zmax, amax, scalars, norms, losses,
                      hold: bool) -> int:
        """One ``lane_kernels.softmax_steps`` region (none of its steps where ``losses`` is
        empty: then only the move of layer 0's blocks back)."""
        optimizer, model = self.optimizer, self.model
        kind, s1, s2, _ = optimizer.kernel_args()
        n_states = 0 if kind == 0 else 1 if s1 is s2 else 2
        if self._own is None or self._own[0] != n_states:
            self._own = (n_states, *self._blocks(n_states))
        _, xbs, w_own, g_own, s1_own, s2_own = self._own
        done = self.k.softmax_steps(
            x, t, idx, m, v.tb, xbs, v.src, v.h, v.masks, self.dropping, v.z, v.w, v.b, self.kinds, self.slopes,
            v.a, zmax, amax, pred, v.a.dtype.type(1.0 / m), v.d, v.dw, v.db, v.ones, self.offsets, model.params,
            model.grads, np.float32(l2), kind, s1, s2, n_states, scalars, self.sq, norms, self.cols,
            self.upper_rows, self.upper_bias_lane, w_own, g_own, s1_own, s2_own, not self._held, not hold,
            self.flags, self.call, losses, self.lanes)
        self._held = hold
        return done

    def _blocks(self, n_states: int) -> tuple[tuple[Array, ...], ...]:
        """Each lane's gathered rows, and its blocks of layer 0's columns: weights,
        gradient and the optimizer's ``n_states`` state buffers (where the optimizer has
        one, both state tuples are it; none, empty blocks)."""
        dtype, fan_in = self.model.dtype, self.model.sizes[0]
        widths = np.diff(self.cols)
        xbs = tuple(_aligned((self.batch_size, fan_in), dtype) for _ in widths)
        w_own, g_own = (tuple(_aligned((fan_in, int(k)), dtype) for k in widths) for _ in range(2))
        none = tuple(np.empty((0, 0), dtype) for _ in widths)
        s1_own = tuple(_aligned((fan_in, int(k)), dtype) for k in widths) if n_states >= 1 else none
        s2_own = tuple(_aligned((fan_in, int(k)), dtype) for k in widths) if n_states >= 2 else s1_own
        return xbs, w_own, g_own, s1_own, s2_own

    def release(self) -> None:
        """Move layer 0's weights, optimizer state and gradient from the lanes' blocks
        back into ``params``, the optimizer's buffers and ``grads``, where they are held."""
        if self._held:  # a region of no steps: the arrays only need the types of a real one
            m = self.batch_size
            v = self._views_for(m)
            no_steps = np.empty(0, np.int64)
            self._whole_region(v, v.tb, v.tb, no_steps, m, 0.0, no_steps, v.no_rows, v.no_rows,
                               np.empty((0, 1), np.float32), np.empty((0, self.model.n_layers)), np.empty(0), False)

    def forward(self, x: Array, t: Array, idx: Array, rng: np.random.Generator | None,
                zmax: Array | None = None) -> tuple[Array, Array, Array]:
        """Region A: gather rows ``idx`` and run them forward, dropout masks drawn from
        ``rng`` as ``MLP.forward_train`` draws them; (z, a) of the output layer and the
        gathered targets, views valid until the next call.  Given ``zmax`` (a softmax
        output, for ``softmax_cross_entropy``), the lanes take softmax's first steps
        instead of the output activation: zmax = row maxima of z, a = z − zmax."""
        self.release()
        v = self._views_for(len(idx))
        model = self.model
        self._draw_masks(v, rng)
        shift = zmax is not None
        self.k.forward(x, t, idx, v.tb, v.src, v.h, v.masks, self.dropping, v.z, v.w, v.b, self.kinds, self.slopes,
                       v.a, zmax if shift else v.no_rows, shift, self.lanes)
        if not shift:
            model.activations[-1].forward(v.z[-1], out=v.a)
        self._last = v
        return v.z[-1], v.a, v.tb

    def softmax_cross_entropy(self, pred: Array, zmax: Array, amax: Array) -> float:
        """After ``forward(..., zmax=zmax)``: NumPy's exponentials, then region B with
        softmax's last steps, the predicted classes (into ``pred``) and δ = (a − t)/m on
        each lane's rows (``output_kernels``: the numbers of the plain path); returns
        the batch's summed cross-entropy."""
        v = self._last
        np.exp(v.a, out=v.a)
        scale = v.a.dtype.type(1.0 / len(v.a))
        self.k.backward(v.d, v.z, v.w, v.masks, self.dropping, self.kinds, self.slopes, v.a, v.tb, pred, amax, scale,
                        True, self.lanes)
        return self._cross_entropy_total(v.z[-1], v.tb, zmax, amax)

    def backward(self, delta: Array) -> None:
        """Region B: backpropagate ``delta`` = (1/n) ∂L/∂z of the output layer (best
        written into ``delta_out()``)."""
        v = self._last
        if delta is not v.d[-1]:
            v.d[-1][...] = delta
        self.k.backward(v.d, v.z, v.w, v.masks, self.dropping, self.kinds, self.slopes, v.a, v.tb, v.no_classes,
                        v.no_rows, v.a.dtype.type(0), False, self.lanes)

    def update(self, l2: float) -> None:
        """Region C, after ``backward`` or ``softmax_cross_entropy``: fill the gradients
        (``model.grads``, the L2 term λW included) and take the optimizer's step (its
        ``begin`` already called); ``norms`` then holds each layer's gradient norm."""
        v = self._last
        kind, s1, s2, scalars = self.optimizer.kernel_args()
        model = self.model
        self.k.update(v.h, v.d, v.dw, v.db, v.ones, self.offsets, model.params, model.grads, np.float32(l2), kind,
                      s1, s2, scalars, self.sq, self.norms, self.rows, self.bias_lane, self.lanes)

    def _draw_masks(self, v: "_Views", rng: np.random.Generator | None) -> None:
        """This step's inverted-dropout masks, drawn as ``MLP.forward_train`` draws them."""
        for l, p in self._dropout:
            if rng is None:
                raise ValueError("dropout needs an rng in training")
            mask = v.masks[l]
            u = rng.random(mask.shape, dtype=np.float32)
            np.greater_equal(u, p, out=mask)
            mask *= 1.0 / (1.0 - p)

    def delta_out(self) -> Array:
        """The buffer for the output layer's δ of the batch last run forward."""
        return self._last.d[-1]

    def _views_for(self, m: int) -> "_Views":
        v = self._views.get(m)
        if v is None:
            v = self._views[m] = _Views(self, m)
        return v


def shares(sizes: Sequence[int], lanes: int, align: int = 16) -> tuple[Array, Array]:
    """Which parameters each lane updates in region C: rows[l, k]:rows[l, k+1] of W_l go to
    lane k, and b_l to lane bias_lane[l].

    The rows of all layers, taken in order (each layer's bias after its last row), are
    cut into ``lanes`` runs of as nearly equal parameter counts as cuts at multiples of
    ``align`` rows within a layer allow (the row blocks of ``lane_kernels.split``): the
    work of a lane's share, its gradient product and its optimizer step, is in
    proportion to its parameters.  Cutting each layer in halves instead leaves a lane
    one block of the largest layer ahead wherever a layer has an odd number of blocks."""
    fans = list(zip(sizes[:-1], sizes[1:]))
    total = sum(fi * fo + fo for fi, fo in fans)
    # Every place a cut may go: (global row, parameters before it).
    places, done, first = [], 0, 0
    for fi, fo in fans:
        places += [(first + r, done + r * fo) for r in range(0, fi, align)]
        first, done = first + fi, done + fi * fo + fo
    places.append((first, done))
    cuts, at = [0], 0
    for k in range(1, lanes):
        target = total * k / lanes
        while at + 1 < len(places) and abs(places[at + 1][1] - target) <= abs(places[at][1] - target):
            at += 1
        cuts.append(places[at][0])
    cuts.append(first)
    rows = np.zeros((len(fans), lanes + 1), np.int64)
    bias_lane = np.zeros(len(fans), np.int64)
    first = 0
    for l, (fi, _) in enumerate(fans):
        rows[l] = [min(max(c - first, 0), fi) for c in cuts]
        bias_lane[l] = max(k for k in range(lanes) if cuts[k] <= first + fi - 1)
        first += fi
    return rows, bias_lane


class _Views:
    """The tuples of per-layer arrays the kernels take, for minibatches of m rows."""

    def __init__(self, step: LaneStep, m: int) -> None:
        model, work = step.model, step.work
        self.tb = step.tb[:m]
        self.z = tuple(zl[:m] for zl in step.z_rows)
        self.src = (step.xb[:m], *self.z[:-1])
        none = np.empty((0, 0), model.dtype)
        self.masks = tuple(mk[:m] if mk is not None else none for mk in work.masks)
        self.h = tuple(dr[:m] if dr is not None else s for dr, s in zip(work.dropped, self.src))
        self.a = work.a_out[:m]
        self.d = tuple(dl[:m] for dl in step.d_rows)
        self.w, self.b = tuple(model.weights), tuple(model.biases)
        self.dw, self.db = tuple(model.weight_grads), tuple(model.bias_grads)
        self.ones = work.ones[:m]
        self.no_rows = np.empty(0, model.dtype)
        self.no_classes = np.empty(0, np.int64)


def _aligned(shape: tuple[int, int], dtype) -> Array:
    """An empty C-contiguous array that starts a cache line (64 bytes)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    raw = np.empty(n * dtype.itemsize + 64, np.uint8)
    skip = -raw.ctypes.data % 64
    return raw[skip : skip + n * dtype.itemsize].view(dtype).reshape(shape)


def plan(model: MLP, optimizer, lanes: int, batch_size: int, x: Array, t: Array, l2: float,
         clip_norm: float | None, max_norm: float | None) -> LaneStep | None:
    """A LaneStep where lanes serve this training, else None (the plain path)."""
    if lanes < 2 or batch_size < lanes * MIN_ROWS_PER_LANE or model.params.size < MIN_PARAMS:
        return None
    if model.dtype != np.float32 or x.dtype != np.float32 or t.dtype != np.float32:
        return None
    if not (x.flags.c_contiguous and t.flags.c_contiguous):
        return None
    if clip_norm is not None or max_norm is not None:
        return None
    if any(a.name not in _ACTIVATION_KIND for a in model.activations[:-1]):
        return None
    if not hasattr(optimizer, "kernel_args") or not available():
        return None
    return LaneStep(model, optimizer, lanes, batch_size)

