"""A run's segmentation as a DICOM Segmentation (SEG) filed with its source run: what
`angioseg segment --dicom-seg` and a server call (the object itself: `angioseg.io.dicom_seg`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from angioseg.io.dicom_seg import read_source_headers, source_frames, write_dicom_seg

#: The SEG's name inside a segmentation bundle.
BUNDLE_SEG_NAME = "segmentation.dcm"


def check_dicom_seg_source(source_path: str | os.PathLike[str]) -> int:
    """Check, before any work, that `source_path` is a DICOM run a SEG can reference (a file,
    or a folder series as `angioseg.io.read_video` reads it); returns its frame count.

    Reads headers only. InputError, one line naming no patient data, for a video, an image
    folder, an array or a DICOM run without the identifiers a SEG references.
    """
    return len(source_frames(read_source_headers(source_path)))


def export_dicom_seg(
    source_path: str | os.PathLike[str],
    result_labels: np.ndarray,
    label_table: dict[int, str],
    out: str | os.PathLike[str],
    *,
    probabilities: np.ndarray | None = None,
    fractional: bool = False,
) -> Path:
    """Write the SEG of `result_labels` (`(T, H, W)`, the run's frames in reading order) for the
    DICOM run at `source_path` (a file, or a folder of single-frame instances) to `out`.

    `probabilities`: `(T, C, H, W)` class probabilities in the table's id order (what
    `Segmentation.class_probabilities` holds), `(T, S, H, W)` per segment, or `(T, H, W)` for
    a single segment; stored (FRACTIONAL, PROBABILITY) only with `fractional`. Atomic;
    returns `out`. InputError (one line) for a non-DICOM source or mismatched arrays.
    """
    from angioseg import __version__

    return write_dicom_seg(Path(source_path), result_labels, label_table, out, probabilities=probabilities,
                           fractional=fractional, software_version=__version__)
