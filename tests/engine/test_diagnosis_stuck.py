"""Diagnosis of a training stuck where it began, driven by scripted logs."""

from __future__ import annotations

from types import SimpleNamespace

from nnctl.engine.diagnosis import STUCK_EPOCHS, Diagnosis


def drive(rows: list[dict[str, float]], **kwargs) -> list:
    found: list = []
    diag = Diagnosis(on_finding=found.append, **kwargs)
    state = SimpleNamespace(model=None, epochs=len(rows), epoch=0, stop_reason=None)
    diag.on_train_begin(state)
    for epoch, logs in enumerate(rows, start=1):
        state.epoch = epoch
        diag.on_epoch_end(state, {"epoch": float(epoch), **logs})
    diag.on_train_end(state)
    return found


def _falling(n: int, accuracy: float) -> list[dict[str, float]]:
    return [{"train_loss": 1.0 / e, "train_accuracy": accuracy} for e in range(1, n + 1)]


def test_accuracy_at_chance_level_is_stuck() -> None:
    [finding] = drive(_falling(30, 0.5), stuck=True, chance=0.5)
    assert finding.kind == "stuck" and finding.epoch == 30 and finding.value == 0.5
    assert "chance level" in finding.message and "--restarts" in finding.message


def test_accuracy_above_chance_is_not() -> None:
    assert drive(_falling(30, 0.75), stuck=True, chance=0.5) == []


def test_a_loss_that_hardly_moves_is_a_plateau() -> None:
    rows = [{"train_loss": 1.0 - 0.001 * e} for e in range(STUCK_EPOCHS + 5)]
    [finding] = drive(rows, stuck=True)
    assert finding.kind == "stuck" and "hardly moved" in finding.message


def test_short_trainings_and_other_findings_are_left_alone() -> None:
    assert drive(_falling(STUCK_EPOCHS - 1, 0.5), stuck=True, chance=0.5) == []
    assert drive(_falling(30, 0.5), chance=0.5) == []  # not asked for
    vanishing = [{**row, "grad_norm.layer1": 1e-9, "grad_norm.layer2": 1.0} for row in _falling(30, 0.5)]
    assert [f.kind for f in drive(vanishing, stuck=True, chance=0.5)] == ["vanishing_gradients"]
