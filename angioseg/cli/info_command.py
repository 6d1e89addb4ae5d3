"""`angioseg info INPUT`: what a readable input holds."""

from __future__ import annotations

import argparse
import json

from angioseg.io import describe


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("info", help="print frames, size, fps, bit depth and source kind of an input")
    parser.add_argument("input", help="DICOM file or folder, video file, image folder, npy/npz")
    parser.add_argument("--json", action="store_true", help="print JSON instead of aligned text")
    parser.set_defaults(run=run)


def format_value(value: object) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return " x ".join(format_value(v) for v in value)
    return str(value)


def run(args: argparse.Namespace) -> int:
    facts = describe(args.input)
    if args.json:
        print(json.dumps(facts, indent=2, default=str))
        return 0
    width = max(len(key) for key in facts)
    for key, value in facts.items():
        print(f"{key:<{width}}  {format_value(value)}")
    return 0
