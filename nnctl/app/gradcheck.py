"""``nnctl gradcheck``: the spec's network in float64 on a small batch of its training rows,
backpropagation against central differences for every layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnctl.app.errors import UsageError
from nnctl.app.networks import target_matrix
from nnctl.engine.gradcheck import TOLERANCE, check_gradients
from nnctl.engine.losses import get_loss


@dataclass(frozen=True)
class GradcheckResult:
    """Per-layer errors of one check, and whether all are within ``tolerance``."""

    name: str
    network: str
    rows: int
    tolerance: float
    layers: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        return all(layer["max_error"] <= self.tolerance for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "network": self.network, "rows": self.rows, "tolerance": self.tolerance,
                "passed": self.passed, "layers": self.layers}


def gradcheck_spec(spec, base_dirs: Sequence[Path] = (), batch: int = 16, samples: int = 50,
                   tolerance: float = TOLERANCE) -> GradcheckResult:
    """Build the spec's network in float64 (its initialization, its dropout), take the first
    ``batch`` training rows and check every layer's gradient (``samples`` entries per
    weight and bias block, all when ``samples`` is 0)."""
    from nnctl.app.training import prepare

    if batch < 1:
        raise UsageError(f"--batch {batch}: must be at least 1")
    if samples < 0:
        raise UsageError(f"--samples {samples}: must be 0 (all entries) or more")
    if not tolerance > 0:
        raise UsageError(f"--tolerance {tolerance}: must be > 0")
    p = prepare(spec.model_copy(update={"dtype": "float64"}), base_dirs)
    net, splits = p.net, p.splits
    x = np.ascontiguousarray(splits.X_train[:batch], dtype=np.float64)
    t = target_matrix(splits.y_train[:batch], splits.prep.task, p.units, np.dtype(np.float64))
    loss = get_loss(p.spec.loss, net.activations[-1].name)
    with np.errstate(over="ignore"):
        checks = check_gradients(net, loss, x, t, mask_seed=p.seed, samples=samples or None,
                                 rng=np.random.default_rng(p.seed))
    layers = [
        {"layer": c.layer, "shape": list(net.weights[c.layer - 1].shape),
         "activation": net.activations[c.layer - 1].name, "checked": c.weights_checked + c.biases_checked, "skipped": c.skipped,
         "grad_norm": c.grad_norm, "weight_error": c.weight_error, "bias_error": c.bias_error,
         "max_error": c.max_error}
        for c in checks
    ]
    return GradcheckResult(p.spec.name, "-".join(map(str, net.sizes)), len(x), tolerance, layers)
