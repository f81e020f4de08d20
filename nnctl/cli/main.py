"""The nnctl command line: wires the commands together."""

from __future__ import annotations

import typer

from nnctl.cli import runs as runs_cli
from nnctl.cli.commands import Command, Group
from nnctl.cli.crossval import crossval
from nnctl.cli.evaluate import evaluate
from nnctl.cli.export import export
from nnctl.cli.gradcheck import gradcheck
from nnctl.cli.plot import plot
from nnctl.cli.predict import predict
from nnctl.cli.spec import schema, validate
from nnctl.cli.train import resume, train

app = typer.Typer(
    name="nnctl",
    cls=Group,
    help="Train multilayer perceptrons from YAML experiment specs.\n\n"
    "\b\n"
    "  nnctl train configs/iris.yaml      train, write runs/<run-id>/\n"
    "  nnctl evaluate latest              metrics of a saved run on its test split\n"
    "  nnctl resume RUN                   continue an interrupted run\n"
    "  nnctl crossval configs/iris.yaml   cross-validation, then the final model\n"
    "  nnctl runs                         list the runs\n\n"
    "Shell completion: nnctl --install-completion (bash, zsh, fish, PowerShell).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for _command in (train, resume, evaluate, validate, schema, gradcheck, predict, plot):
    app.command(cls=Command)(_command)
app.add_typer(runs_cli.app, name="runs")
app.command(cls=Command)(crossval)
app.command(cls=Command)(export)


def _version(value: bool) -> None:
    if value:
        from nnctl import __version__

        print(f"nnctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Train multilayer perceptrons from YAML experiment specs."""


def main() -> None:
    from nnctl.cli.pipes import survive_closed_pipes

    survive_closed_pipes()
    app()
