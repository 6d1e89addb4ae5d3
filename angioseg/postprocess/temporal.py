"""Temporal filters of per-frame probabilities: the sequence CE-Net paper's filter, plain and
along the motion (its Eq. 1 and Fig. 3).

Plain:           f(n, k) = Σ_{l=-K}^{K} h(l) g(n, k - l)
Along motion:    f(n, k) = Σ_{l=-K}^{K} h(l) g(n + d_{k→k-l}(n), k - l)

where d_{k→k-l}(n) follows the optical flow from frame k to frame k - l, so each term is the
probability of the same tissue point. Frames outside the run repeat the edge frame
(g(k) = g(0) for k < 0, g(k) = g(T-1) for k ≥ T; a trajectory stops at the edge), so every
output frame is a full weighted average and a constant run stays constant. h(l) = 1 / (2K + 1)
unless weights are given.
"""

from __future__ import annotations

import numpy as np

from angioseg.errors import InputError
from angioseg.flow import estimate_flows
from angioseg.warp import pixel_positions, sample_at

__all__ = ["filter_class_probabilities", "motion_compensated_filter", "temporal_filter", "trajectory_positions"]


def _weights(radius: int, weights: np.ndarray | None) -> np.ndarray:
    """h(l) for l = -K..K: the given `weights` (2K + 1 values) or the box 1 / (2K + 1)."""
    if radius < 0:
        raise InputError(f"temporal filter radius must be >= 0; got {radius}")
    h = np.full(2 * radius + 1, 1.0 / (2 * radius + 1)) if weights is None else np.asarray(weights, dtype=np.float64)
    if h.shape != (2 * radius + 1,):
        raise InputError(f"temporal filter needs {2 * radius + 1} weights for K = {radius}; got {h.shape[0]}")
    return h


def temporal_filter(probabilities: np.ndarray, *, radius: int = 1, weights: np.ndarray | None = None) -> np.ndarray:
    """The plain filter (module docstring) of `(T, ...)` per-frame maps g, e.g. `(T, H, W)`
    or `(T, C, H, W)`; K = `radius`. Returns float32 of the same shape."""
    g = np.asarray(probabilities, dtype=np.float32)
    if g.ndim < 3:
        raise InputError(f"temporal filter needs (T, H, W) maps; got shape {g.shape}")
    h = _weights(radius, weights)
    count = g.shape[0]
    frame_index = np.arange(count)
    out = np.zeros_like(g)
    for offset, weight in zip(range(-radius, radius + 1), h):
        source = np.clip(frame_index - offset, 0, count - 1)  # f(k) += h(l) g(k - l)
        out += np.float32(weight) * g[source]
    return out


def trajectory_positions(forward: np.ndarray, backward: np.ndarray, t: int, offset: int) -> np.ndarray:
    """Where the pixels of frame t are in frame t + offset, following the flows.

    With the conventions of `angioseg.flow`: one step forward x -> x + f_t(x) (f_t on frame t's
    grid) and one step back x -> x + b_{t-1}(x) (b_{t-1} on frame t's grid); longer offsets
    compose the steps by bilinear sampling of the next flow at the current position.

    Returns:
        `(H, W, 2)` float32 positions (x, y) in frame t + offset.
    """
    height, width = forward.shape[1:3] if len(forward) else backward.shape[1:3]
    positions = pixel_positions(height, width)
    step = 1 if offset > 0 else -1
    current = t
    for _ in range(abs(offset)):
        flow = forward[current] if step > 0 else backward[current - 1]
        positions = positions + sample_at(flow, positions)
        current += step
    return positions


def motion_compensated_filter(
    probabilities: np.ndarray,
    frames: np.ndarray,
    *,
    radius: int,
    weights: np.ndarray | None = None,
    flows: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The filter along the motion (module docstring).

    Args:
        probabilities: `(T, H, W)` or `(T, C, H, W)` per-frame maps g.
        frames: `(T, H, W)` float frames in [0, 1] (for DIS flow when `flows` is None).
        radius: K.
        weights: h(l), default 1 / (2K + 1).
        flows: (forward, backward) `(T-1, H, W, 2)` each, e.g. ground-truth motion.

    Returns:
        float32 of the shape of `probabilities`.
    """
    g = np.asarray(probabilities, dtype=np.float32)
    h = _weights(radius, weights)
    count = g.shape[0]
    if count < 2 or radius == 0:
        return g.copy()
    forward, backward = flows if flows is not None else estimate_flows(frames)
    channels_first = g.ndim == 4
    out = np.zeros_like(g)
    for k in range(count):
        for l, weight in zip(range(-radius, radius + 1), h):
            source = int(np.clip(k - l, 0, count - 1))
            if source == k:
                out[k] += np.float32(weight) * g[k]
                continue
            positions = trajectory_positions(forward, backward, k, source - k)
            if channels_first:
                out[k] += np.float32(weight) * np.stack([sample_at(plane, positions) for plane in g[source]])
            else:
                out[k] += np.float32(weight) * sample_at(g[source], positions)
    return out


def filter_class_probabilities(
    class_probabilities: np.ndarray, frames: np.ndarray, *, radius: int, motion: bool, flows: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """`(T, C, H, W)` probabilities filtered over 2K + 1 frames per class, plain or along the
    motion; a convex combination of distributions, so each pixel still sums to 1."""
    if motion:
        return motion_compensated_filter(class_probabilities, frames, radius=radius, flows=flows)
    return temporal_filter(class_probabilities, radius=radius)
