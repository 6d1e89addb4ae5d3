"""`angioseg segment INPUT -o OUT`: masks, probabilities, overlay video and a report.

OUT/ (written atomically):
    masks/00000.png ...   label maps, indexed PNG (DAVIS palette)
    masks.npz             labels (T, H, W) + label table
    probabilities.npz     foreground probability (T, H, W), float16
    overlay.mp4           masks over the frames with a legend
    report.json           input facts, method and options, per-frame vessel area, fps achieved
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from angioseg.errors import InputError
from angioseg.options import check_device

DEFAULT_METHOD = "cenet3d2d"


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("segment", help="segment a run: masks, probabilities, overlay video, report")
    parser.add_argument("input", help="DICOM file or folder, video file, image folder, npy/npz")
    parser.add_argument("-o", "--out", required=True, type=Path, help="output folder (replaced atomically)")
    parser.add_argument("--method", default=DEFAULT_METHOD, help=f"method name, optionally with options as name:key=value,... (default {DEFAULT_METHOD}; see 'angioseg methods')")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps (default cpu)")
    parser.add_argument("--temporal-filter", type=int, default=0, metavar="K",
                        help="average probabilities over 2K+1 frames before thresholding (default 0: off)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg import methods
    from angioseg.io import read_video

    if args.temporal_filter < 0:
        raise InputError(f"--temporal-filter must be >= 0, got {args.temporal_filter}")
    device = check_device(args.device)
    segmenter = methods.get_from_spec(args.method, device=device)
    video = read_video(args.input)
    result = segmenter.segment(video)
    if args.temporal_filter:
        result = apply_temporal_filter(result, args.temporal_filter)
    write_segmentation(args.out, video, result, source=str(args.input))
    fps = result.frames_per_second
    print(f"segmented {video.num_frames} frames with {args.method} at {fps:.1f} frames/s -> {args.out}")
    return 0


def apply_temporal_filter(result, radius: int):
    """Average the probabilities over 2K+1 frames and re-threshold at 0.5 (binary methods)."""
    from angioseg.methods import Segmentation, temporal_filter
    from angioseg.types import LabelMap

    smoothed = temporal_filter(result.probabilities, radius=radius)
    labels = (smoothed >= 0.5).astype(np.uint8)
    options = {**result.options, "temporal_filter_k": radius}
    return Segmentation(LabelMap(labels, result.label_table), smoothed, dict(result.timings), options)


def frame_areas(labels: np.ndarray, label_table: dict[int, str], spacing: tuple[float, float] | None) -> list[dict[str, Any]]:
    """Per frame and label: area in pixels, and in mm² where the pixel spacing is known."""
    pixel_mm2 = spacing[0] * spacing[1] if spacing else None
    rows = []
    for t, frame in enumerate(labels):
        counts = np.bincount(frame.ravel().astype(np.int64), minlength=max(label_table) + 1)
        row: dict[str, Any] = {"frame": t}
        for label, name in label_table.items():
            if label == 0:
                continue
            row[f"{name}_px"] = int(counts[label])
            if pixel_mm2 is not None:
                row[f"{name}_mm2"] = round(float(counts[label] * pixel_mm2), 4)
        rows.append(row)
    return rows


def write_segmentation(out: Path, video, result, *, source: str) -> None:
    """Write masks (PNG + NPZ), probabilities, overlay and report.json into `out` atomically."""
    from angioseg.io import write_label_pngs, write_labels_npz, write_overlay_video, write_probabilities_npz
    from angioseg.io.atomic import atomic_directory

    with atomic_directory(out) as tmp:
        write_label_pngs(result.masks.labels, tmp / "masks")
        write_labels_npz(result.masks, tmp / "masks.npz")
        write_probabilities_npz(result.probabilities, tmp / "probabilities.npz", label_table=result.label_table)
        overlay = write_overlay_video(video, result.masks.labels, result.label_table, tmp / "overlay.mp4")
        report = {
            "input": {"path": source, "frames": video.num_frames, "height": video.height, "width": video.width,
                      "fps": video.fps, "pixel_spacing": video.pixel_spacing, **video.metadata},
            "method": result.options.get("method"),
            "options": result.options,
            "label_table": {str(k): v for k, v in result.label_table.items()},
            "frames_per_second": result.frames_per_second,
            "timings_s": result.timings,
            "overlay": Path(overlay).name,
            "per_frame": frame_areas(result.masks.labels, result.label_table, video.pixel_spacing),
        }
        (tmp / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
