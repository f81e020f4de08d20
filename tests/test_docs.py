"""README and docs stay true: the spec example validates, the set-up commands are the
ones CI runs, every relative link names a file, and README stays a page for users."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli._helpers import REPO, nnctl

README = REPO / "README.md"
PAGES = [README, REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_is_short() -> None:
    assert len(README.read_text().splitlines()) <= 300


def test_readme_spec_example_validates(tmp_path: Path) -> None:
    (example,) = [b for b in _blocks(README.read_text(), "yaml") if "model:" in b]
    spec = tmp_path / "example.yaml"
    spec.write_text(example)
    out = nnctl("validate", spec, "--json")
    assert out.exit_code == 0, out.output
    assert out.json()["valid"] is True


def test_readme_test_command_is_what_ci_runs() -> None:
    (setup,) = [b for b in _blocks(README.read_text(), "") if "pytest" in b]
    test_line = next(line for line in setup.splitlines() if "pytest" in line)
    install, _, run = test_line.split("#")[0].strip().partition(" && ")
    ci = (REPO / ".ci" / "run").read_text()
    extras = re.search(r"-e '(\.\[[^\]]*\])'", install).group(1)
    assert f"-e '{extras}'" in ci
    assert run.replace("python ", "python3 ") in ci


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_name_files(page: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", page.read_text()):
        if not re.match(r"[a-z]+:", target) and not (page.parent / target).exists():
            broken.append(target)
    assert broken == []
