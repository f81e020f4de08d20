"""Tests for nnctl.app.ensemble and nnctl.app.restarts: majority vote, mean, best, and
restart runs that evaluate as their ensemble."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from nnctl.app.ensemble import Ensemble, class_probabilities, majority_vote
from nnctl.app.errors import SpecError
from nnctl.app.evaluation import evaluate_run
from nnctl.app.restarts import train_restarts
from nnctl.app.runs import RunStore, load_npz
from nnctl.app.spec import load_spec
from nnctl.app.training import train_from_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


# ---------------------------------------------------------------- majority vote
def test_majority_vote_on_hand_made_predictions() -> None:
    classes = np.array([  # 3 members x 4 rows
        [0, 1, 2, 0],
        [0, 2, 2, 1],
        [1, 2, 0, 2],
    ])
    probs = np.full((3, 4, 3), 1 / 3)
    # row 0: 0,0,1 -> 0; row 1: 1,2,2 -> 2; row 2: 2,2,0 -> 2; row 3: a three-way tie
    probs[:, 3] = [[0.4, 0.3, 0.3], [0.2, 0.5, 0.3], [0.2, 0.2, 0.6]]  # sums 0.8, 1.0, 1.2 -> class 2
    assert majority_vote(classes, probs).tolist() == [0, 2, 2, 2]


def test_a_tie_goes_to_the_largest_summed_probability_among_the_tied_classes() -> None:
    classes = np.array([[0], [0], [1], [1]])  # 2 votes for class 0, 2 for class 1, none for 2
    probs = np.array([[[0.5, 0.1, 0.4]], [[0.5, 0.1, 0.4]], [[0.1, 0.6, 0.3]], [[0.1, 0.6, 0.3]]])
    # class 2 has the largest summed probability (1.4) but no votes: it cannot win
    assert majority_vote(classes, probs).tolist() == [1]  # 1.4 (class 1) > 1.2 (class 0)
    probs[2, 0] = probs[3, 0] = [0.3, 0.4, 0.3]
    assert majority_vote(classes, probs).tolist() == [0]  # 1.0 > 0.8


def test_single_sigmoid_unit_probabilities_become_two_columns() -> None:
    np.testing.assert_allclose(class_probabilities(np.array([[0.2], [0.9]])), [[0.8, 0.2], [0.1, 0.9]])


def _member(a: np.ndarray, output: str = "softmax"):
    return SimpleNamespace(sizes=(2, a.shape[1]), dtype=np.dtype(np.float64),
                           activations=[SimpleNamespace(name=output)], logits=lambda x: (np.log(a), a))


def test_ensemble_vote_mean_and_best() -> None:
    a1 = np.array([[0.6, 0.4], [0.55, 0.45]])
    a2 = np.array([[0.6, 0.4], [0.1, 0.9]])
    a3 = np.array([[0.3, 0.7], [0.52, 0.48]])
    members = [_member(a) for a in (a1, a2, a3)]
    x = np.zeros((2, 2))
    # row 1: votes 0, 1, 0 -> 0 by majority, although the mean probability favours 1
    assert Ensemble(members, "vote").predict_classes(x).tolist() == [0, 0]
    assert Ensemble(members, "mean").predict_classes(x).tolist() == [0, 1]
    z, a = Ensemble(members, "mean").logits(x)
    assert a == pytest.approx((a1 + a2 + a3) / 3)
    assert np.exp(z) == pytest.approx(a)  # softmax(log ā) = ā: the loss is that of the mean
    assert Ensemble(members, "best", chosen=1).predict_classes(x).tolist() == [0, 1]


# ---------------------------------------------------------------- restart runs
def test_restarts_are_seeded_members_and_evaluate_as_their_ensemble(tmp_path: Path) -> None:
    overrides = ["training.epochs=15", "restarts={count: 3, combine: vote}"]
    spec = load_spec(CONFIGS / "iris.yaml", overrides)
    store = RunStore(tmp_path)
    result = train_restarts(spec, store, base_dirs=[CONFIGS])
    run = Path(result.run.run_dir)
    assert result.run.status == "completed" and len(result.members) == 3
    # member 1 is exactly the plain run; the others start from other weights
    plain = train_from_spec(load_spec(CONFIGS / "iris.yaml", overrides[:1]), RunStore(tmp_path / "plain"),
                            base_dirs=[CONFIGS])
    assert result.members[0]["metrics"] == json.loads(json.dumps(plain.metrics))
    w = [load_npz(run / f"members/0{i}/best.npz")["layer1.weight"] for i in (1, 2, 3)]
    assert np.array_equal(w[0], load_npz(Path(plain.run_dir) / "best.npz")["layer1.weight"])
    assert not np.array_equal(w[0], w[1]) and not np.array_equal(w[1], w[2])
    # evaluate uses the ensemble, and its numbers are the run's
    evaluated = evaluate_run(store, result.run.run_id)
    assert evaluated.metrics["accuracy"] == result.run.metrics["test"]["accuracy"]
    assert evaluated.metrics["loss"] == pytest.approx(result.run.metrics["test"]["loss"])
    ensemble = json.loads((run / "ensemble.json").read_text())
    assert ensemble["combine"] == "vote" and ensemble["members"] == ["members/01", "members/02", "members/03"]
    # combine: best evaluates as the chosen member alone
    (run / "ensemble.json").write_text(json.dumps({**ensemble, "combine": "best"}))
    chosen = result.members[ensemble["chosen"]]["metrics"]["test"]
    assert evaluate_run(store, result.run.run_id).metrics["loss"] == pytest.approx(chosen["loss"])
    again = train_restarts(spec, RunStore(tmp_path / "again"), base_dirs=[CONFIGS])
    assert again.members == result.members and again.run.metrics == result.run.metrics


def test_vote_needs_classes(tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "diabetes.yaml", ["restarts.count=2", "training.epochs=2"])
    with pytest.raises(SpecError, match="restarts.combine: vote needs classes"):
        train_restarts(spec, RunStore(tmp_path), base_dirs=[CONFIGS])
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_mean_of_regression_members(tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "diabetes.yaml", ["restarts={count: 2, combine: mean}", "training.epochs=5"])
    result = train_restarts(spec, RunStore(tmp_path), base_dirs=[CONFIGS])
    assert result.run.task == "regression" and "rmse" in result.run.metrics["test"]
    evaluated = evaluate_run(RunStore(tmp_path), result.run.run_id)
    assert evaluated.metrics["rmse"] == pytest.approx(result.run.metrics["test"]["rmse"])


def test_crossval_final_model_can_be_an_ensemble(tmp_path: Path) -> None:
    from nnctl.app.executors import LocalExecutor
    from nnctl.app.selection import crossval

    spec = load_spec(CONFIGS / "iris.yaml", ["training.epochs=8", "restarts={count: 2, combine: mean}"])
    store = RunStore(tmp_path)
    cv = crossval(spec, store, folds=3, make_executor=lambda: LocalExecutor(1), base_dirs=[CONFIGS]).cv
    run = tmp_path / cv["run_id"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["kind"] == "crossval" and (run / "ensemble.json").is_file()
    assert summary["ensemble"]["combine"] == "mean" and summary["ensemble"]["count"] == 2
    assert [m["epochs"] for m in summary["members"]] == [cv["winner"]["chosen_epochs"]] * 2
    assert summary["rows"] == {"train": 120, "validation": 0, "test": 30}
    assert evaluate_run(store, cv["run_id"]).metrics["loss"] == pytest.approx(cv["final"]["metrics"]["test"]["loss"])
