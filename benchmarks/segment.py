"""Benchmark: frames per second of whole methods (`Segmenter.segment`, every post-step
included) on a phantom run at 512², quiet and with one core held busy.

    python benchmarks/segment.py [--methods seq-cenet,cenet,cenet3d2d] [--size 512] [--frames 32]
                                 [--repeats 3] [--threads N] [--busy-core]

Each method runs once to warm up, then `--repeats` times; the best time counts. Printed: fps
per method and its ratio to the last method of the list (the baseline, timed in the same run),
and with ``--busy-core`` the same again while another process spins one core, with the ratio
busy/quiet per method. Threads: ``--threads N``, else the policy of `angioseg.threads` (taken
again once the core is busy).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from busy import busy_core  # noqa: E402
from angioseg.data.phantom import PhantomParams, generate_phantom  # noqa: E402
from angioseg.methods import get_from_spec  # noqa: E402
from angioseg.threads import apply_threads  # noqa: E402


def measure(specs: list[str], video, repeats: int) -> dict[str, float]:
    """Best frames/s of each method spec on `video`."""
    out = {}
    for spec in specs:
        method = get_from_spec(spec)
        method.segment(video)
        best = min(_timed(method, video) for _ in range(repeats))
        out[spec] = video.num_frames / best
    return out


def _timed(method, video) -> float:
    start = time.perf_counter()
    method.segment(video)
    return time.perf_counter() - start


def report(title: str, fps: dict[str, float]) -> None:
    baseline = list(fps)[-1]
    print(title)
    for spec, value in fps.items():
        print(f"  {spec:28s} {value:7.1f} fps  ({value / fps[baseline]:.2f}x {baseline})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="seq-cenet,cenet,cenet3d2d")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--busy-core", action="store_true")
    args = parser.parse_args(argv)
    specs = [s.strip() for s in args.methods.split(",") if s.strip()]
    video = generate_phantom(PhantomParams(size=args.size, frames=args.frames), seed=0).video
    threads = apply_threads(args.threads)
    quiet = measure(specs, video, args.repeats)
    report(f"quiet, {threads} thread(s), {args.frames} frames at {args.size}²:", quiet)
    if args.busy_core:
        with busy_core() as cpu:
            threads = apply_threads(args.threads)
            busy = measure(specs, video, args.repeats)
        report(f"one core busy (cpu {cpu}), {threads} thread(s):", busy)
        print("busy/quiet: " + ", ".join(f"{s} {busy[s] / quiet[s]:.2f}" for s in specs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
