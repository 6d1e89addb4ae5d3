"""Temporal stability of a segmentation: motion-compensated flicker.

flicker = (1 / (T − 1)) Σ_{t=0}^{T−2} [ 1 − Dice(M_{t+1}, W_t(M_t)) ]

where W_t(M_t) is mask t warped onto frame t+1 with the backward flow b_t (on frame t+1's
grid, (dx, dy) in pixels): W_t(M_t)(x) = M_t(x + b_t(x)), nearest-neighbour sampling by
`angioseg.warp.warp_backward`. Dice uses the package's empty-mask rule, so a pair of
empty masks counts as 0 flicker; a single-frame video has flicker 0.

Flow: the given `flow_backward` `(T−1, H, W, 2)` (e.g. the phantom's exact motion), else one
estimated from the video frames with OpenCV DIS optical flow (medium preset), computed from
frame t+1 to frame t so that sampling frame t at x + b(x) reproduces frame t+1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from angioseg.errors import InputError
from angioseg.eval.overlap import as_frames, as_mask
from angioseg.flow import dis_flow
from angioseg.warp import warp_backward

__all__ = ["estimate_backward_flow", "flicker_per_pair", "temporal_flicker"]


def _video_frames(frames: Any) -> np.ndarray:
    array = getattr(frames, "frames", frames)  # a Video or a plain array
    array = as_frames(np.asarray(array), "frames")
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"video frames must be floating point in [0, 1]; got {array.dtype}")
    return array


def estimate_backward_flow(frames: Any) -> np.ndarray:
    """Backward flows `(T−1, H, W, 2)` float32 (dx, dy) from `(T, H, W)` float frames in [0, 1].

    b_t = DIS(frame t+1 -> frame t) (`angioseg.flow.dis_flow`): frame t sampled at x + b_t(x)
    gives frame t+1. Frames are rounded to uint8 first.
    """
    video = _video_frames(frames)
    out = np.zeros((max(video.shape[0] - 1, 0), video.shape[1], video.shape[2], 2), np.float32)
    for t in range(video.shape[0] - 1):
        out[t] = dis_flow(video[t + 1], video[t])
    return out


def flicker_per_pair(masks: np.ndarray, *, flow_backward: np.ndarray | None = None, frames: Any = None) -> np.ndarray:
    """`(T−1,)` float64: 1 − Dice(M_{t+1}, W_t(M_t)) for each consecutive pair."""
    binary = as_frames(as_mask(masks, "masks"), "masks")
    count = binary.shape[0] - 1
    if count == 0:
        return np.zeros(0, dtype=np.float64)
    if flow_backward is None:
        if frames is None:
            raise InputError("temporal flicker needs a backward flow (flow_backward=) or the video frames (frames=)")
        video = _video_frames(frames)
        if video.shape != binary.shape:
            raise InputError(f"video frames shape {video.shape} does not match mask shape {binary.shape}")
        flow = estimate_backward_flow(video)
    else:
        flow = np.asarray(flow_backward)
        expected = (count, binary.shape[1], binary.shape[2], 2)
        if flow.shape != expected:
            raise InputError(f"backward flow shape {flow.shape} does not match the expected {expected} for masks {binary.shape}")
        if not np.issubdtype(flow.dtype, np.floating) or not np.isfinite(flow).all():
            raise InputError("backward flow must be finite floating-point (dx, dy) displacements")
    out = np.zeros(count, dtype=np.float64)
    for t in range(count):
        warped = warp_backward(binary[t], flow[t], nearest=True)
        target = binary[t + 1]
        inter = np.count_nonzero(warped & target)
        total = np.count_nonzero(warped) + np.count_nonzero(target)
        out[t] = 0.0 if total == 0 else 1.0 - 2.0 * inter / total
    return out


def temporal_flicker(masks: np.ndarray, *, flow_backward: np.ndarray | None = None, frames: Any = None) -> float:
    """Mean over t of 1 − Dice(M_{t+1}, warp(M_t)) (module docstring); 0 for one frame.

    `masks` `(T, H, W)` bool/int; `flow_backward` `(T−1, H, W, 2)` (dx, dy) wins over `frames`
    `(T, H, W)` float in [0, 1] (or a `Video`), from which DIS flow is estimated otherwise.
    InputError when neither is given for T ≥ 2.
    """
    pairs = flicker_per_pair(masks, flow_backward=flow_backward, frames=frames)
    return float(pairs.mean()) if pairs.size else 0.0
