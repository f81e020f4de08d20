"""Bad input, tried systematically: generated malformed specs and data files must each end
in exit 2 with one-line errors naming the key path (or line, or file/row/column), no
traceback, and no run directory.

Counts per run: 300 wrong types + 200 unknown keys + 200 out-of-range values + 300 broken
YAML documents = 1,000 specs; 300 corrupted CSV files.  Generation is derandomized so a
CI failure reproduces; NNCTL_FUZZ_RANDOM=1 explores new cases.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnctl.app.spec import format_path
from tests.cli._helpers import CONFIGS, nnctl

FUZZ = settings(
    deadline=None, database=None, derandomize=not os.environ.get("NNCTL_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
WORK = Path(tempfile.mkdtemp(prefix="nnctl-fuzz-"))
RUNS = WORK / "runs"
BASES = [yaml.safe_load((CONFIGS / f"{n}.yaml").read_text()) for n in ("iris", "digits", "diabetes", "xor")]


def _leaves(node: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        return [leaf for i, v in enumerate(node) for leaf in _leaves(v, (*path, i))]
    return [(path, node)]


def _mappings(node: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [path, *(m for k, v in node.items() for m in _mappings(v, (*path, k)))]
    if isinstance(node, list):
        return [m for i, v in enumerate(node) for m in _mappings(v, (*path, i))]
    return []


def _set(doc: Any, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


def _copy(doc: Any) -> Any:
    return yaml.safe_load(yaml.safe_dump(doc))


def _run_spec(text: str) -> list[str]:
    """Train the spec text; assert the failure contract; return the error lines."""
    path = WORK / "spec.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    out = nnctl("train", path, "--runs-dir", RUNS)
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output and "internal error" not in out.output, out.output
    lines = out.stderr.splitlines()
    assert lines and all(line.startswith(("error: ", "hint: ", "warning: ")) for line in lines), out.stderr
    assert not RUNS.exists() or not any(RUNS.iterdir()), "a run directory was left behind"
    return [line for line in lines if line.startswith("error: ")]


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda s: s not in ("random", "full"))
_WRONG = {
    "str": st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=2),
                     st.dictionaries(st.just("k"), st.integers(), min_size=1, max_size=1)),
    "number": st.one_of(_text, st.booleans(), st.lists(st.integers(), max_size=2),
                        st.dictionaries(st.just("k"), st.integers(), min_size=1, max_size=1)),
    "bool": st.one_of(st.integers(), _text, st.floats(allow_nan=False), st.lists(st.integers(), max_size=2)),
}


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    return None


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_a_wrong_type_at_any_key_is_named(data) -> None:
    doc = _copy(data.draw(st.sampled_from(BASES)))
    path, value = data.draw(st.sampled_from([(p, v) for p, v in _leaves(doc) if _kind(v)]))
    wrong = data.draw(_WRONG[_kind(value)])
    if _kind(value) == "number" and isinstance(value, float) and isinstance(wrong, int):
        return  # an integer is a valid float
    if path[-1] == "batch_size" and isinstance(wrong, int) and not isinstance(wrong, bool) and wrong > 0:
        return  # "full" or a positive number of rows
    _set(doc, path, wrong)
    errors = _run_spec(yaml.safe_dump(doc, allow_unicode=True))
    key = format_path(path)
    parent = format_path(path[:-1])
    assert any(line.startswith((f"error: {key}", f"error: {parent}")) for line in errors), (key, errors)


@settings(FUZZ, max_examples=200)
@given(data=st.data(), key=st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=10))
def test_an_unknown_key_anywhere_is_named(data, key) -> None:
    doc = _copy(data.draw(st.sampled_from(BASES)))
    where = data.draw(st.sampled_from(_mappings(doc)))
    key = f"zz_{key}"
    _set(doc, (*where, key), data.draw(st.one_of(st.integers(), _text, st.none())))
    errors = _run_spec(yaml.safe_dump(doc, allow_unicode=True))
    assert any(line.startswith(f"error: {format_path((*where, key))}: unknown key") for line in errors), errors


_OUT_OF_RANGE = [
    (("model", "layers", 0, "units"), [0, -1, -(10**6), 100_001, 10**12, 1.5, math.inf]),
    (("model", "layers", 0, "dropout"), [1, 1.0, 1.5, -0.1, math.nan, math.inf]),
    (("model", "input_dropout"), [1, 2.5, -1e-9, math.nan]),
    (("optimizer", "lr"), [0, -0.1, -1e-12, math.nan, math.inf, -math.inf, 1e7]),
    (("training", "batch_size"), [0, -5, 10**12, 2.5]),
    (("training", "epochs"), [0, -1, 10**12, math.nan]),
    (("data", "split", "validation"), [1, 1.5, -0.2, math.nan]),
    (("data", "split", "test"), [1, 7, -1, math.inf]),
    (("seed",), [-1, 2**64, math.nan]),
    (("regularization", "l2"), [-1, math.nan, math.inf]),
    (("checkpoint", "every_seconds"), [-1, math.nan, 1e12]),
]


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_an_out_of_range_number_is_named(data) -> None:
    doc = _copy(data.draw(st.sampled_from(BASES[:3])))  # each has a hidden layer
    path, values = data.draw(st.sampled_from(_OUT_OF_RANGE))
    for part in path[:-1]:  # create optional sections
        node = doc
        for p in path[: path.index(part) + 1]:
            node = node.setdefault(p, {}) if isinstance(node, dict) else node[p]
    _set(doc, path, data.draw(st.sampled_from(values)))
    errors = _run_spec(yaml.safe_dump(doc))
    assert any(line.startswith(f"error: {format_path(path)}: ") for line in errors), errors


_BROKEN_LINES = ["key: [unclosed", "\tindented: with a tab", "a: b: c", "- a list item", "{", "'unclosed",
                 "x: !!python/object/apply:os.system [echo hi]", "x: !!binary aGVsbG8=", "x: !custom 1",
                 "name: twice", "seed: &a 1\nalias: *b", "]]]", ": no key", "x: @reserved", "x: `tick`"]


def _deep(depth: int, kind: str) -> str:
    return "a: " + ("[" * depth + "]" * depth if kind == "list" else "{b: " * depth + "1" + "}" * depth)


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_a_broken_document_is_refused_with_a_line_or_key(data) -> None:
    base = yaml.safe_dump(data.draw(st.sampled_from(BASES)), sort_keys=False)
    kind = data.draw(st.sampled_from(["line", "empty", "root", "deep", "huge", "duplicate", "bytes"]))
    if kind == "line":
        lines = base.splitlines()
        at = data.draw(st.integers(1, len(lines)))
        lines.insert(at, data.draw(st.sampled_from(_BROKEN_LINES)))
        text = "\n".join(lines) + "\n"
    elif kind == "empty":
        text = data.draw(st.sampled_from(["", " ", "\n\n", "# only a comment\n", "---\n", "...\n"]))
    elif kind == "root":
        text = data.draw(st.sampled_from(["- 1\n- 2\n", "42\n", "just text\n", "null\n", "[a, b]\n", "'x'\n"]))
    elif kind == "deep":
        text = _deep(data.draw(st.integers(200, 20_000)), data.draw(st.sampled_from(["list", "map"])))
    elif kind == "huge":
        n = data.draw(st.integers(50_000, 150_000))  # over the 1 MB limit
        text = base + "extra:\n" + "".join(f"  key_number_{i}: {i}\n" for i in range(n))
    elif kind == "duplicate":
        lines = base.splitlines()
        top = [line for line in lines if line and not line.startswith(" ")]
        text = base + data.draw(st.sampled_from(top)) + "\n"
    else:
        raw = data.draw(st.binary(min_size=1, max_size=64)).replace(b"\n", b" ")
        text = (base + "name: ").encode() + raw + b"\n"
        text = text.decode("utf-8", "surrogateescape")
    errors = _run_spec(text)
    assert len(errors) <= 25, f"{len(errors)} error lines"
    assert all(len(line) < 400 for line in errors)


def test_a_large_document_under_the_size_limit_gets_one_error() -> None:
    base = (CONFIGS / "iris.yaml").read_text()
    errors = _run_spec(base + "extra:\n" + "".join(f"  k{i}: {i}\n" for i in range(3000)))
    assert len(errors) == 1 and errors[0].startswith("error: extra: unknown key (line ")


# ---------------------------------------------------------------- data files

HEADER = "f1,f2,color,label"


def _csv_rows(n: int, seed: int) -> list[str]:
    import random

    rnd = random.Random(seed)
    return [f"{rnd.gauss(i % 3, 1):.3f},{rnd.gauss(-(i % 3), 1):.3f},{rnd.choice(['red', 'green', 'blue'])},{'abc'[i % 3]}"
            for i in range(n)]


DATA_SPEC = """\
name: fuzz-data
data: {source: data.csv, target: label, categorical: [color], normalize: standard}
model: {layers: [{units: 4}]}
training: {epochs: 1}
"""


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_a_corrupted_data_file_is_refused_naming_file_row_and_column(data) -> None:
    rows = _csv_rows(data.draw(st.integers(30, 80)), data.draw(st.integers(0, 10**6)))
    kind = data.draw(st.sampled_from(["empty", "header", "ragged", "cell", "nonfinite", "latin1", "one_class",
                                      "few_rows", "blank_cell"]))
    expect: str
    i = data.draw(st.integers(0, len(rows) - 1))
    line = i + 2  # 1-based, after the header
    col = data.draw(st.integers(0, 1))
    name = ("f1", "f2")[col]
    if kind == "empty":
        body, expect = b"", "data.csv: empty file"
    elif kind == "header":
        body, expect = (HEADER + "\n").encode(), "data.csv: header only, no data rows"
    elif kind == "ragged":
        cells = rows[i].split(",")
        rows[i] = ",".join(cells[: data.draw(st.integers(1, 3))] if data.draw(st.booleans()) else [*cells, "9"])
        body, expect = "\n".join([HEADER, *rows]).encode(), f"data.csv, line {line}: "
    elif kind in ("cell", "nonfinite", "blank_cell"):
        word = {"cell": data.draw(st.sampled_from(["abc", "1.2.3", "--1", "0x", "1,5".replace(",", ";"), "yes"])),
                "nonfinite": data.draw(st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])),
                "blank_cell": ""}[kind]
        cells = rows[i].split(",")
        cells[col] = word
        rows[i] = ",".join(cells)
        body, expect = "\n".join([HEADER, *rows]).encode(), f"data.csv, line {line}, column '{name}': "
    elif kind == "latin1":
        cells = rows[i].split(",")
        cells[2] = "rouge-fonc\xe9"
        rows[i] = ",".join(cells)
        body = "\n".join([HEADER, *rows]).encode("latin-1")
        expect = f"data.csv, line {line}: byte 0xe9 is not valid UTF-8"
    elif kind == "one_class":
        rows = [r[:-1] + "a" for r in rows]
        body, expect = "\n".join([HEADER, *rows]).encode(), "data.csv: target 'label' has only one class ('a')"
    else:  # so few rows that a split is left empty
        body, expect = "\n".join([HEADER, *rows[:2]]).encode(), "data.csv: split."
    if data.draw(st.booleans()):
        body = b"\xef\xbb\xbf" + body  # a byte-order mark changes nothing
    (WORK / "data.csv").write_bytes(body)
    errors = _run_spec(DATA_SPEC)
    assert any(line.startswith(f"error: {expect}") or line.startswith(f"error: {WORK / expect}")
               for line in errors), (kind, expect, errors)


def test_a_byte_order_mark_is_read_as_utf8() -> None:
    (WORK / "data.csv").write_bytes(b"\xef\xbb\xbf" + "\n".join([HEADER, *_csv_rows(60, 1)]).encode())
    out = nnctl("train", WORK / "spec-ok.yaml", "--runs-dir", WORK / "ok-runs", "--json") if (
        WORK / "spec-ok.yaml").write_text(DATA_SPEC) else None
    assert out is not None and out.exit_code == 0, out.output if out else ""
    assert out.json()["task"] == "classification"
