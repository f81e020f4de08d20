"""Every --help reads cleanly at 80 columns; shell completion is offered; ``nnctl --help``
starts without loading the heavy libraries."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.cli._helpers import REPO

COMMANDS = ["", "train", "resume", "evaluate", "validate", "schema", "gradcheck", "predict", "plot",
            "crossval", "runs", "runs show", "runs compare", "runs rm"]


def _help(command: str) -> str:
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run([sys.executable, "-m", "nnctl", *command.split(), "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    return {command: _help(command) for command in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_fits_80_columns_without_placeholders(helps: dict[str, str], command: str) -> None:
    text = helps[command]
    for line in text.splitlines():
        assert len(line) <= 80, line
        # descriptions keep at least 46 columns: not squeezed to a word or two a line
        indent = len(line) - len(line.lstrip(" "))
        assert indent <= 34, f"squeezed description: {line!r}"
    for placeholder in ("<bool>", "<int>", "<str>", "<path>", "<float>", "list[str]", "{spec}", "{run}", "\\[", "╭"):
        assert placeholder not in text, f"{placeholder} in nnctl {command} --help"
    usage = text.splitlines()[0]
    assert usage.startswith("Usage: ") and "{" not in usage


def test_usage_names_the_arguments_in_capitals(helps: dict[str, str]) -> None:
    assert helps["train"].splitlines()[0].endswith("train [OPTIONS] SPEC")
    assert helps["evaluate"].splitlines()[0].endswith("evaluate [OPTIONS] RUN")
    assert helps["plot"].splitlines()[0].endswith("plot [OPTIONS] RUN...")


def test_flags_show_no_value(helps: dict[str, str]) -> None:
    assert re.search(r"^  --json +Print one JSON", helps["train"], re.M)
    assert re.search(r"^  --force +Resume even", helps["train"], re.M)


def test_square_brackets_survive(helps: dict[str, str]) -> None:
    assert "pip install 'nnctl[plot]'" in " ".join(helps["evaluate"].split())
    assert "model.layers[0].units=8" in helps["train"]


def test_runs_status_lists_every_status(helps: dict[str, str]) -> None:
    from nnctl.app.run_index import STATUSES

    text = " ".join(helps["runs"].split())
    for status in STATUSES:
        assert status in text.split("--status STATUS", 1)[1].split("--since")[0], status


def test_command_list_is_not_cut(helps: dict[str, str]) -> None:
    commands = helps[""].split("Commands:", 1)[1]
    assert "..." not in commands
    assert "..." not in helps["runs"].split("Commands:", 1)[1]


def test_shell_completion_is_offered(helps: dict[str, str]) -> None:
    assert "--install-completion" in helps[""] and "--show-completion" in helps[""]
    proc = subprocess.run([sys.executable, "-m", "nnctl", "--show-completion", "bash"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "COMPREPLY" in proc.stdout and "complete" in proc.stdout


def test_root_help_loads_no_heavy_library() -> None:
    """``nnctl --help`` stays fast: neither rich, numpy, yaml nor pydantic is imported."""
    code = ("import sys; sys.argv = ['nnctl', '--help']\n"
            "from nnctl.cli.main import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('rich', 'numpy', 'yaml', 'pydantic', 'nnctl.app', 'nnctl.engine') if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stderr, proc.stderr
