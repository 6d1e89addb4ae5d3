"""`angioseg demo`: the main job on an embedded default, end to end
(`angioseg.pipelines.demo.run_demo`): a run made from a real angiogram and a phantom run,
each segmented and scored, with its overlay."""

from __future__ import annotations

import argparse
from pathlib import Path

from angioseg.cli.common import add_device_option, add_threads_option, non_negative_int, positive_int


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("demo", help="a real-anatomy run and a phantom run -> segmentation -> metrics and overlay videos")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default ./demo_out)")
    parser.add_argument("--size", type=positive_int, default=512, help="frame size in pixels (default 512, the size the shipped models were trained at)")
    parser.add_argument("--frames", type=positive_int, default=45, help="number of frames (default 45)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--method", default=None, help="method to demonstrate (default: the best available)")
    add_device_option(parser)
    add_threads_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg.pipelines.demo import run_demo

    demo = run_demo(args.out, size=args.size, frames=args.frames, seed=args.seed, method=args.method, device=args.device)
    print(demo.markdown)
    for key, title in (("real", "real-anatomy run"), ("phantom", "phantom run")):
        print(f"{title}: overlay video {demo.overlays[key]}; masks, probabilities, report in {demo.bundles[key]}")
    return 0
