"""nnctl train SPEC and nnctl resume RUN"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

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

RestartsOpt = Annotated[
    Optional[int],
    typer.Option("--restarts", metavar="N", help="Train N networks from different initial weights and combine "
                 "them (sets restarts.count).", show_default=False),
]
CombineOpt = Annotated[
    Optional[str],
    typer.Option("--combine", metavar="vote|mean|best", help="How restarts are combined [default: vote].",
                 show_default=False),
]

ForceOpt = Annotated[
    bool, typer.Option("--force", help="Resume even though the spec or the data file changed since the run began.")
]


def train(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="The experiment spec (YAML).", show_default=False)],
    set_: SetOpt = None,
    resume: Annotated[
        Optional[str],
        typer.Option("--resume", metavar="RUN", help="Continue this interrupted run of the same spec instead of starting a new one."),
    ] = None,
    force: ForceOpt = False,
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
    best.npz / last.npz (weights, preprocessing and the state to resume from) and
    summary.json.  Ctrl-C or SIGTERM stops after the current minibatch and saves a
    checkpoint (a second one stops at once); continue with `nnctl resume RUN`.

    With --restarts N (or restarts: {count: N, combine: vote|mean|best} in the spec)
    N networks train as independent jobs (--workers, --executor) and their ensemble is
    the run's model.

    Exit codes: 0 trained, 1 diverged or failed, 2 bad spec, data or arguments,
    130 interrupted.
    """
    with output.handle_errors(json_):
        from nnctl.app.runs import RunStore
        from nnctl.app.spec import load_spec
        from nnctl.app.training import resume_run, train_from_spec
        from nnctl.cli.restarts import train_ensemble, with_restarts

        loaded = load_spec(spec, set_ or [])
        if restarts is not None or combine is not None:
            loaded = with_restarts(loaded, restarts, combine)
        if loaded.restarts is not None and loaded.restarts.count > 1:
            if resume is not None:
                from nnctl.app.errors import UsageError

                raise UsageError("--resume: a run with restarts cannot be resumed; train it again")
            train_ensemble(loaded, spec, runs_dir, json_, quiet, workers, executor, scheduler)
            return
        callbacks = _progress(json_, quiet)
        store = RunStore(runs_dir)
        if resume is not None:
            result = resume_run(store, resume, spec=loaded, force=force, callbacks=callbacks,
                                on_warning=output.warn, spec_dirs=[spec.resolve().parent], on_log=output.log)
        else:
            result = train_from_spec(loaded, store, callbacks=callbacks, base_dirs=[spec.resolve().parent],
                                     on_warning=output.warn)
        _finish(result, json_, quiet, runs_dir)


def resume(
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique prefix, or path name inside the runs directory.", show_default=False)],
    force: ForceOpt = False,
    runs_dir: RunsDirOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Continue an interrupted run from its last checkpoint.

    The run goes on with its own spec.  The finished run is the same, bit for bit, as if it had never been interrupted.
    A completed run is left as it is (exit 0).  A run whose data file changed is
    refused unless --force; a run another process is training is refused.

    Exit codes: 0 trained (or already complete), 1 diverged or failed, 2 bad
    arguments, changed data or a busy run, 130 interrupted again.
    """
    with output.handle_errors(json_):
        from nnctl.app.runs import RunStore
        from nnctl.app.training import resume_run

        result = resume_run(RunStore(runs_dir), run, force=force, callbacks=_progress(json_, quiet),
                            on_warning=output.warn, on_log=output.log)
        _finish(result, json_, quiet, runs_dir)


def _progress(json_: bool, quiet: bool) -> list:
    from nnctl.cli.progress import PlainProgress, RichProgress

    if quiet or json_:
        return []
    return [RichProgress(output.stderr_console()) if output.use_rich() else PlainProgress()]


def _finish(result, json_: bool, quiet: bool, runs_dir: Path | None) -> None:
    if result.already_complete:
        output.log(f"run {result.run_id} is already complete; nothing to resume")
    _render(result, json_, quiet)
    if result.status == "interrupted":
        where = f" --runs-dir {runs_dir}" if runs_dir is not None else ""
        output.log(f"interrupted after epoch {result.epochs}; checkpoint saved in {result.run_dir}")
        output.log(f"resume with: nnctl resume {result.run_id}{where}")
        raise typer.Exit(output.EXIT_INTERRUPTED)
    if result.status != "completed":
        output.log(f"error: training {result.stop_reason} (loss became NaN or inf); "
                   f"the best checkpoint is kept in {result.run_dir}/best.npz")
        output.log("hint: lower the learning rate, or normalize the inputs (data.normalize: standard)")
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
