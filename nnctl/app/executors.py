"""Where independent jobs run: local worker processes or a Dask distributed cluster,
behind one interface.

``executor.map_unordered(fn, jobs, follow)`` yields ``(index, fn(jobs[index]))`` as each
job finishes; leaving the loop early (Ctrl-C, an error) cancels the jobs not yet
finished.  ``follow(index, result)``, when given, may return further jobs, which join
the end of the queue with the next indexes (a job that continues another one's work).
Jobs start in the order they were queued.  ``fn`` must be a module-level function so
workers can import it.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import queue
import signal
import threading
from collections import deque
from typing import Any, Callable, Iterator, Protocol, Sequence

from nnctl.app.errors import UsageError
from nnctl.app.resources import default_workers

CONNECT_TIMEOUT_S = 5.0
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


Follow = Callable[[int, Any], Sequence[Any]]


class Executor(Protocol):
    workers: int

    def map_unordered(self, fn: Callable[[Any], Any], jobs: Sequence[Any],
                      follow: Follow | None = None) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


class _Indexed:
    """``(i, job) -> (i, fn(job))``, picklable for worker processes."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, item: tuple[int, Any]) -> tuple[int, Any]:
        index, job = item
        return index, self.fn(job)


class _Failure:
    """A job's exception, as the pool hands it back."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _start_worker(preload: Sequence[str]) -> None:
    # Ctrl-C goes to the whole process group; the parent alone decides what to cancel.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for module in preload:  # best effort: a job that needs a missing module fails with its own error
        try:
            importlib.import_module(module)
        except ImportError:
            pass


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
    """Jobs in ``workers`` local processes (one BLAS thread each, Ctrl-C handled by the
    parent only); with one worker, in this process.

    The processes start at ``start()`` (or the first ``map_unordered``) and serve every
    map until ``close()``.  They are forked from a fresh server process that imported
    the ``preload`` modules once ('forkserver'; 'spawn', each importing them, where the
    system has no fork), and ``start()`` returns at once, so they come up while the
    caller is still checking its input."""

    def __init__(self, workers: int | None = None, preload: Sequence[str] = ()) -> None:
        if workers is not None and workers < 1:
            raise UsageError(f"--workers {workers}: must be at least 1")
        self.workers = workers or default_workers()
        self.preload = tuple(preload)
        self._pool: Any = None
        self._starting: threading.Thread | None = None
        self._start_error: BaseException | None = None

    def start(self) -> None:
        """Start the worker processes in the background (nothing with one worker)."""
        if self.workers > 1 and self._pool is None and self._starting is None:
            self._starting = threading.Thread(target=self._make_pool, daemon=True, name="nnctl-pool-start")
            self._starting.start()

    def _make_pool(self) -> None:
        try:
            with _one_thread_environment():
                if "forkserver" in multiprocessing.get_all_start_methods():
                    context = multiprocessing.get_context("forkserver")
                    context.set_forkserver_preload(list(self.preload))
                else:  # pragma: no cover - Windows
                    context = multiprocessing.get_context("spawn")
                self._pool = context.Pool(self.workers, initializer=_start_worker, initargs=(self.preload,))
        except BaseException as exc:  # raised by _ready_pool, in the caller's thread
            self._start_error = exc

    def _ready_pool(self) -> Any:
        self.start()
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._start_error is not None:
            error, self._start_error = self._start_error, None
            raise error
        return self._pool

    def map_unordered(self, fn: Callable[[Any], Any], jobs: Sequence[Any],
                      follow: Follow | None = None) -> Iterator[tuple[int, Any]]:
        if self.workers == 1 or (len(jobs) <= 1 and follow is None and self._pool is None and self._starting is None):
            waiting, count = deque(enumerate(jobs)), len(jobs)
            while waiting:
                index, job = waiting.popleft()
                result = fn(job)
                yield index, result
                for extra in follow(index, result) if follow else ():
                    waiting.append((count, extra))
                    count += 1
            return
        pool = self._ready_pool()
        finished: queue.Queue = queue.Queue()
        indexed = _Indexed(fn)

        def submit(index: int, job: Any) -> None:
            pool.apply_async(indexed, ((index, job),), callback=finished.put,
                             error_callback=lambda exc: finished.put(_Failure(exc)))

        done = False
        try:
            for index, job in enumerate(jobs):
                submit(index, job)
            count = pending = len(jobs)
            while pending:
                item = finished.get()
                pending -= 1
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
                for extra in follow(*item) if follow else ():
                    submit(count, extra)
                    count += 1
                    pending += 1
            done = True
        finally:
            if not done:  # left early: stop the jobs still running
                self.close()

    def close(self) -> None:
        """Stop the worker processes (at once: every job handed out has finished or is
        cancelled)."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None


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

    def map_unordered(self, fn: Callable[[Any], Any], jobs: Sequence[Any],
                      follow: Follow | None = None) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        futures = [self.client.submit(fn, job, pure=False) for job in jobs]
        index = {future.key: i for i, future in enumerate(futures)}
        running = as_completed(futures, loop=self.client.loop)
        try:
            for future in running:
                i, result = index[future.key], future.result()
                yield i, result
                for extra in follow(i, result) if follow else ():
                    new = self.client.submit(fn, extra, pure=False)
                    index[new.key] = len(futures)
                    futures.append(new)
                    running.add(new)
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        self.client.close()


JOB_MODULES = ("nnctl.app.jobs", "nnctl.app.spec_schema")
"""What a worker imports to run nnctl's jobs (``jobs.run_job`` and the specs they carry)."""


def make_executor(kind: str, workers: int | None = None, scheduler: str | None = None) -> Executor:
    """``local`` (``workers`` processes, default: the cores, importing ``JOB_MODULES`` as
    they start) or ``dask`` (``scheduler`` address)."""
    if kind == "local":
        if scheduler:
            raise UsageError("--scheduler: only used with --executor dask")
        return LocalExecutor(workers, JOB_MODULES)
    if kind == "dask":
        if not scheduler:
            raise UsageError("--executor dask: needs --scheduler ADDRESS, e.g. tcp://127.0.0.1:8786")
        return DaskExecutor(scheduler)
    raise UsageError(f"--executor {kind!r}: expected local or dask")
