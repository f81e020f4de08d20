"""fit(): the epoch / minibatch loop.  Everything else (stopping, best weights, gradient
norms, metric logs, progress) is a callback."""

from __future__ import annotations

import math
import time
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from nnctl.engine import accel
from nnctl.engine.callbacks import Callback, TrainingState
from nnctl.engine.losses import Loss
from nnctl.engine.metrics import predicted_classes
from nnctl.engine.network import MLP
from nnctl.engine.resume import EpochCursor, restore
from nnctl.engine.schedules import constant
from nnctl.engine.step import Regularization, Step

Array = np.ndarray


@dataclass(frozen=True)
class FitConfig:
    """Settings of the loop.  ``metric`` is 'accuracy' (classification) or 'rmse'
    (regression, reported in original units: errors are multiplied by ``target_scale``).
    ``prefetch``: gather large minibatches one step ahead in a second thread; it pays
    where a core is free, and costs where the BLAS threads already use every core."""

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


@dataclass(frozen=True)
class FitResult:
    """Why and after how many epochs the fit stopped, and the step it took (``Step.name``)."""

    stop_reason: str
    epochs: int
    step: str = "numpy"


SMALL_STEP_FLOPS = 64e6
"""Steps of fewer floating-point operations than this run on one BLAS thread
(``step_threads``)."""


def step_threads(sizes: Sequence[int], batch: int, available: int) -> int:
    """The BLAS threads a fit's steps should use: one where a step's matrix products,
    about 6 · batch · Σ fan_in · fan_out operations, are too small for a second thread to
    pay for handing work over at every product (measured: docs/performance.md), else all
    ``available``.  A rule of the shapes only, so that a spec, seed and machine always give
    the same thread count, and so the same numbers."""
    flops = 6 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 1 if flops < SMALL_STEP_FLOPS else max(1, available)


def make_step(model: MLP, loss: Loss, optimizer, config: FitConfig, rows: int) -> Step:
    """The step a fit takes: a compiled one where ``accel`` has one that makes this fit
    faster, else the plain step.  Both give the same numbers."""
    reg = Regularization(config.l2, config.clip_norm, config.max_norm)
    shape = accel.FitShape(batch=min(config.batch_size, rows), rows=rows, epochs=config.epochs)
    return accel.make_step(model, loss, optimizer, reg, shape) or Step(model, loss, optimizer, reg)


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
    step = make_step(model, loss, optimizer, config, len(x))
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected from the loss
            for epoch in range(done + 1, last + 1):
                logs = _run_epoch(step, x, t, config, epoch, shuffle_rng, dropout_rng, state, callbacks, cursor)
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
    return FitResult(stop_reason=state.stop_reason, epochs=state.epoch, step=step.name)


def _run_epoch(step: Step, x: Array, t: Array, config: FitConfig, epoch: int, shuffle_rng, dropout_rng,
               state: TrainingState, callbacks, cursor: EpochCursor | None = None) -> dict[str, float] | None:
    """One epoch of minibatch steps; its training logs, or None when a stop request came
    first (``state.cursor`` then says where it stands).  A non-finite loss ends the
    epoch at that step."""
    n = len(x)
    bs = min(config.batch_size, n)
    lr = config.schedule(config.lr, epoch - 1, config.epochs)
    state.optimizer.lr = lr
    if cursor is None:
        order = shuffle_rng.permutation(n) if config.shuffle else np.arange(n)
        start_at, total_loss = 0, 0.0
    else:
        order, start_at, total_loss = cursor.order, cursor.position, cursor.loss
    batch_cbs = [cb for cb in callbacks if type(cb).on_batch_end is not Callback.on_batch_end]
    tracker = _MetricTracker(config, t, order)
    if cursor is not None:
        tracker.load(cursor)
    start = time.perf_counter()
    for lo, xb, tb in _minibatches(x, t, order, bs, state.model.dtype, start_at, config.prefetch):
        if state.stop_requested:
            state.cursor = EpochCursor(lo, order, total_loss, tracker.n, tracker.partial_pred(), tracker.sq.copy())
            return None
        batch_loss, a = step(xb, tb, dropout_rng)
        total_loss += batch_loss
        tracker.add(a, tb, lo)
        if not math.isfinite(total_loss):
            break
        for cb in batch_cbs:
            cb.on_batch_end(state)
    logs = {"epoch": float(epoch), "lr": lr, "train_loss": total_loss / n}
    logs.update(tracker.result("train_"))
    logs["seconds"] = time.perf_counter() - start
    return logs


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

    def gather(k: int, lo: int) -> tuple[int, Array, Array]:
        idx = order[lo : lo + bs]
        xb, tb = bufs[k % 2]
        m = len(idx)
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
