"""Benchmark: `angioseg batch` throughput with 1 and with 2 workers (Ray), one thread each.

    python benchmarks/batch.py [--runs 16] [--size 256] [--frames 24] [--method cenet]
                               [--workers 2] [--out DIR]

Makes `--runs` phantom runs (npy), then runs the batch into a fresh folder once with one
worker and once with `--workers`, each worker with one thread, both on a local Ray instance.
Printed per setting: frames/s overall (all frames over the span from the first run's start to
the last run's end, from the manifest: Ray's start-up is left out) and per worker (frames over
the summed run seconds), then the ratio many-workers/one-worker of the overall rate. Goal on a
quiet machine with at least 2 free cores: >= 1.6x.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from angioseg.data.phantom import PhantomParams, generate_phantom  # noqa: E402
from angioseg.pipelines.batch import run_batch  # noqa: E402
from angioseg.pipelines.batch_manifest import Manifest  # noqa: E402


def make_runs(folder: Path, *, runs: int, size: int, frames: int) -> int:
    """Write `runs` phantom runs as npy files; returns the total frame count."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(runs):
        params = PhantomParams.sample(np.random.default_rng(index), size=size, frames=frames, fps=15.0)
        np.save(folder / f"phantom_{index:03d}.npy", generate_phantom(params, seed=index).video.frames)
    return runs * frames


def rates(out: Path) -> tuple[float, float, int]:
    """(overall frames/s, per-worker frames/s, frames) of a finished batch, from its manifest."""
    manifest = Manifest.open(out, create=False)
    rows = [r for r in manifest.rows() if r.status == "done"]
    manifest.close()
    start = min(dt.datetime.fromisoformat(r.started) for r in rows)
    end = max(dt.datetime.fromisoformat(r.finished) for r in rows)
    frames = sum(r.frames or 0 for r in rows)
    busy = sum(r.seconds or 0.0 for r in rows)
    return frames / (end - start).total_seconds(), frames / busy, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--method", default="cenet")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="working folder (default: a temporary one, removed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="angioseg-batch-bench-") as scratch:
        root = args.out or Path(scratch)
        data = root / "runs"
        total = make_runs(data, runs=args.runs, size=args.size, frames=args.frames)
        print(f"{args.runs} phantom runs, {args.size}x{args.size}, {args.frames} frames ({total} frames), "
              f"method {args.method}")
        overall = {}
        for workers in (1, args.workers):
            out = root / f"batch_{workers}"
            result = run_batch([str(data)], out, method=args.method, workers=workers, use_ray=True, threads=workers)
            overall[workers], per_worker, frames = rates(out)
            print(f"{workers} worker(s): {overall[workers]:.1f} frames/s overall, {per_worker:.1f} frames/s per worker "
                  f"({frames} frames, {result.counts['done']} runs done)")
        print(f"ratio {args.workers} workers / 1 worker: {overall[args.workers] / overall[1]:.2f}x (goal >= 1.6x on a quiet machine)")


if __name__ == "__main__":
    main()
