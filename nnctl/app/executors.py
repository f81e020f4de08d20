"""Where independent jobs run: local worker processes or a Dask distributed cluster,
behind one interface.

``executor.map_unordered(fn, jobs)`` yields ``(index, fn(jobs[index]))`` as each job
finishes; leaving the loop early (Ctrl-C, an error) cancels the jobs not yet finished.
``fn`` must be a module-level function so workers can import it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from typing import Any, Callable, Iterator, Protocol, Sequence

from nnctl.app.errors import UsageError

CONNECT_TIMEOUT_S = 5.0
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


class Executor(Protocol):
    workers: int

    def map_unordered(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class _Indexed:
    """``(i, job) -> (i, fn(job))``, picklable for worker processes."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, item: tuple[int, Any]) -> tuple[int, Any]:
        index, job = item
        return index, self.fn(job)


def _ignore_sigint() -> None:
    # Ctrl-C goes to the whole process group; the parent alone decides what to cancel.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _one_thread_environment() -> Iterator[None]:
    """Workers start with BLAS/OpenMP pools of one thread (they inherit the environment)."""
    saved = {name: os.environ.get(name) for name in _THREAD_VARS}
    os.environ.update({name: "1" for name in _THREAD_VARS})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class LocalExecutor:
    """Jobs in ``workers`` local processes (started fresh with 'spawn', one BLAS thread
    each, Ctrl-C handled by the parent only); with one worker, in this process."""

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise UsageError(f"--workers {workers}: must be at least 1")
        self.workers = workers or default_workers()

    def map_unordered(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        if self.workers == 1 or len(jobs) <= 1:
            for index, job in enumerate(jobs):
                yield index, fn(job)
            return
        context = multiprocessing.get_context("spawn")
        with _one_thread_environment():
            pool = context.Pool(min(self.workers, len(jobs)), initializer=_ignore_sigint)
        try:
            yield from pool.imap_unordered(_Indexed(fn), list(enumerate(jobs)), chunksize=1)
            pool.close()
            pool.join()
        finally:
            pool.terminate()  # stops jobs still running when the loop was left early

    def close(self) -> None:
        pass


class DaskExecutor:
    """Jobs on an existing Dask distributed cluster (``pip install 'nnctl[dask]'``); its
    workers need nnctl installed and the data files readable at the same paths."""

    def __init__(self, address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--executor dask needs the 'distributed' package",
                             hint="pip install 'nnctl[dask]'") from None
        try:
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except Exception as exc:  # refused, timed out, malformed address: all one answer
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UsageError(f"--scheduler {address}: cannot reach the Dask scheduler ({reason})") from None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def map_unordered(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        futures = [self.client.submit(fn, job, pure=False) for job in jobs]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures, loop=self.client.loop):
                yield index[future.key], future.result()
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        self.client.close()


def make_executor(kind: str, workers: int | None = None, scheduler: str | None = None) -> Executor:
    """``local`` (``workers`` processes, default: the cores) or ``dask`` (``scheduler`` address)."""
    if kind == "local":
        if scheduler:
            raise UsageError("--scheduler: only used with --executor dask")
        return LocalExecutor(workers)
    if kind == "dask":
        if not scheduler:
            raise UsageError("--executor dask: needs --scheduler ADDRESS, e.g. tcp://127.0.0.1:8786")
        return DaskExecutor(scheduler)
    raise UsageError(f"--executor {kind!r}: expected local or dask")
