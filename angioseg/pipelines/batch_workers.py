"""Where a batch's runs are segmented: one run (`process_run`) and the pools that run them.

A pool holds workers that each built the method once and take one run at a time:

- `InProcessPool`: one worker, this process (no Ray needed);
- `RayPool`: one Ray actor per worker, on a local Ray instance this pool starts and stops
  (its temporary folder removed afterwards) or on an existing cluster (``address``). Each actor
  sets its torch/BLAS/OpenCV threads to its share of the cores and asks Ray for that many CPUs,
  so N workers never oversubscribe a machine.

Both give back `RunOutcome`s; errors never escape a run: an `InputError` becomes its one-line
message, anything else one line naming the exception type.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from angioseg.errors import InputError
from angioseg.pipelines.batch_inputs import RunInput

#: Label names whose area the summary reports (the first present), else every non-background label.
AREA_LABEL = "vessel"
_ERROR_CHARS = 300


@dataclass(frozen=True)
class RunTask:
    """One run to segment: the input and the bundle folder to write (replacing an earlier one)."""

    run: RunInput
    target: Path
    dicom_seg: bool = False


@dataclass
class RunOutcome:
    """What came of one attempt at a run."""

    key: str
    ok: bool
    seconds: float
    frames: int = 0
    error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def one_line_error(error: BaseException) -> str:
    """An exception as one line: an InputError's message, else ``Type: message``, cut short."""
    text = " ".join(str(error).split())
    line = text if isinstance(error, InputError) else f"{type(error).__name__}: {text}".rstrip(": ")
    return line if len(line) <= _ERROR_CHARS else line[: _ERROR_CHARS - 3] + "..."


def area_stats(labels: np.ndarray, label_table: dict[int, str]) -> dict[str, float]:
    """Vessel area per frame in pixels: mean, min, max, std (the 'vessel' label, or every
    label but background where there is none)."""
    wanted = [k for k, name in label_table.items() if name == AREA_LABEL] or [k for k in label_table if k != 0]
    areas = np.isin(labels, wanted).reshape(labels.shape[0], -1).sum(axis=1).astype(np.float64)
    return {"area_mean_px": round(float(areas.mean()), 3), "area_min_px": float(areas.min()),
            "area_max_px": float(areas.max()), "area_std_px": round(float(areas.std()), 3)}


def write_run_bundle(task: RunTask, segmenter: Any) -> tuple[int, dict[str, Any]]:
    """Read, segment and write one run's bundle atomically (the same files `angioseg segment`
    writes); returns (frames, stats). Raises on any failure, leaving no partial output."""
    from angioseg.io.atomic import atomic_directory
    from angioseg.pipelines.batch_inputs import read_run
    from angioseg.pipelines.bundle import is_bundle, write_bundle_contents
    from angioseg.pipelines.dicom_seg import BUNDLE_SEG_NAME, export_dicom_seg
    from angioseg.pipelines.segment import segment_video

    with atomic_directory(task.target, replaceable=is_bundle) as tmp:
        video = read_run(task.run)
        result = segment_video(video, method=segmenter)
        extra = {"dicom_seg": BUNDLE_SEG_NAME} if task.dicom_seg else None
        write_bundle_contents(tmp, video, result, source=str(task.run.path), extra=extra)
        if task.dicom_seg:
            export_dicom_seg(task.run.path, result.masks.labels, result.label_table, tmp / BUNDLE_SEG_NAME)
    stats = {"fps": video.fps, **area_stats(result.masks.labels, result.label_table)}
    return video.num_frames, stats


def process_run(task: RunTask, segmenter: Any) -> RunOutcome:
    """One attempt at a run, every error caught and turned into one line."""
    start = time.perf_counter()
    try:
        frames, stats = write_run_bundle(task, segmenter)
    except Exception as error:  # noqa: BLE001 - a batch records any failure and goes on
        return RunOutcome(task.run.relative, False, time.perf_counter() - start, error=one_line_error(error))
    return RunOutcome(task.run.relative, True, time.perf_counter() - start, frames=frames, stats=stats)


class RunWorker:
    """A worker: builds the method once with its thread share, then processes runs."""

    def __init__(self, method: str, device: str, threads: int | None) -> None:
        from angioseg.pipelines.segment import make_segmenter
        from angioseg.threads import apply_threads

        if threads is not None:
            apply_threads(threads)
        self.segmenter = make_segmenter(method, device=device)

    def run(self, task: RunTask) -> RunOutcome:
        """Process one run (`process_run`)."""
        return process_run(task, self.segmenter)

    def ready(self) -> bool:
        """True once the method is built (a Ray pool waits for this before handing out runs)."""
        return True


class InProcessPool:
    """One worker in this process; a submitted run is processed when its result is asked for."""

    capacity = 1

    def __init__(self, method: str, *, device: str = "cpu") -> None:
        self.worker = RunWorker(method, device, None)
        self.queue: deque[RunTask] = deque()

    def submit(self, task: RunTask) -> None:
        """Queue a run."""
        self.queue.append(task)

    def next_outcome(self) -> RunOutcome:
        """Process the oldest queued run and return its outcome."""
        return self.worker.run(self.queue.popleft())

    def close(self) -> None:
        """Nothing to release."""


def ray_available() -> bool:
    """Whether Ray can be imported."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


RAY_MISSING = ("running a batch with more than one worker or on a cluster needs Ray: "
               "pip install 'angioseg[batch]' (or pip install ray), or use --workers 1")


def _fresh_temp_dir(key: str) -> Path:
    """An empty ``TMP/angioseg-ray-KEY`` (a random name without a key)."""
    if not key:
        return Path(tempfile.mkdtemp(prefix="angioseg-ray-"))
    folder = Path(tempfile.gettempdir()) / f"angioseg-ray-{key}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    return folder


class RayPool:
    """`workers` Ray actors, one run each at a time; a local Ray instance unless `address`."""

    def __init__(self, method: str, *, workers: int, threads: int, device: str = "cpu", address: str | None = None,
                 temp_key: str = "") -> None:
        if not ray_available():
            raise InputError(RAY_MISSING)
        import ray

        self.temp_dir: Path | None = None
        self._start(ray, workers=workers, threads=threads, address=address, temp_key=temp_key)
        options = {"num_cpus": threads, "num_gpus": self._gpu_share(ray, device, workers), "max_restarts": -1,
                   "max_task_retries": 0, "runtime_env": {"env_vars": {"OMP_NUM_THREADS": str(threads)}}}
        actor = ray.remote(RunWorker).options(**options)
        self.idle = [actor.remote(method, device, threads) for _ in range(workers)]
        self.capacity = workers
        self.in_flight: dict[Any, tuple[RunTask, Any, float]] = {}
        self._wait_ready(ray)

    def _gpu_share(self, ray: Any, device: str, workers: int) -> float:
        """GPUs each actor asks Ray for: none on the CPU, else the cluster's GPUs shared out
        (at most one each); Ray hides the GPUs from an actor that asks for none."""
        if device == "cpu":
            return 0
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if gpus <= 0:
            self.close()
            raise InputError(f"--device {device}: Ray sees no GPU on its nodes")
        return min(1.0, gpus / workers)

    def _wait_ready(self, ray: Any) -> None:
        """Block until every actor has built the method (InputError, one line, when one cannot)."""
        try:
            ray.get([worker.ready.remote() for worker in self.idle])
        except Exception as error:  # noqa: BLE001 - a worker that cannot start ends the batch in one line
            self.close()
            raise InputError(f"the Ray workers could not start: {one_line_error(error)}") from None

    def _start(self, ray: Any, *, workers: int, threads: int, address: str | None, temp_key: str) -> None:
        """Connect to `address`, or start a quiet local instance with workers * threads CPUs and
        its temporary folder at ``TMP/angioseg-ray-KEY`` (what a killed batch with the same key
        left there is removed first: the caller holds the lock that makes the key its own)."""
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False,
                 "configure_logging": True}
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                self.temp_dir = _fresh_temp_dir(temp_key)
                ray.init(num_cpus=workers * threads, _temp_dir=str(self.temp_dir), **quiet)
        except Exception as error:  # noqa: BLE001 - any start failure is one line for the user
            self._remove_temp_dir()
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise InputError(f"could not start {where}: {one_line_error(error)}") from None

    def submit(self, task: RunTask) -> None:
        """Hand a run to an idle actor (the caller keeps at most `capacity` in flight)."""
        actor = self.idle.pop()
        self.in_flight[actor.run.remote(task)] = (task, actor, time.perf_counter())

    def next_outcome(self) -> RunOutcome:
        """Wait for the first run to finish; a worker that died counts as a failed attempt."""
        import ray

        ready, _ = ray.wait(list(self.in_flight), num_returns=1)
        task, actor, start = self.in_flight.pop(ready[0])
        self.idle.append(actor)
        try:
            return ray.get(ready[0])
        except Exception as error:  # noqa: BLE001 - a crashed worker fails the attempt, not the batch
            return RunOutcome(task.run.relative, False, time.perf_counter() - start,
                              error=f"worker failed: {one_line_error(error)}")

    def close(self) -> None:
        """Disconnect (and stop a local instance), then remove its temporary folder."""
        import ray

        ray.shutdown()
        self._remove_temp_dir()

    def _remove_temp_dir(self) -> None:
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


__all__ = ["InProcessPool", "RAY_MISSING", "RayPool", "RunOutcome", "RunTask", "RunWorker", "area_stats",
           "one_line_error", "process_run", "ray_available", "write_run_bundle"]
