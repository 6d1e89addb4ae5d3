"""Fast batched inference of the supervised networks on a whole run, and the
motion-compensated temporal filter of the sequence CE-Net paper.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from angioseg.flow import estimate_flows, sample_along
from angioseg.methods.supervised.clips import clip_indices
from angioseg.methods.supervised.weights import ModelSpec


@torch.inference_mode()
def predict_probabilities(
    model: nn.Module,
    spec: ModelSpec,
    frames: np.ndarray,
    *,
    frame_indices: Sequence[int] | None = None,
    batch: int = 4,
    device: str | torch.device = "cpu",
    channels_last: bool = True,
) -> np.ndarray:
    """Vessel probability of each requested frame.

    Args:
        model: network in eval mode taking `(B, 2N+1, H, W)` (N = spec.radius; 1 channel for 2-D).
        frames: `(T, H, W)` float32 in [0, 1].
        frame_indices: which frames (default all).
        batch: frames per forward pass.

    Returns:
        `(len(frame_indices), H, W)` float32 sigmoid probabilities.
    """
    count = frames.shape[0]
    indices = list(range(count)) if frame_indices is None else [int(i) for i in frame_indices]
    video = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    outputs = []
    for start in range(0, len(indices), batch):
        chunk = indices[start : start + batch]
        clips = torch.stack([video[torch.from_numpy(clip_indices(t, count, spec.radius))] for t in chunk])
        logits = model(clips.contiguous(memory_format=memory_format))
        outputs.append(torch.sigmoid(logits[:, 0]).float().cpu().numpy())
    return np.concatenate(outputs, axis=0) if outputs else np.zeros((0,) + frames.shape[1:], np.float32)


def trajectory_positions(forward: np.ndarray, backward: np.ndarray, t: int, offset: int) -> np.ndarray:
    """Where the pixels of frame t are in frame t + offset, following the flows.

    With the conventions of `angioseg.flow`: one step forward x -> x + f_t(x) (f_t on frame t's
    grid) and one step back x -> x + b_{t-1}(x) (b_{t-1} on frame t's grid); longer offsets
    compose the steps by bilinear sampling of the next flow at the current position.

    Returns:
        `(H, W, 2)` float32 positions (x, y) in frame t + offset.
    """
    height, width = forward.shape[1:3] if len(forward) else backward.shape[1:3]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    positions = np.stack([xs, ys], axis=-1)
    step = 1 if offset > 0 else -1
    current = t
    for _ in range(abs(offset)):
        flow = forward[current] if step > 0 else backward[current - 1]
        displacement = np.stack([sample_along(flow[..., k], positions) for k in range(2)], axis=-1)
        positions = positions + displacement
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
    """Temporal filter along motion trajectories (sequence CE-Net paper, Eq. 1 and Fig. 3):

        f(n, k) = Σ_{l=-K}^{K} h(l) g(n + d_{k→k-l}(n), k - l)

    where d_{k→k-l}(n) follows the optical flow from frame k to frame k - l, so each term is
    the probability of the same tissue point. Frames outside the run repeat the edge frame
    (their trajectory stops at the edge).

    Args:
        probabilities: `(T, H, W)` per-frame maps g.
        frames: `(T, H, W)` float frames in [0, 1] (for DIS flow when `flows` is None).
        radius: K.
        weights: h(l), default 1 / (2K + 1).
        flows: (forward, backward) `(T-1, H, W, 2)` each, e.g. ground-truth motion.

    Returns:
        `(T, H, W)` float32.
    """
    count = probabilities.shape[0]
    h = np.full(2 * radius + 1, 1.0 / (2 * radius + 1)) if weights is None else np.asarray(weights, np.float64)
    forward, backward = flows if flows is not None else estimate_flows(frames)
    out = np.zeros_like(probabilities, dtype=np.float32)
    for k in range(count):
        for l, weight in zip(range(-radius, radius + 1), h):
            source = int(np.clip(k - l, 0, count - 1))
            if source == k:
                out[k] += np.float32(weight) * probabilities[k]
                continue
            positions = trajectory_positions(forward, backward, k, source - k)
            out[k] += np.float32(weight) * sample_along(probabilities[source], positions)
    return out
