"""The multilayer perceptron: dense layers, inverted dropout, forward and backward passes.

All parameters live in one flat buffer (``params``) with a weight view of shape
(fan_in, fan_out) and a bias view of shape (fan_out,) per layer; the gradients
mirror it (``grads``).  An optimizer therefore updates the whole network with a
few whole-buffer operations, and a checkpoint is the named, layer-wise form
(``state_dict``: ``layer{i}.weight``, ``layer{i}.bias``, 1-based from the input).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from nnctl.engine.activations import Activation, get_activation
from nnctl.engine.initializers import get_initializer

Array = np.ndarray


class MLP:
    """A dense feed-forward network.

    Parameters
    ----------
    sizes : [n_inputs, hidden_1, ..., n_outputs]
    activations : one name per hidden layer
    output : the output layer's activation name
    dropout : the dropout rate on the input of each dense layer, i.e.
        [input_dropout, dropout after hidden_1, ...]; length len(sizes) − 1
    slopes : leaky_relu slope per hidden layer
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activations: Sequence[str],
        output: str,
        dropout: Sequence[float] | None = None,
        slopes: Sequence[float] | None = None,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"sizes must be at least [inputs, outputs], all ≥ 1, got {list(sizes)}")
        n_layers = len(sizes) - 1
        if len(activations) != n_layers - 1:
            raise ValueError(f"need {n_layers - 1} hidden activations, got {len(activations)}")
        self.sizes = tuple(int(s) for s in sizes)
        self.dtype = np.dtype(dtype)
        slopes = list(slopes) if slopes is not None else [0.01] * (n_layers - 1)
        self.slopes = tuple(float(s) for s in slopes)
        self.activations: list[Activation] = [
            get_activation(a, s) for a, s in zip(activations, slopes)
        ] + [get_activation(output)]
        self.dropout = tuple(float(p) for p in (dropout or [0.0] * n_layers))
        if len(self.dropout) != n_layers or not all(0.0 <= p < 1.0 for p in self.dropout):
            raise ValueError(f"dropout needs {n_layers} rates in [0, 1), got {list(self.dropout)}")
        shapes = [(self.sizes[i], self.sizes[i + 1]) for i in range(n_layers)]
        total = sum(fi * fo + fo for fi, fo in shapes)
        self.params = np.zeros(total, dtype=self.dtype)
        self.grads = np.zeros(total, dtype=self.dtype)
        self.weights, self.biases = _views(self.params, shapes)
        bounds = np.cumsum([0] + [fi * fo + fo for fi, fo in shapes])
        self.layer_slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        self.n_layers = n_layers
        self.weight_grads, self.bias_grads = _views(self.grads, shapes)
        self._work: Workspace | None = None


    def initialize(self, rng: np.random.Generator, scheme: str = "uniform", scale: float = 0.05) -> None:
        """Draw every layer's weights and biases with the named initializer."""
        init = get_initializer(scheme)
        for w, b in zip(self.weights, self.biases):
            w0, b0 = init(rng, w.shape[0], w.shape[1], scale)
            w[...] = w0
            b[...] = b0

    # ---- checkpoints -------------------------------------------------------------

    def state_dict(self) -> dict[str, Array]:
        """Copies of the parameters by name: ``layer{i}.weight`` (fan_in, fan_out), ``layer{i}.bias``."""
        state: dict[str, Array] = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases), start=1):
            state[f"layer{i}.weight"] = w.copy()
            state[f"layer{i}.bias"] = b.copy()
        return state

    def load_state_dict(self, state: Mapping[str, Array]) -> None:
        """Copy named parameters in; a missing key or a wrong shape raises ValueError naming it."""
        for i, (w, b) in enumerate(zip(self.weights, self.biases), start=1):
            for key, dest in ((f"layer{i}.weight", w), (f"layer{i}.bias", b)):
                if key not in state:
                    raise ValueError(f"{key}: missing")
                src = np.asarray(state[key])
                if src.shape != dest.shape:
                    raise ValueError(f"{key}: shape {src.shape}, expected {dest.shape}")
                if not np.issubdtype(src.dtype, np.number):
                    raise ValueError(f"{key}: not a numeric array ({src.dtype})")
                dest[...] = src

    # ---- inference -----------------------------------------------------------------

    def logits(self, x: Array, chunk: int = 4096) -> tuple[Array, Array]:
        """(z, a) of the output layer for every row of x, in evaluation mode (no dropout)."""
        x = np.asarray(x, dtype=self.dtype)
        zs, as_ = [], []
        for start in range(0, max(len(x), 1), chunk):
            h = x[start : start + chunk]
            for w, b, act in zip(self.weights[:-1], self.biases[:-1], self.activations[:-1]):
                h = h @ w
                h += b
                act.forward(h, out=h)
            z = h @ self.weights[-1]
            z += self.biases[-1]
            zs.append(z)
            as_.append(self.activations[-1].forward(z))
        return np.concatenate(zs), np.concatenate(as_)

    def predict(self, x: Array) -> Array:
        """The network's outputs a = f(z) for every row of x (evaluation mode)."""
        return self.logits(x)[1]

    # ---- training ------------------------------------------------------------------

    def forward_train(self, x: Array, rng: np.random.Generator | None) -> tuple[Array, Array]:
        """Forward pass for training, caching what the backward pass needs.

        With dropout, each unit of a layer's input is kept with probability 1 − p and
        scaled by 1 / (1 − p) (inverted dropout), so evaluation uses the full network
        unchanged.  Returns views (z, a) of the output layer, valid until the next call.
        """
        n = len(x)
        work = self.workspace(n)
        inp = x
        for l in range(self.n_layers):
            p = self.dropout[l]
            if p > 0.0:
                if rng is None:
                    raise ValueError("dropout needs an rng in training")
                mask = work.masks[l][:n]
                u = rng.random(mask.shape, dtype=np.float32)
                np.greater_equal(u, p, out=mask)
                mask *= 1.0 / (1.0 - p)
                dropped = work.dropped[l][:n]
                np.multiply(inp, mask, out=dropped)
                inp = dropped
            work.inputs[l] = inp
            z = work.z[l][:n]
            np.matmul(inp, self.weights[l], out=z)
            if l == self.n_layers - 1:
                z += self.biases[l]
                break
            z += self.biases[l]
            self.activations[l].forward(z, out=z)
            inp = z
        z_out = work.z[-1][:n]
        a_out = work.a_out[:n]
        self.activations[-1].forward(z_out, out=a_out)
        return z_out, a_out

    def backward(self, delta: Array) -> None:
        """Backpropagate dL/dz of the output layer (shape (n, n_outputs)) into ``grads``.

        For layer l: ∂L/∂W_l = h_{l−1}ᵀ δ_l, ∂L/∂b_l = Σ_rows δ_l, and
        δ_{l−1} = (δ_l W_lᵀ) ⊙ mask_{l−1} ⊙ f'(h_{l−1}), using the activations and
        dropout masks cached by ``forward_train``.
        """
        n = len(delta)
        work = self._work
        assert work is not None
        for l in range(self.n_layers - 1, -1, -1):
            inp = work.inputs[l]
            if n == 1:  # a rank-1 outer product: np.matmul is slow at inner dimension 1
                np.dot(inp.T, delta, out=self.weight_grads[l])
                self.bias_grads[l][...] = delta[0]
            else:
                np.matmul(inp.T, delta, out=self.weight_grads[l])
                np.matmul(work.ones[:n], delta, out=self.bias_grads[l])  # Σ_rows δ, as a GEMV
            if l == 0:
                break
            prev = work.delta[l - 1][:n]
            np.matmul(delta, self.weights[l].T, out=prev)
            if self.dropout[l] > 0.0:
                prev *= work.masks[l][:n]
            self.activations[l - 1].backward(work.z[l - 1][:n], prev)
            delta = prev

    def workspace(self, n: int) -> "Workspace":
        """The preallocated buffers of a training step of up to n rows."""
        if self._work is None or self._work.capacity < n:
            self._work = Workspace(self, n)
        return self._work


class Workspace:
    """Preallocated per-layer buffers for one batch size (smaller batches use the top rows)."""

    def __init__(self, net: MLP, capacity: int) -> None:
        dt = net.dtype
        self.capacity = capacity
        self.z = [np.empty((capacity, s), dt) for s in net.sizes[1:]]
        self.a_out = np.empty((capacity, net.sizes[-1]), dt)
        self.delta = [np.empty((capacity, s), dt) for s in net.sizes[1:-1]]
        self.masks = [np.empty((capacity, s), dt) if p > 0 else None for s, p in zip(net.sizes[:-1], net.dropout)]
        self.dropped = [np.empty((capacity, s), dt) if p > 0 else None for s, p in zip(net.sizes[:-1], net.dropout)]
        self.inputs: list[Array | None] = [None] * net.n_layers
        self.ones = np.ones(capacity, dt)


def _views(flat: Array, shapes: list[tuple[int, int]]) -> tuple[list[Array], list[Array]]:
    weights, biases, offset = [], [], 0
    for fan_in, fan_out in shapes:
        weights.append(flat[offset : offset + fan_in * fan_out].reshape(fan_in, fan_out))
        offset += fan_in * fan_out
        biases.append(flat[offset : offset + fan_out])
        offset += fan_out
    return weights, biases
