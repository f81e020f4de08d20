"""One training step on a minibatch, as the lecture gives it.

1. Forward: each dense layer's input is masked by dropout (inverted: kept units scaled by
   1 / (1 − p)), then z = h W + b and h = f(z); the output layer gives (z, a = f(z)).
2. Loss and δ at the output: L = Σ_rows loss(a, t), δ = ∂L/∂z / m for the mean over the
   m rows (softmax with cross-entropy: δ = (a − t) / m).
3. Backward, layer by layer: ∂L/∂W_l = h_{l−1}ᵀ δ_l, ∂L/∂b_l = Σ_rows δ_l,
   δ_{l−1} = (δ_l W_lᵀ) ⊙ mask ⊙ f'(z_{l−1})  (``MLP.backward``).
4. Regularization: the L2 term λ W is added to each weight gradient; with ``clip_norm``
   the whole gradient is scaled to norm ≤ c.
5. The optimizer's update of every parameter (``optimizers.py``); with ``max_norm``,
   each unit's incoming weight vector is then rescaled to norm ≤ c.

A step whose loss is NaN or infinite changes no parameter: the loop stops there.

``Step`` is what ``trainer.fit`` calls; ``accel.make_step`` may give a compiled one
that does the same operations in the same order, with bit-identical numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nnctl.engine.losses import Loss
from nnctl.engine.network import MLP

Array = np.ndarray


@dataclass(frozen=True)
class Regularization:
    """λ of the L2 term (λ/2) Σ ‖W‖², the global gradient-norm cap and the per-unit
    weight-norm cap (None: off)."""

    l2: float = 0.0
    clip_norm: float | None = None
    max_norm: float | None = None


class Step:
    """The plain NumPy step.  ``step(x, t, rng)`` trains on rows x with targets t and
    returns (the summed loss of the rows, the output activations a), a valid until the
    next step."""

    name = "numpy"

    def __init__(self, model: MLP, loss: Loss, optimizer, reg: Regularization = Regularization()) -> None:
        self.model, self.loss, self.optimizer, self.reg = model, loss, optimizer, reg
        self.optimizer_step = optimizer.step
        self.out_act = model.activations[-1]
        self.delta_buf = np.empty((0, model.sizes[-1]), model.dtype)

    def __call__(self, x: Array, t: Array, rng: np.random.Generator) -> tuple[float, Array]:
        model, m = self.model, len(x)
        z, a = model.forward_train(x, rng)  # 1. forward, dropout masks cached
        total = self.loss.value(z, a, t)  # 2. loss ...
        if not math.isfinite(total):
            return total, a
        delta = self.loss.delta(z, a, t, self.out_act, self._delta(m))  # ... and δ
        delta *= 1.0 / m
        model.backward(delta)  # 3. backward
        self.update()  # 4. and 5.
        return total, a

    def update(self) -> None:
        """Regularize the gradient, take the optimizer's step, cap the weight norms."""
        model, reg = self.model, self.reg
        if reg.l2:
            for w, g in zip(model.weights, model.weight_grads):
                g += reg.l2 * w
        if reg.clip_norm is not None:
            clip_global_norm(model.grads, reg.clip_norm)
        self.optimizer_step(model.params, model.grads)
        if reg.max_norm is not None:
            for w in model.weights:
                clip_max_norm(w, reg.max_norm)

    def _delta(self, m: int) -> Array:
        if len(self.delta_buf) < m:
            self.delta_buf = np.empty((m, self.model.sizes[-1]), self.model.dtype)
        return self.delta_buf[:m]


def clip_global_norm(g: Array, c: float) -> float:
    """Scale the whole gradient in place, g ← g · min(1, c / ‖g‖₂), with ‖g‖₂ over every
    weight and bias (the L2 term included); returns ‖g‖₂ before clipping."""
    norm = math.sqrt(float(np.dot(g, g)))
    if norm > c:
        g *= g.dtype.type(c / norm)
    return norm


def clip_max_norm(w: Array, c: float) -> None:
    """Rescale each unit's incoming weight vector (a column of W) to norm ≤ c."""
    norms = np.sqrt(np.einsum("ij,ij->j", w, w))
    w *= np.minimum(1.0, c / np.maximum(norms, 1e-12)).astype(w.dtype)
