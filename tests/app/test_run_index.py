"""app.run_index: a run's status and headline numbers, --since, the spec diff."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nnctl.app.errors import UsageError
from nnctl.app.run_index import list_runs, parse_since, run_info, spec_diff
from nnctl.app.runs import RunDir, RunStore
from nnctl.app.values import flatten


def _run(root: Path, run_id: str, summary) -> RunDir:
    path = root / run_id
    path.mkdir(parents=True)
    if summary is not None:
        (path / "summary.json").write_text(summary if isinstance(summary, str) else json.dumps(summary))
    return RunDir(path)


@pytest.mark.parametrize("summary, problem", [(None, "missing"), ("{oops", "unreadable"), ("[1, 2]", "unreadable")])
def test_unreadable_summaries_make_a_broken_run(tmp_path: Path, summary, problem) -> None:
    info = run_info(_run(tmp_path, "20260101-000000-x-0001", summary))
    assert info.status == "broken" and problem in info.problem


def test_run_info_reads_the_headline_numbers(tmp_path: Path) -> None:
    info = run_info(_run(tmp_path, "20260101-000000-x-0001", {
        "name": "x", "status": "completed", "stop_reason": "early_stopping", "epochs": 12, "best_epoch": 7,
        "best_metric": {"val_loss": 0.25}, "metrics": {"validation": {"loss": 0.25}, "test": {"accuracy": 0.9}},
        "seconds": {"total": 3.5}, "created": "2026-01-01T00:00:00+0000", "created_ns": 5}))
    assert (info.status, info.best_epoch, info.seconds, info.test["accuracy"]) == ("completed", 7, 3.5, 0.9)
    assert info.sort_value("val_loss") == 0.25 and info.sort_value("test_accuracy") == 0.9


def test_sort_accuracy_descending_and_missing_values_last(tmp_path: Path) -> None:
    for i, acc in enumerate([0.5, None, 0.9]):
        metrics = {"test": {"accuracy": acc}} if acc is not None else {}
        _run(tmp_path, f"2026010{i + 1}-000000-r-000{i}", {"status": "completed", "metrics": metrics})
    ids = [i.run_id[:8] for i in list_runs(RunStore(tmp_path), sort="test_accuracy")]
    assert ids == ["20260103", "20260101", "20260102"]
    assert [i.run_id[:8] for i in list_runs(RunStore(tmp_path))] == ["20260103", "20260102", "20260101"]


def test_parse_since() -> None:
    now = time.time()
    assert parse_since("2h") == pytest.approx(now - 7200, abs=5)
    assert parse_since("7d") == pytest.approx(now - 7 * 86400, abs=5)
    assert parse_since("2026-11-26T14:00+00:00") == 1795701600.0
    with pytest.raises(UsageError, match="--since"):
        parse_since("soon")


def test_flatten_and_spec_diff() -> None:
    a = {"name": "a", "model": {"layers": [{"units": 8}, {"units": 4}]}, "optimizer": {"name": "adam", "lr": 0.1}}
    b = {"name": "b", "model": {"layers": [{"units": 8}]}, "optimizer": {"name": "adam", "lr": 0.2}, "extra": []}
    assert flatten(a)["model.layers[1].units"] == 4
    assert spec_diff([a, b]) == {"model.layers[1].units": [4, None], "optimizer.lr": [0.1, 0.2], "extra": [None, []]}
    assert spec_diff([a, a]) == {}
