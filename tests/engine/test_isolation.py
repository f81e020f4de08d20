"""The engine knows nothing of YAML, the command line or the app layer: importing every
engine module in a fresh interpreter pulls none of them in, nor numba: the compiled
steps (``nnctl.engine.accel``, whose inner modules import numba, and numba reads its own
YAML settings) are imported only when a fit takes one."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ["yaml", "typer", "rich", "pydantic", "click", "nnctl.app", "nnctl.cli", "numba", "llvmlite"]

SCRIPT = """
import importlib, json, pkgutil, sys
import nnctl.engine
names = sorted(m.name for m in pkgutil.iter_modules(nnctl.engine.__path__, "nnctl.engine."))
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted(sys.modules)}))
"""


def test_engine_imports_no_app_or_cli_dependencies():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60)
    report = json.loads(out.stdout)
    expected = {f"nnctl.engine.{m}" for m in (
        "activations", "callbacks", "diagnosis", "gradcheck", "initializers", "losses", "metrics",
        "network", "optimizers", "schedules", "trainer", "step", "accel",
    )}
    assert expected <= set(report["modules"])  # the walk really covered the engine
    leaked = [
        name for name in report["loaded"]
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    ]
    assert leaked == []


FIT_SCRIPT = """
import json, sys
import numpy as np
from nnctl.engine.losses import get_loss
from nnctl.engine.network import MLP
from nnctl.engine.optimizers import make_optimizer
from nnctl.engine.trainer import FitConfig, fit
net = MLP([64, 32, 10], ["relu"], "softmax")
net.initialize(np.random.default_rng(0))
x = np.random.default_rng(1).normal(size=(100, 64)).astype(np.float32)
t = np.eye(10, dtype=np.float32)[np.arange(100) % 10]
result = fit(net, get_loss("cross_entropy", "softmax"), make_optimizer("sgd", net.params.size, lr=0.1), x, t,
             FitConfig(epochs=2, batch_size=32, lr=0.1), np.random.default_rng(2))
print(json.dumps({"step": result.step, "numba": "numba" in sys.modules}))
"""


def test_a_small_fit_takes_the_plain_step_without_importing_numba():
    """Importing numba alone takes about 0.3 s, more than a small fit."""
    out = subprocess.run([sys.executable, "-c", FIT_SCRIPT], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == {"step": "numpy", "numba": False}
