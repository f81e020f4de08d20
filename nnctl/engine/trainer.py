"""fit(): the epoch / minibatch loop.  Everything else (stopping, best weights, gradient
norms, metric logs, progress) is a callback."""

from __future__ import annotations

import contextlib
import math
import time
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from nnctl.engine import kernels, lanes
from nnctl.engine.callbacks import Callback, TrainingState
from nnctl.engine.losses import Loss
from nnctl.engine.metrics import predicted_classes
from nnctl.engine.network import MLP
from nnctl.engine.resume import EpochCursor, restore
from nnctl.engine.schedules import constant

Array = np.ndarray


@dataclass(frozen=True)
class FitConfig:
    """Settings of the loop.  ``metric`` is 'accuracy' (classification) or 'rmse'
    (regression, reported in original units: errors are multiplied by ``target_scale``).
    ``prefetch``: gather large minibatches one step ahead in a second thread; it pays
    where a core is free, and costs where the BLAS threads already use every core.
    ``lanes``: the cores a step may use; with 2 or more, large networks split each step
    across them (``lanes.py``) where they can, instead of only the matrix products."""

    epochs: int
    batch_size: int
    lr: float
    schedule: Callable[[float, int, int], float] = constant
    shuffle: bool = True
    l2: float = 0.0
    max_norm: float | None = None
    metric: str = "accuracy"
    target_scale: Array | float = 1.0
    clip_norm: float | None = None
    prefetch: bool = True
    lanes: int = 1


@dataclass(frozen=True)
class FitResult:
    stop_reason: str
    epochs: int


def fit(
    model: MLP,
    loss: Loss,
    optimizer,
    x: Array,
    t: Array,
    config: FitConfig,
    rng: np.random.Generator,
    x_val: Array | None = None,
    t_val: Array | None = None,
    callbacks: Sequence[Callback] = (),
    resume: Mapping[str, Array] | None = None,
) -> FitResult:
    """Train ``model`` on rows x with target matrix t (one-hot for classes).

    Each epoch: set η from the schedule, visit the rows in a fresh random order in
    minibatches, and per batch take one optimizer step on the mean loss
    (1/n) Σ L + (λ/2) Σ ‖W‖²; then evaluate on the validation rows and call the
    callbacks.  Stops at ``config.epochs`` unless a callback sets a stop reason, a
    step's loss becomes NaN/inf ('diverged', at that step), or a stop is requested
    (``state.stop_requested``, checked before each minibatch) or the user presses
    Ctrl-C ('interrupted').

    ``resume``: arrays from ``resume.capture`` of an earlier fit of the same model,
    whose parameters the caller has loaded; training goes on from where that one
    stopped, mid-epoch included, with the same result as if it had never stopped.
    """
    if len(x) == 0:
        raise ValueError("no training rows")
    shuffle_rng, dropout_rng = rng.spawn(2)
    state = TrainingState(model=model, optimizer=optimizer, epochs=config.epochs)
    state.rngs = {"shuffle": shuffle_rng, "dropout": dropout_rng}
    for cb in callbacks:
        cb.on_train_begin(state)
    done, cursor = restore(state, callbacks, resume) if resume is not None else (0, None)
    state.epoch = done
    epoch = done
    last = config.epochs if state.stop_reason is None else done  # a training restored as ended stays ended
    lane_step = lanes.plan(model, optimizer, config.lanes, min(config.batch_size, len(x)), x, t, config.l2,
                           config.clip_norm, config.max_norm)
    state.grad_norms = lane_step.norms if lane_step is not None else None
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected from the loss
            for epoch in range(done + 1, last + 1):
                logs = _run_epoch(model, loss, optimizer, x, t, config, epoch, shuffle_rng, dropout_rng, state,
                                  callbacks, cursor, lane_step)
                cursor = None
                if logs is None:  # stopped on request before the epoch's end
                    state.stop_reason = "interrupted"
                    break
                state.epoch = epoch
                if x_val is not None and len(x_val) > 0 and math.isfinite(logs["train_loss"]):
                    logs.update(evaluate_rows(model, loss, x_val, t_val, config, prefix="val_"))
                if not all(math.isfinite(v) for k, v in logs.items() if k.endswith("loss")):
                    state.stop_reason = "diverged"
                for cb in callbacks:
                    cb.on_epoch_end(state, logs)
                if state.stop_reason is not None:
                    break
    except KeyboardInterrupt:
        state.stop_reason = "interrupted"
        state.resumable = False  # the step under way may have been cut half-way
        state.epoch = max(done, epoch - 1)  # the epoch under way did not finish
    if state.stop_reason is None:
        state.stop_reason = "max_epochs"
    for cb in callbacks:
        cb.on_train_end(state)
    return FitResult(stop_reason=state.stop_reason, epochs=state.epoch)


def _run_epoch(model, loss, optimizer, x, t, config, epoch, shuffle_rng, dropout_rng, state, callbacks,
               cursor: EpochCursor | None = None, lane_step: lanes.LaneStep | None = None) -> dict[str, float] | None:
    """One epoch of minibatch steps; its training logs, or None when a stop request came
    first (``state.cursor`` then says where it stands).  A non-finite loss ends the
    epoch at that step."""
    n = len(x)
    bs = min(config.batch_size, n)
    lr = config.schedule(config.lr, epoch - 1, config.epochs)
    optimizer.lr = lr
    if cursor is None:
        order = shuffle_rng.permutation(n) if config.shuffle else np.arange(n)
        start_at, total_loss = 0, 0.0
    else:
        order, start_at, total_loss = cursor.order, cursor.position, cursor.loss
    dbuf = np.empty((bs, t.shape[1]), dtype=model.dtype)
    out_act = model.activations[-1]
    batch_cbs = [cb for cb in callbacks if type(cb).on_batch_end is not Callback.on_batch_end]
    tracker = _MetricTracker(config, t, order)
    if cursor is not None:
        tracker.load(cursor)
    # Softmax, loss, classes and δ in five calls instead of fifteen, the same numbers.
    head = kernels.output_step(model.params.size, loss.name, out_act.name, t.shape[1], config.metric)
    scratch = np.empty((2, bs), dtype=model.dtype)
    params, grads = model.params, model.grads
    # Clipping needs the whole gradient before any layer is updated.
    per_layer = params.size >= PER_LAYER_MIN_SIZE and config.clip_norm is None

    def update_layer(l: int) -> None:
        if config.l2:
            model.weight_grads[l] += config.l2 * model.weights[l]
        sl = model.layer_slices[l]
        optimizer.update(params[sl], grads[sl], sl)
        if config.max_norm is not None:
            _clip_max_norm(model.weights[l], config.max_norm)

    def update_all() -> None:
        if config.l2:
            for w, g in zip(model.weights, model.weight_grads):
                g += config.l2 * w
        if config.clip_norm is not None:
            clip_global_norm(grads, config.clip_norm)
        optimizer.update(params, grads, slice(None))
        if config.max_norm is not None:
            for w in model.weights:
                _clip_max_norm(w, config.max_norm)

    if lane_step is not None:  # each lane gathers its own rows in the step
        batches = ((lo, None, None) for lo in range(start_at, n, bs))
        running = lane_step.running()
    else:
        batches = _minibatches(x, t, order, bs, model.dtype, start_at, config.prefetch)
        running = contextlib.nullcontext()
    start = time.perf_counter()
    with running:
        if lane_step is not None and head is not None and lane_step.whole and all(cb.observer for cb in batch_cbs):
            stopped_at, total_loss = _whole_steps(lane_step, x, t, order, start_at, bs, dropout_rng, config.l2,
                                                  tracker, scratch, state, batch_cbs, total_loss)
            if stopped_at is not None:
                state.cursor = EpochCursor(stopped_at, order, total_loss, tracker.n, tracker.partial_pred(),
                                           tracker.sq.copy())
                return None
            batches = ()  # every step of the epoch is done
        for lo, xb, tb in batches:
            if state.stop_requested:
                state.cursor = EpochCursor(lo, order, total_loss, tracker.n, tracker.partial_pred(), tracker.sq.copy())
                return None
            if lane_step is not None:
                idx = order[lo : lo + bs]
                m = len(idx)
                if head is not None:
                    lane_step.forward(x, t, idx, dropout_rng, zmax=scratch[0, :m])
                    total_loss += lane_step.softmax_cross_entropy(tracker.classes(lo, m), scratch[0, :m],
                                                                  scratch[1, :m])
                    if not math.isfinite(total_loss):
                        break
                else:
                    z, a, tb = lane_step.forward(x, t, idx, dropout_rng)
                    total_loss += loss.value(z, a, tb)
                    tracker.add(a, tb, lo)
                    if not math.isfinite(total_loss):
                        break
                    delta = loss.delta(z, a, tb, out_act, lane_step.delta_out())
                    delta *= 1.0 / m
                    lane_step.backward(delta)
                optimizer.begin()
                lane_step.update(config.l2)
            else:
                m = len(xb)
                z, a = model.forward_train(xb, dropout_rng, output=head is None)
                if head is not None:
                    total_loss += head(z, a, tb, tracker.classes(lo, m), dbuf[:m], scratch[0, :m], scratch[1, :m])
                    if not math.isfinite(total_loss):
                        break
                    delta = dbuf[:m]
                else:
                    total_loss += loss.value(z, a, tb)
                    tracker.add(a, tb, lo)
                    if not math.isfinite(total_loss):
                        break
                    delta = loss.delta(z, a, tb, out_act, dbuf[:m])
                    delta *= 1.0 / m
                optimizer.begin()
                if per_layer:
                    model.backward(delta, after_layer=update_layer)
                else:
                    model.backward(delta)
                    update_all()
            for cb in batch_cbs:
                cb.on_batch_end(state)
    logs = {"epoch": float(epoch), "lr": lr, "train_loss": total_loss / n}
    logs.update(tracker.result("train_"))
    logs["seconds"] = time.perf_counter() - start
    return logs


def _whole_steps(lane_step: lanes.LaneStep, x, t, order, start_at, bs, rng, l2, tracker, scratch, state, batch_cbs,
                 total_loss: float) -> tuple[int | None, float]:
    """The epoch's steps from position ``start_at`` on, as lanes' whole-step regions
    (softmax with cross-entropy; every batch callback only observes): up to
    ``STEPS_PER_REGION`` full minibatches a region, the lanes holding layer 0 between
    regions (``LaneStep.softmax_steps``; the end of ``running`` moves it back).  Returns
    the position where a stop request found the epoch (else None) and the summed loss,
    which ends at the first non-finite step's."""
    n = len(order)
    lo = start_at
    while lo < n:
        if state.stop_requested:
            return lo, total_loss
        m = min(bs, n - lo)
        count = m * max(1, min(STEPS_PER_REGION, (n - lo) // bs))
        losses, norms = lane_step.softmax_steps(x, t, order[lo : lo + count], m, rng, l2, tracker.classes(lo, count),
                                                scratch[0, :m], scratch[1, :m], hold=True)
        for s, loss in enumerate(losses.tolist()):
            total_loss += loss
            if not math.isfinite(total_loss):
                tracker.n -= count - (s + 1) * m  # the rows of the steps not run
                return None, total_loss
            lane_step.norms[...] = norms[s]  # state.grad_norms, for the callbacks
            for cb in batch_cbs:
                cb.on_batch_end(state)
        lo += count
    return None, total_loss


STEPS_PER_REGION = 32
"""The most minibatches the lanes run in one region (``_whole_steps``); a stop request
takes effect within this many steps (about 30 ms at batch 128 on the benchmark's
network)."""

PER_LAYER_MIN_SIZE = 32_768
"""Networks with at least this many parameters update each layer inside the backward
pass, while its weights and gradients are in cache; smaller ones fit in cache anyway
and update after it."""

PREFETCH_MIN_ELEMENTS = 65_536
"""Minibatches of at least this many input values are gathered one step ahead in a
second thread, hiding the memory latency of the random row gather behind the matrix
products; smaller ones are cheaper to gather than to hand over."""


def _minibatches(x: Array, t: Array, order: Array, bs: int, dtype, start_at: int = 0,
                 prefetch: bool = True) -> Iterator[tuple[int, Array, Array]]:
    """(first position, rows, targets) of each minibatch in ``order`` from position
    ``start_at`` on, gathered into two preallocated buffer pairs that alternate, so the
    data is never copied whole."""
    n = len(order)
    bufs = [(np.empty((bs, x.shape[1]), dtype), np.empty((bs, t.shape[1]), dtype)) for _ in range(2)]
    starts = list(range(start_at, n, bs))
    ahead = prefetch and bs * x.shape[1] >= PREFETCH_MIN_ELEMENTS and len(starts) >= 2
    # Gathering ahead, a compiled copy leaves the interpreter lock to the training thread.
    compiled = None
    if ahead and kernels.active() and all(a.dtype == dtype and a.flags.c_contiguous for a in (x, t)):
        compiled = kernels.load()

    def gather(k: int, lo: int) -> tuple[int, Array, Array]:
        idx = order[lo : lo + bs]
        xb, tb = bufs[k % 2]
        m = len(idx)
        if compiled is not None:
            compiled.gather_rows(x, idx, xb, 0, m)
            compiled.gather_rows(t, idx, tb, 0, m)
            return lo, xb[:m], tb[:m]
        return lo, x.take(idx, axis=0, out=xb[:m]), t.take(idx, axis=0, out=tb[:m])

    if not ahead:
        for k, lo in enumerate(starts):
            yield gather(k, lo)
        return
    yield from _ahead(gather, starts)


def _ahead(gather: Callable[[int, int], tuple[int, Array, Array]], starts: list[int]
           ) -> Iterator[tuple[int, Array, Array]]:
    """gather(k, starts[k]) for each k, batch k + 1 gathered in a second thread while
    batch k trains.  The two threads hand over with two bare locks (a few µs): the
    helper gathers a batch only once it is asked for, which is when the batch before
    the one in training, whose buffers it reuses, is done with."""
    wanted, ready = threading.Lock(), threading.Lock()
    wanted.acquire()
    ready.acquire()
    box: dict[str, object] = {}

    def work() -> None:
        for k, lo in enumerate(starts):
            wanted.acquire()
            if box.get("stop"):
                return
            try:
                box["batch"] = gather(k, lo)
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread
                box["error"] = exc
                ready.release()
                return
            ready.release()

    helper = threading.Thread(target=work, name="nnctl-gather", daemon=True)
    helper.start()
    try:
        wanted.release()
        for k in range(len(starts)):
            ready.acquire()
            if "error" in box:
                raise box["error"]  # type: ignore[misc]
            batch = box.pop("batch")
            if k + 1 < len(starts):
                wanted.release()
            yield batch  # type: ignore[misc]
    finally:
        box["stop"] = True
        if wanted.locked():
            wanted.release()
        helper.join()


def evaluate_rows(model: MLP, loss: Loss, x: Array, t: Array, config: FitConfig, prefix: str) -> dict[str, float]:
    """Loss and metric of the full network (no dropout) on rows x with targets t."""
    z, a = model.logits(x)
    tracker = _MetricTracker(config, t, np.arange(len(t)))
    tracker.add(a, t, 0)
    out = {f"{prefix}loss": loss.value(z, a, t) / len(x)}
    out.update(tracker.result(prefix))
    return out


class _MetricTracker:
    """Accumulates an epoch's accuracy (each row's predicted class, compared once at the
    end with the true classes in visiting order) or squared errors per output (rmse)."""

    def __init__(self, config: FitConfig, t: Array, order: Array) -> None:
        self.kind = config.metric
        k = t.shape[1]
        self.scale = np.broadcast_to(np.asarray(config.target_scale, dtype=np.float64), (k,))
        self.n, self.sq = 0, np.zeros(k)
        if self.kind == "accuracy":
            self.truth = predicted_classes(t)[order]
            self.pred = np.empty(len(order), dtype=np.int64)

    def add(self, a: Array, t: Array, lo: int) -> None:
        m = len(a)
        self.n += m
        if self.kind == "accuracy":
            if a.shape[1] == 1:
                np.greater_equal(a[:, 0], 0.5, out=self.pred[lo : lo + m])
            else:
                a.argmax(axis=1, out=self.pred[lo : lo + m])
        else:
            d = a - t
            self.sq += np.einsum("ij,ij->j", d, d)

    def classes(self, lo: int, m: int) -> Array:
        """Where the predicted classes of the m rows from ``lo`` go (accuracy), counted as seen."""
        self.n += m
        return self.pred[lo : lo + m]

    def partial_pred(self) -> Array | None:
        """The predicted classes of the rows seen so far (accuracy), else None."""
        return self.pred[: self.n].copy() if self.kind == "accuracy" else None

    def load(self, cursor: EpochCursor) -> None:
        """Continue the sums of an epoch stopped part-way."""
        self.n = cursor.seen
        self.sq = np.array(cursor.sq, dtype=np.float64)
        if self.kind == "accuracy" and cursor.pred is not None:
            self.pred[: self.n] = cursor.pred

    def result(self, prefix: str) -> dict[str, float]:
        if self.kind == "accuracy":
            correct = int(np.count_nonzero(self.pred[: self.n] == self.truth[: self.n]))
            return {f"{prefix}accuracy": correct / max(self.n, 1)}
        mse = float(np.sum(self.sq * self.scale**2)) / max(self.n * len(self.sq), 1)
        return {f"{prefix}rmse": math.sqrt(mse) if math.isfinite(mse) else math.nan}


def clip_global_norm(g: Array, c: float) -> float:
    """Scale the whole gradient in place, g ← g · min(1, c / ‖g‖₂), with ‖g‖₂ over every
    weight and bias (the L2 term included); returns ‖g‖₂ before clipping."""
    norm = math.sqrt(float(np.dot(g, g)))
    if norm > c:
        g *= g.dtype.type(c / norm)
    return norm


def _clip_max_norm(w: Array, c: float) -> None:
    """Rescale each unit's incoming weight vector (a column of W) to norm ≤ c."""
    norms = np.sqrt(np.einsum("ij,ij->j", w, w))
    w *= np.minimum(1.0, c / np.maximum(norms, 1e-12)).astype(w.dtype)
