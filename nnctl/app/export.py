"""A trained run as an ONNX graph that computes what ``nnctl predict`` computes.

The graph is built with the ``onnx`` package (the ``onnx`` extra), in three parts:

1. the stored preprocessing, one function per stored transform, in the order ``predict``
   applies them: numeric columns in, categorical columns one-hot coded
   (``ai.onnx.ml.OneHotEncoder``; an unseen category is all zeros), units put in the
   order of ``prep.input_names``, then ``x' = (x − offset) / scale``.  This part works in
   float64, as ``Preprocessor.encode`` does, and casts to the network's dtype at its end;
2. the layers: ``h ← f(h W + b)`` per layer, dropout absent (inference);
3. the output: class probabilities (a single sigmoid unit p as (1 − p, p)) and the
   label, or the prediction ``y = a · target_scale + target_mean`` in float64.

Inputs: ``X`` (float64, shape [N, n_numeric]) holds the numeric feature columns in the
order of the run's feature columns; each categorical column is a string input of shape
[N, 1] named after the column, taking the labels as training stored them.  A restart
ensemble becomes one graph: the members' mean output, and for ``combine: vote`` each
row's majority class (ties go to the larger summed probability, then the lower index).

Missing values (``data.missing: mean | median | most_frequent``) are filled as
``Preprocessor.encode`` fills them: a NaN in ``X`` takes its column's stored fill, and a
categorical cell spelled as a missing value ('', NA, N/A, ?, null in the usual cases)
takes the one-hot units of the column's fill category.  Each stored transform has its own
function below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.app.data.labels import MISSING
from nnctl.app.errors import NnctlError, UsageError

OPSET = 17
"""The ai.onnx operator set the graph imports."""
ML_OPSET = 3
"""The ai.onnx.ml operator set (OneHotEncoder)."""
IR_VERSION = 8
"""The ONNX IR version written (readable by onnxruntime 1.13 and later)."""
FORMATS = ("onnx",)
NUMERIC_INPUT = "X"


def require_onnx():
    """The ``onnx`` module, or an NnctlError naming the extra that provides it."""
    try:
        import onnx
    except ImportError:
        raise NnctlError("ONNX export needs the onnx package: pip install 'nnctl[onnx]'") from None
    return onnx


@dataclass(frozen=True)
class ExportResult:
    """What ``nnctl export`` wrote."""

    run_id: str
    out: str
    format: str
    task: str
    feature_columns: list[str]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    classes: list[str] | None = None
    members: int = 1
    combine: str | None = None
    opset: dict[str, int] = field(default_factory=lambda: {"ai.onnx": OPSET, "ai.onnx.ml": ML_OPSET})
    ir_version: int = IR_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "out": self.out, "format": self.format, "task": self.task,
                "feature_columns": self.feature_columns, "inputs": self.inputs, "outputs": self.outputs,
                "classes": self.classes, "members": self.members, "combine": self.combine,
                "opset": self.opset, "ir_version": self.ir_version}


def export_format(out: Path, fmt: str | None) -> str:
    """The format asked for with ``--format``, else the one the suffix of ``out`` names."""
    if fmt is None:
        fmt = out.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise UsageError(f"--out {out}: cannot tell the format from the suffix '{out.suffix}'",
                             hint="name the file model.onnx, or pass --format onnx")
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: unknown format; expected one of {', '.join(FORMATS)}")
    return fmt


def export_run(store, ref: str, out: Path, fmt: str | None = None) -> ExportResult:
    """Write run ``ref``'s kept model (best weights, or its ensemble) to ``out`` as ONNX."""
    from nnctl.app.evaluation import load_model
    from nnctl.app.runs import atomic_write_bytes

    fmt = export_format(out, fmt)
    onnx = require_onnx()
    run = store.resolve(ref)
    spec, net, prep = load_model(run)
    model = build_model(net, prep, name=run.id)
    onnx.checker.check_model(model)
    try:
        atomic_write_bytes(out, model.SerializeToString())
    except OSError as exc:
        raise NnctlError(f"{out}: cannot write ({exc.strerror or exc})") from None
    members = len(getattr(net, "members", [net]))
    return ExportResult(
        run.id, str(out), fmt, prep.task, list(prep.feature_columns), graph_inputs(prep), graph_outputs(net, prep),
        list(prep.classes) if prep.classes is not None else None, members, getattr(net, "combine", None),
    )


def graph_inputs(prep) -> list[dict[str, Any]]:
    """The graph's inputs: name, element type, shape (None: any row count) and columns."""
    numeric = [c for c in prep.feature_columns if c not in prep.categorical]
    inputs = []
    if numeric:
        inputs.append({"name": numeric_input_name(prep), "type": "float64", "shape": [None, len(numeric)],
                       "columns": numeric})
    for column, categories in prep.categorical.items():
        inputs.append({"name": column, "type": "string", "shape": [None, 1], "columns": [column],
                       "categories": list(categories)})
    return inputs


def graph_outputs(net, prep) -> list[dict[str, Any]]:
    dtype = np.dtype(net.dtype).name
    if prep.task == "classification":
        return [{"name": "label", "type": "string", "shape": [None]},
                {"name": "probabilities", "type": dtype, "shape": [None, len(prep.classes)],
                 "columns": list(prep.classes)}]
    return [{"name": "prediction", "type": "float64", "shape": [None, prep.n_outputs]}]


def numeric_input_name(prep) -> str:
    """``X``, with underscores before it while a categorical column has that name."""
    name = NUMERIC_INPUT
    while name in prep.categorical:
        name = "_" + name
    return name


def build_model(net, prep, name: str = "nnctl"):
    """The ONNX ModelProto of a network (an ``MLP`` or an ``Ensemble``) and its preprocessing."""
    onnx = require_onnx()
    import nnctl

    g = _Graph(onnx)
    x = scale_inputs(g, prep, assemble_units(g, prep, fill_numbers(g, prep, numeric_input(g, prep)),
                                             one_hot_inputs(g, prep)))
    x = g.node("Cast", [x], to=g.tensor_type(net.dtype))
    members = getattr(net, "members", None)
    if members is None or getattr(net, "combine", None) == "best":
        chosen = net if members is None else members[net.chosen]
        model_outputs(g, prep, layers(g, chosen, x), chosen.sizes[-1])
    else:
        outs = [layers(g, m, x) for m in members]
        a = g.node("Mean", outs) if len(outs) > 1 else outs[0]
        model_outputs(g, prep, a, net.sizes[-1], outs if net.combine == "vote" else None)
    graph = onnx.helper.make_graph(g.nodes, name, g.inputs, g.outputs, g.initializers)
    model = onnx.helper.make_model(
        graph, producer_name="nnctl", producer_version=nnctl.__version__, ir_version=IR_VERSION,
        opset_imports=[onnx.helper.make_opsetid("", OPSET), onnx.helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        doc_string=f"nnctl run {name}: raw feature columns in, {prep.task} outputs out",
    )
    meta = {
        "task": prep.task, "feature_columns": list(prep.feature_columns),
        "inputs": graph_inputs(prep), "outputs": graph_outputs(net, prep),
        "classes": list(prep.classes) if prep.classes is not None else None,
        "combine": getattr(net, "combine", None),
    }
    onnx.helper.set_model_props(model, {k: json.dumps(v) for k, v in meta.items()})
    return model


# ---------------------------------------------------------------- the stored preprocessing
def numeric_input(g: "_Graph", prep) -> str | None:
    """The float64 input ``X`` of the numeric feature columns, or None when all are categorical."""
    numeric = [c for c in prep.feature_columns if c not in prep.categorical]
    if not numeric:
        return None
    return g.input(numeric_input_name(prep), g.onnx.TensorProto.DOUBLE, [None, len(numeric)])


MISSING_SPELLINGS = sorted({v for m in MISSING for v in (m, m.upper(), m.capitalize())})
"""The spellings of a missing categorical cell the graph recognizes (the reader's ``MISSING``
in lower, upper and capitalized case)."""


def fill_numbers(g: "_Graph", prep, x: str | None) -> str | None:
    """``X`` with each NaN replaced by its column's stored fill: Where(IsNaN(X), fill, X)."""
    numeric = [c for c in prep.feature_columns if c not in prep.categorical]
    if x is None or not any(c in prep.fills for c in numeric):
        return x
    fill = np.array([[float(prep.fills[c]) if c in prep.fills else np.nan for c in numeric]])
    return g.node("Where", [g.node("IsNaN", [x]), g.const(fill), x])


def one_hot_inputs(g: "_Graph", prep) -> dict[str, str]:
    """Per categorical column, a string input [N, 1] and its one-hot units [N, C] (float64):
    unit j is 1 where the label equals the j-th training category; an unseen label gives
    all zeros, as ``Preprocessor.encode`` codes it; a missing cell, where the column has a
    stored fill, gives the fill category's units."""
    out = {}
    for column, categories in prep.categorical.items():
        name = g.input(column, g.onnx.TensorProto.STRING, [None, 1])
        coded = g.node("OneHotEncoder", [name], domain="ai.onnx.ml", cats_strings=list(categories), zeros=1)
        units = g.node("Cast", [g.node("Flatten", [coded], axis=1)], to=g.onnx.TensorProto.DOUBLE)
        if column in prep.fills:
            absent = g.node("OneHotEncoder", [name], domain="ai.onnx.ml", cats_strings=MISSING_SPELLINGS, zeros=1)
            hit = g.node("ReduceMax", [g.node("Flatten", [absent], axis=1)], axes=[1], keepdims=1)
            filled = (np.asarray(categories) == str(prep.fills[column])).astype(np.float64)[None, :]
            units = g.node("Where", [g.node("Cast", [hit], to=g.onnx.TensorProto.BOOL), g.const(filled), units])
        out[column] = units
    return out


def assemble_units(g: "_Graph", prep, numeric: str | None, one_hot: dict[str, str]) -> str:
    """The input units [N, n_inputs] in the order of ``prep.input_names``: numeric columns
    and one-hot blocks concatenated, then permuted into the training order."""
    if not one_hot:
        assert numeric is not None
        return numeric
    blocks = ([numeric] if numeric is not None else []) + [one_hot[c] for c in prep.categorical]
    concat = g.node("Concat", blocks, axis=1)
    width = {c: len(prep.categorical.get(c, (c,))) for c in prep.feature_columns}
    start, at = {}, 0
    for column in [c for c in prep.feature_columns if c not in prep.categorical] + list(prep.categorical):
        start[column], at = at, at + width[column]
    order = [start[c] + j for c in prep.feature_columns for j in range(width[c])]
    if order == list(range(len(order))):
        return concat
    return g.node("Gather", [concat, g.const(np.array(order, dtype=np.int64))], axis=1)


def scale_inputs(g: "_Graph", prep, x: str) -> str:
    """x' = (x − offset) / scale per unit, in float64."""
    x = g.node("Sub", [x, g.const(np.asarray(prep.offset, dtype=np.float64))])
    return g.node("Div", [x, g.const(np.asarray(prep.scale, dtype=np.float64))])


# ---------------------------------------------------------------- the network and its outputs
def layers(g: "_Graph", net, x: str) -> str:
    """h ← f(h W + b) for every layer; returns the output activations a [N, units]."""
    h = x
    slopes = [*net.slopes, 0.0]
    for w, b, act, slope in zip(net.weights, net.biases, net.activations, slopes):
        h = g.node("Add", [g.node("MatMul", [h, g.const(np.asarray(w))]), g.const(np.asarray(b))])
        h = activation(g, act, h, slope)
    return h


def activation(g: "_Graph", act, z: str, slope: float = 0.01) -> str:
    """The layer's activation as one ONNX operator (none for linear)."""
    if act.name == "linear":
        return z
    if act.name == "leaky_relu":
        return g.node("LeakyRelu", [z], alpha=float(slope))
    ops = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softmax": "Softmax"}
    if act.name not in ops:
        raise NnctlError(f"activation {act.name!r} has no ONNX export")
    return g.node(ops[act.name], [z], **({"axis": -1} if act.name == "softmax" else {}))


def model_outputs(g: "_Graph", prep, a: str, units: int, voters: list[str] | None = None) -> None:
    """Graph outputs from the output activations ``a``: ``label`` and ``probabilities``
    (classification), or ``prediction`` in the target's units (regression)."""
    T = g.onnx.TensorProto
    if prep.task == "regression":
        y = g.node("Cast", [a], to=T.DOUBLE)
        y = g.node("Add", [g.node("Mul", [y, g.const(np.asarray(prep.target_scale, dtype=np.float64))]),
                           g.const(np.asarray(prep.target_mean, dtype=np.float64))], name="prediction")
        g.output(y, T.DOUBLE, [None, prep.n_outputs])
        return
    p = probabilities(g, a, units)
    if voters is None:
        index = g.node("ArgMax", [p], axis=1, keepdims=0)
    else:
        index = vote(g, [probabilities(g, v, units) for v in voters], [member_class(g, v, units) for v in voters],
                     len(prep.classes))
    classes = g.const(np.array(prep.classes, dtype=object))
    g.output(g.node("Gather", [classes, index], axis=0, name="label"), T.STRING, [None])
    g.output(g.node("Identity", [p], name="probabilities"), g.tensor_type(g.dtype_of(a)), [None, len(prep.classes)])


def probabilities(g: "_Graph", a: str, units: int) -> str:
    """Softmax rows as they are; a single sigmoid column p as (1 − p, p)."""
    if units != 1:
        return a
    one = g.const(np.ones((1, 1), dtype=g.dtype_of(a)))
    return g.node("Concat", [g.node("Sub", [one, a]), a], axis=1)


def member_class(g: "_Graph", a: str, units: int) -> str:
    """A member's class per row: argmax, or a ≥ 0.5 for one sigmoid unit (``predicted_classes``)."""
    if units != 1:
        return g.node("ArgMax", [a], axis=1, keepdims=0)
    half = g.const(np.full((1, 1), 0.5, dtype=g.dtype_of(a)))
    flat = g.node("Flatten", [g.node("GreaterOrEqual", [a, half])], axis=0)
    return g.node("Cast", [g.node("Reshape", [flat, g.const(np.array([-1], dtype=np.int64))])],
                  to=g.onnx.TensorProto.INT64)


def vote(g: "_Graph", probs: list[str], classes: list[str], n_classes: int) -> str:
    """``majority_vote``: counts_c = Σₘ [classₘ = c]; among the most-voted classes the one
    with the largest Σₘ pₘ(c) (summed in float64) wins, then the lowest index."""
    T = g.onnx.TensorProto
    every = g.const(np.arange(n_classes, dtype=np.int64).reshape(1, -1))
    column = g.const(np.array([-1, 1], dtype=np.int64))
    votes = [g.node("Cast", [g.node("Equal", [g.node("Reshape", [c, column]), every])], to=T.DOUBLE) for c in classes]
    counts = g.node("Sum", votes) if len(votes) > 1 else votes[0]
    most = g.node("ReduceMax", [counts], axes=[1], keepdims=1)
    tied = g.node("Equal", [counts, most])
    summed = g.node("Sum", [g.node("Cast", [p], to=T.DOUBLE) for p in probs])
    score = g.node("Where", [tied, summed, g.const(np.array(-np.inf, dtype=np.float64))])
    return g.node("ArgMax", [score], axis=1, keepdims=0)


class _Graph:
    """Nodes, constants, inputs and outputs of the graph being built; fresh names for each."""

    def __init__(self, onnx) -> None:
        self.onnx = onnx
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []
        self.outputs: list = []
        self.dtypes: dict[str, np.dtype] = {}
        self.count = 0

    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem.lower()}_{self.count}"

    def input(self, name: str, elem_type: int, shape: list) -> str:
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, elem_type, ["N", *shape[1:]]))
        return name

    def output(self, name: str, elem_type: int, shape: list) -> None:
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, elem_type, ["N", *shape[1:]]))

    def const(self, array: np.ndarray) -> str:
        name = self.fresh("const")
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        if array.dtype.kind == "f":
            self.dtypes[name] = array.dtype
        return name

    def node(self, op: str, inputs: list[str], domain: str = "", name: str | None = None, **attrs) -> str:
        out = name or self.fresh(op)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=self.fresh(f"{op}_node"),
                                                     domain=domain, **attrs))
        self.dtypes[out] = self._result_dtype(op, inputs, attrs)
        return out

    def _result_dtype(self, op: str, inputs: list[str], attrs: dict) -> np.dtype | None:
        if op == "Cast":
            return self.onnx.helper.tensor_dtype_to_np_dtype(attrs["to"])
        return next((self.dtypes[i] for i in inputs if self.dtypes.get(i) is not None), None)

    def dtype_of(self, name: str) -> np.dtype:
        return self.dtypes[name]

    def tensor_type(self, dtype) -> int:
        return self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
