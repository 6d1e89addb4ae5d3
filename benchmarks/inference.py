"""Benchmark: frames per second of the supervised models at 512² on this CPU.

    python benchmarks/inference.py [--size 512] [--frames 16] [--repeats 3] [--batch 4]
                                   [--models cenet3d2d-n2,cenet] [--threads N] [--busy-core]

For each model (shipped weights where present, else the same architecture untrained: speed
does not depend on the weights) it times, in the same run:

- eager baseline: one frame per forward pass, `torch.no_grad`, contiguous tensors;
- optimised: `predict_probabilities` as the segmenters run it (batched frames,
  `torch.inference_mode`, model and inputs channels-last), at the batch size given by `--batch`;
- folded (3D-2D models): the optimised run with the input layers folded into one
  convolution (`angioseg.nn.FoldedCENet3D2D`), as the segmenters run it by default;
- onnx: the same batches through the ONNX export (folded) in ONNX Runtime (`backend=onnx`), where
  onnxruntime is installed; the largest probability difference to the eager run is printed;

and prints frames per second and the speed-up of each against the eager baseline. With their
default options (torch backend) the segmenters run the "folded" figure for the 3D-2D models
(``cenet3d2d`` runs cenet3d2d-n2) and the "optimised" one for the others (``cenet``, and
``seq-cenet``, whose network is cenet); ``--models NAME`` times only that model.

Threads: ``--threads N`` for torch, BLAS and OpenCV (`angioseg.threads.apply_threads`; ONNX Runtime
sessions take the same count); by default the policy `angioseg.threads.default_threads` (the
cores idle when the run starts). The number used is printed.

``--busy-core`` repeats the whole measurement with a second process spinning a tight Python loop
pinned to the last CPU (another program holding a core), re-evaluating the default thread count
once it spins (an explicit ``--threads`` stays), and prints the quiet and the busy figures and
the ratio busy/quiet of each fps.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from busy import busy_core  # noqa: E402
from angioseg.methods.supervised.clips import clip_indices  # noqa: E402
from angioseg.methods.supervised.inference import predict_probabilities  # noqa: E402
from angioseg.methods.supervised.weights import MODEL_SPECS, get_spec, load_model, weights_dir  # noqa: E402
from angioseg.nn import fold_for_inference  # noqa: E402
from angioseg.nn.layers import to_channels_last  # noqa: E402
from angioseg.threads import apply_threads  # noqa: E402


def load(name: str):
    path = weights_dir() / f"{name}.safetensors"
    if path.is_file():
        model, spec, _ = load_model(path)
        return model, spec, "shipped weights"
    spec = get_spec(name)
    return spec.build().eval(), spec, "untrained (no shipped weights)"


def onnx_bytes(model, spec) -> bytes | None:
    """The ONNX export of `model`, or None where onnxruntime is not installed."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    from angioseg.methods.supervised.onnx_backend import export_onnx_bytes

    return export_onnx_bytes(model, spec)


def eager_baseline(model, spec, frames: np.ndarray) -> None:
    """One frame per forward pass, no_grad, contiguous: the plain way to run a model."""
    video = torch.from_numpy(frames)
    with torch.no_grad():
        for t in range(frames.shape[0]):
            clip = video[torch.from_numpy(clip_indices(t, frames.shape[0], spec.radius))][None]
            torch.sigmoid(model(clip))


def best_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


# ---- the measurement ----------------------------------------------------------------------------


def prepare(name: str) -> dict:
    """Everything one model's measurement runs, built once (not timed)."""
    model, spec, source = load(name)
    folded = fold_for_inference(model)
    return {
        "model": model,
        "spec": spec,
        "source": source,
        "fast": to_channels_last(copy.deepcopy(model)),
        "folded": to_channels_last(folded) if folded is not model else None,
        "onnx": onnx_bytes(fold_for_inference(model), spec),
    }


def measure(name: str, parts: dict, frames: np.ndarray, args: argparse.Namespace) -> dict[str, float]:
    """Time one model every way, print its line, return frames per second by variant."""
    from angioseg.methods.supervised.onnx_backend import OnnxModel

    model, spec, count = parts["model"], parts["spec"], frames.shape[0]
    eager_baseline(model, spec, frames[:2])  # warm-up
    eager = best_time(lambda: eager_baseline(model, spec, frames), args.repeats)
    optimised = best_time(lambda: predict_probabilities(parts["fast"], spec, frames, batch=args.batch), args.repeats)
    fps = {"eager": count / eager, "optimised": count / optimised}
    eager_fps, fast_fps = fps["eager"], fps["optimised"]
    line = (f"{name}: eager {eager_fps:.1f} fps, optimised {fast_fps:.1f} fps "
            f"({1000 / fast_fps:.1f} ms/frame, {fast_fps / eager_fps:.2f}x)")
    if parts["folded"] is not None:
        folded = best_time(lambda: predict_probabilities(parts["folded"], spec, frames, batch=args.batch), args.repeats)
        folded_fps = fps["folded"] = count / folded
        line += f", + folded input layers {folded_fps:.1f} fps ({1000 / folded_fps:.1f} ms/frame, {folded_fps / eager_fps:.2f}x)"
    if parts["onnx"] is not None:
        onnx = OnnxModel(parts["onnx"], threads=torch.get_num_threads())  # a session per run: the thread count may differ
        reference = predict_probabilities(model, spec, frames[:4], channels_last=False)
        exported = predict_probabilities(onnx, spec, frames[:4], channels_last=False)
        onnx_time = best_time(lambda: predict_probabilities(onnx, spec, frames, batch=args.batch, channels_last=False), args.repeats)
        onnx_fps = fps["onnx"] = count / onnx_time
        line += (f", onnx {onnx_fps:.1f} fps ({1000 / onnx_fps:.1f} ms/frame, {onnx_fps / eager_fps:.2f}x; "
                 f"max |p - p_eager| {np.abs(reference - exported).max():.1e})")
    print(f"{line} [{parts['source']}]", flush=True)
    return fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="threads for torch, BLAS, OpenCV (default: the idle cores)")
    parser.add_argument("--models", default=",".join(MODEL_SPECS))
    parser.add_argument("--busy-core", action="store_true", help="repeat the measurement with one core kept busy")
    args = parser.parse_args()
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    threads = apply_threads(args.threads)
    frames = np.random.default_rng(0).random((args.frames, args.size, args.size)).astype(np.float32)
    print(f"{args.frames} frames {args.size}x{args.size}, torch {torch.__version__}, threads {torch.get_num_threads()}, best of {args.repeats}",
          flush=True)
    names = args.models.split(",")
    prepared = {name: prepare(name) for name in names}
    quiet = {name: measure(name, prepared[name], frames, args) for name in names}
    if not args.busy_core:
        return

    with busy_core() as cpu:
        busy_threads = apply_threads(args.threads)  # the policy sees the busy core; --threads N stays N
        where = f"pinned to CPU {cpu}" if cpu >= 0 else "not pinned"
        print(f"-- busy core: a Python busy loop in another process, {where}; threads {busy_threads} "
              f"(quiet run: {threads}) --", flush=True)
        busy = {name: measure(name, prepared[name], frames, args) for name in names}
    print("busy/quiet fps ratios (1.00 = unaffected):")
    for name in names:
        ratios = ", ".join(f"{variant} {quiet[name][variant]:.1f} -> {busy[name][variant]:.1f} fps "
                           f"({busy[name][variant] / quiet[name][variant]:.2f})" for variant in quiet[name])
        print(f"  {name}: {ratios}")


if __name__ == "__main__":
    main()
