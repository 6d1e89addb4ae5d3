"""`angioseg hcc RUN -o OUT`: liver-tumour (HCC) segmentation on the key frame of a DSA run
with DSA-LTDNet (`angioseg.pipelines.hcc`): key frame, tumour and liver masks, probabilities,
each tumour's area and centroid, an overlay and a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from angioseg.cli.common import add_device_option, add_threads_option, positive_int


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("hcc", help="liver tumours (HCC) on the key frame of a DSA run (DSA-LTDNet)")
    parser.add_argument("input", help="DSA run: DICOM file or folder, video file, image folder, npy/npz (at least 15 frames)")
    parser.add_argument("-o", "--out", required=True, type=Path,
                        help="output folder: new or empty (never the input's folder); written atomically")
    parser.add_argument("--weights", type=Path, default=None,
                        help="DSA-LTDNet weights (angioseg train ltdnet); default: the shipped angioseg/weights/ltdnet.safetensors")
    parser.add_argument("--frame-step", type=positive_int, default=None, metavar="S",
                        help="frame difference / optical flow between frames k-S and k, for networks that read them "
                             "(default: the step the weights were trained with, 9 as in the paper)")
    add_device_option(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier 'angioseg hcc' output in OUT (nothing else is ever replaced)")
    add_threads_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg.pipelines.hcc import hcc_to_folder

    out, result = hcc_to_folder(args.input, args.out, weights=args.weights, frame_step=args.frame_step,
                                device=args.device, overwrite=args.overwrite)
    areas = ", ".join(f"{t['area_px']} px" + (f" ({t['area_mm2']:.1f} mm²)" if t["area_mm2"] is not None else "")
                      for t in result.tumours[:5])
    more = f", +{len(result.tumours) - 5} more" if len(result.tumours) > 5 else ""
    print(f"key frame {result.key_frame}: {len(result.tumours)} tumour(s)" + (f" [{areas}{more}]" if areas else "") + f" -> {out}")
    return 0
