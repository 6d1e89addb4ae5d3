"""Benchmark: angioseg's batched Frangi / Sato against scikit-image, in the same run.

    python benchmarks/vesselness.py [--size 512] [--frames 16] [--repeats 3] [--device cpu]
                                    [--source phantom|synthetic|arcade] [--conv2d] [--prior]
                                    [--threads N] [--busy-core]

Frames come from `angioseg.data.phantom.generate_phantom` when it is importable (else a simple
synthetic generator here: dark curvilinear lines on a smooth bright background plus noise), or
from ARCADE val images with ``--source arcade``. scikit-image runs frame by frame, angioseg on
the whole batch; each figure is the best of ``--repeats`` runs, in ms per frame. Correlation is
Pearson over all pixels of all frames. ``--conv2d`` also times the Hessian stage done the way
the filters were first sketched (separable Gaussian-derivative kernels G, G', G'' truncated at
4 sigma, reflect padding, ``conv2d`` with (1, k) and (k, 1) kernels, all frames at once) against
the block-banded GEMMs that angioseg uses.

Threads: ``--threads N`` for torch, BLAS and OpenCV (`angioseg.threads.apply_threads`); by default
the policy `angioseg.threads.default_threads` (the cores idle when the run starts). The number
used is printed.

``--busy-core`` repeats the whole measurement with a second process spinning a tight Python loop
pinned to the last CPU (another program holding a core), re-evaluating the default thread count
once it spins (an explicit ``--threads`` stays), and prints the quiet and the busy figures, the
speed ratio busy/quiet of each, and the speed-up against scikit-image in each condition.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from busy import run_busy  # noqa: E402
from angioseg.threads import apply_threads  # noqa: E402
from angioseg.vessel import frangi, hessian_matrix, sato, vesselness_masks  # noqa: E402

SIGMAS = tuple(range(1, 10, 2))


def synthetic_frames(size: int, count: int, seed: int = 0) -> np.ndarray:
    """Phantom-like frames: a smooth background, dark anti-aliased curves 1-12 px wide, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    scale = size / 512
    curves = []
    for _ in range(14):
        t = np.linspace(0, 1, 60)[:, None]
        a, b, c = rng.uniform(0, size, (3, 2))
        curves.append((((1 - t) ** 2) * a + 2 * t * (1 - t) * b + t**2 * c, max(1, int(rng.integers(1, 12) * scale)), rng.uniform(0.15, 0.35)))
    frames = np.empty((count, size, size), np.float32)
    for k in range(count):
        shift = 6 * scale * np.array([math.sin(0.7 * k), math.cos(0.5 * k)])
        ink = np.zeros((size, size), np.float32)
        for points, width, depth in curves:
            pts = np.round((points + shift) * 16).astype(np.int32)[None]
            cv2.polylines(ink, pts, False, float(depth), width, cv2.LINE_AA, shift=4)
        ink = cv2.GaussianBlur(ink, (0, 0), 1.0)
        background = 0.7 + 0.12 * np.sin(3 * xx + 2 * yy + 0.2 * k) - 0.15 * ((xx - 0.5) ** 2 + (yy - 0.6) ** 2)
        frames[k] = np.clip(background - ink + 0.03 * rng.standard_normal((size, size)), 0, 1)
    return frames


def load_frames(source: str, size: int, count: int) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(frames, vessel masks or None, description)."""
    if source == "phantom":
        try:
            from angioseg.data.phantom import PhantomParams, generate_phantom

            run = generate_phantom(PhantomParams(size=size, frames=count), seed=0)
            return run.video.frames, np.asarray(run.masks.labels) == 1, "angioseg.data.phantom.generate_phantom(seed=0)"
        except Exception as exc:  # the generator is optional here; fall back rather than fail
            print(f"(phantom generator unavailable: {type(exc).__name__}: {exc}; using synthetic frames)")
            source = "synthetic"
    if source == "arcade":
        folder = REPO.parent / "shared" / "data" / "arcade-syntax" / "val" / "images"
        paths = sorted(folder.glob("*.png"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)[:count]
        if not paths:
            raise SystemExit(f"no ARCADE images in {folder}")
        frames = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]).astype(np.float32) / 255
        if frames.shape[1:] != (size, size):
            frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
        return frames, None, f"ARCADE val {paths[0].stem}..{paths[-1].stem}"
    return synthetic_frames(size, count), None, "synthetic curves (benchmarks/vesselness.py)"


def best_time(fn, repeats: int):
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


# ---- the conv2d variant, for comparison only --------------------------------------------------


def _gauss_1d(sigma: float, order: int) -> np.ndarray:
    radius = int(4 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    if order == 1:
        g = -x / sigma**2 * g
    elif order == 2:
        g = (x**2 / sigma**4 - 1 / sigma**2) * g
    return g[::-1].copy()  # conv2d correlates


def conv2d_hessian(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """(T, 3, H, W) Hrr, Hrc, Hcc with true G/G'/G'' kernels, reflect padding, conv2d."""
    kernels = torch.tensor(np.stack([_gauss_1d(sigma, o) for o in (0, 1, 2)]), dtype=frames.dtype)
    k = kernels.shape[1]
    r = k // 2
    x = frames[:, None]
    # row pass (along H): G, G', G'' -> 3 channels
    xr = torch.nn.functional.pad(x, (0, 0, r, r), mode="reflect")
    rows = torch.nn.functional.conv2d(xr, kernels[:, None, :, None])  # (T, 3, H, W)
    # column pass (along W): Hrr = G''_r G_c, Hrc = G'_r G'_c, Hcc = G_r G''_c (grouped)
    col = torch.stack([kernels[0], kernels[1], kernels[2]])[:, None, None, :]
    order = rows[:, [2, 1, 0]]
    xc = torch.nn.functional.pad(order, (r, r, 0, 0), mode="reflect")
    return torch.nn.functional.conv2d(xc, col, groups=3)


# ---- the measurement ----------------------------------------------------------------------------


def measure(args: argparse.Namespace, frames: np.ndarray, vessels: np.ndarray | None) -> dict[str, float]:
    """Run and print every timing the flags ask for; return seconds per frame by name."""
    from skimage import filters as skfilters

    count = frames.shape[0]
    times: dict[str, float] = {}
    for name, ours_fn, ref_fn in (("frangi", frangi, skfilters.frangi), ("sato", sato, skfilters.sato)):
        ours_fn(frames[:1], device=args.device)  # builds and caches the 1-D operators
        ref_time, ref = best_time(lambda: np.stack([ref_fn(f) for f in frames]), args.repeats)
        our_time, ours = best_time(lambda: ours_fn(frames, device=args.device, chunk=args.chunk), args.repeats)
        worst = min(pearson(ours[t], ref[t]) for t in range(count))
        print(
            f"{name}: skimage {1000 * ref_time / count:.1f} ms/frame, angioseg {1000 * our_time / count:.1f} ms/frame, "
            f"speed-up {ref_time / our_time:.1f}x, correlation {pearson(ours, ref):.6f} (worst frame {worst:.6f})",
            flush=True,
        )
        times[f"{name} skimage"], times[f"{name} angioseg"] = ref_time / count, our_time / count

    if args.conv2d:
        video = torch.from_numpy(frames)
        with torch.inference_mode():
            conv_time, _ = best_time(lambda: [conv2d_hessian(video, s) for s in SIGMAS], args.repeats)
        band_time, _ = best_time(lambda: [hessian_matrix(video, s, device=args.device) for s in SIGMAS], args.repeats)
        print(
            f"hessian stage, sigmas {SIGMAS}: conv2d (1,k)/(k,1) {1000 * conv_time / count:.1f} ms/frame, "
            f"block-banded GEMM {1000 * band_time / count:.1f} ms/frame",
            flush=True,
        )
        times["hessian conv2d"], times["hessian block-banded"] = conv_time / count, band_time / count

    if args.prior:
        for variant in ("paper", "public"):
            prior_time, result = best_time(lambda: vesselness_masks(frames, variant=variant, device=args.device), 1)
            line = f"prior {variant}: {1000 * prior_time / count:.1f} ms/frame, mask fraction {result.masks.mean():.3f}"
            if vessels is not None:
                inter = (result.masks & vessels).sum()
                line += f", Dice vs phantom vessels {2 * inter / (result.masks.sum() + vessels.sum() + 1e-9):.3f}"
            print(line, flush=True)
            times[f"prior {variant}"] = prior_time / count
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--chunk", type=int, default=16, help="frames per batch inside angioseg")
    parser.add_argument("--source", choices=("phantom", "synthetic", "arcade"), default="phantom")
    parser.add_argument("--conv2d", action="store_true", help="also time the conv2d Hessian variant")
    parser.add_argument("--prior", action="store_true", help="also time vesselness_masks (both variants)")
    parser.add_argument("--threads", type=int, default=None, help="threads for torch, BLAS, OpenCV (default: the idle cores)")
    parser.add_argument("--busy-core", action="store_true", help="repeat the measurement with one core kept busy")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    threads = apply_threads(args.threads)

    frames, vessels, description = load_frames(args.source, args.size, args.frames)
    count = frames.shape[0]
    print(
        f"{count} frames {frames.shape[1]}x{frames.shape[2]} from {description}; device {args.device}, "
        f"torch threads {torch.get_num_threads()}, sigmas {SIGMAS}, best of {args.repeats}",
        flush=True,
    )
    if args.device != "cpu":
        frangi(frames[:1], device=args.device)  # warm-up (CUDA context, operator cache)

    quiet = measure(args, frames, vessels)
    if not args.busy_core:
        return 0

    busy, busy_threads = run_busy(lambda: measure(args, frames, vessels), threads=args.threads, quiet_threads=threads)
    print("busy/quiet speed ratios (quiet time / busy time; 1.00 = unaffected):")
    for name in quiet:
        print(f"  {name}: quiet {1000 * quiet[name]:.1f} ms/frame, busy {1000 * busy[name]:.1f} ms/frame, "
              f"busy/quiet {quiet[name] / busy[name]:.2f}")
    for name in ("frangi", "sato"):
        print(f"{name} speed-up vs skimage: quiet {quiet[name + ' skimage'] / quiet[name + ' angioseg']:.1f}x "
              f"({threads} threads), busy core {busy[name + ' skimage'] / busy[name + ' angioseg']:.1f}x ({busy_threads} threads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
