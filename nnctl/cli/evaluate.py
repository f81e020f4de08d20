"""nnctl evaluate RUN"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nnctl.cli import output
from nnctl.cli.options import JsonOpt, RunsDirOpt

FailOpt = Annotated[
    Optional[list[str]],
    typer.Option("--fail-under", metavar="METRIC=VALUE",
                 help="Exit 1 if METRIC (accuracy, r2) is below VALUE, e.g. --fail-under accuracy=0.95."),
]
FailOverOpt = Annotated[
    Optional[list[str]],
    typer.Option("--fail-over", metavar="METRIC=VALUE",
                 help="Exit 1 if METRIC (loss, rmse, mae) is above VALUE, e.g. --fail-over rmse=60."),
]


def evaluate(
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run id, a unique prefix of one, or 'latest'.", show_default=False)],
    data: Annotated[Optional[Path], typer.Option(
        "--data", metavar="FILE", help="Evaluate on this CSV/NPZ instead of the run's test split; "
        "columns the model does not use are ignored, with a note.")] = None,
    fail_under: FailOpt = None,
    fail_over: FailOverOpt = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", metavar="FILE.png", help="Write the confusion matrix as a PNG (classification; needs matplotlib: "
        "pip install 'nnctl[plot]').")] = None,
    runs_dir: RunsDirOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Metrics of a saved run on its test split (or on --data FILE).

    Uses the run's best weights and stored preprocessing.
    Shows loss and accuracy with the confusion matrix (classification), or loss, RMSE,
    MAE and R² in the target's units (regression).  --out FILE.png draws the confusion
    matrix.  Exit 1 when a --fail-under or
    --fail-over bar is missed, 2 for an unknown run or bad data.
    """
    with output.handle_errors(json_):
        from nnctl.app.errors import UsageError
        from nnctl.app.evaluation import evaluate_run
        from nnctl.app.runs import RunStore

        bars = _parse_bars(fail_under or [], "--fail-under", UsageError) + _parse_bars(fail_over or [], "--fail-over", UsageError)
        result = evaluate_run(RunStore(runs_dir), run, str(data) if data else None)
        failures = _check_bars(result.metrics, bars, UsageError)
        if out is not None:
            if "confusion" not in result.metrics or not result.classes:
                raise UsageError(f"--out {out}: a confusion matrix needs a classification run; run {result.run_id} "
                                 "is a regression")
            from nnctl.app.figures import confusion_png

            confusion_png(result.metrics["confusion"], result.classes, out, f"{result.run_id}: {result.source}")
            output.log(f"wrote {out}")
        if json_:
            output.print_json({**result.to_dict(), "failed": failures})
        else:
            _render(result)
        for w in result.warnings:
            output.warn(w)
        for message in failures:
            output.log(f"fail: {message}")
        if failures:
            raise typer.Exit(1)


def _parse_bars(items: list[str], flag: str, error) -> list[tuple[str, str, float]]:
    bars = []
    for item in items:
        name, sep, value = item.partition("=")
        try:
            bars.append((flag, name.strip(), float(value)))
        except ValueError:
            raise error(f"{flag} {item!r}: expected METRIC=NUMBER, e.g. accuracy=0.95") from None
        if not sep:
            raise error(f"{flag} {item!r}: expected METRIC=NUMBER, e.g. accuracy=0.95")
    return bars


def _check_bars(metrics: dict, bars, error) -> list[str]:
    failures = []
    for flag, name, bar in bars:
        if name not in metrics or not isinstance(metrics[name], (int, float)):
            known = ", ".join(k for k, v in metrics.items() if isinstance(v, float))
            raise error(f"{flag} {name}: no such metric for this run; expected one of {known}")
        value = metrics[name]
        if flag == "--fail-under" and not value >= bar:
            failures.append(f"{name} {value:.4f} is below {bar}")
        if flag == "--fail-over" and not value <= bar:
            failures.append(f"{name} {value:.4f} is above {bar}")
    return failures


def _render(result) -> None:
    m = result.metrics
    head = f"run {result.run_id} on {result.source}"
    rich = output.use_rich(typer.get_text_stream("stdout"))
    scalars = {k: v for k, v in m.items() if k != "confusion"}
    if rich:
        console = output.stdout_console()
        console.print(head)
        console.print(output.metrics_table(None, {"test": scalars}))
    else:
        print(head)
        print(" ".join(f"{k}={output.fmt(v)}" for k, v in scalars.items()))
    if "confusion" in m and result.classes:
        _confusion(m["confusion"], result.classes, rich)


def _confusion(matrix: list[list[int]], classes: list[str], rich: bool) -> None:
    if rich:
        from rich.table import Table

        output.stdout_console().print("confusion matrix (rows: true, columns: predicted)")
        table = Table()
        table.add_column("")
        for c in classes:
            table.add_column(c, justify="right")
        for i, (c, row) in enumerate(zip(classes, matrix)):
            table.add_row(c, *(f"[bold]{v}[/bold]" if i == j else str(v) for j, v in enumerate(row)))
        output.stdout_console().print(table)
        return
    width = max(len(c) for c in classes + [str(max(max(r) for r in matrix))]) + 1
    print("confusion matrix (rows: true, columns: predicted)")
    print(" " * width + "".join(c.rjust(width) for c in classes))
    for c, row in zip(classes, matrix):
        print(c.rjust(width) + "".join(str(v).rjust(width) for v in row))
