"""nnctl train SPEC"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nnctl.cli import output
from nnctl.cli.options import ExecutorOpt, JsonOpt, QuietOpt, RunsDirOpt, SchedulerOpt, SetOpt, WorkersOpt

RestartsOpt = Annotated[
    Optional[int],
    typer.Option("--restarts", metavar="N", help="Train N networks from different initial weights and combine "
                 "them (sets restarts.count).", show_default=False),
]
CombineOpt = Annotated[
    Optional[str],
    typer.Option("--combine", metavar="vote|mean|best", help="How restarts are combined \\[default: vote].",
                 show_default=False),
]


def train(
    spec: Annotated[Path, typer.Argument(help="The experiment spec (YAML).", show_default=False)],
    set_: SetOpt = None,
    runs_dir: RunsDirOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    restarts: RestartsOpt = None,
    combine: CombineOpt = None,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = "local",
    scheduler: SchedulerOpt = None,
) -> None:
    """Train the network a spec describes and save it as a new run.

    Writes runs/<run-id>/ with spec.yaml (resolved), metrics.csv (one row per epoch),
    best.npz / last.npz (weights and preprocessing) and summary.json.

    With --restarts N (or restarts: {count: N, combine: vote|mean|best} in the spec)
    N networks train as independent jobs (--workers, --executor) and their ensemble is
    the run's model.

    Exit codes: 0 trained, 1 diverged or failed, 2 bad spec, data or arguments,
    130 interrupted.
    """
    with output.handle_errors(json_):
        from nnctl.app.runs import RunStore
        from nnctl.app.spec import load_spec
        from nnctl.app.training import train_from_spec
        from nnctl.cli.progress import PlainProgress, RichProgress
        from nnctl.cli.restarts import train_ensemble, with_restarts

        loaded = load_spec(spec, set_ or [])
        if restarts is not None or combine is not None:
            loaded = with_restarts(loaded, restarts, combine)
        if loaded.restarts is not None and loaded.restarts.count > 1:
            train_ensemble(loaded, spec, runs_dir, json_, quiet, workers, executor, scheduler)
            return
        callbacks = []
        if not quiet and not json_:
            callbacks.append(RichProgress(output.stderr_console()) if output.use_rich() else PlainProgress())
        result = train_from_spec(
            loaded, RunStore(runs_dir), callbacks=callbacks, base_dirs=[spec.resolve().parent],
            on_warning=output.warn,
        )
        _render(result, json_, quiet)
        if result.status == "interrupted":
            output.log(f"interrupted: the best weights so far are in {result.run_dir}")
            raise typer.Exit(output.EXIT_INTERRUPTED)
        if result.status != "completed":
            output.log(f"error: training {result.stop_reason} (loss became NaN or inf); "
                       f"the best checkpoint is kept in {result.run_dir}/best.npz")
            raise typer.Exit(1)


def _render(result, json_: bool, quiet: bool) -> None:
    if json_:
        output.print_json(result.to_dict())
        return
    if quiet:
        print(result.run_id)
        return
    head = (f"run {result.run_id}: {result.status}, stop_reason={result.stop_reason}, "
            f"epochs={result.epochs}, best_epoch={result.best_epoch}, seed={result.seed}")
    if output.use_rich(typer.get_text_stream("stdout")):
        console = output.stdout_console()
        console.print(head)
        console.print(output.metrics_table(None, result.metrics))
        console.print(f"saved to [bold]{result.run_dir}[/bold]")
    else:
        print(head)
        for line in output.metrics_lines(result.metrics):
            print(line)
        print(f"saved to {result.run_dir}")
