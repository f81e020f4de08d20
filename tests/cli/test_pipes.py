"""A closed reader (``nnctl train spec.yaml | head -1``) stops the output, not the work."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from nnctl.cli.pipes import _ClosedPipeSafe
from tests.cli._helpers import CONFIGS, REPO


def test_training_completes_when_its_reader_is_gone(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnctl", "train", str(CONFIGS / "iris.yaml"), "--set", "training.epochs=30",
         "--runs-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"},
    )
    proc.stdout.close()  # both readers leave before the first line
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0
    (run,) = tmp_path.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 30


class _Pipe(io.StringIO):
    """A stream whose reader leaves after ``lines`` lines."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.left = lines

    def write(self, text: str) -> int:
        if self.left == 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.left -= 1
        return super().write(text)


def test_writes_after_the_reader_left_are_dropped() -> None:
    pipe = _Pipe(lines=2)
    stream = _ClosedPipeSafe(pipe)
    for i in range(5):
        assert stream.write(f"line {i}\n") == len(f"line {i}\n")
    stream.flush()
    assert pipe.getvalue() == "line 0\nline 1\n"
    assert stream.isatty() is False  # everything else is the stream's own
