"""ONNX export: the graph run by onnxruntime gives what ``nnctl predict`` gives, on every row."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx extra")
ort = pytest.importorskip("onnxruntime", reason="checking the exported graph needs onnxruntime")

from nnctl.app.data.labels import canonical_label, is_missing  # noqa: E402
from nnctl.app.export import IR_VERSION, ML_OPSET, OPSET  # noqa: E402
from nnctl.app.prediction import predict_file  # noqa: E402
from nnctl.app.runs import RunStore  # noqa: E402
from tests.cli._helpers import CONFIGS, REPO, nnctl  # noqa: E402

TOL = 1e-5
SHIPPED = sorted(p.stem for p in CONFIGS.glob("*.yaml") if "source: builtin:" in p.read_text(encoding="utf-8"))
"""The shipped configs whose data ships with nnctl (Fashion-MNIST's IDX files do not)."""
DATA = {"mnist1d": REPO / "data" / "mnist1d.npz"}


def _data_file(config: str) -> Path:
    import yaml

    source = yaml.safe_load((CONFIGS / f"{config}.yaml").read_text())["data"]["source"]
    name = source.split(":", 1)[1]
    return next(p for p in (REPO / "data" / f"{name}.csv", REPO / "data" / f"{name}.npz") if p.exists())


def _train(runs_dir: Path, spec: Path, *sets: str) -> str:
    args = [a for s in ("training.epochs=3", *sets) for a in ("--set", s)]
    out = nnctl("train", spec, *args, "--runs-dir", runs_dir, "--workers", "1", "--json")
    assert out.exit_code == 0, out.output
    return out.json()["run_id"]


def _export(runs_dir: Path, run_id: str, out: Path) -> dict:
    result = nnctl("export", run_id, "--out", out, "--runs-dir", runs_dir, "--json")
    assert result.exit_code == 0, result.output
    return result.json()


def _predict(runs_dir: Path, run_id: str, data: Path) -> tuple[list[str], list[list[str]]]:
    """``nnctl predict``'s CSV as (header, rows)."""
    stream = io.StringIO()
    predict_file(RunStore(runs_dir), run_id, data, None, stream=stream)
    rows = list(csv.reader(io.StringIO(stream.getvalue())))
    return rows[0], rows[1:]


def _feeds(info: dict, data: Path) -> dict[str, np.ndarray]:
    """onnxruntime inputs from a data file, by the input table ``nnctl export --json`` printed."""
    if data.suffix == ".npz":
        (numeric,) = info["inputs"]
        return {numeric["name"]: np.load(data)["X"].astype(np.float64)}
    with data.open(newline="") as fh:
        records = list(csv.DictReader(fh))
    feeds = {}
    for spec in info["inputs"]:
        if spec["type"] == "string":
            (column,) = spec["columns"]
            feeds[spec["name"]] = np.array([[canonical_label(r[column].strip())] for r in records], dtype=object)
        else:
            feeds[spec["name"]] = np.array([[np.nan if is_missing(r[c]) else float(r[c]) for c in spec["columns"]]
                                            for r in records])
    return feeds


def _check_matches(runs_dir: Path, run_id: str, data: Path, tmp_path: Path) -> dict:
    model_path = tmp_path / f"{run_id}.onnx"
    info = _export(runs_dir, run_id, model_path)
    model = onnx.load(str(model_path))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == IR_VERSION
    assert {o.domain or "ai.onnx": o.version for o in model.opset_import} == {"ai.onnx": OPSET, "ai.onnx.ml": ML_OPSET}
    assert json.loads({p.key: p.value for p in model.metadata_props}["feature_columns"]) == info["feature_columns"]

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, _feeds(info, data))))
    header, rows = _predict(runs_dir, run_id, data)
    assert len(rows) > 0
    if info["task"] == "classification":
        expected = np.array([[float(v) for v in r[1:]] for r in rows])
        assert header[1:] == [f"p_{c}" for c in info["classes"]]
        assert outputs["probabilities"].shape == expected.shape
        np.testing.assert_allclose(outputs["probabilities"], expected, rtol=0, atol=TOL)
        if info["combine"] != "vote":  # predict labels by the mean; a vote is checked against evaluate's rule
            _assert_same_labels(outputs["label"], [r[0] for r in rows], expected, info["classes"])
    else:
        expected = np.array([[float(v) for v in r] for r in rows])
        assert outputs["prediction"].shape == expected.shape
        np.testing.assert_allclose(outputs["prediction"], expected, rtol=TOL, atol=TOL)
    return {"info": info, "outputs": outputs, "rows": rows}


def _assert_same_labels(got, want, probabilities: np.ndarray, classes: list[str]) -> None:
    """Equal labels on every row, except where predict's two largest probabilities tie to
    within the tolerance (then float rounding decides, and either is right)."""
    column = {c: j for j, c in enumerate(classes)}
    for row, (a, b) in enumerate(zip(got, want)):
        if a != b:
            p = probabilities[row]
            assert p.max() - p[column[a]] <= TOL, f"row {row}: label {a!r}, predict says {b!r} ({p})"


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export-runs")


@pytest.mark.parametrize("config", SHIPPED)
def test_shipped_config_matches_predict_on_every_row(config: str, runs_dir: Path, tmp_path: Path) -> None:
    run_id = _train(runs_dir, CONFIGS / f"{config}.yaml")
    _check_matches(runs_dir, run_id, _data_file(config), tmp_path)


def _mixed_csv(path: Path, rows: int = 120, seed: int = 0) -> Path:
    """Two numeric columns, a string column between them, and a class target that depends on all."""
    rng = np.random.default_rng(seed)
    colours = np.array(["red", "green", "blue", "dark grey"])
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["width", "colour", "height", "kind"])
        for _ in range(rows):
            w, h, c = rng.normal(5, 2), rng.normal(-1, 3), rng.choice(colours)
            kind = "tall" if h + (c == "red") * 2 > 0 else ("wide" if w > 5 else "small")
            writer.writerow([f"{w:.4f}", c, f"{h:.4f}", kind])
    return path


def _spec(path: Path, data: Path, extra: str = "") -> Path:
    path.write_text(
        f"name: mixed\nseed: 3\ndata:\n  source: {data}\n  target: kind\n  normalize: standard\n"
        "  split: {validation: 0.2, test: 0.2}\n"
        "model:\n  layers:\n    - {units: 8, activation: leaky_relu, dropout: 0.2}\n    - {units: 6, activation: tanh}\n"
        f"training:\n  epochs: 3\n  batch_size: 16\n{extra}"
    )
    return path


def test_string_column_is_one_hot_coded_inside_the_graph(tmp_path: Path) -> None:
    data = _mixed_csv(tmp_path / "mixed.csv")
    runs = tmp_path / "runs"
    run_id = _train(runs, _spec(tmp_path / "mixed.yaml", data))
    checked = _check_matches(runs, run_id, data, tmp_path)
    inputs = {i["name"]: i for i in checked["info"]["inputs"]}
    assert inputs["X"]["columns"] == ["width", "height"]
    assert inputs["colour"]["type"] == "string"
    assert sorted(inputs["colour"]["categories"]) == ["blue", "dark grey", "green", "red"]

    # a category not seen in training codes as all zeros, as predict codes it
    unseen = tmp_path / "unseen.csv"
    unseen.write_text("width,colour,height\n4.5,purple,0.3\n6.0,red,-2.0\n")
    _check_matches(runs, run_id, unseen, tmp_path)


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent"])
def test_missing_cells_are_filled_inside_the_graph_as_predict_fills_them(strategy: str, tmp_path: Path) -> None:
    data = _mixed_csv(tmp_path / "mixed.csv")
    lines = data.read_text().splitlines()
    for j, k in enumerate(range(3, len(lines), 7)):  # blank some widths, colours and heights
        cells = lines[k].split(",")
        cells[j % 3] = "" if j % 2 else "NA"
        lines[k] = ",".join(cells)
    data.write_text("\n".join(lines) + "\n")
    runs = tmp_path / "runs"
    run_id = _train(runs, _spec(tmp_path / "mixed.yaml", data), f"data.missing={strategy}")
    checked = _check_matches(runs, run_id, data, tmp_path)
    assert len(checked["rows"]) == len(lines) - 1


def test_regression_with_a_string_column(tmp_path: Path) -> None:
    data = tmp_path / "reg.csv"
    rng = np.random.default_rng(1)
    with data.open("w") as fh:
        fh.write("a,site,b,y\n")
        for _ in range(80):
            a, b, s = rng.normal(), rng.normal(), rng.choice(["north", "south"])
            fh.write(f"{a:.5f},{s},{b:.5f},{100 + 30 * a - 10 * b + (s == 'north') * 20:.5f}\n")
    spec = tmp_path / "reg.yaml"
    spec.write_text(f"name: reg\nseed: 0\ndata: {{source: {data}, target: y, task: regression, normalize: standard, "
                    "scale_target: true}\nmodel: {layers: [{units: 8, activation: relu}]}\ntraining: {epochs: 3}\n")
    runs = tmp_path / "runs"
    checked = _check_matches(runs, _train(runs, spec), data, tmp_path)
    assert checked["outputs"]["prediction"].dtype == np.float64


@pytest.mark.parametrize("combine", ["vote", "mean", "best"])
def test_restart_ensembles_export_by_their_combine_rule(combine: str, tmp_path: Path) -> None:
    from nnctl.app.evaluation import load_model
    from nnctl.engine.metrics import predicted_classes

    data = _mixed_csv(tmp_path / "mixed.csv", rows=200, seed=4)
    runs = tmp_path / "runs"
    run_id = _train(runs, _spec(tmp_path / "e.yaml", data), "restarts.count=3", f"restarts.combine={combine}",
                    "training.epochs=20")
    checked = _check_matches(runs, run_id, data, tmp_path)
    assert checked["info"]["members"] == 3 and checked["info"]["combine"] == combine

    # the graph's label follows the combine rule, as evaluate applies it
    _, net, prep = load_model(RunStore(runs).resolve(run_id))
    feeds = _feeds(checked["info"], data)
    x = prep.transform({"width": feeds["X"][:, 0], "height": feeds["X"][:, 1], "colour": feeds["colour"][:, 0]},
                       dtype=net.dtype)
    classes = net.predict_classes(x) if combine != "best" else predicted_classes(net.predict(x))
    _assert_same_labels(checked["outputs"]["label"], list(np.array(prep.classes)[classes]),
                        np.array([[float(v) for v in r[1:]] for r in checked["rows"]]), list(prep.classes))


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    runs = tmp_path_factory.mktemp("iris-export-runs")
    return runs, _train(runs, CONFIGS / "iris.yaml")


def _one_error_line(out) -> str:
    assert out.exit_code == 2, out.output
    lines = out.error_lines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_human_output_names_inputs_and_outputs(iris_run, tmp_path: Path) -> None:
    runs, run_id = iris_run
    out = nnctl("export", run_id, "--out", tmp_path / "m.onnx", "--runs-dir", runs)
    assert out.exit_code == 0, out.output
    assert "input  X: float64 [N, 4]  sepal_length, sepal_width, petal_length, petal_width" in out.stderr
    assert "output probabilities: float32 [N, 3]" in out.stderr
    assert (tmp_path / "m.onnx").stat().st_size > 0


@pytest.mark.parametrize("args, words", [
    (["--out", "model.txt"], "cannot tell the format from the suffix '.txt'"),
    (["--out", "model.onnx", "--format", "tflite"], "--format tflite: unknown format"),
])
def test_unknown_format_is_refused(iris_run, tmp_path: Path, args: list[str], words: str) -> None:
    runs, run_id = iris_run
    args = [str(tmp_path / a) if a.startswith("model") else a for a in args]
    line = _one_error_line(nnctl("export", run_id, *args, "--runs-dir", runs))
    assert words in line
    assert list(tmp_path.iterdir()) == []


def test_missing_onnx_extra_is_one_line_naming_it(iris_run, tmp_path: Path, monkeypatch) -> None:
    import sys

    runs, run_id = iris_run
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    line = _one_error_line(nnctl("export", run_id, "--out", tmp_path / "m.onnx", "--runs-dir", runs))
    assert "pip install 'nnctl[onnx]'" in line
    assert list(tmp_path.iterdir()) == []


def test_unknown_run_is_refused(iris_run, tmp_path: Path) -> None:
    runs, _ = iris_run
    line = _one_error_line(nnctl("export", "no-such-run", "--out", tmp_path / "m.onnx", "--runs-dir", runs))
    assert "no-such-run" in line


def _constant_member(probabilities: list[float]):
    """A network without hidden layers whose softmax output is ``probabilities`` on every row."""
    from nnctl.engine.network import MLP

    net = MLP([2, len(probabilities)], [], "softmax")
    net.biases[0][...] = np.log(probabilities)
    return net


@pytest.mark.parametrize("members, combine, label", [
    # two members say x (weakly), one says y (strongly): the vote is x, the mean is y
    ([[0.4, 0.3, 0.3], [0.4, 0.3, 0.3], [0.05, 0.9, 0.05]], "vote", "x"),
    ([[0.4, 0.3, 0.3], [0.4, 0.3, 0.3], [0.05, 0.9, 0.05]], "mean", "y"),
    # one vote each for x and z: the larger summed probability (z: 0.3 + 0.6) wins
    ([[0.5, 0.1, 0.4], [0.1, 0.3, 0.6]], "vote", "z"),
    ([[0.5, 0.1, 0.4], [0.1, 0.3, 0.6]], "best", "x"),
])
def test_ensemble_graph_follows_the_combine_rule(members, combine, label) -> None:
    from nnctl.app.data import Preprocessor
    from nnctl.app.ensemble import Ensemble
    from nnctl.app.export import build_model

    prep = Preprocessor(task="classification", feature_columns=("a", "b"), target="t", categorical={},
                        normalize="none", offset=np.zeros(2), scale=np.ones(2), classes=("x", "y", "z"))
    ensemble = Ensemble([_constant_member(p) for p in members], combine, chosen=0)
    model = build_model(ensemble, prep)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {"X": np.zeros((4, 2))})
    assert list(labels) == [label] * 4
    x = np.zeros((4, 2), dtype=np.float32)
    np.testing.assert_allclose(probabilities, ensemble.predict(x), atol=TOL)
    classes = ensemble.predict_classes(x) if combine != "best" else ensemble.predict(x).argmax(axis=1)
    assert [prep.classes[c] for c in classes] == [label] * 4  # the engine agrees


def test_sigmoid_ensemble_vote_counts_a_half_as_the_second_class() -> None:
    from nnctl.app.data import Preprocessor
    from nnctl.app.ensemble import Ensemble
    from nnctl.app.export import build_model
    from nnctl.engine.network import MLP

    members = []
    for p in (0.5, 0.5, 0.2):  # p ≥ 0.5 votes for the second class: two votes for 'yes'
        net = MLP([1, 1], [], "sigmoid")
        net.biases[0][...] = np.log(p / (1 - p))
        members.append(net)
    prep = Preprocessor(task="classification", feature_columns=("a",), target="t", categorical={},
                        normalize="none", offset=np.zeros(1), scale=np.ones(1), classes=("no", "yes"))
    ensemble = Ensemble(members, "vote")
    session = ort.InferenceSession(build_model(ensemble, prep).SerializeToString(), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {"X": np.zeros((3, 1))})
    assert list(labels) == ["yes"] * 3 and list(ensemble.predict_classes(np.zeros((3, 1), np.float32))) == [1] * 3
    np.testing.assert_allclose(probabilities[:, 1], np.full(3, 0.4), atol=TOL)


def test_only_categorical_columns_and_numeric_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    data = tmp_path / "cats.csv"
    with data.open("w") as fh:
        fh.write("size,level,ok\n")
        for _ in range(90):
            size, level = rng.choice(["S", "M", "L"]), rng.choice(["1", "2.0", "3"])
            fh.write(f"{size},{level},{'yes' if size == 'L' or level == '3' else 'no'}\n")
    spec = tmp_path / "cats.yaml"
    spec.write_text(f"name: cats\nseed: 0\ndata: {{source: {data}, target: ok, categorical: [size, level]}}\n"
                    "model: {layers: [{units: 4, activation: sigmoid}], output: sigmoid}\nloss: log_loss\n"
                    "training: {epochs: 3}\n")
    runs = tmp_path / "runs"
    checked = _check_matches(runs, _train(runs, spec), data, tmp_path)
    inputs = {i["name"]: i for i in checked["info"]["inputs"]}
    assert set(inputs) == {"size", "level"}
    assert inputs["level"]["categories"] == ["1", "2", "3"]
