"""Background jobs: a queue served by one worker process (`angioseg.serve.worker`).

Jobs run one at a time, in the order they were submitted. A job is ``queued``, ``running``,
then ``done``, ``failed`` (with a one-line message) or ``cancelled``. Cancelling a queued job
drops it; cancelling a running one ends the worker process (a new one starts for the next
job), so every method, streaming or not, stops within a fraction of a second.
"""

from __future__ import annotations

import itertools
import queue
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from multiprocessing.connection import Connection
from dataclasses import dataclass, field
from typing import Any, Callable

from angioseg.serve.worker import JobRequest

TERMINAL = ("done", "failed", "cancelled")
#: Seconds between checks for a cancellation while a job runs.
POLL_S = 0.1
#: Finished jobs remembered (older ones are forgotten; their results stay with their run).
MAX_FINISHED_JOBS = 50


@dataclass
class Job:
    """One job and what the page shows of it (`public`)."""

    id: str
    run_id: str
    kind: str
    title: str
    request: JobRequest | None
    on_done: Callable[["Job", Any], str | None]
    state: str = "queued"
    done: int = 0
    total: int | None = None
    message: str = ""
    result_id: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False

    def public(self) -> dict[str, Any]:
        end = self.finished or time.time()
        fraction = None if not self.total else min(1.0, self.done / self.total)
        if self.state == "done":
            fraction = 1.0
        return {"id": self.id, "run": self.run_id, "kind": self.kind, "title": self.title, "state": self.state,
                "progress": fraction, "done": self.done, "total": self.total, "message": self.message,
                "result": self.result_id, "elapsed_s": round(end - (self.started or end), 2)}


class JobManager:
    """The job queue, its dispatcher thread and the worker process (module docstring)."""

    def __init__(self, *, threads: int | None = None) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._process: Any = None
        self._connection: Any = None
        self._closed = False

    # ---- the API the server calls -----------------------------------------------------------
    def submit(self, *, run_id: str, kind: str, title: str, request_for: Callable[[str], JobRequest],
               on_done: Callable[[Job, Any], str | None]) -> Job:
        """Queue a job; `request_for(job_id)` builds its request, `on_done(job, result)`
        stores the result and returns its id (None when its run is gone)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the job manager is closed")
            job_id = f"j{next(self._ids)}"
            job = Job(job_id, run_id, kind, title, request_for(job_id), on_done)
            self._jobs[job_id] = job
            self._forget_old()
            self._start_dispatcher()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job:
        """The job `job_id` (KeyError when unknown or forgotten)."""
        with self._lock:
            return self._jobs[job_id]

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def busy(self, run_id: str) -> bool:
        """Whether a job of run `run_id` is queued or running."""
        return any(job.run_id == run_id and job.state not in TERMINAL for job in self.jobs())

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job (a finished one is left as it is)."""
        job = self.get(job_id)
        with self._lock:
            if job.state == "queued":
                self._finish(job, "cancelled", "cancelled before it started")
            elif job.state == "running":
                job.cancel_requested = True
        return job

    def prewarm(self) -> None:
        """Start the dispatcher and the worker process now, so the first job starts at once."""
        with self._lock:
            if self._closed:
                return
            self._start_dispatcher()
        self._queue.put(_PREWARM)

    def close(self) -> None:
        """Cancel every job and stop the worker process and the dispatcher."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                if job.state == "queued":
                    self._finish(job, "cancelled", "the server stopped")
                elif job.state == "running":
                    job.cancel_requested = True
            thread = self._thread
        self._queue.put(None)
        if thread is not None:
            thread.join(timeout=10)
        self._stop_worker(graceful=True)

    # ---- the dispatcher -----------------------------------------------------------------------
    def _start_dispatcher(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="angioseg-serve-jobs", daemon=True)
            self._thread.start()

    def _forget_old(self) -> None:
        finished = [job_id for job_id, job in self._jobs.items() if job.state in TERMINAL]
        for job_id in finished[: max(0, len(finished) - MAX_FINISHED_JOBS)]:
            del self._jobs[job_id]

    def _finish(self, job: Job, state: str, message: str = "") -> None:
        job.state, job.message, job.finished = state, message, time.time()
        job.request = None

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if job is _PREWARM:
                self._prewarm_worker()
                continue
            if job.state != "queued":
                continue
            self._execute(job)

    def _prewarm_worker(self) -> None:
        if self._closed:
            return
        try:
            self._worker()
        except OSError:
            self._stop_worker()

    def _execute(self, job: Job) -> None:
        with self._lock:
            if job.state != "queued" or job.request is None:
                return
            job.state, job.started = "running", time.time()
            request, job.request = job.request, None
        try:
            connection = self._worker()
            connection.send(request)
        except (OSError, ValueError):
            self._stop_worker()
            with self._lock:
                self._finish(job, "failed", "the worker process could not start or stopped")
            return
        del request
        self._follow(job, connection)

    def _follow(self, job: Job, connection: Any) -> None:
        """Read the worker's messages for `job` until it ends or is cancelled."""
        while True:
            if job.cancel_requested:
                self._stop_worker()
                with self._lock:
                    self._finish(job, "cancelled", "cancelled")
                return
            try:
                if not connection.poll(POLL_S):
                    continue
                message = connection.recv()
            except (EOFError, OSError):
                code = self._stop_worker()
                with self._lock:
                    self._finish(job, "failed", f"the worker process stopped (exit code {code})")
                return
            if self._handle(job, message):
                return

    def _handle(self, job: Job, message: tuple[Any, ...]) -> bool:
        """Apply one worker message; True when the job has ended."""
        kind = message[0]
        if kind == "progress":
            job.done, job.total = int(message[2]), int(message[3])
            return False
        if kind == "done":
            result_id = job.on_done(job, message[2])
            with self._lock:
                if result_id is None:
                    self._finish(job, "failed", "the run was closed before the job finished")
                else:
                    job.result_id = result_id
                    self._finish(job, "done")
            return True
        with self._lock:
            self._finish(job, "failed", str(message[2]))
        return True

    # ---- the worker process -------------------------------------------------------------------
    def _worker(self) -> Any:
        """The live worker's connection, starting a worker process when none runs.

        The worker is a fresh interpreter (`angioseg.serve.worker.main` with FD and THREADS)
        talking over a socket pair, so it never re-imports the server's main module."""
        if self._process is not None and self._process.poll() is None:
            return self._connection
        self._stop_worker()
        ours, theirs = socket.socketpair()
        try:
            command = [sys.executable, "-c", _WORKER_ENTRY, str(theirs.fileno()), str(self._threads or 0)]
            self._process = subprocess.Popen(command, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._connection = Connection(ours.detach())
        return self._connection

    def _stop_worker(self, *, graceful: bool = False) -> int | None:
        """End the worker process (if any): asked to stop when `graceful` (it is idle), else
        terminated at once. Returns its exit code."""
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if process is None:
            return None
        if graceful and process.poll() is None:
            try:
                connection.send(None)
                process.wait(timeout=2)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        for stop in (process.terminate, process.kill):
            if process.poll() is not None:
                break
            stop()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                continue
        connection.close()
        return process.returncode


_PREWARM: Any = object()
_WORKER_ENTRY = "import sys; from angioseg.serve.worker import main; sys.exit(main(sys.argv[1:]))"
