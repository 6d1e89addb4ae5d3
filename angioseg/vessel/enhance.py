"""Contrast enhancement before a vesselness filter, and the filter scales for a frame size.

CLAHE (contrast-limited adaptive histogram equalisation, OpenCV's) equalises the histogram in
tiles of the frame with the counts clipped at `clip_limit` times the mean bin count, and
interpolates bilinearly between tiles: faint distal branches gain contrast against the local
background, which is what a Hessian filter responds to. It is the first step of the textbook
recipe for vessels on X-ray angiograms (CLAHE, Sato's tubeness, Otsu, small objects removed).

Frames are `(T, H, W)` float in [0, 1]; each frame is equalised on its 8-bit version (as the
textbook recipe does) and returned as float32 in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np

from angioseg.errors import InputError

__all__ = ["REFERENCE_SCALES", "clahe", "frame_scales"]

#: The textbook recipe's Sato scales (pixels) on a 300 x 300 angiogram (dca1-train's size).
REFERENCE_SCALES = (1.0, 2.0, 3.0, 4.0)
REFERENCE_SIDE = 300


def clahe(frames: np.ndarray, *, clip_limit: float = 2.0, tiles: int = 8) -> np.ndarray:
    """`(T, H, W)` (or `(H, W)`) float frames in [0, 1] -> CLAHE-equalised float32 in [0, 1]
    (OpenCV's CLAHE on each frame's 8-bit version, `tiles` x `tiles` tiles)."""
    array = np.asarray(frames, dtype=np.float32)
    single = array.ndim == 2
    stack = array[None] if single else array
    if stack.ndim != 3:
        raise InputError(f"CLAHE needs (T, H, W) or (H, W) frames; got shape {array.shape}")
    if not clip_limit > 0 or tiles < 1:
        raise InputError(f"CLAHE needs clip_limit > 0 and tiles >= 1; got {clip_limit}, {tiles}")
    equaliser = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tiles), int(tiles)))
    eight_bit = np.round(np.clip(stack, 0.0, 1.0) * 255.0).astype(np.uint8)
    out = np.stack([equaliser.apply(frame) for frame in eight_bit]).astype(np.float32) / 255.0
    return out[0] if single else out


def frame_scales(height: int, width: int, *, reference: tuple[float, ...] = REFERENCE_SCALES) -> tuple[float, ...]:
    """The filter scales for an `height` x `width` frame: `reference` (scales at a 300-pixel
    side) times min(H, W) / 300, at least 0.5 px each, duplicates removed."""
    factor = min(height, width) / REFERENCE_SIDE
    return tuple(sorted({round(max(0.5, s * factor), 4) for s in reference}))
