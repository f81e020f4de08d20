"""What a training may use of the machine: BLAS threads, a core for gathering minibatches,
and the memory a network and a minibatch need (checked before anything is allocated)."""

from __future__ import annotations

import os

import numpy as np

from nnctl.app.errors import SpecError


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def core_left_for_prefetch(threads: int | None = None) -> bool:
    """Whether the BLAS library leaves a core free for gathering the next minibatch: its
    thread count (``threads``, default the library's own) is below the cores this process
    may use (with 2 BLAS threads on 2 cores, a gathering thread slows the products more
    than it saves)."""
    return (blas_threads() if threads is None else threads) < default_workers()


def blas_threads() -> int:
    """The thread count of the BLAS library (threadpoolctl): the cores a training step may
    use, which the engine's choice of step depends on."""
    from threadpoolctl import threadpool_info

    return max((p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"), default=1)


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
