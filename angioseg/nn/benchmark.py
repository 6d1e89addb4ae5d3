"""Forward-time measurement of the networks on CPU (or any device).

``python -m angioseg.nn.benchmark [--size 512] [--batch 4] [--threads 2] [--repeats 3]``
prints, for each model configuration, milliseconds per frame (best of ``repeats`` timed
batches after one warm-up, ``torch.inference_mode``), parameter count and fp32 size in MB.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from torch import nn

from angioseg.nn.layers import to_channels_last

CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("unet", {}),
    ("cenet", {"width": 1.0}),
    ("cenet", {"width": "lite"}),
    ("cenet3d2d", {"width": 1.0, "temporal_radius": 2}),
    ("cenet3d2d", {"width": "lite", "temporal_radius": 1}),
    ("cenet3d2d", {"width": "lite", "temporal_radius": 2}),
]


def input_channels(model: nn.Module) -> int:
    """Channels a model's ``forward`` expects (the clip length for the 3D-2D CE-Net)."""
    return int(getattr(model, "clip_length", getattr(model, "in_channels", 1)))


def time_forward(
    model: nn.Module,
    *,
    size: int = 512,
    batch: int = 4,
    threads: int | None = 2,
    repeats: int = 3,
    channels_last: bool = False,
    device: str = "cpu",
) -> float:
    """Best milliseconds per frame over ``repeats`` forward passes of a ``(batch, C, size, size)`` input."""
    if threads is not None:
        torch.set_num_threads(threads)
    model = model.to(device).eval()
    x = torch.rand(batch, input_channels(model), size, size, device=device)
    if channels_last:
        model = to_channels_last(model)
        x = x.contiguous(memory_format=torch.channels_last)
    best = float("inf")
    with torch.inference_mode():
        model(x)  # warm-up
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return 1000.0 * best / batch


def fp32_megabytes(model: nn.Module) -> float:
    """Size of the state dict at 4 bytes per element, in MB (10^6 bytes)."""
    return sum(t.numel() for t in model.state_dict().values() if t.is_floating_point()) * 4 / 1e6


def main(argv: list[str] | None = None) -> None:
    from angioseg.nn import build_model, count_parameters

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--only", default=None, help="comma-separated model names")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    for name, options in CONFIGS:
        if only and name not in only:
            continue
        torch.manual_seed(0)
        model = build_model(name, **options)
        ms = time_forward(
            model,
            size=args.size,
            batch=args.batch,
            threads=args.threads,
            repeats=args.repeats,
            channels_last=args.channels_last,
            device=args.device,
        )
        print(
            f"{name:10s} {str(options):45s} {ms:8.1f} ms/frame  {count_parameters(model):>11,d} params"
            f"  {fp32_megabytes(model):7.2f} MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
