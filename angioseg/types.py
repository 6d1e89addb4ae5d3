"""The two data types every part of angioseg passes around: `Video` and `LabelMap`.

A video is a `(T, H, W)` float32 array in [0, 1] (bright = more X-ray transmission, so
contrast-filled vessels are dark), with its frame rate, pixel spacing when known and a small
metadata dict. A label map is a `(T, H, W)` integer array with a table id -> name.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from angioseg.errors import InputError

#: Default label table for angiography runs. 0 is always background.
DEFAULT_LABELS: dict[int, str] = {0: "background", 1: "vessel", 2: "catheter"}
#: The table of a vessel-only segmentation (every method that marks vessels and nothing else).
VESSEL_LABELS: dict[int, str] = {0: "background", 1: "vessel"}


def vessel_labels() -> dict[int, str]:
    """A fresh copy of `VESSEL_LABELS` (label tables are mutable dicts)."""
    return dict(VESSEL_LABELS)

# Metadata keys that could identify a patient are never stored (matched case-insensitively
# after removing non-letters, so "Patient's Name", "patient_name" and "PatientName" all match).
_IDENTIFYING_KEY = re.compile(
    r"patient|birth|accession|institution|physician|operator|studyid|"
    r"otherpatient|address|telephone|ethnic|medicalrecord|mrn",
)


def scrub_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a copy of `metadata` without keys that could identify a patient.

    Keys are compared after lower-casing and dropping every non-letter, so the DICOM keywords
    (``PatientName``), attribute names (``Patient's Name``) and snake case all match.
    """
    if not metadata:
        return {}
    clean: dict[str, Any] = {}
    for key, value in metadata.items():
        normalised = re.sub(r"[^a-z]", "", str(key).lower())
        if _IDENTIFYING_KEY.search(normalised):
            continue
        clean[str(key)] = value
    return clean


def _positive_fps(value: Any) -> float:
    """A frame rate as a positive finite float (InputError for anything else: text, bool, NaN)."""
    fps = float(value) if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) else None
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise InputError(f"fps must be a positive number; got {value!r:.40}")
    return fps


def _spacing_pair(value: Any) -> tuple[float, float]:
    """(row, column) spacing as two positive finite floats (InputError otherwise)."""
    try:
        spacing = tuple(float(s) for s in value)
    except (TypeError, ValueError):
        spacing = ()
    if len(spacing) != 2 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise InputError(f"pixel spacing must be two positive finite numbers; got {value!r:.60}")
    return spacing  # type: ignore[return-value]


@dataclass
class Video:
    """An angiography run.

    Attributes:
        frames: `(T, H, W)` float32 in [0, 1]; 1 = full transmission (bright).
        fps: frames per second, or None where the source does not say.
        pixel_spacing: `(row, column)` spacing in mm, or None where unknown.
        metadata: small dict of non-identifying facts (source kind, bit depth, modality...).
            Keys that could identify a patient are removed on construction.
    """

    frames: np.ndarray
    fps: float | None = None
    pixel_spacing: tuple[float, float] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frames = np.asarray(self.frames)
        if frames.ndim == 2:
            frames = frames[None]
        if frames.ndim != 3:
            raise InputError(f"a video must be (T, H, W); got an array of shape {frames.shape}")
        if frames.shape[0] == 0 or frames.shape[1] == 0 or frames.shape[2] == 0:
            raise InputError(f"a video must have at least one non-empty frame; got shape {frames.shape}")
        if not np.issubdtype(frames.dtype, np.floating):
            raise InputError(f"video frames must be floating point in [0, 1]; got {frames.dtype}")
        frames = frames.astype(np.float32, copy=False)
        if not np.isfinite(frames).all():
            raise InputError("video frames contain NaN or infinite values")
        low, high = float(frames.min()), float(frames.max())
        if low < 0.0 or high > 1.0:
            raise InputError(f"video frames must lie in [0, 1]; got values in [{low:.4g}, {high:.4g}]")
        self.frames = frames
        if self.fps is not None:
            self.fps = _positive_fps(self.fps)
        if self.pixel_spacing is not None:
            self.pixel_spacing = _spacing_pair(self.pixel_spacing)
        self.metadata = scrub_metadata(self.metadata)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.frames.shape)  # type: ignore[return-value]

    def __len__(self) -> int:
        return self.num_frames


@dataclass
class LabelMap:
    """Per-frame integer masks with their label table.

    Attributes:
        labels: `(T, H, W)` integer array; 0 = background.
        label_table: id -> name for every id that may appear (0 included).
    """

    labels: np.ndarray
    label_table: dict[int, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.ndim == 2:
            labels = labels[None]
        if labels.ndim != 3:
            raise InputError(f"a label map must be (T, H, W); got an array of shape {labels.shape}")
        if labels.dtype == bool:
            labels = labels.astype(np.uint8)
        if not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"label maps must be integer; got {labels.dtype}")
        if labels.size and labels.min() < 0:
            raise InputError("label maps must not contain negative labels")
        self.labels = labels
        self.label_table = {int(k): str(v) for k, v in self.label_table.items()}
        self.label_table.setdefault(0, "background")
        unknown = sorted(set(np.unique(labels).tolist()) - set(self.label_table))
        if unknown:
            raise InputError(f"label map holds ids {unknown} that its label table does not name")

    @property
    def num_frames(self) -> int:
        return int(self.labels.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.labels.shape)  # type: ignore[return-value]

    def binary(self, label: int | None = None) -> np.ndarray:
        """`(T, H, W)` bool: pixels of `label`, or every foreground pixel when `label` is None."""
        if label is None:
            return self.labels > 0
        return self.labels == label

    def check_matches(self, video: Video) -> None:
        """Raise InputError unless these masks have the video's frame count and frame size."""
        if self.labels.shape != video.frames.shape:
            raise InputError(
                f"masks of shape {self.labels.shape} do not match the video's {video.frames.shape} (T, H, W)"
            )


@dataclass
class Prompt:
    """One labelled frame of a run: what a one-shot (propagation) method starts from.

    Attributes:
        frame: index of the labelled frame in the run (0-based).
        labels: `(H, W)` integer label map of that frame (0 = background; several objects
            allowed, one id each).
        label_table: id -> name for every id of `labels` (0 included).
    """

    frame: int
    labels: np.ndarray
    label_table: dict[int, str] = field(default_factory=vessel_labels)

    def __post_init__(self) -> None:
        if isinstance(self.frame, bool) or not isinstance(self.frame, (int, np.integer)) or self.frame < 0:
            raise InputError(f"a prompt's frame must be a non-negative frame index; got {self.frame!r}")
        self.frame = int(self.frame)
        labels = np.asarray(self.labels)
        if labels.ndim == 3 and labels.shape[0] == 1:
            labels = labels[0]
        checked = LabelMap(labels, self.label_table)  # integer, non-negative, ids named
        self.labels = checked.labels[0]
        self.label_table = checked.label_table

    def check_matches(self, video: Video) -> None:
        """Raise InputError unless the prompt's frame exists in `video` and has its size."""
        if self.frame >= video.num_frames:
            raise InputError(f"the prompt labels frame {self.frame}, but the run has {video.num_frames} frames")
        if self.labels.shape != (video.height, video.width):
            raise InputError(f"the prompt's label map is {self.labels.shape} but the run's frames are {(video.height, video.width)}")


def as_prompts(prompt: "Prompt | Sequence[Prompt] | None") -> tuple[Prompt, ...]:
    """A tuple of prompts, sorted by frame, from None, one prompt or several (one per frame)."""
    if prompt is None:
        return ()
    prompts = (prompt,) if isinstance(prompt, Prompt) else tuple(prompt)
    if not all(isinstance(p, Prompt) for p in prompts):
        raise InputError("prompts must be angioseg.types.Prompt objects")
    frames = [p.frame for p in prompts]
    if len(set(frames)) != len(frames):
        raise InputError(f"several prompts label the same frame: {sorted(frames)}")
    return tuple(sorted(prompts, key=lambda p: p.frame))
