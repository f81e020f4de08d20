"""nnctl crossval SPEC"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from nnctl.cli import output
from nnctl.cli.options import (
    ExecutorOpt,
    JsonOpt,
    QuietOpt,
    RunsDirOpt,
    SchedulerOpt,
    SetOpt,
    WorkersOpt,
)

FoldsOpt = Annotated[
    Optional[int],
    typer.Option("--folds", "-k", metavar="K", help="Number of folds k [default: search.folds of the spec, else 10].",
                 show_default=False),
]
GridOpt = Annotated[
    Optional[list[str]],
    typer.Option("--grid", metavar="KEY=V1,V2,...",
                 help="Cross-validate every value of a spec key, e.g. --grid model.layers[0].units=2,4,8. "
                 "Repeatable: every combination is tried."),
]


def crossval(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="The experiment spec (YAML).", show_default=False)],
    folds: FoldsOpt = None,
    grid: GridOpt = None,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = "local",
    scheduler: SchedulerOpt = None,
    set_: SetOpt = None,
    runs_dir: RunsDirOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """k-fold cross-validation, then the final model.

    Chooses the number of epochs (and the --grid settings), then trains the final model
    on all non-test rows.  Each fold trains on the other k-1 folds for every epoch; the chosen number of epochs
    minimizes the validation metric averaged over folds. With --grid every combination is
    cross-validated and the best mean wins (ties: the smaller network). The final model
    is saved as a run with crossval/cv.json and each fold's metrics.csv inside.

    Exit codes: 0 done, 1 training failed, 2 bad spec, data or arguments, 130 interrupted.
    """
    with output.handle_errors(json_), contextlib.ExitStack() as stack:
        from nnctl.app.executors import make_executor

        local = None
        if executor == "local":  # start the workers now: they import while the spec and data are checked
            local = make_executor(executor, workers, scheduler)
            stack.callback(local.close)
            local.start()
        from nnctl.app.runs import RunStore
        from nnctl.app.selection import crossval as run_crossval
        from nnctl.app.spec import load_spec
        from nnctl.cli.progress import PlainProgress, RichProgress, job_progress

        loaded = load_spec(spec, set_ or [])
        show = not quiet and not json_
        rich = output.use_rich()
        bar = job_progress(rich, output.stderr_console, "folds") if show else None
        callbacks = [RichProgress(output.stderr_console()) if rich else PlainProgress()] if show else []
        try:
            result = run_crossval(
                loaded, RunStore(runs_dir), folds=folds, grid=grid or [],
                make_executor=(lambda: local) if local is not None else (lambda: make_executor(executor, workers, scheduler)),
                base_dirs=[spec.resolve().parent], progress=bar, callbacks=callbacks,
                on_warning=output.warn, on_log=output.log if show else None,
            )
        finally:
            if bar is not None:
                bar.close()
        cv = result.cv
        if json_:
            output.print_json(cv)
        elif quiet:
            print(cv["run_id"])
        else:
            _render(cv)
        if cv["status"] != "completed":
            output.log(f"error: the final training {cv['final']['status']}; see {cv['final']['run_dir']}")
            raise typer.Exit(1)


def _settings(settings: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in settings.items()) or "(spec as given)"


def _pm(score: dict[str, Any]) -> str:
    return f"{output.fmt(score['mean'])} ± {output.fmt(score['std'])}"


def _render(cv: dict[str, Any]) -> None:
    rich = output.use_rich(typer.get_text_stream("stdout"))
    metric, winner = cv["metric"], cv["winner"]
    combos = cv["combinations"]
    shown = [c for c in combos if c["winner"]] if len(combos) > 1 else combos
    final = cv["final"]
    head = (f"{cv['folds']}-fold cross-validation of {cv['rows']['non_test']} non-test rows, "
            f"{cv['epochs_per_fold']} epochs per fold, metric {metric}")
    choice = (f"chosen epochs: {winner['chosen_epochs']} (argmin of the mean validation curve"
              f"{', argmax for accuracy' if cv['mode'] == 'max' else ''}); "
              f"mean of per-fold best epochs: {shown[0]['mean_best_epoch']:.1f}")
    tail = f"final model: {final['epochs']} epochs on all {cv['rows']['non_test']} non-test rows"
    if not rich:
        print(head)
        for c in shown:
            print(f"folds ({_settings(c['settings'])}):")
            for f in c["folds"]:
                print(f"fold {f['fold']}: best_epoch={f['best_epoch']} best_{metric}={output.fmt(f['best_value'])} "
                      f"at_chosen={output.fmt(f['value_at_chosen'])}")
            print(f"best {metric} per fold: {_pm(c['best_value'])}; at the chosen epoch: {_pm(c['score'])}")
        if len(combos) > 1:
            for c in combos:
                mark = " *winner" if c["winner"] else ""
                print(f"combination {_settings(c['settings'])}: {metric}={_pm(c['score'])} "
                      f"chosen_epochs={c['chosen_epochs']} parameters={c['parameters']}{mark}")
        print(choice)
        print(tail)
        for line in output.metrics_lines(final["metrics"]):
            print(line)
        print(f"saved to {final['run_dir']}")
        return
    from rich.table import Table

    console = output.stdout_console()
    console.print(head)
    for c in shown:
        table = Table(title=f"folds ({_settings(c['settings'])})", title_justify="left")
        for name in ("fold", "best epoch", f"best {metric}", f"{metric} at chosen epoch"):
            table.add_column(name, justify="right")
        for f in c["folds"]:
            table.add_row(str(f["fold"]), str(f["best_epoch"]), output.fmt(f["best_value"]),
                          output.fmt(f["value_at_chosen"]))
        table.add_row("mean ± std", f"{c['mean_best_epoch']:.1f}", _pm(c["best_value"]), _pm(c["score"]))
        console.print(table)
    if len(combos) > 1:
        table = Table(title="grid", title_justify="left")
        for name in ("combination", f"mean {metric} ± std", "chosen epochs", "parameters", ""):
            table.add_column(name)
        for c in combos:
            table.add_row(_settings(c["settings"]), _pm(c["score"]), str(c["chosen_epochs"]), str(c["parameters"]),
                          "[bold]winner[/bold]" if c["winner"] else "")
        console.print(table)
    console.print(choice)
    console.print(tail)
    console.print(output.metrics_table(None, final["metrics"]))
    console.print(f"saved to [bold]{final['run_dir']}[/bold]")
