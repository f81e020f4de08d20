"""Compiled training steps (numba), entered at one seam: ``make_step``.

Nothing outside this package imports its modules; the plain classes (``network.py``,
``optimizers.py``, ``step.py``) carry no hooks for it.  A compiled step does the plain
step's operations in the same order and precision, so a fit gives the same numbers
whichever step it takes (``tests/engine/accel``).  Its exponentials and logarithms are
NumPy's own calls and its sums follow NumPy's pairwise order, so before the first use
``self_check`` runs a few steps both ways and compares every parameter bit for bit;
when they differ (a NumPy whose sums run another way), or numba cannot compile, the
fit takes the plain step after one warning.

``make_step`` chooses by what a whole fit costs (``worth_it``); the switch
``NNCTL_NUMBA=0`` turns the package off.  See docs/performance.md.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

FIXED_COST = 0.5
"""Seconds a process pays before its first compiled step: importing numba, loading its
cached kernels and ``self_check`` (docs/performance.md gives the measurements behind
this constant and the two below)."""

PASS_SECONDS = 1e-10
"""Seconds one whole-buffer NumPy pass over the parameters costs per parameter."""

ELEMENT_SECONDS = 2e-9
"""Seconds the compiled bias + ReLU, ReLU derivative and softmax head save per unit and
row of a minibatch."""


@dataclass(frozen=True)
class FitShape:
    """What the compiled step's saving depends on besides the network and optimizer: the
    minibatch size, the training rows and the epochs."""

    batch: int
    rows: int
    epochs: int = 1


def enabled() -> bool:
    """Whether numba is installed and the package is not switched off (``NNCTL_NUMBA=0``).
    Finds numba without importing it: the import alone takes about 0.3 s."""
    if os.environ.get("NNCTL_NUMBA", "1") == "0":
        return False
    return importlib.util.find_spec("numba") is not None


def saved_seconds(model, optimizer, shape: FitShape) -> float:
    """What the compiled step is expected to save over a whole fit:

        steps · (P · (1 + 5 k) · PASS_SECONDS + B · U · ELEMENT_SECONDS)

    with steps = ⌈rows / B⌉ · epochs, P parameters, k state vectors of the optimizer
    (its NumPy rule takes about 2 + 5 k passes, the compiled one 1), B rows a minibatch
    and U the units of the hidden and output layers."""
    steps = -(-shape.rows // max(1, shape.batch)) * shape.epochs
    states = sum(1 for name, v in vars(optimizer).items()
                 if not name.startswith("_") and isinstance(v, np.ndarray) and v.size == model.params.size)
    passes = 1 + 5 * states
    units = sum(model.sizes[1:])
    return steps * (model.params.size * passes * PASS_SECONDS + shape.batch * units * ELEMENT_SECONDS)


def worth_it(model, optimizer, shape: FitShape) -> bool:
    """Whether the compiled step makes this fit faster: it is expected to save at least
    twice its fixed cost (``saved_seconds`` ≥ 2 · ``FIXED_COST``), a margin for the
    estimate's error, so that short fits and small networks take the plain step."""
    return saved_seconds(model, optimizer, shape) >= 2 * FIXED_COST


def make_step(model, loss, optimizer, reg, shape: FitShape):
    """A compiled step for this network, loss, optimizer and regularization, or None where
    the plain step serves (switched off, numba missing, an optimizer without a compiled
    rule, a fit it would not speed up, or a failed self-check)."""
    if not worth_it(model, optimizer, shape) or not enabled():
        return None
    from nnctl.engine.accel.updates import UPDATES

    if type(optimizer) not in UPDATES:
        return None
    if not self_check(np.dtype(model.dtype).name):
        return None
    from nnctl.engine.accel.step import CompiledStep

    return CompiledStep(model, loss, optimizer, reg)


@lru_cache(maxsize=None)
def self_check(dtype: str) -> bool:
    """Whether a few compiled steps give the plain steps' parameters bit for bit (a small
    ReLU network with dropout, softmax with cross-entropy and squared error, each
    optimizer); warns once and returns False where they do not or cannot run."""
    try:
        from nnctl.engine.accel.step import CompiledStep
        from nnctl.engine.accel.updates import UPDATES
        from nnctl.engine.losses import get_loss
        from nnctl.engine.network import MLP
        from nnctl.engine.step import Regularization, Step

        rng = np.random.default_rng(0)
        x = rng.standard_normal((37, 20)).astype(dtype)
        for output, loss_name in (("softmax", "cross_entropy"), ("linear", "squared")):
            t = np.eye(3, dtype=dtype)[rng.integers(0, 3, 37)]
            for opt_cls in UPDATES:
                results = []
                for kind in (Step, CompiledStep):
                    net = MLP([20, 16, 8, 3], ["relu", "tanh"], output, dropout=[0.1, 0.2, 0.0], dtype=dtype)
                    net.initialize(np.random.default_rng(1), "he")
                    step = kind(net, get_loss(loss_name, output), opt_cls(net.params.size, lr=0.05, dtype=dtype),
                                Regularization(l2=1e-3))
                    drop = np.random.default_rng(2)
                    losses = [step(x[lo : lo + 16], t[lo : lo + 16], drop)[0] for lo in (0, 16, 32)]
                    results.append((losses, net.params.copy()))
                (l1, p1), (l2, p2) = results
                if l1 != l2 or not np.array_equal(p1, p2):
                    warnings.warn(f"compiled steps disagree with NumPy's ({opt_cls.__name__}, {loss_name}); "
                                  "training with the plain step", RuntimeWarning, stacklevel=2)
                    return False
    except Exception as exc:  # noqa: BLE001 - any failure to compile or run means the plain step
        warnings.warn(f"compiled steps unavailable ({type(exc).__name__}: {exc}); training with the plain step",
                      RuntimeWarning, stacklevel=2)
        return False
    return True
