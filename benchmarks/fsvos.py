"""Benchmark: FSVOS propagation speed at 512² (local vs global matching, unfold vs fast path)
and resident memory over a long run.

    python benchmarks/fsvos.py [--size 512] [--frames 60] [--repeats 3] [--threads N]
                               [--long 1000] [--weights W] [--skip-unfold]

Speed: the method `fsvos` streams a synthetic run (a textured background with moving dark
tubes and blobs, one labelled frame) through ``reset`` / ``step``; the best of `--repeats`
passes counts. Printed: frames/s of each matching setting, its ratio to global matching
(timed in the same run) and to the 0.30 frames/s the FSVOS paper reports on an i9-13900H CPU.
Memory: `--long` frames are streamed through the default method (frames made one at a time,
results dropped, as a live feed), and the resident set size is printed every 100 frames with
the growth from frame 200 to the end.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from angioseg.methods import get  # noqa: E402
from angioseg.threads import apply_threads  # noqa: E402

PAPER_CPU_FPS = 0.30  # FSVOS paper, Table 3: i9-13900H CPU, 512x512


class SyntheticRun:
    """Frame t of a run at `size`²: fixed texture, two tubes and a blob moving periodically."""

    def __init__(self, size: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.size = size
        noise = rng.normal(0.0, 1.0, (size // 16 + 1, size // 16 + 1)).astype(np.float32)
        import cv2

        self.texture = 0.6 + 0.1 * cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
        self.yy, self.xx = np.mgrid[:size, :size].astype(np.float32)

    def frame(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.size
        shift = 0.03 * s * np.sin(2 * np.pi * t / 15.0)
        image = self.texture.copy()
        labels = np.zeros((s, s), np.uint8)
        tube = np.abs(self.yy - (0.4 * s + 0.1 * s * np.sin(self.xx / s * 6 + t / 10.0) + shift)) < 0.012 * s
        blob = (self.yy - 0.7 * s) ** 2 + (self.xx - 0.5 * s - shift) ** 2 < (0.05 * s) ** 2
        wire = np.abs(self.xx - (0.75 * s + shift)) < 0.004 * s
        for mask, label, value in ((tube, 1, 0.25), (blob, 2, 0.35), (wire, 3, 0.2)):
            image[mask] = value
            labels[mask] = label
        return np.clip(image, 0.0, 1.0), labels


TABLE = {0: "background", 1: "tube", 2: "blob", 3: "wire"}


def stream(method, run: SyntheticRun, frames: int, *, every: int = 0) -> tuple[float, list[tuple[int, float]]]:
    """Seconds to stream `frames` frames (the first labelled); RSS (MiB) every `every` frames."""
    method.reset(height=run.size, width=run.size, label_table=TABLE)
    image, labels = run.frame(0)
    method.step(image, mask=labels)
    samples = []
    start = time.perf_counter()
    for t in range(1, frames):
        method.step(run.frame(t)[0])
        if every and t % every == 0:
            samples.append((t, rss_mib()))
    return time.perf_counter() - start, samples


def rss_mib() -> float:
    """Current resident set size in MiB (from /proc; the peak where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--long", type=int, default=1000, help="frames of the memory run (0: skip)")
    parser.add_argument("--weights", default=None, help="FSVOS weights (default: the shipped ones)")
    parser.add_argument("--skip-unfold", action="store_true", help="leave out the slow literal unfold path")
    args = parser.parse_args(argv)
    threads = apply_threads(args.threads)
    run = SyntheticRun(args.size)
    # frame generation is timed too; measure it to subtract it
    start = time.perf_counter()
    for t in range(args.frames):
        run.frame(t)
    generation = (time.perf_counter() - start) / args.frames
    common = {} if args.weights is None else {"weights": args.weights}
    settings = {
        "local k=7, same, r=1 (default)": {},
        "local k=7, masked path": {"matching": "masked"},
        "local k=15 (paper)": {"window": 15},
        "local k=15, best-match reference": {"window": 15, "reference": "match"},
        "local k=7, r=3": {"keyframe_every": 3},
        "local k=7, r=6 (paper)": {"keyframe_every": 6},
        "global (STCN), r=1": {"window": None},
    }
    if not args.skip_unfold:
        settings["local k=7, unfold (literal)"] = {"matching": "unfold"}
    print(f"FSVOS streaming at {args.size}x{args.size}, {args.frames} frames, {threads} thread(s); "
          f"frame synthesis {generation * 1000:.1f} ms/frame subtracted")
    fps = {}
    stream(get("fsvos", **common), run, args.frames)  # warm the process up (allocator, caches) before timing
    for name, options in settings.items():
        method = get("fsvos", **common, **options)
        stream(method, run, min(8, args.frames))  # warm-up
        best = min(stream(method, run, args.frames)[0] for _ in range(args.repeats))
        fps[name] = (args.frames - 1) / max(best - generation * (args.frames - 1), 1e-9)
    baseline = fps["global (STCN), r=1"]
    for name, value in fps.items():
        print(f"  {name:30s} {value:7.1f} fps  ({value / baseline:.2f}x global, {value / PAPER_CPU_FPS:.0f}x the paper's CPU 0.30 fps)")
    if args.long:
        method = get("fsvos", **common)
        seconds, samples = stream(method, run, args.long, every=100)
        print(f"memory over {args.long} frames ({args.long / seconds:.1f} fps incl. synthesis): "
              + ", ".join(f"{t}: {mib:.0f} MiB" for t, mib in samples))
        at_200 = next((mib for t, mib in samples if t >= 200), None)
        if at_200 is not None:
            growth = (samples[-1][1] - at_200) / at_200 * 100
            print(f"  growth from frame 200 to {samples[-1][0]}: {growth:+.1f} %; memory frames held: {len(method.memory)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
