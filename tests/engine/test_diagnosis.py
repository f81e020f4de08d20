"""The diagnosis callback, driven by scripted gradient-norm logs and hand-made activations."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from nnctl.engine import diagnosis
from nnctl.engine.diagnosis import (
    Diagnosis,
    activation_stats,
    dead_fraction,
    hidden_activations,
    saturated_fraction,
)
from nnctl.engine.network import MLP


def drive(norm_rows, epochs=None, **kwargs):
    found = []
    diag = Diagnosis(on_finding=found.append, **kwargs)
    state = SimpleNamespace(model=None, epochs=epochs or len(norm_rows), epoch=0)
    diag.on_train_begin(state)
    for epoch, norms in enumerate(norm_rows, start=1):
        state.epoch = epoch
        logs = {"epoch": float(epoch), "train_loss": 1.0}
        logs.update({f"grad_norm.layer{i}": v for i, v in enumerate(norms, start=1)})
        diag.on_epoch_end(state, logs)
    diag.on_train_end(state)
    return found, diag.findings


def test_vanishing_fires_once_after_patience_epochs_naming_first_and_last_layer():
    found, findings = drive([[1e-6, 1e-3, 0.5]] * 12, patience=5)
    assert found == findings and len(findings) == 1
    f = findings[0]
    assert (f.kind, f.epoch, f.layers) == ("vanishing_gradients", 5, (1, 3))
    assert f.value == pytest.approx(2e-6)
    assert "layer1" in f.message and "layer3" in f.message and "He or Xavier" in f.message and "ReLU" in f.message


def test_vanishing_needs_consecutive_epochs():
    low, ok = [1e-6, 1.0], [1e-2, 1.0]
    found, _ = drive([low, low, low, low, ok, low, low, low, low, ok], patience=5)
    assert found == []


def test_healthy_norms_give_no_finding():
    found, _ = drive([[0.3, 0.5, 0.4]] * 20)
    assert found == []


def test_short_training_needs_fewer_epochs():
    found, _ = drive([[1e-7, 1.0]] * 2, patience=5)
    assert [f.kind for f in found] == ["vanishing_gradients"]


@pytest.mark.parametrize("norms", [[5e3, 1.0, 2.0], [1.0, 2e3, 1.0], [1.0, float("inf"), 1.0]])
def test_exploding(norms):
    found, _ = drive([norms] * 6, patience=3)
    assert [f.kind for f in found] == ["exploding_gradients"]
    assert "clip_norm" in found[0].message


def test_saturated_fraction_uses_099_of_the_range():
    a = np.array([[0.001, 0.5, 0.996, 0.994]])
    assert saturated_fraction(a, "sigmoid") == pytest.approx(0.5)
    t = np.array([[-0.995, 0.98, 0.999, 0.0]])
    assert saturated_fraction(t, "tanh") == pytest.approx(0.5)


def test_dead_fraction_counts_units_never_active():
    a = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    assert dead_fraction(a) == pytest.approx(1 / 3)


def test_hidden_activations_match_a_hand_written_forward_pass():
    net = MLP([3, 4, 2, 2], ["tanh", "relu"], "softmax", dtype=np.float64)
    net.initialize(np.random.default_rng(0), "normal", 1.0)
    x = np.random.default_rng(1).normal(size=(5, 3))
    h1 = np.tanh(x @ net.weights[0] + net.biases[0])
    h2 = np.maximum(h1 @ net.weights[1] + net.biases[1], 0)
    (got,) = list(hidden_activations(net, x))
    np.testing.assert_allclose(got[0], h1)
    np.testing.assert_allclose(got[1], h2)


def test_activation_stats_over_blocks_equal_the_whole(monkeypatch):
    net = MLP([3, 6, 5, 2], ["sigmoid", "relu"], "softmax", dtype=np.float64)
    net.initialize(np.random.default_rng(0), "normal", 3.0)
    x = np.random.default_rng(1).normal(size=(50, 3))
    whole = activation_stats(net, x)
    h1 = 1 / (1 + np.exp(-(x @ net.weights[0] + net.biases[0])))
    h2 = np.maximum(h1 @ net.weights[1] + net.biases[1], 0)
    assert whole[0] == ("saturated", pytest.approx(saturated_fraction(h1, "sigmoid")))
    assert whole[1] == ("dead", pytest.approx(dead_fraction(h2)))
    monkeypatch.setattr(diagnosis, "STATS_CHUNK", 7)
    assert activation_stats(net, x) == whole


def activation_findings(hidden, scale, bias):
    net = MLP([4, 6, 6, 2], hidden, "softmax", dtype=np.float64)
    net.initialize(np.random.default_rng(0), "normal", scale)
    for b in net.biases[:-1]:
        b[...] = bias
    x = np.random.default_rng(1).normal(size=(50, 4))
    diag = Diagnosis(x_val=x, every=1000)
    state = SimpleNamespace(model=net, epochs=3, epoch=3)
    diag.on_train_begin(state)
    diag.on_train_end(state)  # the end of training always looks at the activations
    return diag.findings


def test_saturated_sigmoid_units_are_reported_at_the_end():
    findings = activation_findings(["sigmoid", "tanh"], scale=30.0, bias=0.0)
    assert [(f.kind, f.layers) for f in findings] == [("saturated_units", (1, 2))]
    assert findings[0].value >= 0.5


def test_dead_relus_are_reported():
    findings = activation_findings(["relu", "relu"], scale=0.1, bias=-5.0)
    assert [(f.kind, f.layers) for f in findings] == [("dead_relu", (1, 2))]
    assert findings[0].value == 1.0


def test_healthy_activations_give_no_finding():
    assert activation_findings(["sigmoid", "relu"], scale=0.5, bias=0.1) == []


def test_state_round_trip_keeps_streaks_and_reports_nothing_twice():
    found = []
    first = Diagnosis(on_finding=found.append, patience=3)
    state = SimpleNamespace(model=None, epochs=10, epoch=0)
    first.on_train_begin(state)

    def epoch(diag, e, norms):
        state.epoch = e
        diag.on_epoch_end(state, {"epoch": float(e), **{f"grad_norm.layer{i}": v for i, v in enumerate(norms, 1)}})

    epoch(first, 1, [1e-6, 1.0])
    epoch(first, 2, [1e-6, 1.0])
    saved = {k: np.array(v) for k, v in first.state_dict().items()}
    second = Diagnosis(on_finding=found.append, patience=3)
    second.on_train_begin(state)
    second.load_state_dict(saved)
    epoch(second, 3, [1e-6, 1.0])  # the third epoch in a row, counting the two before the save
    assert [f.epoch for f in found] == [3]
    again = Diagnosis(on_finding=found.append, patience=3)
    again.on_train_begin(state)
    again.load_state_dict({k: np.array(v) for k, v in second.state_dict().items()})
    assert again.findings == second.findings
    for e in range(4, 10):
        epoch(again, e, [1e-6, 1.0])
    assert len(found) == 1


def test_a_non_finite_norm_is_reported_at_once():
    found, _ = drive([[1.0, 1.0], [float("nan"), 2.0]], epochs=50, patience=5)
    assert [(f.kind, f.epoch) for f in found] == [("exploding_gradients", 2)]


def test_a_diverged_epoch_is_reported_as_exploding_at_once():
    found = []
    diag = Diagnosis(on_finding=found.append, patience=5)
    state = SimpleNamespace(model=None, epochs=50, epoch=1)
    diag.on_train_begin(state)
    diag.on_epoch_end(state, {"epoch": 1.0, "train_loss": float("inf"), "grad_norm.layer1": 40.0,
                              "grad_norm.layer2": 90.0})
    assert [(f.kind, f.layers) for f in found] == [("exploding_gradients", (1, 2, 2))]
    assert "NaN or inf" in found[0].message
