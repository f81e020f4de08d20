"""The run store: run ids, the directory layout, atomic writes and checkpoints.

    runs/<run-id>/spec.yaml      the resolved spec
                  metrics.csv    one row per epoch, flushed as written
                  best.npz       best-validation weights + preprocessing state
                  last.npz       weights at the end of training + preprocessing state
                  summary.json   status, stop reason, metrics, versions, data hash, pid and host
                  lock           pid and host of the process training the run (flock-held)

Every file is written to a temporary name in the run directory, flushed, fsynced and
renamed over the old one, so a reader never sees a partial file; metrics.csv is
appended a flushed row at a time.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import socket
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from nnctl.app.errors import NnctlError, RunBusy, RunNotFound, StorageError

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked
    fcntl = None  # type: ignore[assignment]

RUNS_ENV = "NNCTL_RUNS_DIR"
_ID_CHARS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_runs_dir() -> Path:
    """``$NNCTL_RUNS_DIR`` or ``./runs``."""
    return Path(os.environ.get(RUNS_ENV) or "runs")


def umask_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives a new file: 0o666 less the umask."""
    try:  # Linux shows the umask without changing it
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: Path, data: bytes, shared: bool = False) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``.

    The temporary file, and so ``path``, is private to the user (0600), as files inside a
    run directory are meant to be; ``shared``: the mode follows the umask instead, as for
    a file any other tool writes (figures, predictions)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if shared:
            os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Save plain numeric/string arrays (never objects) atomically as an .npz."""
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise ValueError(f"{key}: object arrays cannot be saved")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load an .npz with ``allow_pickle=False``; a file that needs pickling is refused."""
    if path.is_file() and not zipfile.is_zipfile(path):
        raise NnctlError(f"{path}: not a valid .npz file (not a zip archive, or truncated)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise NnctlError(f"{path}: file not found") from None
    except ValueError as exc:
        raise NnctlError(f"{path}: unreadable checkpoint ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise NnctlError(f"{path}: not a valid .npz file ({exc.__class__.__name__})") from None


class RunDir:
    """One run's directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.id = path.name

    def file(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> None:
        atomic_write_bytes(self.file(name), text.encode("utf-8"))

    def write_json(self, name: str, data: Any) -> None:
        self.write_text(name, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")

    def read_json(self, name: str) -> dict[str, Any]:
        try:
            return json.loads(self.file(name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NnctlError(f"{self.file(name)}: missing (run {self.id} is incomplete)") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise NnctlError(f"{self.file(name)}: not valid JSON") from None

    def save_checkpoint(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        save_npz(self.file(name), arrays)

    def load_checkpoint(self, name: str) -> dict[str, np.ndarray]:
        return load_npz(self.file(name))

    def metrics_writer(self, columns: Sequence[str], keep_through: int | None = None) -> "MetricsWriter":
        return MetricsWriter(self.file("metrics.csv"), columns, keep_through)

    def lock(self) -> "RunLock":
        """Hold the run's lock (``with run.lock(): ...``); RunBusy if a live process has it."""
        return RunLock(self)

    def remove_temp_files(self) -> None:
        """Delete temporary files left by a process killed in the middle of a write."""
        for tmp in self.path.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def status(self) -> str:
        """The run's status from summary.json, with 'running' or 'created' read as
        'interrupted' when the process that wrote it (pid on this host) is gone;
        'broken' when summary.json is missing or unreadable."""
        try:
            summary = json.loads(self.file("summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "broken"
        return effective_status(summary)

    def read_metrics(self) -> list[dict[str, str]]:
        path = self.file("metrics.csv")
        if not path.exists():
            return []
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))


def effective_status(summary: Mapping[str, Any]) -> str:
    """summary.json's status, 'interrupted' for a run left 'running' or 'created' by a
    process on this host that no longer exists."""
    status = str(summary.get("status") or "broken")
    if status in ("running", "created") and summary.get("host") == socket.gethostname():
        pid = summary.get("pid")
        if isinstance(pid, int) and not process_alive(pid):
            return "interrupted"
    return status


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """An exclusive ``flock`` on ``<run>/lock``, released when the holder exits in any way
    (SIGKILL included); the file names the holder's pid and host.  The file itself stays,
    so two processes can never lock two different files of the same name."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        path = self.run.file("lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"{path}: cannot open the run's lock ({exc.strerror})") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode("utf-8", "replace").split()
                os.close(fd)
                who = f"pid {holder[0]} on {holder[1]}" if len(holder) >= 2 else "another process"
                raise RunBusy(f"run {self.run.id} is being trained by {who}",
                              hint="wait for it to finish, or stop that process first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None


class MetricsWriter:
    """Appends one CSV row per epoch and flushes it, so a reader always sees whole rows.

    ``keep_through``: continue an existing file, keeping its rows up to that epoch
    (rows written after the checkpoint a run resumes from are dropped)."""

    def __init__(self, path: Path, columns: Sequence[str], keep_through: int | None = None) -> None:
        self.columns = list(columns)
        if keep_through is not None and path.exists():
            with path.open(newline="", encoding="utf-8") as fh:
                rows = [r for r in csv.reader(fh)][1:]
            kept = [r for r in rows if len(r) == len(self.columns) and r[0].isdigit() and int(r[0]) <= keep_through]
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows([self.columns, *kept])
            atomic_write_bytes(path, buf.getvalue().encode("utf-8"))
            self._fh = path.open("a", newline="", encoding="utf-8")
            self._writer = csv.writer(self._fh, lineterminator="\n")
            return
        self._fh = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._fh, lineterminator="\n")
        self._writer.writerow(self.columns)
        self._fh.flush()

    def write(self, row: Mapping[str, float]) -> None:
        self._writer.writerow([_fmt(row.get(c)) for c in self.columns])
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            os.fsync(self._fh.fileno())
            self._fh.close()


class RunStore:
    """The runs directory: creates runs exclusively and resolves references to them."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()

    def create(self, name: str) -> RunDir:
        """Make a new run directory ``<YYYYmmdd-HHMMSS>-<name>-<hex>`` exclusively."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"{self.root}: cannot create runs directory ({exc.strerror})") from None
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "run"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for _ in range(100):
            run_id = f"{stamp}-{slug}-{secrets.token_hex(2)}"
            path = self.root / run_id
            try:
                path.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise StorageError(f"{self.root}: cannot create a run ({exc.strerror})") from None
            run = RunDir(path)
            try:
                run.write_json("summary.json", {"run_id": run_id, "status": "created", "created_ns": time.time_ns(),
                                                "pid": os.getpid(), "host": socket.gethostname()})
            except OSError as exc:
                raise StorageError(f"{path}: cannot write summary.json ({exc.strerror})") from None
            return run
        raise NnctlError(f"{self.root}: could not find a free run id")

    def runs(self) -> list[RunDir]:
        """Every run directory, oldest first: by the creation time in the id, then by the
        nanosecond ``created_ns`` of summary.json (runs made in the same second)."""
        if not self.root.is_dir():
            return []
        found = [RunDir(p) for p in self.root.iterdir() if p.is_dir() and _ID_CHARS.match(p.name) and not p.is_symlink()]
        return sorted(found, key=lambda r: (r.id[:15], _created_ns(r), r.id))

    def resolve(self, ref: str) -> RunDir:
        """A full id, a unique prefix of one, or ``latest`` (the newest completed run).

        A reference that is not a plain name (``..``, a slash, an absolute path) or that
        resolves outside the runs directory is refused."""
        if ref == "latest":
            for run in reversed(self.runs()):
                if run.status() == "completed":
                    return run
            raise RunNotFound(f"latest: no completed run in {self.root}", hint=self._list_hint())
        if not _ID_CHARS.match(ref) or ".." in ref:
            raise RunNotFound(f"{ref!r}: not a run id (ids are plain names inside {self.root})")
        exact = self.root / ref
        if exact.is_dir():
            return RunDir(self._inside(exact, ref))
        matches = [r for r in self.runs() if r.id.startswith(ref)]
        if len(matches) == 1:
            return RunDir(self._inside(matches[0].path, ref))
        if not matches:
            raise RunNotFound(f"{ref}: no such run in {self.root}", hint=self._list_hint())
        listed = ", ".join(r.id for r in matches[:5])
        raise RunNotFound(f"{ref}: ambiguous prefix, matches {len(matches)} runs ({listed})")

    def _list_hint(self) -> str:
        where = "" if self.root == default_runs_dir() else f" --runs-dir {self.root}"
        return f"list the runs with: nnctl runs{where}"

    def _inside(self, path: Path, ref: str) -> Path:
        root = self.root.resolve()
        real = path.resolve()
        if real.parent != root:
            raise RunNotFound(f"{ref}: resolves outside the runs directory {self.root}")
        return path


def _created_ns(run: RunDir) -> int:
    try:
        return int(json.loads(run.file("summary.json").read_text(encoding="utf-8")).get("created_ns", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def iter_columns(n_layers: int, metric: str) -> Iterable[str]:
    """The columns of metrics.csv for a network of ``n_layers`` dense layers."""
    yield from ("epoch", "lr", "train_loss", f"train_{metric}", "val_loss", f"val_{metric}")
    yield from (f"grad_norm.layer{i}" for i in range(1, n_layers + 1))
    yield "seconds"


class AtomicTextWriter:
    """A text file written under a temporary name in the target's folder and renamed over
    ``path`` only when closed without an error (``with AtomicTextWriter(path) as fh: ...``).
    ``shared``: its mode follows the umask, as in ``atomic_write_bytes``."""

    def __init__(self, path: Path, shared: bool = False) -> None:
        self.path = Path(path)
        self.shared = shared

    def __enter__(self):
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent or ".")
        if self.shared:
            os.fchmod(fd, umask_mode())
        self._fh = os.fdopen(fd, "w", encoding="utf-8", newline="")
        return self._fh

    def __exit__(self, kind, value, tb) -> None:
        try:
            if kind is None:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            self._fh.close()
            if kind is None:
                os.replace(self._tmp, self.path)
        finally:
            Path(self._tmp).unlink(missing_ok=True)
