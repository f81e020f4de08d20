"""Helpers for the CLI tests: an in-process runner, a subprocess runner, metrics.csv readers."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from nnctl.cli.main import app

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
IRIS_EPOCHS = 60


@dataclass
class Outcome:
    """What one nnctl invocation produced (in-process or as a subprocess)."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def nnctl(*args: str | Path, env: dict[str, str] | None = None) -> Outcome:
    """Run ``nnctl ARGS`` in-process through Typer's CliRunner (stdout and stderr apart)."""
    result = CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def nnctl_subprocess(*args: str | Path, timeout: float = 60) -> Outcome:
    """Run ``python -m nnctl ARGS`` in a fresh interpreter from the repository root."""
    proc = subprocess.run(
        [sys.executable, "-m", "nnctl", *(str(a) for a in args)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def read_metrics(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """metrics.csv as (header, rows)."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def without_seconds(path: Path) -> list[dict[str, str]]:
    """metrics.csv rows with the wall-clock column dropped (it differs between runs)."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in read_metrics(path)[1]]


@dataclass(frozen=True)
class TrainedRun:
    runs_dir: Path
    result: dict[str, Any]

    @property
    def run_id(self) -> str:
        return self.result["run_id"]

    @property
    def path(self) -> Path:
        return self.runs_dir / self.run_id
