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
