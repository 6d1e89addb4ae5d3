"""Executors: where the independent tasks of a pipeline run (cases of an evaluation, runs of a
batch). One small interface, so a cluster executor (e.g. Ray) can be added beside these two.

An executor maps a picklable, module-level function over picklable tasks and yields the
results in the tasks' order.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Iterator, Sequence


class Executor(abc.ABC):
    """Runs `function(task)` for every task; results come back in task order."""

    #: Independent workers running at once (for reports; 1 for the local executor).
    workers: int = 1

    @abc.abstractmethod
    def map(self, function: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        """Yield function(task) for each task, in order."""


class LocalExecutor(Executor):
    """Everything in this process, one task after the other."""

    def map(self, function: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        return map(function, tasks)


def _start_worker(threads: int) -> None:
    """Process initialiser: a worker's share of the CPU threads, set once by the thread policy."""
    from angioseg.threads import apply_threads

    apply_threads(threads)


class ProcessExecutor(Executor):
    """`jobs` spawned worker processes on this machine, each with `threads` CPU threads
    (default: the thread policy's count divided among the workers, at least 1)."""

    def __init__(self, jobs: int, *, threads: int | None = None) -> None:
        from angioseg.errors import InputError

        if jobs < 1:
            raise InputError(f"jobs must be a positive integer; got {jobs}")
        self.workers = int(jobs)
        if threads is None:
            from angioseg.threads import worker_threads

            threads = worker_threads(self.workers)
        self.threads = max(1, int(threads))

    def map(self, function: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        tasks = list(tasks)
        if self.workers == 1 or len(tasks) <= 1:
            yield from map(function, tasks)
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=context, initializer=_start_worker,
                                 initargs=(self.threads,)) as pool:
            yield from pool.map(function, tasks)


def make_executor(jobs: int = 1) -> Executor:
    """The local executor for one job, a process pool for more."""
    return LocalExecutor() if jobs == 1 else ProcessExecutor(jobs)


__all__ = ["Executor", "LocalExecutor", "ProcessExecutor", "make_executor"]
