"""Training samples for the supervised video segmenters: clips of 2N+1 frames and a mask.

All sequences of one or more DAVIS-style folders are held in memory as uint8 frames and
boolean vessel masks. A sample is the clip of frames t-N..t+N (edge frames repeated, the
3D-2D paper's rule) cropped to `crop` x `crop`, with the mask of the centre frame t; 2-D
models use N = 0. Crops are drawn around a vessel pixel with probability `vessel_bias`, so
thin vessels are not drowned in background. The default augmentation keeps the scale (the
models run at the data's resolution): flips, 90-degree rotations, gamma, contrast and
brightness jitter, and extra Gaussian noise.

For models meant to work on any hospital's angiograms, `ClipSampler` takes instead a
`SiteAugmentation` (angioseg.data.augment: resolution, collimator, burnt-in text, blur,
noise, display curve, JPEG), per-run percentile normalisation (`normalise`), and static or
slow clips (`static_fraction`, `slow_fraction`) so the temporal models also work on stills.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from angioseg.data.augment import SiteAugmentation, normalise_range, percentile_bounds, slow_clip, static_clip
from angioseg.data.davis import DavisFolder
from angioseg.errors import InputError

VESSEL_LABEL = 1
#: Target value of a pixel left out of the loss (`ignore_outline`, uncertain pixels).
IGNORE = -1.0


@dataclass
class TrainingSequence:
    """One sequence in memory: `frames` (T, H, W) uint8, `vessel` (T, H, W) bool.

    `rough`: the mask outlines are approximate (hand-drawn polygons, added branches), so the
    pixels near them are left out of the loss (`ClipSampler(ignore_band=...)`).
    `uncertain`: (T, H, W) bool or None, pixels whose label is not known (a still set's
    ``uncertain/`` folder: branches an annotation left out and a heuristic found), left out of
    the loss where they are not vessel.
    """

    name: str
    frames: np.ndarray
    vessel: np.ndarray
    rough: bool = False
    uncertain: np.ndarray | None = None


def load_sequences(folders: Sequence[str | Path], *, limit: int | None = None,
                   rough: Sequence[str | Path] = ()) -> list[TrainingSequence]:
    """Read every annotated sequence of the DAVIS-style (or stills) `folders` (vessel = label 1),
    then those of the `rough` folders, marked as having approximate outlines."""
    sequences = _load_folders(folders, limit)
    for sequence in _load_folders(rough, limit) if rough else []:
        sequence.rough = True
        sequences.append(sequence)
    if not sequences:
        raise InputError("no training sequences found")
    return sequences


def _load_folders(folders: Sequence[str | Path], limit: int | None) -> list[TrainingSequence]:
    sequences: list[TrainingSequence] = []
    for folder_path in folders:
        if (Path(folder_path) / "images").is_dir() and (Path(folder_path) / "masks").is_dir():
            sequences.extend(_still_sequences(Path(folder_path), limit))
            continue
        folder = DavisFolder(folder_path)
        names = folder.names[:limit] if limit else folder.names
        for name in names:
            sequence = folder.load(name, motion=False)
            if sequence.masks is None:
                raise InputError(f"sequence {name} in {folder_path} has no annotations to train on")
            frames = np.round(sequence.video.frames * 255).astype(np.uint8)
            sequences.append(TrainingSequence(f"{Path(folder_path).name}/{name}", frames, sequence.masks.labels == VESSEL_LABEL))
    return sequences


def _still_sequences(folder: Path, limit: int | None) -> list[TrainingSequence]:
    """An image + mask folder (`angioseg data stills`) as one-frame sequences (vessel = mask > 0;
    uncertain = ``uncertain/NAME.png`` > 0 where the folder has one, `--label-style partial`)."""
    from angioseg.data.datasets import UNCERTAIN_DIR, ImageMaskFolder
    from angioseg.io.labels import read_label_image

    stills = ImageMaskFolder(folder / "images", folder / "masks")
    uncertain_dir = folder / UNCERTAIN_DIR
    count = min(len(stills), limit) if limit else len(stills)
    out = []
    for index in range(count):
        pair = stills.load(index)
        frames = np.round(pair.video.frames * 255).astype(np.uint8)
        vessel = pair.masks.labels > 0
        uncertain = None
        if uncertain_dir.is_dir():
            path = uncertain_dir / f"{pair.name}.png"
            if not path.is_file():
                raise InputError(f"{folder} has an {UNCERTAIN_DIR}/ folder but no {path.name} in it")
            uncertain = read_label_image(path) > 0
            if uncertain.shape != vessel.shape[1:]:
                raise InputError(f"{path} is {uncertain.shape[1]}x{uncertain.shape[0]} but its mask is "
                                 f"{vessel.shape[2]}x{vessel.shape[1]}")
            uncertain = uncertain[None]
        out.append(TrainingSequence(f"{folder.name}/{pair.name}", frames, vessel, uncertain=uncertain))
    return out


def clip_indices(t: int, count: int, radius: int) -> np.ndarray:
    """Frame indices t-N..t+N clamped to [0, T-1] (edge frames repeated)."""
    return np.clip(np.arange(t - radius, t + radius + 1), 0, count - 1)


def reflect_indices(start: int, length: int, count: int) -> np.ndarray:
    """Indices start..start+length-1 reflected into [0, count-1] about the edge pixels
    (-1 -> 1, count -> count - 2, OpenCV's BORDER_REFLECT_101), for windows past a frame's edge."""
    indices = np.arange(start, start + length)
    if count == 1:
        return np.zeros_like(indices)
    period = 2 * (count - 1)
    indices = np.mod(indices, period)
    return np.where(indices >= count, period - indices, indices)


def ignore_outline(mask: np.ndarray, band: int) -> np.ndarray:
    """Target `(H, W)` float32 for a mask with approximate outlines: 1 inside, 0 outside, and
    `IGNORE` where a pixel lies within `band` pixels of the outline, that is in
    dilate(mask, D) minus erode(mask, D) with D the (2 band + 1)-wide disc. The network then
    learns where a vessel's edge lies only from the exactly outlined data."""
    import cv2

    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    as_bytes = mask.astype(np.uint8)
    outline = cv2.dilate(as_bytes, disc) > cv2.erode(as_bytes, disc, borderValue=1)
    target = mask.astype(np.float32)
    target[outline] = IGNORE
    return target


class ClipSampler:
    """Random training batches.

    Args:
        sequences: the data.
        radius: N (clip length 2N + 1); 0 for per-frame models.
        crop: square crop size in pixels (at most the frame size).
        vessel_bias: probability that a crop is centred near a vessel pixel.
        seed: all randomness comes from this seed.
        augmentation: None for the default augmentation (`_augment`); a `SiteAugmentation`
            replaces it. The sampler then cuts a window of `augmentation.window(crop)` pixels
            centred on the crop (reflected past the frame's edges) so that zooming out needs
            no padding, and the augmentation brings it back to `crop`.
        static_fraction: probability that a sample is a still: after augmentation every frame
            becomes the centre frame (`static_clip`), as when a single image is segmented.
        slow_fraction: probability that a sample is a twice slower run, by repeated frames
            (`slow_clip`, before augmentation). At most one of static and slow per sample.
        normalise: map each sequence's 0.5..99.5 percentiles (over the whole run, as at
            inference: `percentile_normalise`) to 0..1 instead of dividing by 255.
        ignore_band: for `rough` sequences, the target is `IGNORE` within this many pixels of
            the mask's outline, after augmentation (`ignore_outline`); 0 keeps every pixel.

    With the defaults (no augmentation, no static or slow clips, no normalisation) a seed gives
    the same batches as before these options existed.
    """

    def __init__(self, sequences: list[TrainingSequence], *, radius: int, crop: int, vessel_bias: float = 0.7, seed: int = 0,
                 augmentation: SiteAugmentation | None = None, static_fraction: float = 0.0, slow_fraction: float = 0.0,
                 normalise: bool = False, ignore_band: int = 0) -> None:
        self.sequences = sequences
        if ignore_band < 0:
            raise InputError(f"ignore_band must be >= 0 pixels; got {ignore_band}")
        self.ignore_band = int(ignore_band)
        self.radius = radius
        self.crop = crop
        self.vessel_bias = vessel_bias
        self.rng = np.random.default_rng(seed)
        self.augmentation = augmentation
        self.static_fraction = float(static_fraction)
        self.slow_fraction = float(slow_fraction)
        self.normalise = normalise
        smallest = min(min(s.frames.shape[1:]) for s in sequences)
        if crop > smallest:
            raise InputError(f"crop {crop} is larger than the smallest frame side {smallest}")
        if not (0 <= self.static_fraction and 0 <= self.slow_fraction and self.static_fraction + self.slow_fraction <= 1):
            raise InputError(f"static_fraction {static_fraction} and slow_fraction {slow_fraction} "
                             "must be >= 0 and sum to at most 1")
        #: Per-sequence (p0.5, p99.5) of the uint8 frames, when normalising.
        self.bounds = [percentile_bounds(s.frames) for s in sequences] if normalise else None

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
        index = int(self.rng.integers(len(self.sequences)))
        sequence = self.sequences[index]
        t = int(self.rng.integers(sequence.frames.shape[0]))
        y0, x0 = self._crop_origin(sequence.vessel[t])
        indices = clip_indices(t, sequence.frames.shape[0], self.radius)
        uncertain = None
        if self.augmentation is None:
            window = (slice(y0, y0 + self.crop), slice(x0, x0 + self.crop))
            raw, mask = sequence.frames[indices][:, window[0], window[1]], sequence.vessel[t][window]
            if sequence.uncertain is not None:
                uncertain = sequence.uncertain[t][window]
        else:  # a window centred on the crop, with room to zoom out
            side = self.augmentation.window(self.crop)
            before = (side - self.crop) // 2
            height, width = sequence.frames.shape[1:]
            rows, cols = reflect_indices(y0 - before, side, height), reflect_indices(x0 - before, side, width)
            raw, mask = sequence.frames[np.ix_(indices, rows, cols)], sequence.vessel[t][np.ix_(rows, cols)]
            if sequence.uncertain is not None:
                uncertain = sequence.uncertain[t][np.ix_(rows, cols)]
        if self.bounds is not None:
            clip = normalise_range(raw, *self.bounds[index])
        else:
            clip = raw.astype(np.float32) / 255.0
        static = False
        if self.static_fraction > 0 or self.slow_fraction > 0:
            draw = self.rng.random()
            static = draw < self.static_fraction
            if not static and draw < self.static_fraction + self.slow_fraction:
                clip = slow_clip(clip, self.rng)
        if uncertain is None:
            clip, mask = self._augment_pair(clip, mask)
        else:  # the same draws twice, so that the uncertain map moves with the mask
            before = self.rng.bit_generator.state
            _, uncertain = self._augment_pair(clip, uncertain)
            self.rng.bit_generator.state = before
            clip, mask = self._augment_pair(clip, mask)
        if static:
            clip = static_clip(clip)
        target = mask.astype(np.float32)
        if sequence.rough and self.ignore_band > 0:
            target = ignore_outline(mask.astype(bool), self.ignore_band)
        if uncertain is not None:
            target[np.asarray(uncertain, bool) & ~np.asarray(mask, bool)] = IGNORE
        return np.ascontiguousarray(clip), target

    def _augment_pair(self, clip: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sampler's augmentation of (clip, mask), drawing from `self.rng`."""
        if self.augmentation is None:
            return self._augment(clip, mask)
        return self.augmentation(clip, mask, self.rng, size=(self.crop, self.crop))

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs (B, 2N+1, crop, crop), targets (B, 1, crop, crop)) float32 tensors."""
        clips, masks = zip(*(self.sample() for _ in range(size)))
        return torch.from_numpy(np.stack(clips)), torch.from_numpy(np.stack(masks))[:, None]
