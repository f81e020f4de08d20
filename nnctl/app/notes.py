"""Notes that say what nnctl chose for the user: what it inferred from the data (the task,
word columns coded as categories, the loss and output) and the columns it ignored.

Each note is one line starting with the spec key that changes the choice, as ``lint``'s
warnings do, so the CLI shows them the same way."""

from __future__ import annotations

from typing import Any, Sequence

from nnctl.app.errors import NnctlError


def inference_notes(spec: Any, prep: Any) -> list[str]:
    """What was inferred for ``spec`` (as written, before ``resolve``) from its data, whose
    fitted preprocessing is ``prep``: one note per silent choice."""
    notes = []
    task_note = inferred_task_note(spec, prep)
    if task_note:
        notes.append(task_note)
    words = [c for c in prep.categorical if c not in spec.data.categorical]
    if words:
        units = sum(len(prep.categorical[c]) for c in words)
        notes.append(f"data.categorical: column(s) {', '.join(repr(c) for c in words)} hold words, so they are "
                     f"coded as categories, one input unit per category ({units} units); list them in "
                     "data.categorical to say so")
    if spec.loss is None:  # a given loss fixes the output (squared: by the task, as the user expects)
        from nnctl.app.spec import resolve

        n_classes = len(prep.classes) if prep.classes is not None else None
        try:
            resolved = resolve(spec, prep.task, n_classes)
        except NnctlError:
            return notes  # the error itself is reported when the spec is resolved
        output = "" if spec.model.output is not None else f" with {resolved.model.output} output"
        notes.append(f"loss: not set, so {resolved.loss}{output}, the default for {prep.task}; "
                     "set loss (and model.output) to choose")
    return notes


def inferred_task_note(spec: Any, prep: Any) -> str | None:
    """The note for a target of whole numbers taken as class labels, else None."""
    if spec.data.task is not None or prep.task != "classification" or prep.target in spec.data.categorical:
        return None
    classes = list(prep.classes or ())
    if not classes or not all(_is_integer(c) for c in classes):
        return None
    return (f"data.task: not set, and the target '{prep.target}' holds only whole numbers with {len(classes)} "
            f"distinct values, so it is taken as classification with {len(classes)} classes; "
            "set data.task: regression to predict it as a number")


def with_reason(exc: NnctlError, note: str | None) -> NnctlError:
    """``exc`` with the inference that led to it added to its hint."""
    if note is None:
        return exc
    exc.hint = f"{exc.hint}; " if exc.hint else ""
    exc.hint += f"the task was inferred: {note}"
    return exc


def unused_columns_note(label: str, names: Sequence[str]) -> str:
    """The note for columns of a file that the model does not use."""
    return (f"{label}: column(s) {', '.join(repr(c) for c in names)} are not used by the model "
            "(not among its feature columns or target); ignored")


def _is_integer(label: str) -> bool:
    try:
        return float(label) == int(float(label))
    except (ValueError, OverflowError):
        return False
