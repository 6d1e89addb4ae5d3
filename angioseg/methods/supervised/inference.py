"""Fast batched inference of the supervised networks on a whole run (the temporal filters of
the sequence CE-Net paper are in `angioseg.postprocess.temporal`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

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

