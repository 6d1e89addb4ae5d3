"""`angioseg demo`: the main job on an embedded default, end to end.

Makes one phantom XCA run (with exact masks and motion), segments it with the best available
method, evaluates the result against the ground truth, prints the metric table and says where
the overlay video and the report are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from angioseg.cli.data_commands import non_negative_int, positive_int

#: Methods in order of preference; the first one registered is used.
PREFERRED_METHODS = ("cenet3d2d", "cenet", "frangi")


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("demo", help="phantom run -> segmentation -> metrics and overlay video")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default ./demo_out)")
    parser.add_argument("--size", type=positive_int, default=512, help="frame size in pixels (default 512, the size the shipped models were trained at)")
    parser.add_argument("--frames", type=positive_int, default=45, help="number of frames (default 45)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--method", default=None, help="method to demonstrate (default: the best available)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.set_defaults(run=run)


def best_method() -> str:
    from angioseg.methods import available

    names = {name for name, _ in available(ready_only=True)}
    return next(name for name in PREFERRED_METHODS if name in names)


def run(args: argparse.Namespace) -> int:
    from angioseg.cli.data_commands import run_phantom
    from angioseg.cli.evaluate_command import markdown_report, score, summarise_method
    from angioseg.cli.segment_command import write_segmentation
    from angioseg.options import check_device
    from angioseg.data.davis import DavisFolder
    from angioseg.methods import get_from_spec

    device = check_device(args.device)
    method = args.method or best_method()
    data_dir = args.out / "phantom"
    run_phantom(argparse.Namespace(
        out=data_dir, n=1, seed=args.seed, size=args.size, frames=args.frames, fps=15.0,
        no_dicom=False, no_overlay=True, no_motion=False,
    ))
    sequence = DavisFolder(data_dir).load("phantom_000")
    result = get_from_spec(method, device=device).segment(sequence.video)
    write_segmentation(args.out / "segmentation", sequence.video, result, source=str(data_dir / "DICOM" / "phantom_000.dcm"))
    # A vessel-only method is scored on the vessel label; one that also labels the catheter on all foreground.
    label = None if len(result.label_table) > 2 else 1
    metrics = score(result, sequence.masks, flow_backward=sequence.flow_backward, frames=sequence.video.frames, label=label,
                    frames_scored="with-target")
    entry = summarise_method({"phantom_000": metrics}, frames=sequence.video.num_frames,
                             seconds=result.timings["total"], options=result.options)
    report = {"data": str(data_dir), "cases": 1, "target": "foreground" if label is None else f"label {label}", "frames_scored": "with-target", "methods": {method: entry}}
    (args.out / "metrics.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(markdown_report(report))
    print(f"overlay video: {args.out / 'segmentation' / 'overlay.mp4'}")
    print(f"masks, probabilities, report: {args.out / 'segmentation'}")
    return 0
