"""`angioseg batch`: many runs into one output folder, on Ray workers, resumable after a crash.

OUT/
    batch.sqlite          the manifest (`angioseg.pipelines.batch_manifest`): one row per run
    runs/NAME-HASH/       one bundle per run, as `angioseg segment` writes it
    summary.csv           one row per run: frames, fps, vessel area per frame, status, seconds, error
    summary.jsonl         the same, one JSON object per line

How it survives ``kill -9``: the driver alone writes the manifest, one transaction per change;
a worker writes a run's bundle into a temporary folder and renames it into place, and the
driver then commits the row done. Started again with the same command, the batch turns rows
left running back to pending, removes temporary folders, redoes done rows whose bundle is gone,
and processes what is pending; done rows are never redone. A failing run is retried `retries`
times, then recorded failed with its one-line error, and the batch goes on.

Discovery: `angioseg.pipelines.batch_inputs`; workers: `angioseg.pipelines.batch_workers`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

from angioseg.errors import InputError
from angioseg.pipelines.batch_inputs import Discovery, content_hash, discover
from angioseg.pipelines.batch_manifest import MANIFEST_NAME, Manifest, Row
from angioseg.pipelines.batch_workers import RAY_MISSING, InProcessPool, RayPool, RunOutcome, RunTask, ray_available

RUNS_FOLDER = "runs"
SUMMARY_COLUMNS = ("run", "input", "frames", "fps", "area_mean_px", "area_min_px", "area_max_px", "area_std_px",
                   "status", "seconds", "error")
_OWN_NAMES = frozenset({MANIFEST_NAME, f"{MANIFEST_NAME}-wal", f"{MANIFEST_NAME}-shm", RUNS_FOLDER, "summary.csv",
                        "summary.jsonl", ".batch.lock"})


class Progress(Protocol):
    """What the batch reports progress to (a tqdm bar fits)."""

    def update(self, n: int = 1) -> Any: ...

    def close(self) -> Any: ...


@dataclass
class BatchResult:
    """The end of a batch: rows per status, the failures (input, error), what discovery skipped."""

    counts: dict[str, int]
    failures: list[tuple[str, str]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    processed: int = 0


# ----------------------------------------------------------------------------- output folder


def check_batch_out(out: Path, inputs: Sequence[Path]) -> Path:
    """Refuse an output folder that is an input, inside an input folder, holds an input, or is a
    non-empty folder that is not a batch output (one line, InputError)."""
    from angioseg.io.atomic import check_output_location

    target = check_output_location(out).resolve()
    for source in inputs:
        source = source.resolve()
        if source == target or target in source.parents:
            raise InputError(f"output folder {out} is or contains the input {source}; choose a folder outside it")
        if source.is_dir() and source in target.parents:
            raise InputError(f"output folder {out} lies inside the input folder {source}; choose a folder outside it")
    if target.is_dir() and any(target.iterdir()):
        if not all(p.name in _OWN_NAMES for p in target.iterdir()):
            raise InputError(f"output folder {out} is not empty and is not an angioseg batch; choose a new or empty folder")
    return target


@contextlib.contextmanager
def batch_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT/.batch.lock`` (flock) for the batch: a second batch into OUT fails at once.
    A killed holder releases it with its death."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    handle = os.open(out / ".batch.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another angioseg batch is writing {out}; wait for it to finish") from None
        yield
    finally:
        os.close(handle)


def remove_temporaries(runs_folder: Path) -> None:
    """Remove what killed writers left in OUT/runs: temporary and old folders, lock files (call
    with the batch lock held: no live writer owns them then)."""
    if not runs_folder.is_dir():
        return
    for path in runs_folder.iterdir():
        if path.name.startswith("."):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def bundle_present(runs_folder: Path) -> Callable[[str], bool]:
    """A test: does OUT/runs/NAME hold a complete bundle?"""
    from angioseg.pipelines.bundle import is_bundle

    return lambda name: is_bundle(runs_folder / name)


# ----------------------------------------------------------------------------- running


def run_batch(
    inputs: Sequence[str],
    out: str | os.PathLike[str],
    *,
    method: str,
    workers: int = 1,
    use_ray: bool | None = None,
    ray_address: str | None = None,
    retries: int = 2,
    dicom_seg: bool = False,
    retry_failed: bool = False,
    device: str = "cpu",
    threads: int | None = None,
    progress: Callable[..., Progress] | None = None,
) -> BatchResult:
    """Segment every run found in `inputs` into `out`, continuing an earlier batch there.

    `workers` Ray actors (`use_ray`, default: when `workers` > 1 or `ray_address` is given),
    else one worker in this process. `threads`: the machine's thread budget, divided among the
    workers (default: the cores idle now). `progress(total=, initial=)` makes the progress
    reporter. Returns the counts per status and the failures; the summary tables are written.
    """
    if workers < 1 or retries < 0:
        raise InputError(f"--workers must be >= 1 and --retries >= 0; got {workers} and {retries}")
    use_ray = workers > 1 or bool(ray_address) if use_ray is None else use_ray
    if not use_ray and (workers > 1 or ray_address):
        raise InputError("--no-ray runs one worker in this process: drop --workers N > 1 and --ray-address")
    if use_ray and not ray_available():
        raise InputError(RAY_MISSING)
    found = discover(inputs)
    target = check_batch_out(Path(out), [*found.roots, *(run.path for run in found.runs)])
    with batch_lock(target):
        manifest = Manifest.open(target)
        try:
            manifest.check_settings({"method": method, "dicom_seg": str(bool(dicom_seg))})
            _check_dicom_seg(found, dicom_seg)
            tasks = _prepare(manifest, found, target, dicom_seg=dicom_seg, retry_failed=retry_failed)
            pending = [row.input for row in manifest.rows() if row.status == "pending" and row.input in tasks]
            processed = _run_pending(manifest, tasks, pending, method=method, workers=workers, use_ray=use_ray,
                                     ray_address=ray_address, retries=retries, device=device, threads=threads,
                                     progress=progress)
            write_summary(target, manifest.rows())
            return BatchResult(manifest.counts(), _failures(manifest.rows()), found.skipped, processed)
        finally:
            manifest.close()


def _check_dicom_seg(found: Discovery, dicom_seg: bool) -> None:
    if dicom_seg and not any(run.dicom for run in found.runs):
        raise InputError("--dicom-seg needs DICOM inputs; none of the runs found is DICOM")


def _prepare(manifest: Manifest, found: Discovery, target: Path, *, dicom_seg: bool, retry_failed: bool) -> dict[str, RunTask]:
    """Hash the runs, bring the manifest up to date, clean what a crash left; the tasks by input."""
    runs_folder = target / RUNS_FOLDER
    runs_folder.mkdir(exist_ok=True)
    remove_temporaries(runs_folder)
    manifest.sync([(run.relative, run.kind, content_hash(run), run.output_name) for run in found.runs])
    manifest.recover(bundle_present(runs_folder), retry_failed=retry_failed)
    return {run.relative: RunTask(run, runs_folder / run.output_name, dicom_seg=dicom_seg and run.dicom)
            for run in found.runs}


def _make_pool(method: str, out: Path, *, workers: int, use_ray: bool, ray_address: str | None, device: str,
               threads: int | None) -> InProcessPool | RayPool:
    """One worker in this process, or Ray actors (the local instance's temporary folder named
    after OUT, so a batch killed and started again reuses one folder)."""
    if not use_ray:
        return InProcessPool(method, device=device)
    import hashlib

    from angioseg.threads import worker_threads

    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:12]
    return RayPool(method, workers=workers, threads=worker_threads(workers, total=threads), device=device,
                   address=ray_address, temp_key=key)


def _run_pending(manifest: Manifest, tasks: dict[str, RunTask], pending: list[str], *, method: str, workers: int,
                 use_ray: bool, ray_address: str | None, retries: int, device: str, threads: int | None,
                 progress: Callable[..., Progress] | None) -> int:
    """Process the pending runs on a pool; returns how many attempts ended."""
    from angioseg.pipelines.segment import make_segmenter

    if not pending:
        return 0
    if use_ray:  # a bad method spec fails here, in one line, before any worker starts
        make_segmenter(method, device=device)
    pool = _make_pool(method, manifest.path.parent, workers=workers, use_ray=use_ray, ray_address=ray_address,
                      device=device, threads=threads)
    bar = progress(total=len(tasks), initial=len(tasks) - len(pending)) if progress else None
    try:
        return _schedule(manifest, pool, tasks, deque(pending), retries=retries, bar=bar)
    finally:
        pool.close()
        manifest.release_running()
        if bar is not None:
            bar.close()


def _schedule(manifest: Manifest, pool: InProcessPool | RayPool, tasks: dict[str, RunTask], queue: deque[str], *,
              retries: int, bar: Progress | None) -> int:
    """Keep the pool full until the queue is empty; record every outcome as it comes."""
    in_flight = ended = 0
    while queue or in_flight:
        while queue and in_flight < pool.capacity:
            key = queue.popleft()
            manifest.mark_running(key)
            pool.submit(tasks[key])
            in_flight += 1
        outcome = pool.next_outcome()
        in_flight -= 1
        ended += 1
        if _record(manifest, outcome, retries=retries) == "pending":
            queue.append(outcome.key)
        elif bar is not None:
            bar.update(1)
    return ended


def _record(manifest: Manifest, outcome: RunOutcome, *, retries: int) -> str:
    if outcome.ok:
        manifest.mark_done(outcome.key, seconds=round(outcome.seconds, 3), frames=outcome.frames, stats=outcome.stats)
        return "done"
    return manifest.mark_failed_attempt(outcome.key, error=outcome.error or "unknown error",
                                        seconds=round(outcome.seconds, 3), retries=retries)


# ----------------------------------------------------------------------------- summary and status


def summary_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """One summary record per manifest row (columns `SUMMARY_COLUMNS`)."""
    records = []
    for row in rows:
        record = {"run": row.output, "input": row.input, "frames": row.frames, "fps": row.stats.get("fps"),
                  **{k: row.stats.get(k) for k in SUMMARY_COLUMNS if k.startswith("area_")},
                  "status": row.status, "seconds": row.seconds, "error": row.error if row.status != "done" else None}
        records.append(record)
    return records


def write_summary(out: Path, rows: Sequence[Row]) -> tuple[Path, Path]:
    """Write OUT/summary.csv and OUT/summary.jsonl, each atomically; returns both paths."""
    from angioseg.io.atomic import atomic_file

    records = summary_rows(rows)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in records)
    paths = (out / "summary.csv", out / "summary.jsonl")
    with atomic_file(paths[0]) as tmp:
        tmp.write_text(text.getvalue())
    with atomic_file(paths[1]) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    return paths


def _failures(rows: Sequence[Row]) -> list[tuple[str, str]]:
    return [(row.input, row.error or "") for row in rows if row.status == "failed"]


def batch_status(out: str | os.PathLike[str]) -> BatchResult:
    """The state of the batch in `out` (counts per status, failures); rewrites its summary."""
    target = Path(out)
    manifest = Manifest.open(target, create=False)
    try:
        rows = manifest.rows()
        write_summary(target, rows)
        return BatchResult(manifest.counts(), _failures(rows))
    finally:
        manifest.close()


__all__ = ["BatchResult", "RUNS_FOLDER", "SUMMARY_COLUMNS", "batch_status", "check_batch_out", "run_batch",
           "summary_rows", "write_summary"]
