"""Ctrl-C and SIGTERM during training: the first asks the loop to stop after the
minibatch under way (the run is then checkpointed and can be resumed); a second one
stops at once, writing nothing more."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from nnctl.app.errors import Aborted
from nnctl.engine.callbacks import Callback, TrainingState


class StopRequest(Callback):
    """Relays a stop request to the training loop (``state.stop_requested``), also one
    that came before training began."""

    def __init__(self) -> None:
        self.state: TrainingState | None = None
        self.requested = False

    def on_train_begin(self, state: TrainingState) -> None:
        self.state = state
        state.stop_requested = state.stop_requested or self.requested

    def request(self) -> None:
        self.requested = True
        if self.state is not None:
            self.state.stop_requested = True


@contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """While inside: the first SIGINT or SIGTERM calls ``stop.request()``, the next one
    raises ``Aborted``.  Only in the main thread (elsewhere signals stay as they are)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = 0

    def handler(signum: int, frame: object) -> None:
        nonlocal received
        received += 1
        if received == 1:
            stop.request()
        else:
            raise Aborted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
