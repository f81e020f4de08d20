"""Errors the services raise; the CLI turns each into one stderr line and an exit code."""

from __future__ import annotations


class NnctlError(Exception):
    """A user-facing error: ``message`` is one line (or one line per problem), ``hint`` optional."""

    code: int = 2
    kind: str = "error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, object]:
        return {"code": self.kind, "message": self.message, "hint": self.hint}


class SpecError(NnctlError):
    """The experiment spec is malformed: a key path and YAML line are in the message."""

    kind = "spec_error"


class DataError(NnctlError):
    """A data file cannot be used: the file, row and column are in the message."""

    kind = "data_error"


class RunNotFound(NnctlError):
    """A run id or prefix names no run in the runs directory (or would escape it)."""

    kind = "run_not_found"


class UsageError(NnctlError):
    """A command-line argument is wrong."""

    kind = "usage_error"


class TrainingFailed(NnctlError):
    """Training diverged or failed; exit code 1."""

    code = 1
    kind = "training_failed"


class StorageError(NnctlError):
    """The runs directory cannot be written (disk full, read-only); exit code 1."""

    code = 1
    kind = "storage_error"


class RunBusy(NnctlError):
    """Another live process holds the run's lock."""

    kind = "run_busy"


class Aborted(BaseException):
    """A second interrupt: stop at once, writing nothing more (files already written stay whole)."""
