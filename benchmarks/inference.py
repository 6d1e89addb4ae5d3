"""Benchmark: frames per second of the supervised models at 512² on this CPU.

    python benchmarks/inference.py [--size 512] [--frames 16] [--repeats 3] [--models cenet3d2d-n2,cenet]

For each model (shipped weights where present, else the same architecture untrained: speed
does not depend on the weights) it times, in the same run:

- eager baseline: one frame per forward pass, `torch.no_grad`, contiguous tensors;
- optimised: `predict_probabilities` as the segmenters run it (batched frames,
  `torch.inference_mode`, model and inputs channels-last), at the batch size given by `--batch`;
- folded (3D-2D models): the optimised run with the input layers folded into one
  convolution (`angioseg.nn.FoldedCENet3D2D`), as the segmenters run it by default;
- onnx: the same batches through the ONNX export (folded) in ONNX Runtime (`backend=onnx`), where
  onnxruntime is installed; the largest probability difference to the eager run is printed;

and prints frames per second and the speed-up of each against the eager baseline. Thread count is torch's default unless
`--threads` is given; it is printed.
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

from angioseg.methods.supervised.clips import clip_indices  # noqa: E402
from angioseg.methods.supervised.inference import predict_probabilities  # noqa: E402
from angioseg.methods.supervised.weights import MODEL_SPECS, WEIGHTS_DIR, get_spec, load_model  # noqa: E402
from angioseg.nn import fold_for_inference  # noqa: E402
from angioseg.nn.layers import to_channels_last  # noqa: E402


def load(name: str):
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if path.is_file():
        model, spec, _ = load_model(path)
        return model, spec, "shipped weights"
    spec = get_spec(name)
    return spec.build().eval(), spec, "untrained (no shipped weights)"


def onnx_model(model, spec):
    """The ONNX Runtime runner of `model`, or None where onnxruntime is not installed."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    from angioseg.methods.supervised.onnx_backend import OnnxModel

    return OnnxModel.from_torch(model, spec)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--models", default=",".join(MODEL_SPECS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    frames = np.random.default_rng(0).random((args.frames, args.size, args.size)).astype(np.float32)
    print(f"{args.frames} frames {args.size}x{args.size}, torch {torch.__version__}, threads {torch.get_num_threads()}, best of {args.repeats}")
    for name in args.models.split(","):
        model, spec, source = load(name)
        eager_baseline(model, spec, frames[:2])  # warm-up
        eager = best_time(lambda: eager_baseline(model, spec, frames), args.repeats)
        fast_model = to_channels_last(copy.deepcopy(model))
        optimised = best_time(lambda: predict_probabilities(fast_model, spec, frames, batch=args.batch), args.repeats)
        eager_fps, fast_fps = args.frames / eager, args.frames / optimised
        line = (f"{name}: eager {eager_fps:.1f} fps, optimised {fast_fps:.1f} fps "
                f"({1000 / fast_fps:.1f} ms/frame, {fast_fps / eager_fps:.2f}x)")
        folded_model = fold_for_inference(model)
        if folded_model is not model:
            folded_model = to_channels_last(folded_model)
            folded = best_time(lambda: predict_probabilities(folded_model, spec, frames, batch=args.batch), args.repeats)
            folded_fps = args.frames / folded
            line += f", + folded input layers {folded_fps:.1f} fps ({1000 / folded_fps:.1f} ms/frame, {folded_fps / eager_fps:.2f}x)"
        onnx = onnx_model(fold_for_inference(model), spec)
        if onnx is not None:
            reference = predict_probabilities(model, spec, frames[:4], channels_last=False)
            exported = predict_probabilities(onnx, spec, frames[:4], channels_last=False)
            onnx_time = best_time(lambda: predict_probabilities(onnx, spec, frames, batch=args.batch, channels_last=False), args.repeats)
            onnx_fps = args.frames / onnx_time
            line += (f", onnx {onnx_fps:.1f} fps ({1000 / onnx_fps:.1f} ms/frame, {onnx_fps / eager_fps:.2f}x; "
                     f"max |p - p_eager| {np.abs(reference - exported).max():.1e})")
        print(f"{line} [{source}]", flush=True)


if __name__ == "__main__":
    main()
