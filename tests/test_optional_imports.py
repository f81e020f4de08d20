"""The optional extras stay out of the common paths: neither ``nnctl --help`` nor
``nnctl train`` imports onnx, onnxruntime or scikit-learn, and ``import nnctl`` does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OPTIONAL = ("onnx", "onnxruntime", "sklearn")

_PROBE = """
import json, sys
import nnctl.cli.main as m
optional = set(json.loads(sys.argv[2]))
sys.argv = ["nnctl", *json.loads(sys.argv[1])]
try:
    m.main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted({k.split('.')[0] for k in sys.modules} & optional)}))
"""


def _imported(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(list(args)), json.dumps(OPTIONAL)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_imports_no_optional_extra() -> None:
    out = _imported("--help")
    assert out == {"code": 0, "modules": []}


def test_train_imports_no_optional_extra(tmp_path: Path) -> None:
    out = _imported("train", str(REPO / "configs" / "iris.yaml"), "--set", "training.epochs=1",
                    "--runs-dir", str(tmp_path), "--quiet")
    assert out == {"code": 0, "modules": []}


def test_import_nnctl_imports_no_optional_extra() -> None:
    code = f"import sys, nnctl; print(sorted({{k.split('.')[0] for k in sys.modules}} & set({OPTIONAL!r})))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr
