"""Nothing lost: runs killed (SIGKILL, SIGINT, SIGTERM) at random points and resumed end
bit for bit like runs never interrupted; completed, changed, busy and broken runs are
answered clearly; many processes share one runs directory."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnctl.app.runs import RunStore
from tests.cli._helpers import CONFIGS, REPO, nnctl, without_seconds

SPEC = """\
name: resumable
seed: 3
data: {source: builtin:digits, normalize: minmax, split: {validation: 0.15, test: 0.2}}
model:
  input_dropout: 0.1
  layers: [{units: 256, activation: relu, dropout: 0.3}]
optimizer: {name: adam, lr: 0.002}
training: {epochs: 40, batch_size: 32, lr_schedule: {name: step, step_size: 10, gamma: 0.5}}
stopping: {early_stopping: {metric: val_loss, patience: 30}}
checkpoint: {every_seconds: 0}
"""


def _start(*args: str | Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nnctl", *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _only_run(runs_dir: Path) -> Path:
    runs = [p for p in runs_dir.iterdir() if p.is_dir()] if runs_dir.is_dir() else []
    assert len(runs) <= 1
    return runs[0] if runs else None  # type: ignore[return-value]


def _epochs_logged(run: Path | None) -> int:
    try:
        return max(0, len((run / "metrics.csv").read_text().splitlines()) - 1)  # type: ignore[operator]
    except (OSError, TypeError):
        return 0


def _wait_then_kill(proc: subprocess.Popen, runs_dir: Path, rng: random.Random, during_write: bool) -> bool:
    """SIGKILL ``proc`` while it trains: right when a checkpoint's temporary file appears
    (``during_write``) or at a random time a few epochs on.  Returns
    whether it was killed (False: it finished first)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        run = _only_run(runs_dir)
        if run is not None and _epochs_logged(run) >= 1:
            break
        time.sleep(0.005)
    if during_write:
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.endswith(".tmp") for p in _only_run(runs_dir).iterdir()):
                break
    else:  # a few epochs on, then anywhere inside an epoch
        target = _epochs_logged(_only_run(runs_dir)) + rng.randint(1, 5)
        while time.monotonic() < deadline and proc.poll() is None and _epochs_logged(_only_run(runs_dir)) < target:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.02))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def _assert_same_run(a: Path, b: Path) -> None:
    for name in ("best.npz", "last.npz"):
        with np.load(a / name, allow_pickle=False) as x, np.load(b / name, allow_pickle=False) as y:
            assert sorted(x.files) == sorted(y.files), name
            for key in x.files:
                assert np.array_equal(x[key], y[key]), f"{name}: {key} differs"
    assert without_seconds(a / "metrics.csv") == without_seconds(b / "metrics.csv")
    sa, sb = (json.loads((p / "summary.json").read_text()) for p in (a, b))
    for key in ("status", "stop_reason", "epochs", "best_epoch", "best_metric", "metrics"):
        assert sa[key] == sb[key], key


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """The spec file and one uninterrupted run of it (in its own process)."""
    root = tmp_path_factory.mktemp("reference")
    spec = root / "resumable.yaml"
    spec.write_text(SPEC)
    proc = _start("train", spec, "--runs-dir", root / "runs", "--quiet")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return spec, root / "runs" / out.strip()


def test_sigkill_at_random_points_then_resume_is_bit_identical(reference, tmp_path: Path) -> None:
    spec, ref = reference
    runs_dir = tmp_path / "runs"
    rng = random.Random(int(os.environ.get("NNCTL_KILL_SEED", "11")))
    proc = _start("train", spec, "--runs-dir", runs_dir, "--quiet")
    kills, during_writes = 0, 0
    for point in range(6):
        during_write = point % 2 == 1
        if not _wait_then_kill(proc, runs_dir, rng, during_write):
            break
        kills += 1
        run = _only_run(runs_dir)
        during_writes += any(p.name.endswith(".tmp") for p in run.iterdir())
        status = RunStore(runs_dir).resolve(run.name).status()
        assert status in ("interrupted", "completed")  # killed after its last write: complete
        assert nnctl("evaluate", run.name, "--runs-dir", runs_dir, "--json").exit_code in (0, 2)
        proc = _start("resume", run.name, "--runs-dir", runs_dir, "--quiet")
        if status == "completed":
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    print(f"kills={kills} during_writes={during_writes}")
    assert kills >= 4, f"only {kills} kills landed before the run finished"
    assert during_writes >= 1, "no kill landed during a checkpoint write"
    _assert_same_run(ref, _only_run(runs_dir))
    assert not [p for p in _only_run(runs_dir).iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_saves_a_checkpoint_exits_130_and_resumes_bit_identical(reference, tmp_path: Path, sig) -> None:
    spec, ref = reference
    runs_dir = tmp_path / "runs"
    proc = _start("train", spec, "--runs-dir", runs_dir)
    while _epochs_logged(_only_run(runs_dir)) < 3 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    run = _only_run(runs_dir)
    assert proc.returncode == 130, err
    assert f"resume with: nnctl resume {run.name} --runs-dir {runs_dir}" in err
    assert "Traceback" not in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["stop_reason"] == "interrupted"
    with np.load(run / "last.npz") as last:
        assert int(last["fit.epoch"]) == summary["epochs"] >= 3
    resumed = nnctl("resume", run.name, "--runs-dir", runs_dir, "--json")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.json()["resumed_from"] == summary["epochs"]
    _assert_same_run(ref, run)


def test_a_second_interrupt_stops_at_once_and_the_run_still_resumes(reference, tmp_path: Path) -> None:
    spec, ref = reference
    runs_dir = tmp_path / "runs"
    proc = _start("train", spec, "--runs-dir", runs_dir, "--quiet")
    while _epochs_logged(_only_run(runs_dir)) < 2 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    run = _only_run(runs_dir)
    assert RunStore(runs_dir).resolve(run.name).status() == "interrupted"
    assert nnctl("resume", run.name, "--runs-dir", runs_dir, "--quiet").exit_code == 0
    _assert_same_run(ref, run)


def test_resuming_a_completed_run_says_so(reference) -> None:
    spec, ref = reference
    before = (ref / "last.npz").read_bytes()
    out = nnctl("resume", ref.name, "--runs-dir", ref.parent)
    assert out.exit_code == 0 and "already complete" in out.stderr
    assert (ref / "last.npz").read_bytes() == before


def _interrupted_copy(tmp_path: Path, spec_text: str, epochs: int = 3) -> tuple[Path, Path]:
    """A run of ``spec_text`` stopped (as by Ctrl-C) after ``epochs`` epochs."""
    from nnctl.app.spec import load_spec
    from nnctl.app.training import train_from_spec
    from nnctl.engine.callbacks import Callback

    class StopAfterEpochs(Callback):
        def on_epoch_end(self, state, logs):
            state.stop_requested = state.epoch >= epochs

    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text)
    result = train_from_spec(load_spec(spec), RunStore(tmp_path / "runs"), callbacks=[StopAfterEpochs()],
                             base_dirs=[tmp_path])
    assert result.status == "interrupted" and result.epochs == epochs
    return spec, Path(result.run_dir)


def test_resume_refuses_a_changed_spec_naming_the_key_unless_forced(tmp_path: Path) -> None:
    spec, run = _interrupted_copy(tmp_path, SPEC.replace("epochs: 40", "epochs: 6"))
    changed = tmp_path / "changed.yaml"
    changed.write_text(SPEC.replace("epochs: 40", "epochs: 6").replace("lr: 0.002", "lr: 0.001"))
    out = nnctl("train", changed, "--resume", run.name, "--runs-dir", run.parent)
    assert out.exit_code == 2, out.output
    assert out.error_lines() == [f"error: the spec differs from run {run.name}'s: optimizer.lr: 0.002 → 0.001"]
    forced = nnctl("train", changed, "--resume", run.name, "--runs-dir", run.parent, "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert forced.json()["resumed_from"] == 3 and forced.json()["epochs"] == 6
    assert "lr: 0.001" in (run / "spec.yaml").read_text()


def test_resume_refuses_changed_data_unless_forced(tmp_path: Path) -> None:
    csv = tmp_path / "xor.csv"
    csv.write_text("a,b,y\n" + "0,0,0\n0,1,1\n1,0,1\n1,1,0\n" * 5)
    text = (CONFIGS / "xor.yaml").read_text().replace("builtin:xor", str(csv))
    spec, run = _interrupted_copy(tmp_path, text, epochs=2)
    csv.write_text(csv.read_text() + "1,1,0\n")
    out = nnctl("resume", run.name, "--runs-dir", run.parent)
    assert out.exit_code == 2
    assert out.error_lines() == [f"error: {csv}: the data changed since run {run.name} was trained (hash differs)"]
    assert nnctl("resume", run.name, "--runs-dir", run.parent, "--force", "--quiet").exit_code == 0


def test_a_run_held_by_a_live_process_is_refused(tmp_path: Path) -> None:
    spec, run = _interrupted_copy(tmp_path, SPEC.replace("epochs: 40", "epochs: 6"))
    with RunStore(run.parent).resolve(run.name).lock():
        out = nnctl("resume", run.name, "--runs-dir", run.parent)
    assert out.exit_code == 2
    assert out.error_lines() == [f"error: run {run.name} is being trained by pid {os.getpid()} on {os.uname().nodename}"]


def test_resume_without_a_checkpoint_starts_over(reference, tmp_path: Path) -> None:
    spec, ref = reference
    _, run = _interrupted_copy(tmp_path, SPEC)
    (run / "last.npz").unlink()
    (run / "metrics.csv").write_text((run / "metrics.csv").read_text() + "9,garbage\n")
    out = nnctl("resume", run.name, "--runs-dir", run.parent, "--json")
    assert out.exit_code == 0, out.output
    assert out.json()["resumed_from"] is None
    _assert_same_run(ref, run)


def test_a_hand_edited_run_spec_is_refused_unless_forced(tmp_path: Path) -> None:
    _, run = _interrupted_copy(tmp_path, SPEC.replace("epochs: 40", "epochs: 6"))
    (run / "spec.yaml").write_text((run / "spec.yaml").read_text().replace("epochs: 6", "epochs: 7"))
    out = nnctl("resume", run.name, "--runs-dir", run.parent)
    assert out.exit_code == 2
    assert out.error_lines() == [f"error: {run / 'spec.yaml'}: changed since the run's last checkpoint"]
    forced = nnctl("resume", run.name, "--runs-dir", run.parent, "--force", "--json")
    assert forced.exit_code == 0 and forced.json()["epochs"] == 7


def test_a_checkpoint_with_a_wrong_shape_is_refused_naming_the_key(tmp_path: Path) -> None:
    _, run = _interrupted_copy(tmp_path, SPEC.replace("epochs: 40", "epochs: 6"))
    with np.load(run / "last.npz") as data:
        arrays = dict(data)
    arrays["layer2.weight"] = arrays["layer2.weight"][:, :3]
    np.savez(run / "last.npz", **arrays)
    out = nnctl("resume", run.name, "--runs-dir", run.parent)
    assert out.exit_code == 2
    assert out.error_lines() == [f"error: {run / 'last.npz'}: layer2.weight: shape (256, 3), expected (256, 10)"]


def test_disk_full_during_a_checkpoint_is_one_line_exit_1_and_keeps_the_last_good_one(tmp_path: Path, monkeypatch) -> None:
    from nnctl.app import runs

    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.replace("epochs: 40", "epochs: 8"))
    real, calls = runs.atomic_write_bytes, []

    def full_after_a_while(path, data):
        calls.append(path.name)
        if calls.count("last.npz") > 3:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(runs, "atomic_write_bytes", full_after_a_while)
    out = nnctl("train", spec, "--runs-dir", tmp_path / "runs")
    monkeypatch.setattr(runs, "atomic_write_bytes", real)
    run = _only_run(tmp_path / "runs")
    assert out.exit_code == 1
    assert out.error_lines() == [f"error: {run / 'last.npz'}: cannot write (No space left on device); "
                                 "the last good checkpoint is kept"]
    with np.load(run / "last.npz") as last:
        assert int(last["fit.epoch"]) == 3
    assert nnctl("resume", run.name, "--runs-dir", run.parent, "--quiet").exit_code == 0


def test_eight_processes_share_one_runs_directory(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    procs = [_start("train", CONFIGS / "xor.yaml", "--runs-dir", runs_dir, "--quiet") for _ in range(8)]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        ids.append(out.strip())
    assert len(set(ids)) == 8 and sorted(p.name for p in runs_dir.iterdir()) == sorted(ids)
    store = RunStore(runs_dir)
    assert all(store.resolve(i).status() == "completed" for i in ids)
    assert store.resolve("latest").id == store.runs()[-1].id


def test_a_network_too_large_for_memory_is_refused_before_allocation(tmp_path: Path) -> None:
    out = nnctl("train", CONFIGS / "iris.yaml", "--runs-dir", tmp_path / "runs",
                "--set", "model.layers=[{units: 100000}, {units: 100000}, {units: 100000}]")
    assert out.exit_code == 2
    [line] = out.error_lines()
    assert line.startswith("error: model.layers: training needs about ") and "GB of memory" in line
    assert not (tmp_path / "runs").exists()


def test_a_runs_directory_that_cannot_be_written_is_one_line_exit_1(tmp_path: Path, monkeypatch) -> None:
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.parent == tmp_path / "runs":
            raise OSError(30, "Read-only file system")
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    out = nnctl("train", CONFIGS / "xor.yaml", "--runs-dir", tmp_path / "runs")
    assert out.exit_code == 1
    assert out.error_lines() == [f"error: {tmp_path / 'runs'}: cannot create a run (Read-only file system)"]


def test_runs_that_are_not_single_trainings_are_not_resumed(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    ensemble = nnctl("train", CONFIGS / "xor.yaml", "--restarts", "2", "--workers", "1", "--runs-dir", runs_dir,
                     "--quiet", "--set", "training.epochs=5")
    assert ensemble.exit_code == 0, ensemble.output
    run = RunStore(runs_dir).resolve(ensemble.stdout.strip().splitlines()[-1])
    summary = json.loads(run.file("summary.json").read_text())
    run.file("summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    out = nnctl("resume", run.id, "--runs-dir", runs_dir)
    assert out.exit_code == 2
    assert out.error_lines() == [f"error: run {run.id} combines several restarts; resume continues single trainings only"]
