"""A reader that closes its end of a pipe (``nnctl train spec.yaml | head -3``) stops the
output, not the work: writes to the closed stream are dropped from then on, so a
training goes on to completion and saves its run, and no traceback is printed."""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO


class _ClosedPipeSafe:
    """A text stream that forwards to ``stream`` until a write or flush finds the reader
    gone (BrokenPipeError), then points its file descriptor at /dev/null (so the
    interpreter's last flush at exit succeeds too) and drops everything after."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._closed = False

    def write(self, text: str) -> int:
        if not self._closed:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self._closed:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        self._closed = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...
        return getattr(self._stream, name)


def survive_closed_pipes() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` so that a closed reader stops the output only."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _ClosedPipeSafe):
            setattr(sys, name, _ClosedPipeSafe(stream))
