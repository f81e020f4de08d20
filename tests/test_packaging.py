"""Installed like any package: the wheel carries the built-in datasets, and a shipped config
trains from a non-editable install, outside the clone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from setuptools import find_packages

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[1]


def _setuptools_config() -> dict:
    with (REPO / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["tool"]["setuptools"]


def test_package_list_names_every_package():
    config = _setuptools_config()
    found = set(find_packages(str(REPO), include=["nnctl", "nnctl.*"]))
    assert set(config["packages"]) == found | {"nnctl.datasets"}
    assert config["package-dir"] == {"nnctl.datasets": "data"}
    builtins = {p.name for p in (REPO / "data").iterdir() if p.suffix in (".csv", ".npz")}
    patterns = config["package-data"]["nnctl.datasets"]
    assert builtins and all(any(Path(name).match(p) for p in patterns) for name in builtins)


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_trains_a_builtin_config_outside_the_clone(tmp_path):
    # Build from a copy so that build/ and *.egg-info never appear in the clone; with the
    # installed setuptools (the test extra asks for one that builds wheels itself).
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("nnctl", "data"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NNCTL_DATA_DIR", "NNCTL_RUNS_DIR")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), "."],
         source, env)
    wheel = next(wheels.glob("nnctl-*.whl"))
    venv = tmp_path / "venv"
    # --system-site-packages: numpy and the other dependencies (and pip) come from the outer environment.
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], tmp_path, env)
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], tmp_path, env)
    shutil.rmtree(source)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([python, "-c", "import nnctl; print(nnctl.__file__)"], elsewhere, env).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    runs = tmp_path / "runs"
    config = REPO / "configs" / "iris.yaml"
    out = _run([python, "-m", "nnctl", "train", str(config), "--runs-dir", str(runs), "--json"], elsewhere, env)
    result = json.loads(out.stdout)
    summary = json.loads((runs / result["run_id"] / "summary.json").read_text(encoding="utf-8"))
    assert summary["data_source"] == "builtin:iris"
    assert summary["rows"] == {"train": 90, "validation": 30, "test": 30}
    assert not any(elsewhere.iterdir())
