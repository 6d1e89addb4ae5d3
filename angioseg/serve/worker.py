"""The worker process that runs the server's jobs, one at a time.

The server starts it as a fresh interpreter running `main` with ``FD THREADS`` (FD: its end
of a socket pair; THREADS: the thread count, 0 for the default), hands it a job over that socket
and reads back progress and the result. So a job can be cancelled at any moment by ending
the process (`angioseg.serve.jobs`), and a method that crashes cannot take the server down.

Messages from the server: a `JobRequest`, or None to stop. Messages back:
``("progress", job_id, done, total)``, ``("done", job_id, Segmentation)`` and
``("error", job_id, one-line message)``. Progress counts the frames a streaming method
(`angioseg.methods.base.StreamingSegmenter`) has stepped through; other methods report none.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Callable

from angioseg.types import Prompt, Video

#: At most this many progress messages per second.
PROGRESS_RATE = 10.0


@dataclass
class JobRequest:
    """What the worker needs for one job."""

    job_id: str
    kind: str  # "segment" or "propagate"
    spec: str
    device: str
    video: Video
    prompts: tuple[Prompt, ...] = ()
    temporal_filter: int = 0


def worker_main(connection: Connection, threads: int | None) -> None:
    """Serve job requests from `connection` until None arrives or the socket closes."""
    from angioseg.methods import available
    from angioseg.threads import apply_threads

    apply_threads(threads)
    available()  # import every method once, before the first job
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        connection.send(_run(request, connection))


def _run(request: JobRequest, connection: Connection) -> tuple[str, str, Any]:
    """Run one job; returns the final message."""
    from angioseg.errors import InputError

    try:
        return "done", request.job_id, _segment(request, _reporter(request, connection))
    except InputError as error:
        return "error", request.job_id, " ".join(str(error).split())
    except MemoryError:
        return "error", request.job_id, "the method ran out of memory on this run"
    except Exception as error:  # a bug: the code location goes to the worker's stderr, not the data
        traceback.print_tb(error.__traceback__, file=sys.stderr)
        return "error", request.job_id, f"internal error in the method ({type(error).__name__})"


def _segment(request: JobRequest, report: Callable[[int], None]) -> Any:
    from angioseg.errors import InputError
    from angioseg.pipelines.propagate import make_propagator
    from angioseg.pipelines.segment import apply_temporal_filter, make_segmenter

    if request.kind == "propagate":
        segmenter = make_propagator(request.spec, device=request.device)
    else:
        segmenter = make_segmenter(request.spec, device=request.device)
        if segmenter.needs_prompt:
            raise InputError(f"method {segmenter.name!r} propagates labelled frames: annotate a frame and use Propagate")
    _count_steps(segmenter, report)
    result = segmenter.segment(request.video, prompt=request.prompts or None)
    return apply_temporal_filter(result, request.video, radius=request.temporal_filter)


def _reporter(request: JobRequest, connection: Connection) -> Callable[[int], None]:
    """A callback sending ("progress", id, done, total) at most `PROGRESS_RATE` times a second."""
    total = request.video.num_frames + len(request.prompts)
    last = [0.0]

    def report(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 / PROGRESS_RATE:
            last[0] = now
            connection.send(("progress", request.job_id, min(done, total), total))

    return report


def _count_steps(segmenter: Any, report: Callable[[int], None]) -> None:
    """Wrap a streaming segmenter's `step` / `step_many` on this instance to report frames done."""
    from angioseg.methods.base import StreamingSegmenter

    if not isinstance(segmenter, StreamingSegmenter):
        return
    done = [0]
    step, step_many = segmenter.step, segmenter.step_many

    def counted_step(frame: Any, **kwargs: Any) -> Any:
        result = step(frame, **kwargs)
        done[0] += 1
        report(done[0])
        return result

    def counted_step_many(frames: Any) -> Any:
        results = step_many(frames)
        done[0] += len(results)
        report(done[0])
        return results

    segmenter.step = counted_step  # type: ignore[method-assign]
    segmenter.step_many = counted_step_many  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    """Entry point: ``[FD, THREADS]`` (`angioseg.serve.jobs` starts it)."""
    threads = int(argv[1])
    worker_main(Connection(int(argv[0])), threads if threads > 0 else None)
    return 0
