"""A training callback that shows progress on stderr: a rich bar on a terminal, a few
plain log lines otherwise."""

from __future__ import annotations

import sys
import time

from nnctl.engine.callbacks import Callback, TrainingState


class RichProgress(Callback):
    """A progress bar over epochs with live train/validation loss."""

    def __init__(self, console) -> None:
        self.console = console

    def on_train_begin(self, state: TrainingState) -> None:
        self.progress = _bar("epoch", self.console)
        self.progress.start()
        self.task = self.progress.add_task("", total=state.epochs)
        self.last = 0.0
        self.logs: dict[str, float] = {}

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        self.logs = logs
        now = time.monotonic()
        if now - self.last < 0.1 and state.epoch < state.epochs:
            return
        self.last = now
        self.progress.update(self.task, completed=state.epoch, description=_describe(logs))

    def on_train_end(self, state: TrainingState) -> None:
        # the last epochs may have been skipped above: the final line shows the last epoch's metrics
        self.progress.update(self.task, completed=state.epoch, description=_describe(self.logs))
        self.progress.stop()


class PlainProgress(Callback):
    """A log line about every 2 seconds, and at the first and last epoch trained (each
    epoch once)."""

    def __init__(self, every_seconds: float = 2.0) -> None:
        self.every = every_seconds

    def on_train_begin(self, state: TrainingState) -> None:
        self.last = time.monotonic()
        self.logs: dict[str, float] = {}
        self.epoch = 0
        self.shown: int | None = None

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        self.logs, self.epoch = logs, state.epoch
        now = time.monotonic()
        if self.shown is None or now - self.last >= self.every:
            self.last = now
            self._line(state.epoch, state.epochs, logs)

    def on_train_end(self, state: TrainingState) -> None:
        if self.logs and self.shown != self.epoch:
            self._line(self.epoch, state.epochs, self.logs)

    def _line(self, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        self.shown = epoch
        print(f"epoch {epoch}/{epochs} {_describe(logs)}", file=sys.stderr, flush=True)


_SHORT = {"train_loss": "loss", "train_accuracy": "acc", "train_rmse": "rmse",
          "val_loss": "val_loss", "val_accuracy": "val_acc", "val_rmse": "val_rmse"}


def _describe(logs: dict[str, float]) -> str:
    return " ".join(f"{short}={logs[k]:.4g}" for k, short in _SHORT.items() if k in logs)


class JobBar:
    """One rich progress bar over independent jobs, with the running best beside it.
    Call it as ``bar(done, total, note)``; ``close()`` stops it."""

    def __init__(self, console, what: str = "jobs") -> None:
        self.console, self.what = console, what
        self.progress = None

    def __call__(self, done: int, total: int, note: str) -> None:
        if self.progress is None:
            self.progress = _bar(self.what, self.console)
            self.progress.start()
            self.task = self.progress.add_task("", total=total)
        self.progress.update(self.task, completed=done, description=note)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class JobLines:
    """Plain progress over jobs: one stderr line per finished job."""

    def __init__(self, what: str = "jobs") -> None:
        self.what = what

    def __call__(self, done: int, total: int, note: str) -> None:
        if done:
            print(f"{self.what} {done}/{total} {note}".rstrip(), file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def job_progress(rich: bool, console_factory, what: str = "jobs"):
    """A rich bar on a terminal, plain lines otherwise."""
    return JobBar(console_factory(), what) if rich else JobLines(what)


def _bar(label: str, console):
    """A rich progress bar: label, done/total, bar, elapsed time, a live note."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn(f"[bold]{label}"), MofNCompleteColumn(), BarColumn(bar_width=24), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=console, transient=False,
    )
