"""From a validated spec to engine objects: the network (built and initialized), its
optimizer and schedule, and the target matrix of its output layer."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from nnctl.app.errors import NnctlError, SpecError
from nnctl.app.runs import load_npz
from nnctl.app.seeds import member_seed_sequences
from nnctl.engine.network import MLP
from nnctl.engine.optimizers import SGD, make_optimizer
from nnctl.engine.schedules import Schedule, make_schedule


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


def new_network(spec, n_inputs: int, n_outputs: int, member: int = 0, base_dirs: Sequence[Path] = ()) -> MLP:
    """The spec's network initialized with restart member ``member``'s initialization
    stream (member 0: the plain run's), or from ``init: {from: FILE}``."""
    net = build_network(spec, n_inputs, n_outputs)
    init_ss = member_seed_sequences(int(spec.seed), member)[0]
    initialize_network(net, spec, np.random.default_rng(init_ss), base_dirs)
    return net


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


def build_optimizer(spec, size: int) -> SGD:
    hyper = spec.optimizer.model_dump(exclude={"name"})
    return make_optimizer(spec.optimizer.name, size, dtype=np.dtype(spec.dtype), **hyper)


def build_schedule(spec) -> Schedule:
    params = spec.training.lr_schedule.model_dump(exclude={"name"})
    return make_schedule(spec.training.lr_schedule.name, **params)
