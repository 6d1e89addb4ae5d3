"""`angioseg segment INPUT -o OUT`: masks, probabilities, overlay video and a report
(the bundle of `angioseg.pipelines.bundle`, written by `angioseg.pipelines.segment_to_bundle`),
and with `--dicom-seg` a DICOM Segmentation of the masks for a DICOM input."""

from __future__ import annotations

import argparse
from pathlib import Path

from angioseg.cli.common import add_device_option, add_threads_option, non_negative_int


def register(verbs: argparse._SubParsersAction) -> None:
    from angioseg.pipelines.segment import DEFAULT_METHOD

    parser = verbs.add_parser("segment", help="segment a run: masks, probabilities, overlay video, report")
    parser.add_argument("input", help="DICOM file or folder, video file, image folder, npy/npz")
    parser.add_argument("-o", "--out", required=True, type=Path,
                        help="output folder: new or empty (never the input's folder); written atomically")
    parser.add_argument("--method", default=DEFAULT_METHOD, help=f"method name, optionally with options as name:key=value,... (default {DEFAULT_METHOD}; see 'angioseg methods')")
    add_device_option(parser)
    parser.add_argument("--temporal-filter", type=non_negative_int, default=0, metavar="K",
                        help="average the probabilities over 2K+1 frames and re-threshold at the method's own threshold (default 0: off)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier angioseg output in OUT (nothing else is ever replaced)")
    parser.add_argument("--dicom-seg", action="store_true",
                        help="also write OUT/segmentation.dcm, a DICOM Segmentation of the masks that references the "
                             "source run frame by frame (DICOM inputs only; see docs/dicom_seg.md)")
    add_threads_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg.pipelines.segment import segment_to_bundle

    out, result = segment_to_bundle(args.input, args.out, method=args.method, device=args.device,
                                    temporal_filter=args.temporal_filter, overwrite=args.overwrite,
                                    dicom_seg=args.dicom_seg)
    fps = result.frames_per_second or 0.0
    print(f"segmented {result.num_frames} frames with {args.method} at {fps:.1f} frames/s -> {args.out}")
    return 0
