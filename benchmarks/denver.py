"""Benchmark: seconds per phase of a DeNVeR run on a phantom, with the Frangi baseline as reference.

    python benchmarks/denver.py [--frames 80] [--size 512] [--threads N] [--iterations N]
                                [--resolution 256] [--representation grid|siren] [--device cpu]
                                [--seed 0] [--busy-core] [--reference-iterations 1000]

Renders one phantom run (`angioseg.data.phantom.generate_phantom`, `--frames` frames of
`--size`² pixels, seed `--seed`), segments it with ``denver`` (both stages at `--iterations`
Adam steps; default: the method's own defaults) and with the ``frangi`` baseline in the same
process, and prints the seconds of every DeNVeR phase, the total, Frangi's total, the ratio
DeNVeR / Frangi, and the Dice of both against the phantom's vessel masks on the frames with
contrast. The phantom's rendering time is not counted.

Reference (``--reference-iterations N``, default 1000; 0 skips it): the same run is segmented
again with N Adam steps in each stage, and the script prints both totals and both Dice values
with their difference. Issue 17's goal is <= 120 s for 80 frames of 512² on 2 cores at no more
than 0.01 Dice below 1000 + 1000 steps. The default steps follow the run's length (12.5 per
frame per stage, 300 to 1000: `angioseg.methods.denver.segmenter.default_iterations`), so at
80 frames the default *is* 1000 + 1000 steps and the two Dice values agree; `--iterations 300`
shows what a 24-frame run's step count gives here (docs/methods/denver.md, "Speed").

Threads: ``--threads N`` for torch, BLAS and OpenCV (`angioseg.threads.apply_threads`); by default
the policy `angioseg.threads.default_threads` (the cores idle when the run starts). The number
used is printed.

``--busy-core`` repeats both runs (a fresh DeNVeR segmenter, and Frangi) with a second process
spinning a tight Python loop pinned to the last CPU (another program holding a core),
re-evaluating the default thread count once it spins (an explicit ``--threads`` stays), and
prints the quiet and the busy seconds of every phase side by side with the ratio busy/quiet
(of seconds: above 1 is slower).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from busy import run_busy  # noqa: E402
from angioseg import methods  # noqa: E402
from angioseg.data.phantom import PhantomParams, generate_phantom  # noqa: E402
from angioseg.eval.overlap import dice  # noqa: E402
from angioseg.threads import apply_threads  # noqa: E402


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=80, help="frames of the phantom run (default 80)")
    parser.add_argument("--size", type=int, default=512, help="frame side in pixels (default 512)")
    parser.add_argument("--threads", type=int, default=None, help="threads for torch, BLAS, OpenCV (default: the idle cores)")
    parser.add_argument("--iterations", type=int, default=None, help="Adam steps of each stage (default: the method's)")
    parser.add_argument("--resolution", type=int, default=None, help="internal resolution (default: the method's)")
    parser.add_argument("--representation", choices=("grid", "siren"), default="grid", help="stage-1 fields (default grid)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument("--busy-core", action="store_true", help="repeat the runs with one core kept busy")
    parser.add_argument("--reference-iterations", type=int, default=1000,
                        help="Adam steps per stage of the reference run scored beside the default (0: none; default 1000)")
    args = parser.parse_args(argv)
    if args.frames < 2 or args.size < 32:
        parser.error("--frames must be >= 2 and --size >= 32")
    if args.reference_iterations < 0:
        parser.error("--reference-iterations must be >= 0")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


# ---- the measurement ----------------------------------------------------------------------------


def vessel_dice(labels, run) -> float:
    """Dice of label 1 against the phantom's vessels (label 2, the catheter, is not one) on the
    frames whose truth shows vessel."""
    truth = run.masks.labels == 1
    with_vessel = truth.reshape(len(truth), -1).any(axis=1)
    return dice(labels[with_vessel] == 1, truth[with_vessel])


def measure_reference(args: argparse.Namespace, run, options: dict, default_seconds: float, default_dice: float) -> None:
    """Segment `run` again with `args.reference_iterations` steps per stage; print both runs'
    seconds and Dice and the Dice lost by the default."""
    reference = methods.get("denver", **{**options, "iterations": args.reference_iterations}).segment(run.video)
    seconds, score = reference.timings["total"], vessel_dice(reference.masks.labels, run)
    print(f"reference ({args.reference_iterations} + {args.reference_iterations} steps): {seconds:.2f} s, dice {score:.3f}")
    print(f"default / reference: {default_seconds / max(seconds, 1e-9):.2f} x the time; "
          f"dice {default_dice:.3f} vs {score:.3f} (difference {default_dice - score:+.3f})", flush=True)


def measure(args: argparse.Namespace, run, options: dict) -> dict[str, float]:
    """Segment `run` with DeNVeR and Frangi, print the table; return seconds by phase (+ "frangi", "dice")."""
    with_vessel = (run.masks.labels == 1).reshape(len(run.masks.labels), -1).any(axis=1)
    denver = methods.get("denver", **options)
    print(f"denver options: {denver.options()}", flush=True)
    result = denver.segment(run.video)
    start = time.perf_counter()
    frangi = methods.get("frangi", device=args.device).segment(run.video)
    frangi_seconds = time.perf_counter() - start

    print(f"internal size: {result.options.get('internal_size')}; Adam steps (stage 1, stage 2): {result.options.get('iterations_used')}")
    print(f"{'phase':<10} {'seconds':>9}")
    for phase, seconds in result.timings.items():
        print(f"{phase:<10} {seconds:9.2f}")
    total = result.timings["total"]
    print(f"{'frangi':<10} {frangi_seconds:9.2f}")
    print(f"denver / frangi: {total / max(frangi_seconds, 1e-9):.1f} x; denver {args.frames / total:.2f} frames/s")

    score = vessel_dice(result.masks.labels, run)
    print(f"vessel dice on the {int(with_vessel.sum())} frames with contrast: denver {score:.3f}, "
          f"frangi {vessel_dice(frangi.masks.labels, run):.3f}", flush=True)
    return {**result.timings, "frangi": frangi_seconds, "dice": score}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    threads = apply_threads(args.threads)
    run = generate_phantom(PhantomParams(size=args.size, frames=args.frames), seed=args.seed)
    options = {"device": args.device, "representation": args.representation}
    if args.iterations is not None:
        options["iterations"] = args.iterations
    if args.resolution is not None:
        options["resolution"] = args.resolution
    print(f"phantom: {args.frames} frames of {args.size}x{args.size}; torch threads: {torch.get_num_threads()}; device: {args.device}")
    start = time.perf_counter()
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # torch imports its compiler here once per process
    print(f"one-time torch optimiser import: {time.perf_counter() - start:.2f} s (not counted below)", flush=True)
    quiet = measure(args, run, options)
    if args.reference_iterations:
        measure_reference(args, run, options, quiet["total"], quiet["dice"])
    if not args.busy_core:
        return 0

    busy, busy_threads = run_busy(lambda: measure(args, run, options), threads=args.threads, quiet_threads=threads)
    print(f"{'phase':<10} {'quiet s':>9} {'busy s':>9} {'busy/quiet':>11}")
    for phase in quiet:
        if phase in busy and phase != "dice":
            print(f"{phase:<10} {quiet[phase]:9.2f} {busy[phase]:9.2f} {busy[phase] / max(quiet[phase], 1e-9):11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
