"""Data through the CLI: a large CSV with bad cells far down is refused naming every one
(exit 2, no traceback, no run directory); a Parquet source trains and evaluates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests.cli._helpers import nnctl, nnctl_subprocess

SPEC = """\
name: data-cli
seed: 0
data: {{source: {source}, target: label, missing: {missing}}}
model: {{layers: [{{units: 4}}]}}
training: {{epochs: 3}}
"""


def _write_big_csv(path: Path, n: int) -> None:
    r = np.random.default_rng(0)
    a, b = np.round(r.normal(size=n), 3), np.round(r.normal(size=n), 3)
    labels = np.array(["yes", "no"])[r.integers(0, 2, n)]
    lines = [f"{x},{y},{c}" for x, y, c in zip(a, b, labels)]
    lines[199_995 - 2] = f"oops,{b[199_993]},{labels[199_993]}"  # line 199,995 (header: line 1)
    for line in (17, 90_001, 150_000):
        cells = lines[line - 2].split(",")
        cells[1] = ""
        lines[line - 2] = ",".join(cells)
    path.write_text("a,b,label\n" + "\n".join(lines) + "\n")


def test_bad_cells_deep_in_a_large_csv_are_all_named(tmp_path: Path) -> None:
    _write_big_csv(tmp_path / "big.csv", 200_000)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(source="big.csv", missing="error"))
    runs = tmp_path / "runs"
    out = nnctl_subprocess("train", spec, "--runs-dir", runs, timeout=120)
    assert out.exit_code == 2, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert out.error_lines() == [
        "error: big.csv, line 17, column 'b': missing value",
        "error: big.csv, line 90001, column 'b': missing value",
        "error: big.csv, line 150000, column 'b': missing value",
        "error: big.csv, line 199995, column 'a': 'oops' is not a number",
    ]
    assert not runs.exists() or not any(runs.iterdir())


def test_parquet_source_trains_and_evaluates(tmp_path: Path) -> None:
    r = np.random.default_rng(1)
    n = 200
    x = r.normal(size=n)
    table = pa.table({"x": x, "noise": r.normal(size=n), "kind": r.choice(["p", "q"], n),
                      "label": np.where(x > 0, "up", "down")})
    pq.write_table(table, tmp_path / "d.parquet")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(source="d.parquet", missing="mean"))
    runs = tmp_path / "runs"
    trained = nnctl("train", spec, "--runs-dir", runs, "--json")
    assert trained.exit_code == 0, trained.output
    run_id = trained.json()["run_id"]
    evaluated = nnctl("evaluate", run_id, "--runs-dir", runs, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert evaluated.json()["metrics"]["accuracy"] > 0.5
    on_file = nnctl("evaluate", run_id, "--runs-dir", runs, "--data", tmp_path / "d.parquet", "--json")
    assert on_file.exit_code == 0, on_file.output
    assert on_file.json()["source"].endswith("d.parquet")
    predicted = nnctl("predict", run_id, "--runs-dir", runs, "--data", tmp_path / "d.parquet", "--keep", "kind",
                      "--out", tmp_path / "p.csv", "--chunk-rows", "64")
    assert predicted.exit_code == 0, predicted.output
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0].startswith("kind,prediction,") and len(rows) == n + 1
    assert [r.split(",")[0] for r in rows[1:]] == table.column("kind").to_pylist()
    # a blank cell is filled with the training mean (data.missing: mean), in evaluate and predict alike
    (tmp_path / "holes.csv").write_text("x,noise,kind,label\n0.5,,p,up\n-0.5,0.1,q,down\n")
    holes = nnctl("predict", run_id, "--runs-dir", runs, "--data", tmp_path / "holes.csv")
    assert holes.exit_code == 0, holes.output
    assert len(holes.stdout.splitlines()) == 3


def test_predict_names_every_bad_cell_across_chunks(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'yn'[i % 2]}\n" for i in range(40)))
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(source="d.csv", missing="error"))
    runs = tmp_path / "runs"
    run_id = nnctl("train", spec, "--runs-dir", runs, "--json").json()["run_id"]
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n\n3,x\n4,\n5,6\n7,NaN\n")
    out = nnctl("predict", run_id, "--runs-dir", runs, "--data", tmp_path / "bad.csv", "--chunk-rows", "10")
    assert out.exit_code == 2
    assert out.error_lines() == [f"error: {tmp_path / 'bad.csv'}, line 4, column 'b': 'x' is not a number",
                                 f"error: {tmp_path / 'bad.csv'}, line 5, column 'b': missing value",
                                 f"error: {tmp_path / 'bad.csv'}, line 7, column 'b': 'NaN' is not a finite number"]
