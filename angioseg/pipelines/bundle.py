"""The segmentation bundle: what `angioseg segment` writes for one run, and reading it back.

OUT/ (written atomically, `angioseg.io.atomic.atomic_directory`):
    masks/00000.png ...   label maps, indexed PNG (DAVIS palette)
    masks.npz             labels (T, H, W) + label table
    probabilities.npz     per-class probabilities (T, C, H, W) float16 + label table
    overlay.mp4           masks over the frames with a legend (.gif where no encoder exists)
    report.json           input facts, method and options, per-frame area per label, fps
    segmentation.dcm      the masks as a DICOM SEG of the source run (DICOM inputs, on request:
                          `angioseg.pipelines.dicom_seg`)

Safety (checked by `check_bundle_target` before any computation): the target is never an
input, never holds an input, and is never a non-empty folder angioseg did not write. An earlier
bundle (recognised by its report.json and its file names) is replaced only with `overwrite`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from angioseg.errors import InputError
from angioseg.methods import Segmentation
from angioseg.types import LabelMap, Video

#: report.json's "format" entry, by which an earlier bundle is recognised.
BUNDLE_FORMAT = "angioseg-segmentation"
BUNDLE_VERSION = 2
#: Every name a bundle holds (the overlay's suffix varies with the encoder available).
BUNDLE_NAMES = frozenset({"masks", "masks.npz", "probabilities.npz", "report.json", "segmentation.dcm"})


def is_bundle(folder: str | os.PathLike[str]) -> bool:
    """Whether `folder` is a bundle angioseg wrote: a report.json of this format (or of the first
    format, which had "method" and "per_frame") and no names a bundle does not hold."""
    folder = Path(folder)
    try:
        report = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(report, dict):
        return False
    ours = report.get("format") == BUNDLE_FORMAT or {"method", "per_frame"} <= set(report)
    return ours and all(p.name in BUNDLE_NAMES or p.name.startswith("overlay.") for p in folder.iterdir())


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_bundle_target(out: str | os.PathLike[str], *, inputs: Sequence[str | os.PathLike[str]] = (), overwrite: bool = False,
                        recognise: Callable[[Path], bool] | None = None) -> Path:
    """Refuse, with one line, an output folder that would destroy or modify data.

    InputError when `out` is an input, holds an input (its folder or an ancestor of it), lies
    inside an input folder, is a file, is not writable, has too long a name, or is a non-empty
    folder: one that angioseg did not write always, an earlier bundle unless `overwrite`.
    `recognise` tells an earlier output of the caller's kind (default `is_bundle`).
    """
    from angioseg.io.atomic import check_output_location

    target = Path(out).resolve()
    for given in inputs:
        source = Path(given).resolve()
        if _within(source, target):
            raise InputError(f"output folder {out} is or contains the input {given}; choose a folder outside it")
        if source.is_dir() and _within(target, source):
            raise InputError(f"output folder {out} lies inside the input folder {given}; choose a folder outside it")
    check_output_location(target)
    if target.is_dir() and any(target.iterdir()):
        if not (recognise or is_bundle)(target):
            raise InputError(f"output folder {out} is not empty and is not an angioseg output; choose a new or empty folder")
        if not overwrite:
            raise InputError(f"output folder {out} holds an earlier angioseg output; pass --overwrite to replace it")
    return target


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


def bundle_report(video: Video, result: Segmentation, *, source: str, overlay_name: str) -> dict[str, Any]:
    """The report.json of a bundle (no patient identifier: `Video.metadata` is scrubbed)."""
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "input": {"name": Path(source).name, "frames": video.num_frames, "height": video.height, "width": video.width,
                  "fps": video.fps, "pixel_spacing": video.pixel_spacing, **video.metadata},
        "method": result.options.get("method"),
        "options": result.options,
        "threshold": result.threshold,
        "label_table": {str(k): v for k, v in result.label_table.items()},
        "frames_per_second": result.frames_per_second,
        "timings_s": result.timings,
        "overlay": overlay_name,
        "confidence": None if result.confidence is None else [round(float(c), 4) for c in result.confidence],
        "per_frame": frame_areas(result.masks.labels, result.label_table, video.pixel_spacing),
    }


def write_bundle_contents(folder: Path, video: Video, result: Segmentation, *, source: str,
                          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the bundle's files into the (temporary) folder `folder`; returns the report
    (`extra`: more report.json entries, e.g. a propagation's "prompt_frames")."""
    from angioseg.io import write_label_pngs, write_labels_npz, write_overlay_video, write_probabilities_npz

    write_label_pngs(result.masks.labels, folder / "masks")
    write_labels_npz(result.masks, folder / "masks.npz")
    write_probabilities_npz(result.class_probabilities, folder / "probabilities.npz", label_table=result.label_table)
    overlay = write_overlay_video(video, result.masks.labels, result.label_table, folder / "overlay.mp4")
    report = {**bundle_report(video, result, source=source, overlay_name=Path(overlay).name), **(extra or {})}
    (folder / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def write_bundle(out: str | os.PathLike[str], video: Video, result: Segmentation, *, source: str, overwrite: bool = False) -> Path:
    """Check `out` (`check_bundle_target`) and write the bundle there atomically; returns its path.

    To check before a long computation, call `check_bundle_target` first, or use
    `angioseg.pipelines.segment.segment_to_bundle`, which holds the output lock throughout.
    """
    from angioseg.io.atomic import atomic_directory

    target = check_bundle_target(out, inputs=(source,) if Path(source).exists() else (), overwrite=overwrite)
    with atomic_directory(target, replaceable=is_bundle) as tmp:
        write_bundle_contents(tmp, video, result, source=source)
    return target


@dataclass
class Bundle:
    """A bundle read back: masks, per-class probabilities `(T, C, H, W)` float32, report."""

    masks: LabelMap
    class_probabilities: np.ndarray
    report: dict[str, Any]

    def segmentation(self) -> Segmentation:
        """The bundle as a `Segmentation` (probabilities as stored: float16 precision)."""
        return Segmentation(self.masks, self.class_probabilities, dict(self.report.get("timings_s") or {}),
                            dict(self.report.get("options") or {}), threshold=float(self.report.get("threshold", 0.5)))


def read_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read a bundle folder written by `write_bundle` (InputError naming what is missing)."""
    from angioseg.io import read_labels_npz, read_probabilities_npz

    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{path} is not a folder")
    for name in ("report.json", "masks.npz", "probabilities.npz"):
        if not (folder / name).is_file():
            raise InputError(f"{path} is not an angioseg segmentation: {name} is missing")
    try:
        report = json.loads((folder / "report.json").read_text())
    except ValueError as error:
        raise InputError(f"{folder / 'report.json'} is not valid JSON: {error}") from None
    masks = read_labels_npz(folder / "masks.npz")
    probabilities, _ = read_probabilities_npz(folder / "probabilities.npz")
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim == 3:  # the first format stored the foreground map only
        probabilities = np.stack([1.0 - probabilities, probabilities], axis=1)
    sums = probabilities.sum(axis=1, keepdims=True)
    probabilities = np.divide(probabilities, sums, out=probabilities, where=sums > 0)  # float16 storage rounds
    return Bundle(masks, probabilities, report)
