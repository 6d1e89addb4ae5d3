"""What the server holds in memory: runs, their results and annotations, and the temporary
folder for uploads and downloads.

Bounded: at most `max_runs` runs (opening one more closes the least recently used run that
has no job queued or running) and `max_results` results per run (a new result drops the
oldest). Everything on disk lives in one `tempfile.TemporaryDirectory`, removed by `close`
(and at interpreter exit at the latest).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from angioseg.errors import InputError
from angioseg.methods import Segmentation
from angioseg.serve.codec import MAX_LABEL
from angioseg.serve.jobs import JobManager
from angioseg.types import DEFAULT_LABELS, Video

#: Frames whose pick response is kept per run (each `(H, W)` float32).
PICK_CACHE = 8
OPS = ("paint", "erase", "replace")


class NotFound(LookupError):
    """A run, result, frame or job the client named does not exist (answered 404)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class WorkspaceFull(Exception):
    """Every run slot is taken by a run with a job queued or running."""


@dataclass
class Result:
    """One result of a run: the segmentation and what its downloads need."""

    id: str
    title: str
    kind: str
    segmentation: Segmentation
    folder: Path
    extra: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def public(self) -> dict[str, Any]:
        table = self.segmentation.label_table
        return {"id": self.id, "title": self.title, "kind": self.kind, "method": self.segmentation.options.get("method"),
                "options": {k: v for k, v in self.segmentation.options.items() if isinstance(v, (str, int, float, bool))},
                "label_table": {str(k): v for k, v in table.items()},
                "colours": label_colours(table),
                "has_confidence": self.segmentation.confidence is not None,
                "frames_per_second": self.segmentation.frames_per_second, **self.extra}


@dataclass
class Run:
    """An open run: its video, results (oldest first), annotations and label table."""

    id: str
    name: str
    source: Path
    uploaded: bool
    video: Video
    results: OrderedDict[str, Result] = field(default_factory=OrderedDict)
    annotations: dict[int, np.ndarray] = field(default_factory=dict)
    label_table: dict[int, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))
    picks: OrderedDict[tuple[int, str], np.ndarray] = field(default_factory=OrderedDict)

    def public(self) -> dict[str, Any]:
        video = self.video
        return {"id": self.id, "name": self.name, "source": "upload" if self.uploaded else "root",
                "frames": video.num_frames, "height": video.height, "width": video.width, "fps": video.fps,
                "pixel_spacing": video.pixel_spacing, "metadata": _plain(video.metadata),
                "results": [r.public() for r in self.results.values()], "annotated_frames": sorted(self.annotations),
                "label_table": {str(k): v for k, v in self.label_table.items()}, "colours": label_colours(self.label_table)}

    def check_frame(self, index: int) -> int:
        if not 0 <= index < self.video.num_frames:
            raise NotFound(f"frame {index} is out of range (0 to {self.video.num_frames - 1})")
        return index


def label_colours(table: dict[int, str]) -> dict[str, list[int]]:
    """The overlay colour of every label id > 0 of `table` (`angioseg.io.palette.overlay_colour`)."""
    from angioseg.io.palette import overlay_colour

    return {str(k): list(overlay_colour(k)) for k in sorted(table) if k > 0}


def _plain(metadata: dict[str, Any]) -> dict[str, Any]:
    """The JSON-friendly entries of (already scrubbed) metadata."""
    return {k: v for k, v in metadata.items() if isinstance(v, (str, int, float, bool)) or v is None}


class Workspace:
    """The server's state (module docstring)."""

    def __init__(self, root: Path, *, max_upload_bytes: int, max_runs: int = 4, max_results: int = 6,
                 device: str = "cpu", threads: int | None = None) -> None:
        if max_upload_bytes < 1 or max_runs < 1 or max_results < 1:
            raise InputError("the upload cap, the run bound and the result bound must be at least 1")
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise InputError(f"the root {root} is not a folder")
        self.max_upload_bytes = int(max_upload_bytes)
        self.max_runs, self.max_results = int(max_runs), int(max_results)
        self.device = device
        self.jobs = JobManager(threads=threads)
        self._tmp = tempfile.TemporaryDirectory(prefix="angioseg-serve-")
        self.tmp = Path(self._tmp.name)
        self.uploads = self.tmp / "uploads"
        self.uploads.mkdir()
        self._lock = threading.RLock()
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._ids = itertools.count(1)

    # ---- runs ---------------------------------------------------------------------------------
    def add_run(self, video: Video, *, name: str, source: Path, uploaded: bool) -> Run:
        """Keep `video` as a new run (closing the least recently used idle run when full)."""
        with self._lock:
            while len(self._runs) >= self.max_runs:
                idle = next((r for r in self._runs.values() if not self.jobs.busy(r.id)), None)
                if idle is None:
                    raise WorkspaceFull(f"all {self.max_runs} open runs have jobs running; wait or cancel one")
                self.remove_run(idle.id)
            run = Run(f"r{next(self._ids)}", name, source, uploaded, video)
            self._runs[run.id] = run
        self.jobs.prewarm()
        return run

    def find_run(self, source: Path) -> Run | None:
        """The open run read from `source` (a file under the root), if any."""
        with self._lock:
            return next((r for r in self._runs.values() if not r.uploaded and r.source == source), None)

    def run(self, run_id: str) -> Run:
        """The run `run_id`, now the most recently used (NotFound when unknown)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise NotFound(f"no open run {run_id!r} (it may have been closed to make room)")
            self._runs.move_to_end(run_id)
            return run

    def runs(self) -> list[Run]:
        with self._lock:
            return list(self._runs.values())

    def remove_run(self, run_id: str) -> None:
        """Close a run: its results, its files and its queued jobs."""
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is None:
            raise NotFound(f"no open run {run_id!r}")
        for job in self.jobs.jobs():
            if job.run_id == run_id:
                self.jobs.cancel(job.id)
        for result in run.results.values():
            shutil.rmtree(result.folder, ignore_errors=True)
        if run.uploaded:
            run.source.unlink(missing_ok=True)

    # ---- results ------------------------------------------------------------------------------
    def add_result(self, run_id: str, *, title: str, kind: str, segmentation: Segmentation,
                   extra: dict[str, Any] | None = None) -> str | None:
        """Keep a result of run `run_id` (dropping its oldest beyond the bound); returns its id,
        or None when the run is closed."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return None
            result_id = f"s{next(self._ids)}"
            folder = self.tmp / "results" / result_id
            folder.mkdir(parents=True)
            run.results[result_id] = Result(result_id, title, kind, segmentation, folder, dict(extra or {}))
            while len(run.results) > self.max_results:
                _, old = run.results.popitem(last=False)
                shutil.rmtree(old.folder, ignore_errors=True)
            return result_id

    def result(self, run_id: str, result_id: str) -> tuple[Run, Result]:
        """(run, result) (NotFound when either is unknown)."""
        run = self.run(run_id)
        with self._lock:
            result = run.results.get(result_id)
            if result is None:
                raise NotFound(f"no result {result_id!r} of run {run_id!r} (old results are dropped beyond {self.max_results})")
            return run, result

    def remove_result(self, run_id: str, result_id: str) -> None:
        run, _ = self.result(run_id, result_id)
        with self._lock:
            result = run.results.pop(result_id)
        shutil.rmtree(result.folder, ignore_errors=True)

    # ---- annotations --------------------------------------------------------------------------
    def add_label(self, run_id: str, name: str) -> dict[int, str]:
        """Add a label named `name` to the run's table (or find it); returns the table."""
        name = " ".join(str(name).split())
        if not name or len(name) > 40:
            raise InputError("a label name must have 1 to 40 characters")
        run = self.run(run_id)
        with self._lock:
            if name not in run.label_table.values():
                free = next((i for i in range(1, MAX_LABEL + 1) if i not in run.label_table), None)
                if free is None:
                    raise InputError(f"a run holds at most {MAX_LABEL} labels")
                run.label_table[free] = name
            return dict(run.label_table)

    def annotate(self, run_id: str, frame: int, *, op: str, label: int, mask: np.ndarray,
                 base_result: str | None = None) -> np.ndarray:
        """Apply a brush operation to the annotation of `frame`; returns the new `(H, W)` labels.

        ``paint``: pixels of the binary `mask` become `label`; ``erase``: pixels of `mask` that
        hold `label` (any label when `label` is 0) become 0; ``replace``: `mask` is the frame's
        new label map. A frame without an annotation starts from frame `frame` of
        `base_result` when given, else from nothing. An emptied frame is no longer annotated.
        """
        run = self.run(run_id)
        run.check_frame(frame)
        if op not in OPS:
            raise InputError(f"op must be one of {', '.join(OPS)}; got {op!r}")
        with self._lock:
            current = self._annotation_start(run, frame, base_result)
            known = set(run.label_table)
            if op == "replace":
                unknown = sorted(set(np.unique(mask).tolist()) - known)
                if unknown:
                    raise InputError(f"the label map holds ids {unknown} that the run's label table does not name")
                current = mask.astype(np.uint8)
            elif op == "paint":
                if label not in known or label == 0:
                    raise InputError(f"label {label} is not a label of this run; add it first")
                current[mask > 0] = label
            else:
                current[(mask > 0) & ((current == label) | (label == 0))] = 0
            if current.any():
                run.annotations[frame] = current
            else:
                run.annotations.pop(frame, None)
            return current.copy()

    def _annotation_start(self, run: Run, frame: int, base_result: str | None) -> np.ndarray:
        if frame in run.annotations:
            return run.annotations[frame].copy()
        if base_result is None:
            return np.zeros((run.video.height, run.video.width), dtype=np.uint8)
        result = run.results.get(base_result)
        if result is None:
            raise NotFound(f"result {base_result!r} is not a result of this run")
        for label, name in result.segmentation.label_table.items():
            run.label_table.setdefault(label, name)
        return result.segmentation.masks.labels[frame].astype(np.uint8)

    def annotation(self, run_id: str, frame: int) -> np.ndarray:
        """The `(H, W)` annotation of `frame` (zeros when it has none)."""
        run = self.run(run_id)
        run.check_frame(frame)
        with self._lock:
            found = run.annotations.get(frame)
            return found.copy() if found is not None else np.zeros((run.video.height, run.video.width), np.uint8)

    def clear_annotation(self, run_id: str, frame: int) -> None:
        run = self.run(run_id)
        run.check_frame(frame)
        with self._lock:
            run.annotations.pop(frame, None)

    def pick_response(self, run_id: str, frame: int, filter_name: str) -> np.ndarray:
        """The vesselness response of `frame` (`angioseg.serve.pick`), cached per run."""
        from angioseg.serve.pick import vesselness_response

        run = self.run(run_id)
        run.check_frame(frame)
        key = (frame, filter_name)
        with self._lock:
            if key in run.picks:
                run.picks.move_to_end(key)
                return run.picks[key]
        response = vesselness_response(run.video.frames[frame], filter_name, device=self.device)
        with self._lock:
            run.picks[key] = response
            while len(run.picks) > PICK_CACHE:
                run.picks.popitem(last=False)
        return response

    # ---- shutdown -----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the jobs and remove the temporary folder."""
        self.jobs.close()
        with self._lock:
            self._runs.clear()
        self._tmp.cleanup()
