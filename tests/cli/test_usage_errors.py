"""Argument errors follow the same contract as every other error: one ``error:`` line on
stderr, exit 2, and ``{"error": {...}}`` on stdout under --json."""

from __future__ import annotations

import json

import pytest

from tests.cli._helpers import CONFIGS, nnctl, nnctl_subprocess


@pytest.mark.parametrize("args, message", [
    (("train", CONFIGS / "xor.yaml", "--bogus"), "error: no such option: --bogus"),
    (("train", CONFIGS / "xor.yaml", "--jsn"), "error: no such option: --jsn (did you mean --json"),
    (("train",), "error: missing argument 'SPEC'"),
    (("train", CONFIGS / "xor.yaml", "--workers", "many"), "error: invalid value for '--workers'"),
    (("trian", CONFIGS / "xor.yaml"), "error: no such command 'trian' (did you mean 'train'?)"),
    (("runs", "--bogus"), "error: no such option: --bogus"),
    (("runs", "show"), "error: missing argument 'RUN'"),
])
def test_one_line_on_stderr_exit_2(args, message: str) -> None:
    out = nnctl_subprocess(*args)
    assert out.exit_code == 2
    assert out.stdout == ""
    assert out.stderr.splitlines() == [out.stderr.strip()], out.stderr  # one line
    assert out.stderr.startswith(message), out.stderr
    assert "Usage:" not in out.stderr and "╭" not in out.stderr


def test_json_mode_prints_the_error_document() -> None:
    out = nnctl_subprocess("train", CONFIGS / "xor.yaml", "--bogus", "--json")
    assert out.exit_code == 2
    error = json.loads(out.stdout)["error"]
    assert error["code"] == "usage_error"
    assert error["message"] == "no such option: --bogus"
    assert "train --help" in error["hint"]
    assert out.stderr.strip() == "error: no such option: --bogus"


def test_the_same_in_process() -> None:
    out = nnctl("evaluate", "latest", "--fail-undr", "accuracy=1", "--json")
    assert out.exit_code == 2
    assert out.json()["error"]["message"].startswith("no such option: --fail-undr (did you mean --fail-under")
    assert len(out.stderr.splitlines()) == 1


def test_help_and_version_still_exit_0() -> None:
    assert nnctl_subprocess("train", "--help").exit_code == 0
    version = nnctl_subprocess("--version")
    assert version.exit_code == 0 and version.stdout.startswith("nnctl ")
