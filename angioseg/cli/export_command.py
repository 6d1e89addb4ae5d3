"""`angioseg export MODEL -o model.onnx`: a shipped model or a weights file as ONNX
(`angioseg.pipelines.export`; FSVOS as three graphs OUT.key/.value/.decoder.onnx)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("export", help="write a model as ONNX, with its input rules and provenance as metadata")
    parser.add_argument("model", metavar="MODEL",
                        help="shipped model (unet, cenet, cenet-syntax, cenet3d2d-n1, cenet3d2d-n2, fsvos) or a "
                             ".safetensors weights file written by angioseg")
    parser.add_argument("-o", "--out", required=True, type=Path,
                        help="ONNX file to write (FSVOS: OUT.key.onnx, OUT.value.onnx and OUT.decoder.onnx beside it)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg.pipelines.export import export_model

    for path in export_model(args.model, args.out, overwrite=args.overwrite):
        print(f"wrote {path}")
    return 0
