"""`angioseg propagate RUN --mask LABELS.png --frame N -o OUT`: carry labelled frame(s) through a
run with a propagation method (`angioseg.pipelines.propagate.propagate_to_bundle`); writes
the bundle of `angioseg segment` plus the per-frame confidence and the labelled frames."""

from __future__ import annotations

import argparse
from pathlib import Path

from angioseg.cli.common import add_device_option, add_threads_option, non_negative_int


def register(verbs: argparse._SubParsersAction) -> None:
    from angioseg.pipelines.propagate import DEFAULT_PROPAGATION_METHOD

    parser = verbs.add_parser("propagate", help="segment a run from labelled frame(s): masks, probabilities, overlay, confidence")
    parser.add_argument("input", help="DICOM file or folder, video file, image folder, npy/npz (as for segment)")
    parser.add_argument("--mask", action="append", required=True, type=Path, metavar="LABELS.png",
                        help="label image of one frame (indexed or grey PNG; each id > 0 is an object); repeatable")
    parser.add_argument("--frame", action="append", required=True, type=non_negative_int, metavar="N",
                        help="the frame index (from 0) that the --mask of the same position labels; repeatable")
    parser.add_argument("--labels", default=None, metavar="JSON",
                        help='names of the ids, a JSON object or file: {"1": "vessel", "2": "catheter"} (default object-<id>)')
    parser.add_argument("-o", "--out", required=True, type=Path,
                        help="output folder: new or empty (never the input's folder); written atomically")
    parser.add_argument("--method", default=DEFAULT_PROPAGATION_METHOD,
                        help=f"propagation method, optionally name:key=value,... (default {DEFAULT_PROPAGATION_METHOD}; "
                             "flow-propagate is the optical-flow baseline)")
    add_device_option(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier angioseg output in OUT (nothing else is ever replaced)")
    add_threads_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg.pipelines.propagate import propagate_to_bundle

    _, result = propagate_to_bundle(args.input, args.out, masks=args.mask, frames=args.frame, labels=args.labels,
                                    method=args.method, device=args.device, overwrite=args.overwrite)
    fps = result.frames_per_second or 0.0
    frames = ", ".join(str(f) for f in sorted(args.frame))
    print(f"propagated frame(s) {frames} to {result.num_frames} frames with {args.method} at {fps:.1f} frames/s -> {args.out}")
    return 0
