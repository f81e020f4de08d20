"""nnctl runs: listing completed, interrupted and broken runs; show; compare's spec diff; rm."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.cli._helpers import TrainedRun, nnctl


@pytest.fixture()
def mixed_runs(iris_run: TrainedRun, tmp_path: Path) -> Path:
    """A runs directory holding a completed run, an interrupted one (a copy with another
    spec and status), one with garbage in summary.json and one without summary.json."""
    root = tmp_path / "runs"
    root.mkdir()
    done = root / iris_run.run_id
    shutil.copytree(iris_run.path, done)
    stopped = root / "20300101-000000-iris-stopped-0001"
    shutil.copytree(iris_run.path, stopped)
    summary = json.loads((stopped / "summary.json").read_text())
    summary.update(status="interrupted", stop_reason="interrupted", name="iris-stopped", created_ns=summary["created_ns"] + 1)
    summary["metrics"]["validation"]["loss"] = 0.0001
    (stopped / "summary.json").write_text(json.dumps(summary))
    spec = yaml.safe_load((stopped / "spec.yaml").read_text())
    spec["optimizer"]["lr"] = 0.123
    spec["training"]["epochs"] = 7
    (stopped / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (root / "20200101-000000-garbage-0002").mkdir()
    (root / "20200101-000000-garbage-0002" / "summary.json").write_text("{not json")
    (root / "20200101-000000-empty-0003").mkdir()
    return root


def test_lists_every_run_newest_first_with_broken_ones(mixed_runs: Path, iris_run: TrainedRun) -> None:
    out = nnctl("runs", "--runs-dir", mixed_runs, "--json")
    assert out.exit_code == 0, out.output
    runs = out.json()["runs"]
    assert [r["run_id"] for r in runs[:2]] == ["20300101-000000-iris-stopped-0001", iris_run.run_id]
    assert [r["run_id"][:8] for r in runs[2:]] == ["20200101", "20200101"]
    by_status = {r["status"] for r in runs}
    assert by_status == {"completed", "interrupted", "broken"}
    broken = [r for r in runs if r["status"] == "broken"]
    assert {r["problem"].split(" ")[1] for r in broken} == {"missing", "unreadable"}
    completed = next(r for r in runs if r["status"] == "completed")
    assert completed["best_epoch"] >= 1 and "val_loss" in completed["best_metric"]
    assert completed["test"]["accuracy"] > 0.5


def test_filters_and_sort(mixed_runs: Path) -> None:
    def ids(*args: str) -> list[str]:
        out = nnctl("runs", "--runs-dir", mixed_runs, "--json", *args)
        assert out.exit_code == 0, out.output
        return [r["run_id"] for r in out.json()["runs"]]

    assert ids("--status", "interrupted") == ["20300101-000000-iris-stopped-0001"]
    assert ids("--name", "STOPPED") == ["20300101-000000-iris-stopped-0001"]
    assert len(ids("--status", "broken")) == 2
    by_loss = ids("--sort", "val_loss")
    assert by_loss[0] == "20300101-000000-iris-stopped-0001"  # the smallest validation loss first
    assert set(by_loss[2:]) == {"20200101-000000-garbage-0002", "20200101-000000-empty-0003"}  # no value: last
    assert "20200101-000000-empty-0003" not in ids("--since", "2021-01-01")


def test_plain_listing_has_one_line_per_run(mixed_runs: Path) -> None:
    out = nnctl("runs", "--runs-dir", mixed_runs)
    assert out.exit_code == 0
    lines = out.stdout.splitlines()
    assert len(lines) == 4 and all(line.startswith("run_id=") for line in lines)
    assert "status=broken" in lines[-1]


@pytest.mark.parametrize("args, needle", [
    (("--status", "weird"), "--status"), (("--sort", "colour"), "--sort"), (("--since", "yesterday"), "--since"),
])
def test_bad_list_options(mixed_runs: Path, args, needle: str) -> None:
    out = nnctl("runs", "--runs-dir", mixed_runs, *args)
    assert out.exit_code == 2
    assert out.error_lines() and needle in out.error_lines()[0]
    assert "Traceback" not in out.output


def test_show(iris_run: TrainedRun) -> None:
    out = nnctl("runs", "show", iris_run.run_id[:17], "--runs-dir", iris_run.runs_dir, "--json")
    assert out.exit_code == 0, out.output
    shown = out.json()
    assert shown["spec"]["model"]["layers"][0]["units"] == 16
    assert shown["metrics"]["test"]["accuracy"] == iris_run.result["metrics"]["test"]["accuracy"]
    plain = nnctl("runs", "show", "latest", "--runs-dir", iris_run.runs_dir)
    assert plain.exit_code == 0 and "spec:" in plain.stdout and "test: loss=" in plain.stdout


def test_compare_shows_only_the_keys_that_differ(mixed_runs: Path, iris_run: TrainedRun) -> None:
    out = nnctl("runs", "compare", iris_run.run_id, "20300101", "--runs-dir", mixed_runs, "--json")
    assert out.exit_code == 0, out.output
    result = out.json()
    lr = yaml.safe_load((iris_run.path / "spec.yaml").read_text())["optimizer"]["lr"]
    assert result["spec_diff"] == {"optimizer.lr": [lr, 0.123], "training.epochs": [iris_run.result["epochs"], 7]}
    assert result["metrics"]["20300101-000000-iris-stopped-0001"]["validation"]["loss"] == 0.0001
    plain = nnctl("runs", "compare", iris_run.run_id, "20300101", "--runs-dir", mixed_runs)
    assert "optimizer.lr:" in plain.stdout and "validation.loss:" in plain.stdout


@pytest.mark.parametrize("refs", [("20300101",), ("20300101", "20300101"), ("20300101", "nosuch")])
def test_compare_bad_references(mixed_runs: Path, refs) -> None:
    out = nnctl("runs", "compare", *refs, "--runs-dir", mixed_runs)
    assert out.exit_code == 2 and len(out.error_lines()) == 1


def test_rm_needs_confirmation(mixed_runs: Path) -> None:
    target = mixed_runs / "20200101-000000-empty-0003"
    refused = nnctl("runs", "rm", "20200101-000000-empty", "--runs-dir", mixed_runs)
    assert refused.exit_code == 2 and "--yes" in refused.stderr and target.exists()
    out = nnctl("runs", "rm", "20200101-000000-empty", "--runs-dir", mixed_runs, "--yes", "--json")
    assert out.exit_code == 0 and out.json() == {"removed": target.name}
    assert not target.exists()
    assert sorted(p.name for p in mixed_runs.iterdir() if p.name.startswith(".")) == []


def test_rm_refuses_paths_outside_the_runs_dir(mixed_runs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    for ref in ("../precious", str(outside)):
        out = nnctl("runs", "rm", ref, "--runs-dir", mixed_runs, "--yes")
        assert out.exit_code == 2
    assert outside.exists()


def test_show_prints_the_recorded_diagnosis_once(vanishing_runs) -> None:
    run = vanishing_runs["vanishing_sigmoid"]
    out = nnctl("runs", "show", run.run_id, "--runs-dir", run.runs_dir)
    assert out.exit_code == 0, out.output
    lines = [line for line in out.stdout.splitlines() if "vanishing gradients" in line]
    assert len(lines) == 1 and lines[0].startswith("diagnosis: vanishing gradients")
