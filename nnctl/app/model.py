"""From a validated spec to engine objects: the network, its optimizer, its schedule,
the target matrix and the stopping callbacks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from nnctl.app.errors import NnctlError, SpecError
from nnctl.app.runs import load_npz
from nnctl.engine.callbacks import (
    Callback,
    EarlyStopping,
    LossBelow,
    NoImprovement,
    ValRising,
)
from nnctl.engine.network import MLP
from nnctl.engine.optimizers import SGD, make_optimizer
from nnctl.engine.schedules import Schedule, make_schedule
from nnctl.engine.trainer import FitConfig


def seed_sequences(seed: int) -> tuple[np.random.SeedSequence, ...]:
    """Independent seed sequences (data split, initialization, training) from one seed,
    so that e.g. changing the split leaves the initial weights unchanged."""
    return tuple(np.random.SeedSequence(seed).spawn(3))


def fold_seed_sequence(seed: int) -> np.random.SeedSequence:
    """The stream that assigns rows to cross-validation folds: the fourth child of the
    spec seed's sequence, independent of the split, initialization and training streams."""
    return np.random.SeedSequence(seed, spawn_key=(3,))


def member_seed_sequences(seed: int, member: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """(initialization, training) streams of restart member ``member`` (0-based).

    Member 0 uses the plain run's streams, so one restart equals ``nnctl train``; member
    i > 0 uses the i-th children of those streams (spawn keys (1, i) and (2, i)). The data
    split is the same for every member."""
    if member == 0:
        return seed_sequences(seed)[1:]  # type: ignore[return-value]
    return np.random.SeedSequence(seed, spawn_key=(1, member)), np.random.SeedSequence(seed, spawn_key=(2, member))


def output_units(task: str, n_classes: int | None, output: str, n_targets: int) -> int:
    """Units of the output layer: one sigmoid unit for two classes, one per class
    otherwise, one per target column for regression."""
    if task == "regression":
        return n_targets
    assert n_classes is not None
    if n_classes == 2 and output == "sigmoid":
        return 1
    return n_classes


def target_matrix(y: np.ndarray, task: str, units: int, dtype: np.dtype) -> np.ndarray:
    """Targets as a float matrix (rows, units): one-hot class rows (a 0/1 column for a
    single sigmoid unit), or the regression targets themselves."""
    if task == "regression":
        return np.ascontiguousarray(y if y.ndim == 2 else y.reshape(-1, 1), dtype=dtype)  # (0, k) stays (0, k)
    if units == 1:
        return y.reshape(-1, 1).astype(dtype)
    t = np.zeros((len(y), units), dtype=dtype)
    t[np.arange(len(y)), y] = 1.0
    return t


def build_network(spec, n_inputs: int, n_outputs: int) -> MLP:
    """The spec's MLP with zero weights (call ``initialize_network`` or load a state)."""
    layers = spec.model.layers
    return MLP(
        sizes=[n_inputs, *(layer.units for layer in layers), n_outputs],
        activations=[layer.activation for layer in layers],
        output=spec.model.output,
        dropout=[spec.model.input_dropout, *(layer.dropout for layer in layers)],
        slopes=[layer.slope for layer in layers],
        dtype=np.dtype(spec.dtype),
    )


def initialize_network(net: MLP, spec, rng: np.random.Generator, base_dirs: Sequence[Path] = ()) -> None:
    """Random weights by the spec's scheme, or weights copied from ``init: {from: FILE}``."""
    init = spec.model.init
    source = getattr(init, "from_", None)
    if source is None:
        scale = init.scale if init.scheme in ("uniform", "normal") else 1.0
        net.initialize(rng, init.scheme, scale)
        return
    path = _find(Path(source), base_dirs)
    try:
        state = load_npz(path)
        net.load_state_dict(state)
    except (NnctlError, ValueError) as exc:
        message = exc.message if isinstance(exc, NnctlError) else str(exc)
        raise SpecError(f"model.init.from: {message}") from None


def _find(path: Path, base_dirs: Sequence[Path]) -> Path:
    if path.is_absolute() or path.exists():
        return path
    for base in base_dirs:
        if (base / path).exists():
            return base / path
    return path


def fit_config(spec, prep, n_train: int, metric: str) -> FitConfig:
    """The engine's loop settings for a resolved spec trained on ``n_train`` rows."""
    scaled = prep.task == "regression" and prep.target_scale is not None
    return FitConfig(
        epochs=spec.training.epochs, batch_size=n_train if spec.training.batch_size == "full" else spec.training.batch_size,
        lr=spec.optimizer.lr, schedule=build_schedule(spec), shuffle=spec.training.shuffle,
        l2=spec.regularization.l2, max_norm=spec.regularization.max_norm, metric=metric,
        target_scale=prep.target_scale if scaled else 1.0, clip_norm=spec.training.clip_norm,
    )


def core_left_for_prefetch(threads: int | None = None) -> bool:
    """Whether the BLAS library leaves a core free for gathering the next minibatch: its
    thread count is below the cores this process may use (measured: with 2 BLAS threads
    on 2 cores, a gathering thread slows the products more than it saves)."""
    from nnctl.app.executors import default_workers

    return (blas_threads() if threads is None else threads) < default_workers()


def blas_threads() -> int:
    """The thread count of the BLAS library (threadpoolctl): the cores a training step may
    use, which the engine's choice of step depends on."""
    from threadpoolctl import threadpool_info

    return max((p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"), default=1)


def build_optimizer(spec, size: int) -> SGD:
    hyper = spec.optimizer.model_dump(exclude={"name"})
    return make_optimizer(spec.optimizer.name, size, dtype=np.dtype(spec.dtype), **hyper)


def build_schedule(spec) -> Schedule:
    params = spec.training.lr_schedule.model_dump(exclude={"name"})
    return make_schedule(spec.training.lr_schedule.name, **params)


def stopping_callbacks(spec) -> list[Callback]:
    """One callback per termination criterion the spec enables."""
    stop = spec.stopping
    out: list[Callback] = []
    if stop.loss_below is not None:
        out.append(LossBelow(stop.loss_below))
    if stop.no_improvement is not None:
        ni = stop.no_improvement
        out.append(NoImprovement(ni.metric, ni.patience, ni.min_delta))
    if stop.early_stopping is not None:
        es = stop.early_stopping
        out.append(EarlyStopping(es.metric, es.patience, es.min_delta))
    if stop.val_rising is not None:
        out.append(ValRising(stop.val_rising))
    return out


def check_metric_names(spec, metric: str) -> None:
    """A stopping metric must be one this task logs (accuracy for classes, rmse for regression)."""
    stop = spec.stopping
    for key, crit in (("no_improvement", stop.no_improvement), ("early_stopping", stop.early_stopping)):
        if crit is not None and not (crit.metric.endswith("_loss") or crit.metric.endswith(metric)):
            raise SpecError(
                f"stopping.{key}.metric: {crit.metric!r} is not logged for this task; "
                f"use {crit.metric.split('_')[0]}_loss or {crit.metric.split('_')[0]}_{metric}"
            )


_OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adagrad": 1, "rmsprop": 1, "adam": 2}


def training_bytes(spec, n_inputs: int, n_outputs: int, batch: int) -> tuple[int, int]:
    """Estimated bytes (for the parameters, for one minibatch) that training allocates.

    Parameters P = Σ (fan_in + 1)·fan_out; the flat parameter, gradient and scratch
    buffers, the optimizer's state vectors, the best-weights copy and the copies made
    for a checkpoint are (5 + states)·P values.  A minibatch of b rows keeps, per
    layer, its pre-activations and deltas (and dropout masks and dropped inputs),
    about b·(3·Σ units + 2·inputs) values with the gathered input rows.
    """
    item = np.dtype(spec.dtype).itemsize
    sizes = [n_inputs, *(layer.units for layer in spec.model.layers), n_outputs]
    params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    per_param = 5 + _OPTIMIZER_STATES.get(spec.optimizer.name, 2)
    dropout = [spec.model.input_dropout, *(layer.dropout for layer in spec.model.layers)]
    per_row = 3 * sum(sizes[1:]) + 2 * sum(s for s, p in zip(sizes[:-1], dropout) if p > 0) + 2 * (n_inputs + n_outputs)
    return params * per_param * item, batch * per_row * item


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_in_memory(spec, n_inputs: int, n_outputs: int, batch: int, available: int | None = None) -> None:
    """Refuse, before anything is allocated, a network or minibatch that would not fit in
    the available memory (SpecError naming model.layers or training.batch_size)."""
    available = available_memory() if available is None else available
    params_bytes, batch_bytes = training_bytes(spec, n_inputs, n_outputs, batch)
    need = params_bytes + batch_bytes
    if available is None or need <= available:
        return
    key = "model.layers" if params_bytes >= batch_bytes else "training.batch_size"
    raise SpecError(
        f"{key}: training needs about {_gb(need)} of memory ({_gb(params_bytes)} for the parameters, "
        f"{_gb(batch_bytes)} for a minibatch of {batch} rows), but {_gb(available)} is available",
        hint="use fewer or smaller layers, a smaller batch_size, or dtype: float32",
    )


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"
