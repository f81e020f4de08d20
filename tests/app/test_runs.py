"""Tests for nnctl.app.runs: run ids, resolving references, refusing escapes, atomic
writes, metrics.csv and checkpoints without pickle."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from nnctl.app import runs as runs_mod
from nnctl.app.errors import NnctlError, RunNotFound
from nnctl.app.runs import (
    RunStore,
    atomic_write_bytes,
    iter_columns,
    load_npz,
    save_npz,
)


def _complete(run, status: str = "completed") -> None:
    """What training does at the end: the summary keeps what create() stamped in it."""
    run.write_json("summary.json", {**run.read_json("summary.json"), "status": status})


def _fake_run(root: Path, run_id: str, status: str | None = "completed") -> Path:
    path = root / run_id
    path.mkdir(parents=True)
    if status is not None:
        (path / "summary.json").write_text(json.dumps({"status": status}))
    return path


# ---------------------------------------------------------------- ids
def test_ids_are_unique_under_concurrent_creates(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")  # the folder does not exist yet: every thread creates it
    barrier = threading.Barrier(20)
    made: list[str] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            barrier.wait()
            made.append(store.create("same name").id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(made) == len(set(made)) == 20
    assert sorted(p.name for p in store.root.iterdir()) == sorted(made)


def test_id_format(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create("My run / v2!")
    assert run.path.parent == tmp_path and run.path.is_dir()
    stamp, _, rest = run.id.partition("-")
    assert len(stamp) == 8 and stamp.isdigit()
    assert rest[7:].startswith("My-run-v2-")  # HHMMSS-<slug>-<hex>
    assert "/" not in run.id and " " not in run.id


def test_unwritable_runs_dir_is_an_nnctl_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(NnctlError, match="cannot create runs directory"):
        RunStore(blocker / "runs").create("x")


def test_default_runs_dir_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NNCTL_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert RunStore().root == tmp_path / "elsewhere"
    monkeypatch.delenv("NNCTL_RUNS_DIR")
    assert RunStore().root == Path("runs")


# ---------------------------------------------------------------- resolve
@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    root = tmp_path / "runs"
    _fake_run(root, "20250101-120000-iris-aaaa")
    _fake_run(root, "20250101-120500-iris-bbbb")
    _fake_run(root, "20250102-090000-digits-cccc", status="diverged")
    _fake_run(root, "20250103-090000-digits-dddd", status="running")
    _fake_run(root, "20250104-090000-broken-eeee", status=None)  # no summary.json
    return RunStore(root)


def test_resolve_full_id(store: RunStore) -> None:
    run = store.resolve("20250101-120000-iris-aaaa")
    assert run.id == "20250101-120000-iris-aaaa" and run.path == store.root / run.id


def test_resolve_unique_prefix(store: RunStore) -> None:
    assert store.resolve("20250101-1205").id == "20250101-120500-iris-bbbb"
    assert store.resolve("20250102").id == "20250102-090000-digits-cccc"  # any status


def test_resolve_ambiguous_prefix(store: RunStore) -> None:
    with pytest.raises(RunNotFound, match="ambiguous prefix, matches 2 runs") as info:
        store.resolve("20250101")
    assert "20250101-120000-iris-aaaa" in info.value.message and "20250101-120500-iris-bbbb" in info.value.message


def test_resolve_unknown(store: RunStore) -> None:
    with pytest.raises(RunNotFound, match="no such run"):
        store.resolve("2024")


def test_latest_is_the_newest_completed_run(store: RunStore) -> None:
    assert store.resolve("latest").id == "20250101-120500-iris-bbbb"


def test_latest_without_a_completed_run(tmp_path: Path) -> None:
    with pytest.raises(RunNotFound, match="no completed run"):
        RunStore(tmp_path / "missing").resolve("latest")
    root = tmp_path / "runs"
    _fake_run(root, "20250101-000000-x-0000", status="diverged")
    with pytest.raises(RunNotFound, match="no completed run"):
        RunStore(root).resolve("latest")


def test_latest_after_creates(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    first = store.create("a")
    _complete(first)
    second = store.create("b")
    _complete(second, "diverged")
    assert store.resolve("latest").id == first.id


def test_latest_of_two_runs_created_in_the_same_second(tmp_path: Path, monkeypatch) -> None:
    suffixes = iter(["ffff", "0000"])  # the newer run draws the smaller suffix
    monkeypatch.setattr(runs_mod.secrets, "token_hex", lambda n: next(suffixes))
    monkeypatch.setattr(runs_mod.time, "strftime", lambda fmt, *args: "20250101-000000")
    store = RunStore(tmp_path)
    older = store.create("x")
    _complete(older)
    newer = store.create("x")
    _complete(newer)
    assert store.resolve("latest").id == newer.id


@pytest.mark.parametrize(
    "ref",
    ["..", "../runs", "../etc", "/abs", "/etc/passwd", "a/b", "20250101-120000-iris-aaaa/../x",
     "./20250101-120000-iris-aaaa", ".hidden", "", "-rf", "a\\b", "a\x00b"],
)
def test_refuses_references_that_are_not_plain_names(store: RunStore, ref: str) -> None:
    with pytest.raises(RunNotFound):
        store.resolve(ref)


def test_refuses_an_absolute_path_to_a_real_run(store: RunStore) -> None:
    with pytest.raises(RunNotFound, match="not a run id"):
        store.resolve(str((store.root / "20250101-120000-iris-aaaa").resolve()))


def test_refuses_a_symlink_pointing_outside(store: RunStore, tmp_path: Path) -> None:
    outside = _fake_run(tmp_path / "elsewhere", "20990101-000000-evil-ffff")
    link = store.root / "20990101-000000-evil-ffff"
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(RunNotFound, match="outside the runs directory"):
        store.resolve("20990101-000000-evil-ffff")  # exact name
    with pytest.raises(RunNotFound):
        store.resolve("2099")  # prefix
    assert store.resolve("latest").id == "20250101-120500-iris-bbbb"  # never the symlink
    assert link.name not in [r.id for r in store.runs()]


def test_runs_are_listed_oldest_first(store: RunStore) -> None:
    (store.root / "notes.txt").write_text("not a run")
    ids = [r.id for r in store.runs()]
    assert ids == sorted(ids) and len(ids) == 5


# ---------------------------------------------------------------- atomic writes and checkpoints
def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["summary.json"]


def test_atomic_write_failure_keeps_the_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "summary.json"
    atomic_write_bytes(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(runs_mod.os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["summary.json"]


def test_run_dir_writes_leave_no_temp_files(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create("x")
    run.write_text("spec.yaml", "a: 1\n")
    run.write_json("summary.json", {"status": "completed", "x": np.float32(1.5), "p": tmp_path})
    run.save_checkpoint("best.npz", {"layer1.weight": np.ones((2, 3), np.float32)})
    assert sorted(os.listdir(run.path)) == ["best.npz", "spec.yaml", "summary.json"]
    assert run.read_json("summary.json") == {"status": "completed", "x": 1.5, "p": str(tmp_path)}


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    arrays = {"layer1.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "prep.classes": np.array(["a", "b"])}
    save_npz(tmp_path / "c.npz", arrays)
    loaded = load_npz(tmp_path / "c.npz")
    assert loaded.keys() == arrays.keys()
    for key in arrays:
        np.testing.assert_array_equal(loaded[key], arrays[key])


def test_load_npz_refuses_object_arrays(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, **{"layer1.weight": np.array([{"x": 1}, None], dtype=object)})
    with pytest.raises(NnctlError, match="evil.npz"):
        load_npz(path)


def _truncated_npz(path: Path) -> bytes:
    save_npz(path, {"layer1.weight": np.zeros((50, 50))})
    return path.read_bytes()[:1000]




@pytest.mark.parametrize(
    "kind",
    ["missing", "empty", "garbage", "truncated", "directory"],
)
def test_load_npz_bad_files_raise_nnctl_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bad.npz"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"not an npz at all")
    elif kind == "truncated":
        path.write_bytes(_truncated_npz(tmp_path / "good.npz"))
    elif kind == "directory":
        path.mkdir()
    with pytest.raises(NnctlError, match="bad.npz"):
        load_npz(path)


def test_save_npz_refuses_object_arrays(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bad"):
        save_npz(tmp_path / "x.npz", {"bad": np.array([None], dtype=object)})
    assert list(tmp_path.iterdir()) == []


def test_read_json_errors(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create("x")
    assert run.read_json("summary.json")["status"] == "created"
    with pytest.raises(NnctlError, match="missing"):
        run.read_json("metrics.json")
    (run.path / "summary.json").write_text("{not json")
    with pytest.raises(NnctlError, match="not valid JSON"):
        run.read_json("summary.json")


# ---------------------------------------------------------------- metrics.csv
def test_metrics_writer_flushes_each_row(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create("x")
    columns = list(iter_columns(2, "accuracy"))
    assert columns == ["epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                       "grad_norm.layer1", "grad_norm.layer2", "seconds"]
    writer = run.metrics_writer(columns)
    writer.write({"epoch": 1, "lr": 0.1, "train_loss": 0.5})
    rows = run.read_metrics()  # visible before close
    assert rows == [{**dict.fromkeys(columns, ""), "epoch": "1", "lr": "0.1", "train_loss": "0.5"}]
    writer.write({"epoch": 2, "lr": 0.1, "train_loss": 1 / 3})
    writer.close()
    writer.close()  # idempotent
    assert float(run.read_metrics()[1]["train_loss"]) == 1 / 3  # repr keeps every digit


def test_regression_columns() -> None:
    assert list(iter_columns(1, "rmse"))[:6] == ["epoch", "lr", "train_loss", "train_rmse", "val_loss", "val_rmse"]
