"""Forward-time measurement of the networks on CPU (or any device).

``python -m angioseg.nn.benchmark [--size 512] [--batch 4] [--threads 2] [--repeats 3]``
[--channels-last] [--only cenet,cenet3d2d]`` prints, for each model configuration,
milliseconds per frame (best of ``repeats`` timed batches after one warm-up,
``torch.inference_mode``; elapsed and process CPU time), parameter count and fp32 size in MB,
and the machine's load average (timings on a shared machine are only as good as its load).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
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
    ("cenet", {"width": 0.25}),
    ("cenet3d2d", {"width": 0.25, "temporal_radius": 2}),
]


def input_channels(model: nn.Module) -> int:
    """Channels a model's ``forward`` expects (the clip length for the 3D-2D CE-Net)."""
    return int(getattr(model, "clip_length", getattr(model, "in_channels", 1)))


@dataclass(frozen=True)
class Timing:
    """Per-frame forward time: ``wall_ms`` (best elapsed time over the repeats, divided by the
    batch) and ``cpu_ms`` (best process CPU time, the same way). On a machine shared with other
    jobs, ``cpu_ms`` at one thread is the steadier estimate of the unloaded one-thread time;
    with several threads it also counts the threads' spin-waiting."""

    wall_ms: float
    cpu_ms: float


def time_forward(
    model: nn.Module,
    *,
    size: int = 512,
    batch: int = 4,
    threads: int | None = 2,
    repeats: int = 3,
    channels_last: bool = False,
    device: str = "cpu",
) -> Timing:
    """Time ``repeats`` forward passes of a ``(batch, C, size, size)`` input after one warm-up
    (``torch.inference_mode``, eval mode); ``channels_last`` converts model and input first."""
    if threads is not None:
        torch.set_num_threads(threads)
    model = model.to(device).eval()
    x = torch.rand(batch, input_channels(model), size, size, device=device)
    if channels_last:
        model = to_channels_last(model)
        x = x.contiguous(memory_format=torch.channels_last)
    best_wall = best_cpu = float("inf")
    with torch.inference_mode():
        model(x)  # warm-up
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start, start_cpu = time.perf_counter(), time.process_time()
            model(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best_wall = min(best_wall, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return Timing(wall_ms=1000.0 * best_wall / batch, cpu_ms=1000.0 * best_cpu / batch)


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
        timing = time_forward(
            model,
            size=args.size,
            batch=args.batch,
            threads=args.threads,
            repeats=args.repeats,
            channels_last=args.channels_last,
            device=args.device,
        )
        print(
            f"{name:10s} {str(options):45s} {timing.wall_ms:8.1f} ms/frame wall {timing.cpu_ms:8.1f} ms/frame CPU"
            f"  {count_parameters(model):>11,d} params  {fp32_megabytes(model):7.2f} MB"
            f"  (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )

if __name__ == "__main__":
    main()
