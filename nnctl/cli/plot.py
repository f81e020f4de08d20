"""nnctl plot RUN [RUN ...] [--gradients] [--out FILE.png]"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nnctl.cli import output
from nnctl.cli.charts import COLOURS, Series, line_chart
from nnctl.cli.options import JsonOpt, RunsDirOpt

LAYER_MARKERS = "123456789abcdefghijklmnopqrstuvwxyz"


def plot(
    run: Annotated[list[str], typer.Argument(metavar="RUN", help="Run ids (or unique prefixes, or 'latest').", show_default=False)],
    gradients: Annotated[bool, typer.Option(
        "--gradients", help="Per-layer gradient norms per epoch on a log scale instead of learning curves.")] = False,
    out: Annotated[Optional[Path], typer.Option(
        "--out", metavar="FILE.png", help="Also write the figure as a PNG (needs matplotlib: pip install 'nnctl[plot]').")] = None,
    width: Annotated[int, typer.Option("--width", metavar="COLUMNS", help="Chart width in characters.", min=16, max=400)] = 64,
    height: Annotated[int, typer.Option("--height", metavar="LINES", help="Chart height in lines.", min=4, max=200)] = 14,
    runs_dir: RunsDirOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Learning curves of one or more runs, drawn in the terminal.

    Training and validation loss and accuracy (or RMSE) per epoch; --gradients draws each layer's gradient norm per
    epoch on a log scale, where vanishing gradients show as early layers far below the last
    (and warns, on stderr, about vanishing or exploding gradients as training would have).
    --json prints the series instead of drawing them.
    """
    with output.handle_errors(json_):
        from nnctl.app.curves import read_curves
        from nnctl.app.runs import RunStore

        curves = read_curves(RunStore(runs_dir), run)
        if gradients:
            from nnctl.app.curves import gradient_findings

            for c in curves:
                for finding in gradient_findings(c):
                    output.warn(f"run {c.run_id}: {finding.message}")
        if out is not None:
            from nnctl.app import figures

            (figures.gradient_norms_png if gradients else figures.learning_curves_png)(curves, out)
        if json_:
            output.print_json({"runs": [c.to_dict() for c in curves], "out": str(out) if out else None})
            return
        rich = output.use_rich(sys.stdout)
        charts = [_gradient_chart(c, width, height, rich) for c in curves] if gradients else \
            _learning_charts(curves, width, height, rich)
        console = output.stdout_console() if rich else None
        for lines in charts:
            for line in lines:
                console.print(line, soft_wrap=True) if console else print(line)
            console.print() if console else print()
        if out is not None:
            output.log(f"wrote {out}")


def _learning_charts(curves, width: int, height: int, rich: bool) -> list[list[str]]:
    charts = []
    metrics = sorted({c.metric for c in curves})
    for key, title in (("loss", "loss"), *((m, m) for m in metrics)):
        series = []
        for i, c in enumerate(curves):
            if key != "loss" and c.metric != key:
                continue
            prefix = f"{c.run_id} " if len(curves) > 1 else ""
            colour = COLOURS[i % len(COLOURS)]
            for split, marker, word in (("train", "*", "training"), ("val", "o", "validation")):
                ys = c.series.get(f"{split}_{key}")
                if ys:
                    series.append(Series(f"{prefix}{word}", c.epochs, ys, marker if len(curves) == 1 else
                                         (marker if i == 0 else "+x#@%&"[(2 * i + (split == "val")) % 6]), colour))
        charts.append(line_chart(title, series, width, height, rich=rich))
    return charts


def _gradient_chart(c, width: int, height: int, rich: bool) -> list[str]:
    layers = c.grad_layers
    series = [Series(key.split(".")[1], c.epochs, c.series[key], LAYER_MARKERS[j % len(LAYER_MARKERS)],
                     COLOURS[j % len(COLOURS)]) for j, key in enumerate(layers)]
    lines = line_chart(f"{c.run_id}: gradient norm per layer", series, width, height, log=True, rich=rich)
    finite = [(k, [v for v in c.series[k] if v > 0]) for k in (layers[0], layers[-1])] if layers else []
    if len(layers) > 1 and finite[0][1] and finite[1][1]:
        first, last = finite[0][1][-1], finite[1][1][-1]
        lines.append(f"last epoch: {layers[0].split('.')[1]} / {layers[-1].split('.')[1]} = {first / last:.2g}")
    return lines
