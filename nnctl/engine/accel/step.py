"""The compiled step: ``step.Step`` with its element-wise work compiled.

Forward and backward are ``MLP.forward_train`` and ``MLP.backward`` with the bias + ReLU
of a hidden layer and the ReLU derivative in one pass each (``kernels.py``); a softmax
output with cross-entropy takes softmax, the loss, the predicted classes and δ in one
compiled step (``output.py``); the optimizer's update is one pass over the parameters
(``updates.py``).  The matrix products are the same NumPy calls.  Every number is the
plain step's, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from nnctl.engine.accel import kernels, output
from nnctl.engine.accel.updates import UPDATES
from nnctl.engine.step import Regularization, Step

Array = np.ndarray


@dataclass
class _OutputScratch:
    """Buffers of the compiled softmax output for up to ``rows`` rows."""

    rows: int
    pred: Array
    zmax: Array
    amax: Array

    @classmethod
    def of(cls, rows: int, dtype) -> "_OutputScratch":
        return cls(rows, np.empty(rows, np.int64), np.empty(rows, dtype), np.empty(rows, dtype))


class CompiledStep(Step):
    name = "compiled"

    def __init__(self, model, loss, optimizer, reg: Regularization = Regularization()) -> None:
        super().__init__(model, loss, optimizer, reg)
        self.optimizer_step = partial(UPDATES[type(optimizer)], optimizer)
        self.softmax_head = loss.name == "cross_entropy" and self.out_act.name == "softmax" and model.sizes[-1] >= 2
        self.relu = [act.name == "relu" for act in model.activations[:-1]]
        self.scratch = _OutputScratch.of(0, model.dtype)

    def __call__(self, x: Array, t: Array, rng: np.random.Generator) -> tuple[float, Array]:
        m = len(x)
        z, a = self._forward(x, rng)
        delta = self._delta(m)
        if self.softmax_head:
            s = self._scratch(m)
            total = output.softmax_cross_entropy(z, a, t, s.pred[:m], delta, s.zmax[:m], s.amax[:m])
            if not math.isfinite(total):
                return total, a
        else:
            self.out_act.forward(z, out=a)
            total = self.loss.value(z, a, t)
            if not math.isfinite(total):
                return total, a
            self.loss.delta(z, a, t, self.out_act, delta)
            delta *= 1.0 / m
        self._backward(delta)
        self.update()
        return total, a

    def _forward(self, x: Array, rng: np.random.Generator) -> tuple[Array, Array]:
        """``MLP.forward_train`` with compiled bias + ReLU; the output activation is left
        to the caller."""
        model, n = self.model, len(x)
        work = model.workspace(n)
        inp = x
        for l in range(model.n_layers):
            p = model.dropout[l]
            if p > 0.0:
                mask = work.masks[l][:n]
                np.greater_equal(rng.random(mask.shape, dtype=np.float32), p, out=mask)
                mask *= 1.0 / (1.0 - p)
                inp = np.multiply(inp, mask, out=work.dropped[l][:n])
            work.inputs[l] = inp
            z = work.z[l][:n]
            np.matmul(inp, model.weights[l], out=z)
            if l == model.n_layers - 1:
                z += model.biases[l]
            elif self.relu[l]:
                kernels.bias_relu(z, model.biases[l])
            else:
                z += model.biases[l]
                model.activations[l].forward(z, out=z)
            inp = z
        return work.z[-1][:n], work.a_out[:n]

    def _backward(self, delta: Array) -> None:
        """``MLP.backward`` with the compiled ReLU derivative."""
        model, n, work = self.model, len(delta), self.model.workspace(len(delta))
        for l in range(model.n_layers - 1, -1, -1):
            inp = work.inputs[l]
            if n == 1:
                np.dot(inp.T, delta, out=model.weight_grads[l])
                model.bias_grads[l][...] = delta[0]
            else:
                np.matmul(inp.T, delta, out=model.weight_grads[l])
                np.matmul(work.ones[:n], delta, out=model.bias_grads[l])
            if l == 0:
                break
            prev = work.delta[l - 1][:n]
            np.matmul(delta, model.weights[l].T, out=prev)
            if model.dropout[l] > 0.0:
                prev *= work.masks[l][:n]
            if self.relu[l - 1]:
                kernels.relu_backward(prev, work.z[l - 1][:n])
            else:
                model.activations[l - 1].backward(work.z[l - 1][:n], prev)
            delta = prev

    def _scratch(self, m: int) -> _OutputScratch:
        if self.scratch.rows < m:
            self.scratch = _OutputScratch.of(m, self.model.dtype)
        return self.scratch
