"""Gradient check: backpropagation against central differences, layer by layer.

The oracle is the mean loss itself, L(θ) = (1/n) Σ ℓ(f(x; θ), t):

    ∂L/∂θ_i ≈ (L(θ + h e_i) − L(θ − h e_i)) / 2h

Dropout masks are held fixed by giving every forward pass a generator seeded alike, so
L is one smooth function of θ.  The error of a block (a layer's weights, or its biases)
over the entries checked is

    ‖g_bp − g_fd‖ / max(‖g_bp‖ + ‖g_fd‖, floor)

so a block whose gradient is below ``floor`` (where a central difference's rounding,
about ε·|L|/h, is no longer small against it) is compared in absolute terms.  The step
h = 10⁻⁴ balances that rounding against the truncation error, about h²·|L‴|/6.

ReLU-family units have a kink at 0: an entry whose ±h step moves any hidden unit of any
row across it has no central difference worth comparing, and is skipped (and counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Array = np.ndarray

STEP = 1e-4
NORM_FLOOR = 1e-3
TOLERANCE = 1e-6
KINKED = ("relu", "leaky_relu")


@dataclass(frozen=True)
class LayerCheck:
    """The check of one dense layer (1-based): entries compared and the error of its
    weight block, its bias block and the larger of the two."""

    layer: int
    weights_checked: int
    biases_checked: int
    weight_error: float
    bias_error: float
    grad_norm: float
    skipped: int = 0

    @property
    def max_error(self) -> float:
        return max(self.weight_error, self.bias_error)


def mean_loss(model, loss, x: Array, t: Array, mask_seed: int) -> float:
    """L(θ) with the dropout masks drawn from a generator seeded with ``mask_seed``."""
    z, a = model.forward_train(x, np.random.default_rng(mask_seed))
    return float(loss.value(z, a, t)) / len(x)


def backprop_gradient(model, loss, x: Array, t: Array, mask_seed: int) -> Array:
    """∂L/∂θ by the network's backward pass (a copy of the flat gradient buffer)."""
    z, a = model.forward_train(x, np.random.default_rng(mask_seed))
    delta = loss.delta(z, a, t, model.activations[-1], np.empty_like(a))
    delta *= 1.0 / len(x)
    model.backward(delta)
    return model.grads.copy()


def central_difference(model, loss, x: Array, t: Array, mask_seed: int, indices: Array,
                       h: float = STEP) -> tuple[Array, Array]:
    """(L(θ + h e_i) − L(θ − h e_i)) / 2h for each flat parameter index i, and whether
    each step left every ReLU-family unit on the side of its kink it had at θ."""
    params = model.params
    out = np.empty(len(indices))
    smooth = np.ones(len(indices), dtype=bool)
    mean_loss(model, loss, x, t, mask_seed)
    pattern = _kink_sides(model, len(x))
    for k, i in enumerate(indices):
        old = params[i]
        params[i] = old + h
        plus = mean_loss(model, loss, x, t, mask_seed)
        same = _same_sides(pattern, _kink_sides(model, len(x)))
        params[i] = old - h
        minus = mean_loss(model, loss, x, t, mask_seed)
        smooth[k] = same and _same_sides(pattern, _kink_sides(model, len(x)))
        params[i] = old
        out[k] = (plus - minus) / (2 * h)
    return out, smooth


def _kink_sides(model, n: int) -> list[Array]:
    """z > 0 for each hidden layer with a kinked activation, from the last forward pass
    (a ReLU-family output is positive exactly where its input is)."""
    work = model._work  # the forward pass's cached hidden outputs
    return [work.z[l][:n] > 0 for l, act in enumerate(model.activations[:-1]) if act.name in KINKED]


def _same_sides(a: list[Array], b: list[Array]) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(a, b))


def block_error(bp: Array, fd: Array, floor: float = NORM_FLOOR) -> float:
    """‖bp − fd‖ / max(‖bp‖ + ‖fd‖, floor); 0 for an empty block."""
    if bp.size == 0:
        return 0.0
    return float(np.linalg.norm(bp - fd) / max(np.linalg.norm(bp) + np.linalg.norm(fd), floor))


def check_gradients(
    model, loss, x: Array, t: Array, mask_seed: int = 0, samples: int | None = 50,
    rng: np.random.Generator | None = None, h: float = STEP,
) -> list[LayerCheck]:
    """Compare backpropagation with central differences for every dense layer: all of a
    block's entries, or ``samples`` of them drawn at random when the block is larger."""
    rng = rng if rng is not None else np.random.default_rng(0)
    bp = backprop_gradient(model, loss, x, t, mask_seed)
    offsets = _block_offsets(model)
    checks = []
    for l, ((w_lo, w_hi), (b_lo, b_hi)) in enumerate(offsets, start=1):
        errors, counts, skipped = [], [], 0
        for lo, hi in ((w_lo, w_hi), (b_lo, b_hi)):
            idx = np.arange(lo, hi)
            if samples is not None and samples > 0 and len(idx) > samples:
                idx = np.sort(rng.choice(idx, size=samples, replace=False))
            fd, smooth = central_difference(model, loss, x, t, mask_seed, idx, h)
            errors.append(block_error(bp[idx][smooth], fd[smooth]))
            counts.append(int(smooth.sum()))
            skipped += int((~smooth).sum())
        checks.append(LayerCheck(l, counts[0], counts[1], errors[0], errors[1],
                                 float(np.linalg.norm(bp[w_lo:w_hi])), skipped))
    return checks


def _block_offsets(model) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """[((weight start, end), (bias start, end)) per layer] in the flat parameter buffer."""
    out = []
    for sl, w in zip(model.layer_slices, model.weights):
        out.append(((sl.start, sl.start + w.size), (sl.start + w.size, sl.stop)))
    return out
