"""OpenCV DIS optical flow: the fast default backend.

Conventions (all flows `(H, W, 2)` float32, (dx, dy) in pixels):
- `dis_flow(a, b)` = f with a(x) ≈ b(x + f(x)), defined on a's grid.
- forward flow t -> t+1: f_t = dis_flow(frame t, frame t+1); frame t+1 sampled at x + f_t(x)
  gives frame t.
- backward flow t+1 -> t: b_t = dis_flow(frame t+1, frame t); frame t sampled at x + b_t(x)
  gives frame t+1 (the convention of the phantom's exact `flow_backward`).
"""

from __future__ import annotations

import cv2
import numpy as np

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    return np.round(np.clip(frame, 0.0, 1.0) * 255.0).astype(np.uint8)


def dis_flow(first: np.ndarray, second: np.ndarray, *, preset: str = "medium") -> np.ndarray:
    """f `(H, W, 2)` with first(x) ≈ second(x + f(x)); frames `(H, W)` float in [0, 1]."""
    dis = cv2.DISOpticalFlow_create(PRESETS[preset])
    return dis.calc(_to_uint8(first), _to_uint8(second), None)


def estimate_flows(frames: np.ndarray, *, preset: str = "medium") -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward flows between consecutive frames of `(T, H, W)` float frames.

    Returns:
        forward `(T-1, H, W, 2)`: f_t on frame t's grid, frame t+1 at x + f_t(x) ≈ frame t at x.
        backward `(T-1, H, W, 2)`: b_t on frame t+1's grid, frame t at x + b_t(x) ≈ frame t+1 at x.
    """
    dis = cv2.DISOpticalFlow_create(PRESETS[preset])
    count, height, width = frames.shape
    forward = np.zeros((max(count - 1, 0), height, width, 2), np.float32)
    backward = np.zeros_like(forward)
    images = [_to_uint8(frame) for frame in frames]
    for t in range(count - 1):
        forward[t] = dis.calc(images[t], images[t + 1], None)
        backward[t] = dis.calc(images[t + 1], images[t], None)
    return forward, backward

