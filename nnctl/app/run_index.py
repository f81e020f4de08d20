"""What the runs directory holds: one run's status and headline numbers (``run_info``),
the filtered and sorted list of runs, one run in full, several side by side, removal.

A run's status is read in exactly one place, ``run_info``: a run directory whose
summary.json is missing or unreadable is ``broken``, never an error.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Sequence

import yaml

from nnctl.app.errors import UsageError
from nnctl.app.runs import RunDir, RunStore, effective_status
from nnctl.app.values import flatten

STATUSES = ("completed", "running", "interrupted", "diverged", "failed", "created", "broken")
SORT_KEYS = ("created", "name", "status", "duration", "epochs", "best_epoch", "val_loss", "val_accuracy",
             "val_rmse", "test_loss", "test_accuracy", "test_rmse", "best_metric")


@dataclass(frozen=True)
class RunInfo:
    """The headline facts of one run, as ``nnctl runs`` lists them."""

    run_id: str
    name: str | None
    status: str
    stop_reason: str | None = None
    epochs: int | None = None
    best_epoch: int | None = None
    best_metric: dict[str, float | None] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    created: str | None = None
    created_ns: int = 0
    problem: str | None = None  # why a run is broken

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sort_value(self, key: str) -> Any:
        """The value ``--sort KEY`` orders by; None sorts last."""
        if key == "created":
            return (self.run_id[:15], self.created_ns, self.run_id)
        if key == "duration":
            return self.seconds
        if key == "best_metric":
            return next(iter(self.best_metric.values()), None)
        split, _, metric = key.partition("_")
        if split in ("val", "test") and metric:
            return (self.validation if split == "val" else self.test).get(metric)
        return getattr(self, key)


def status_of(summary: dict[str, Any]) -> str:
    """The status a run's summary.json records (``broken`` when it records none), with a
    run left ``running`` or ``created`` by a process that no longer exists read as
    ``interrupted``."""
    return effective_status(summary)


def run_info(run: RunDir) -> RunInfo:
    """Read one run's summary.json into a RunInfo; missing or unreadable means ``broken``."""
    try:
        summary = json.loads(run.file("summary.json").read_text(encoding="utf-8"))
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return RunInfo(run.id, None, "broken", problem="summary.json missing")
    except (OSError, ValueError) as exc:
        return RunInfo(run.id, None, "broken", problem=f"summary.json unreadable ({type(exc).__name__})")
    status = status_of(summary)
    metrics = summary.get("metrics") if isinstance(summary.get("metrics"), dict) else {}
    seconds = summary.get("seconds")
    best = summary.get("best_metric")
    return RunInfo(
        run_id=run.id, name=summary.get("name"), status=status,
        stop_reason=summary.get("stop_reason"), epochs=summary.get("epochs"), best_epoch=summary.get("best_epoch"),
        best_metric=best if isinstance(best, dict) else {},
        validation=metrics.get("validation") or {}, test=metrics.get("test") or {},
        seconds=seconds.get("total") if isinstance(seconds, dict) else None,
        created=summary.get("created"), created_ns=_int(summary.get("created_ns")),
    )


def list_runs(
    store: RunStore, name: str | None = None, status: str | None = None, since: str | None = None,
    sort: str = "created",
) -> list[RunInfo]:
    """Runs newest first (or by ``sort``: ascending for losses and errors, descending for
    accuracy, duration ascending), filtered by name substring, status and creation time."""
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    if sort not in SORT_KEYS:
        raise UsageError(f"--sort {sort!r}: expected one of {', '.join(SORT_KEYS)}")
    cutoff = parse_since(since) if since else None
    infos = [run_info(run) for run in store.runs()]
    if name is not None:
        infos = [i for i in infos if name.lower() in (i.name or i.run_id).lower()]
    if status is not None:
        infos = [i for i in infos if i.status == status]
    if cutoff is not None:
        infos = [i for i in infos if _created_at(i) >= cutoff]
    if sort == "created":
        return list(reversed(infos))
    descending = sort.endswith("accuracy") or sort == "epochs" or sort == "best_epoch"
    present = [i for i in infos if i.sort_value(sort) is not None]
    absent = [i for i in infos if i.sort_value(sort) is None]
    return sorted(present, key=lambda i: i.sort_value(sort), reverse=descending) + absent


def parse_since(text: str) -> float:
    """``--since``: a duration back from now (``30m``, ``2h``, ``7d``) or a date / time
    (``2026-11-26``, ``2026-11-26T14:00``); the result is a Unix time."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value, unit = text[:-1], text[-1:].lower()
    if unit in units:
        try:
            return time.time() - float(value) * units[unit]
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(f"--since {text!r}: expected a duration like 30m, 2h, 7d or a date like 2026-11-26") from None


def _created_at(info: RunInfo) -> float:
    if info.created_ns:
        return info.created_ns / 1e9
    try:
        return datetime.strptime(info.run_id[:15], "%Y%m%d-%H%M%S").timestamp()
    except ValueError:
        return 0.0


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# ---------------------------------------------------------------- one run, several runs
def read_spec(run: RunDir) -> dict[str, Any]:
    """The run's resolved spec as a plain dict ({} when spec.yaml is missing or unreadable)."""
    try:
        data = yaml.safe_load(run.file("spec.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def read_summary(run: RunDir) -> dict[str, Any]:
    try:
        data = json.loads(run.file("summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def show_run(store: RunStore, ref: str) -> dict[str, Any]:
    """One run: its RunInfo, resolved spec (as a dict and as the file's text), summary and
    final metrics."""
    run = store.resolve(ref)
    info = run_info(run)
    summary = read_summary(run)
    try:
        spec_text = run.file("spec.yaml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        spec_text = ""
    return {"run": info.to_dict(), "spec": read_spec(run), "spec_yaml": spec_text, "summary": summary,
            "metrics": summary.get("metrics") or {}}


def spec_diff(specs: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The dotted keys whose values differ between the specs, with each spec's value
    (None where a spec lacks the key); the name is left out."""
    flat = [flatten(s) for s in specs]
    keys: list[str] = []
    for f in flat:
        keys.extend(k for k in f if k not in keys)
    diff = {}
    for key in keys:
        values = [f.get(key) for f in flat]
        if key != "name" and any(v != values[0] for v in values[1:]):
            diff[key] = values
    return diff


def compare_runs(store: RunStore, refs: Sequence[str]) -> dict[str, Any]:
    """Several runs side by side: each one's metrics per split, and the spec keys that differ."""
    if len(refs) < 2:
        raise UsageError("runs compare: give at least two runs")
    runs = [store.resolve(ref) for ref in refs]
    seen: set[str] = set()
    for run in runs:
        if run.id in seen:
            raise UsageError(f"runs compare: run {run.id} is given twice")
        seen.add(run.id)
    infos = [run_info(r) for r in runs]
    metrics = [read_summary(r).get("metrics") or {} for r in runs]
    return {
        "runs": [i.to_dict() for i in infos],
        "metrics": {i.run_id: m for i, m in zip(infos, metrics)},
        "spec_diff": spec_diff([read_spec(r) for r in runs]),
    }


def remove_run(store: RunStore, ref: str) -> str:
    """Delete a run's directory (resolved inside the runs directory); returns its id."""
    run = store.resolve(ref)
    # Renaming first makes the removal look atomic to readers listing the directory.
    trash = run.path.with_name(f".removing-{run.id}")
    run.path.rename(trash)
    shutil.rmtree(trash)
    return run.id
