"""Training samples for the supervised video segmenters: clips of 2N+1 frames and a mask.

All sequences of one or more DAVIS-style folders are held in memory as uint8 frames and
boolean vessel masks. A sample is the clip of frames t-N..t+N (edge frames repeated, the
3D-2D paper's rule) cropped to `crop` x `crop`, with the mask of the centre frame t; 2-D
models use N = 0. Crops are drawn around a vessel pixel with probability `vessel_bias`, so
thin vessels are not drowned in background. Augmentation keeps the scale (the models run at
the data's resolution): flips, 90-degree rotations, gamma, contrast and brightness jitter,
and extra Gaussian noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from angioseg.data.davis import DavisFolder
from angioseg.errors import InputError

VESSEL_LABEL = 1


@dataclass
class TrainingSequence:
    """One sequence in memory: `frames` (T, H, W) uint8, `vessel` (T, H, W) bool."""

    name: str
    frames: np.ndarray
    vessel: np.ndarray


def load_sequences(folders: Sequence[str | Path], *, limit: int | None = None) -> list[TrainingSequence]:
    """Read every annotated sequence of the DAVIS-style `folders` (vessel = label 1)."""
    sequences: list[TrainingSequence] = []
    for folder_path in folders:
        folder = DavisFolder(folder_path)
        names = folder.names[:limit] if limit else folder.names
        for name in names:
            sequence = folder.load(name, motion=False)
            if sequence.masks is None:
                raise InputError(f"sequence {name} in {folder_path} has no annotations to train on")
            frames = np.round(sequence.video.frames * 255).astype(np.uint8)
            sequences.append(TrainingSequence(f"{Path(folder_path).name}/{name}", frames, sequence.masks.labels == VESSEL_LABEL))
    if not sequences:
        raise InputError("no training sequences found")
    return sequences


def clip_indices(t: int, count: int, radius: int) -> np.ndarray:
    """Frame indices t-N..t+N clamped to [0, T-1] (edge frames repeated)."""
    return np.clip(np.arange(t - radius, t + radius + 1), 0, count - 1)


class ClipSampler:
    """Random training batches.

    Args:
        sequences: the data.
        radius: N (clip length 2N + 1); 0 for per-frame models.
        crop: square crop size in pixels (at most the frame size).
        vessel_bias: probability that a crop is centred near a vessel pixel.
        seed: all randomness comes from this seed.
    """

    def __init__(self, sequences: list[TrainingSequence], *, radius: int, crop: int, vessel_bias: float = 0.7, seed: int = 0) -> None:
        self.sequences = sequences
        self.radius = radius
        self.crop = crop
        self.vessel_bias = vessel_bias
        self.rng = np.random.default_rng(seed)
        smallest = min(min(s.frames.shape[1:]) for s in sequences)
        if crop > smallest:
            raise InputError(f"crop {crop} is larger than the smallest frame side {smallest}")

    def _crop_origin(self, vessel: np.ndarray) -> tuple[int, int]:
        height, width = vessel.shape
        if self.rng.random() < self.vessel_bias and vessel.any():
            ys, xs = np.nonzero(vessel)
            pick = self.rng.integers(len(ys))
            y0 = int(ys[pick]) - self.crop // 2 + int(self.rng.integers(-self.crop // 4, self.crop // 4 + 1))
            x0 = int(xs[pick]) - self.crop // 2 + int(self.rng.integers(-self.crop // 4, self.crop // 4 + 1))
        else:
            y0 = int(self.rng.integers(0, height - self.crop + 1))
            x0 = int(self.rng.integers(0, width - self.crop + 1))
        return int(np.clip(y0, 0, height - self.crop)), int(np.clip(x0, 0, width - self.crop))

    def _augment(self, clip: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """clip (C, h, w) float32 in [0, 1], mask (h, w) -> augmented copies."""
        turns = int(self.rng.integers(4))
        clip, mask = np.rot90(clip, turns, axes=(1, 2)), np.rot90(mask, turns)
        if self.rng.random() < 0.5:
            clip, mask = clip[:, :, ::-1], mask[:, ::-1]
        gamma = float(np.exp(self.rng.uniform(-0.35, 0.35)))
        contrast = float(self.rng.uniform(0.75, 1.25))
        brightness = float(self.rng.uniform(-0.1, 0.1))
        clip = np.clip(clip, 0, 1) ** gamma
        clip = (clip - 0.5) * contrast + 0.5 + brightness
        if self.rng.random() < 0.5:
            clip = clip + self.rng.normal(0, self.rng.uniform(0.005, 0.03), clip.shape)
        return np.clip(clip, 0, 1).astype(np.float32), np.ascontiguousarray(mask)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One sample: clip (2N+1, crop, crop) float32 and mask (crop, crop) float32."""
        sequence = self.sequences[int(self.rng.integers(len(self.sequences)))]
        t = int(self.rng.integers(sequence.frames.shape[0]))
        y0, x0 = self._crop_origin(sequence.vessel[t])
        window = (slice(y0, y0 + self.crop), slice(x0, x0 + self.crop))
        indices = clip_indices(t, sequence.frames.shape[0], self.radius)
        clip = sequence.frames[indices][:, window[0], window[1]].astype(np.float32) / 255.0
        clip, mask = self._augment(clip, sequence.vessel[t][window])
        return np.ascontiguousarray(clip), mask.astype(np.float32)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs (B, 2N+1, crop, crop), targets (B, 1, crop, crop)) float32 tensors."""
        clips, masks = zip(*(self.sample() for _ in range(size)))
        return torch.from_numpy(np.stack(clips)), torch.from_numpy(np.stack(masks))[:, None]
