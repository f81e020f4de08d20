"""Diagnosis during training: the vanishing-gradient warning fires for the deep sigmoid
config and not for the same network with ReLU and He initialization; clip_norm in a spec."""

from __future__ import annotations

import json

from tests.cli._helpers import CONFIGS, TrainedRun, nnctl, read_metrics


def _ratios(run: TrainedRun) -> list[float]:
    header, rows = read_metrics(run.path / "metrics.csv")
    layers = [c for c in header if c.startswith("grad_norm.layer")]
    return [float(r[layers[0]]) / float(r[layers[-1]]) for r in rows]


def test_vanishing_warning_fires_for_the_sigmoid_config(vanishing_runs: dict[str, TrainedRun]) -> None:
    run = vanishing_runs["vanishing_sigmoid"]
    assert max(_ratios(run)) < 1e-3
    warnings = [line for line in run.result["stderr"].splitlines() if "vanishing gradients" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ")
    assert "layer1" in warnings[0] and "layer9" in warnings[0] and "ReLU" in warnings[0]
    summary = json.loads((run.path / "summary.json").read_text())
    kinds = [d["kind"] for d in summary["diagnosis"]]
    assert kinds == ["vanishing_gradients"]
    assert summary["diagnosis"][0]["layers"] == [1, 9]
    assert any("vanishing gradients" in w for w in summary["warnings"])
    assert run.result["diagnosis"] == summary["diagnosis"]


def test_no_warning_for_the_relu_config(vanishing_runs: dict[str, TrainedRun]) -> None:
    run = vanishing_runs["vanishing_relu"]
    assert min(_ratios(run)) > 1e-1
    assert "warning:" not in run.result["stderr"]
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["diagnosis"] == []


def test_clip_norm_in_a_spec(tmp_path) -> None:
    out = nnctl("train", CONFIGS / "iris.yaml", "--set", "training.epochs=3", "--set", "training.clip_norm=0.5",
                "--runs-dir", tmp_path, "--json")
    assert out.exit_code == 0, out.output
    assert "clip_norm: 0.5" in (tmp_path / out.json()["run_id"] / "spec.yaml").read_text()
    header, rows = read_metrics(tmp_path / out.json()["run_id"] / "metrics.csv")
    # the logged weight-gradient norms are taken after clipping, so none exceeds the cap
    assert all(float(r[c]) <= 0.5 * (1 + 1e-5) for r in rows for c in header if c.startswith("grad_norm"))
    bad = nnctl("train", CONFIGS / "iris.yaml", "--set", "training.clip_norm=-1", "--runs-dir", tmp_path)
    assert bad.exit_code == 2 and "training.clip_norm" in bad.error_lines()[0]


def test_a_diverging_run_warns_of_exploding_gradients_and_clip_norm_tames_it(tmp_path) -> None:
    args = ("train", CONFIGS / "diabetes.yaml", "--set", "optimizer={name: sgd, lr: 5}", "--set",
            "data.scale_target=false", "--set", "training.epochs=20", "--runs-dir", tmp_path, "--json")
    wild = nnctl(*args)
    assert wild.exit_code == 1 and wild.json()["status"] == "diverged"
    assert [d["kind"] for d in wild.json()["diagnosis"]][:1] == ["exploding_gradients"]
    assert "warning: exploding gradients" in wild.stderr and "training.clip_norm" in wild.stderr
    clipped = nnctl(*args, "--set", "training.clip_norm=1")
    assert clipped.exit_code == 0, clipped.output
    assert clipped.json()["status"] == "completed"
    assert "exploding_gradients" not in [d["kind"] for d in clipped.json()["diagnosis"]]
