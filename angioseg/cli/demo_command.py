"""`angioseg demo`: the main job on an embedded default, for a first look.

Generates one phantom XCA run with its exact masks and writes the run (DAVIS-style folder,
DICOM) and its overlay video, then prints where they are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from angioseg.cli.data_commands import positive_int


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("demo", help="generate a phantom run and write its overlay video")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default ./demo_out)")
    parser.add_argument("--size", type=positive_int, default=384, help="frame size in pixels (default 384)")
    parser.add_argument("--frames", type=positive_int, default=45, help="number of frames (default 45)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg.cli.data_commands import run_phantom

    phantom_args = argparse.Namespace(
        out=args.out, n=1, seed=args.seed, size=args.size, frames=args.frames, fps=15.0,
        no_dicom=False, no_overlay=False, no_motion=False,
    )
    run_phantom(phantom_args)
    print(f"overlay video: {args.out / 'Overlays' / 'phantom_000.mp4'}")
    print(f"DICOM run:     {args.out / 'DICOM' / 'phantom_000.dcm'}")
    return 0
