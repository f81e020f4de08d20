"""The engine knows nothing of YAML, the command line or the app layer: importing every
engine module in a fresh interpreter pulls none of them in.  ``lane_kernels``,
``lane_sync`` and ``output_kernels`` are left out: they are compiled code that imports
numba, and numba reads its own YAML settings."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ["yaml", "typer", "rich", "pydantic", "click", "nnctl.app", "nnctl.cli"]

SCRIPT = """
import importlib, json, pkgutil, sys
import nnctl.engine
names = sorted(m.name for m in pkgutil.iter_modules(nnctl.engine.__path__, "nnctl.engine.")
               if m.name not in ("nnctl.engine.lane_kernels", "nnctl.engine.lane_sync",
                                 "nnctl.engine.output_kernels"))
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted(sys.modules)}))
"""


def test_engine_imports_no_app_or_cli_dependencies():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60)
    report = json.loads(out.stdout)
    expected = {f"nnctl.engine.{m}" for m in (
        "activations", "callbacks", "diagnosis", "gradcheck", "initializers", "losses", "metrics",
        "network", "optimizers", "schedules", "trainer", "lanes",
    )}
    assert expected <= set(report["modules"])  # the walk really covered the engine
    leaked = [
        name for name in report["loaded"]
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    ]
    assert leaked == []
