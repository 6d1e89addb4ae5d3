"""Intensity normalisation and cross-site augmentation for X-ray angiography clips.

A model trained on one hospital's angiograms must work on any hospital's. What differs
between sites is simulated here, on a clip ``(C, h, w)`` float32 in [0, 1] (C consecutive
frames; C = 1 for a single image) and the vessel mask ``(h, w)`` (bool or 0/1 float) of its
centre frame:

=====================  ==========================================================  ========
function               what differs between sites                                   mask
=====================  ==========================================================  ========
`rescale`              resolution and pixel spacing (zoom 0.6-1.7)                  resized
`dihedral`             orientation (90-degree turns, flips)                         moved
`collimator`           collimator iris / shutters, black margins (soft edge)        0 outside
`blur`                 focal spot, detector and export softness (Gaussian)          kept
`add_noise`            quantum (signal-dependent) and electronic noise              kept
`gamma_contrast`       display gamma, window (contrast), level (brightness)         kept
`burnt_in_text`        burnt-in patient / frame text and a ruler                    0 under
`jpeg`                 lossy export (JPEG quality 30-95, every frame)               kept
`static_clip`          stills: one frame repeated (temporal models on images)      kept
`slow_clip`            slow runs / duplicated frames (motion halved)                kept
=====================  ==========================================================  ========

Functions that change only intensities take ``(clip, rng)`` and return the clip; those that
move or hide pixels take ``(clip, mask, rng)`` and return ``(clip, mask)``. Every random
draw comes from the given `numpy.random.Generator`, so a seed fixes the result. Clips come
back as new float32 arrays in [0, 1]; masks come back with the dtype they came in (a float
mask is read as ``mask > 0.5``). `SiteAugmentation` applies them all with probabilities.

`percentile_normalise` is the per-run intensity normalisation used at training and at
inference alike: a run's p_low..p_high percentiles map to 0..1.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

import cv2
import numpy as np

#: Characters of burnt-in text (patient data, dates, frame counters, acquisition values).
TEXT_CHARACTERS = string.ascii_uppercase + string.digits + "  :/.-"
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL)


# --------------------------------------------------------------------------- normalisation


def percentile_bounds(frames: np.ndarray, low: float = 0.5, high: float = 99.5, *,
                      max_samples: int | None = 4_000_000) -> tuple[float, float]:
    """The `low` and `high` percentiles (numpy's linear interpolation) of all values of `frames`.

    With more than `max_samples` values (a long run at full resolution) they are taken from
    an evenly strided subset of ``max_samples`` values (deterministic; None: all values).
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
    values = np.asarray(frames).reshape(-1)
    if values.size == 0:
        raise ValueError("no values to normalise")
    if max_samples is not None and values.size > max_samples:
        values = values[:: int(math.ceil(values.size / max_samples))]
    lo, hi = np.percentile(values, [low, high])
    return float(lo), float(hi)


def normalise_range(frames: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``clip((frames - lo) / (hi - lo), 0, 1)`` as float32; all zeros when hi - lo <= 1e-6
    (a flat run has no contrast to stretch)."""
    out = np.asarray(frames, dtype=np.float32) - np.float32(lo)
    span = hi - lo
    if span <= 1e-6:
        return np.zeros_like(out)
    out *= np.float32(1.0 / span)
    return np.clip(out, 0.0, 1.0, out=out)


def percentile_normalise(frames: np.ndarray, low: float = 0.5, high: float = 99.5, *,
                         max_samples: int | None = 4_000_000) -> np.ndarray:
    """Per-run intensity normalisation: ``y = clip((x - p_low) / (p_high - p_low), 0, 1)``.

    `frames` is a run ``(T, H, W)`` (or a clip ``(C, h, w)``, or an image ``(H, W)``) of any
    numeric dtype and scale (uint8 0-255, uint16, float); the percentiles p_low, p_high are
    taken over all its values together (`percentile_bounds`), so every frame of a run gets the
    same mapping. Returns float32 of the same shape; all zeros for a flat run.
    """
    lo, hi = percentile_bounds(frames, low, high, max_samples=max_samples)
    return normalise_range(frames, lo, hi)


# --------------------------------------------------------------------------- helpers


def _bool_mask(mask: np.ndarray) -> np.ndarray:
    return mask > 0.5 if mask.dtype.kind == "f" else mask.astype(bool)


def _like(mask: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Boolean `mask` in the dtype of the input mask `reference`."""
    return np.ascontiguousarray(mask.astype(reference.dtype, copy=False))


def _finish(clip: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.clip(clip, 0.0, 1.0), dtype=np.float32)


# --------------------------------------------------------------------------- temporal


def static_clip(clip: np.ndarray) -> np.ndarray:
    """A still: every frame replaced by the centre frame ``clip[C // 2]`` (exact copies)."""
    centre = clip[clip.shape[0] // 2]
    return np.ascontiguousarray(np.broadcast_to(centre, clip.shape), dtype=np.float32)


def slow_clip(clip: np.ndarray, rng: np.random.Generator, *, factor: int = 2) -> np.ndarray:
    """The clip of a run `factor` times slower, by repeating frames (as in a run exported at a
    higher frame rate than it was acquired at): frame k = -N..N becomes clip frame
    ``N + floor((k + phase) / factor)``, phase uniform in 0..factor-1. The centre frame
    (k = 0, the mask's frame) stays, and all motion in the clip is divided by `factor`."""
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    radius = clip.shape[0] // 2
    phase = int(rng.integers(factor))
    offsets = np.floor_divide(np.arange(-radius, clip.shape[0] - radius) + phase, factor)
    return np.ascontiguousarray(clip[radius + offsets], dtype=np.float32)


# --------------------------------------------------------------------------- geometry


def _fit(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop or reflect-pad the last two axes of `array` to `size`."""
    out = array
    pads = []
    for axis, target in zip((-2, -1), size):
        length = out.shape[axis]
        if length >= target:
            start = (length - target) // 2
            out = out[(slice(None),) * (out.ndim + axis) + (slice(start, start + target),)]
            pads.append((0, 0))
        else:
            before = (target - length) // 2
            pads.append((before, target - length - before))
    if any(p != (0, 0) for p in pads):
        mode = "reflect" if min(out.shape[-2:]) > 1 else "edge"
        out = np.pad(out, [(0, 0)] * (out.ndim - 2) + pads, mode=mode)
    return out


def centre_crop(clip: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The centre ``size`` = (h, w) of the clip and its mask (reflect-padded where smaller)."""
    return np.ascontiguousarray(_fit(clip, size), dtype=np.float32), np.ascontiguousarray(_fit(mask, size))


def rescale(clip: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *,
            zoom: tuple[float, float] = (0.6, 1.7), size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Resolution / pixel spacing: zoom by f, log-uniform in `zoom`, then centre-crop (or
    reflect-pad) to `size` (default: the input's (h, w)).

    Frames are resized to ``(round(h f), round(w f))`` with INTER_AREA when shrinking and
    INTER_LINEAR when enlarging; the mask is resized as 0/1 float *with the same
    interpolation* and thresholded at > 0.5, so it stays on the image's pixels (OpenCV's
    INTER_NEAREST is offset by half a pixel). A zoom of 0.6-1.7 turns a 512 px run into one
    of about 300-870 px. To zoom out without padding, pass a larger window (side about
    size / zoom[0]) centred on the wanted crop, as `ClipSampler` does.
    """
    height, width = clip.shape[1:]
    size = size or (height, width)
    factor = float(np.exp(rng.uniform(np.log(zoom[0]), np.log(zoom[1]))))
    new = (max(1, int(round(width * factor))), max(1, int(round(height * factor))))  # cv2 order (w, h)
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    frames = np.stack([cv2.resize(np.ascontiguousarray(frame, dtype=np.float32), new, interpolation=interpolation)
                       for frame in clip])
    resized = cv2.resize(_bool_mask(mask).astype(np.float32), new, interpolation=interpolation) > 0.5
    out_clip, out_mask = centre_crop(frames, resized, size)
    return _finish(out_clip), _like(out_mask, mask)


def dihedral(clip: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *,
             rot90: bool = True, flip: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Orientation: k 90-degree turns (k uniform in 0..3 when `rot90`; on a non-square clip an
    odd k becomes a half turn, so the shape stays), then a left-right flip with probability
    `flip` (the draws `ClipSampler` always made)."""
    if rot90:
        turns = int(rng.integers(4))
        if clip.shape[1] != clip.shape[2]:
            turns = 2 * (turns % 2)
        clip, mask = np.rot90(clip, turns, axes=(1, 2)), np.rot90(mask, turns)
    if rng.random() < flip:
        clip, mask = clip[:, :, ::-1], mask[:, ::-1]
    return np.ascontiguousarray(clip, dtype=np.float32), np.ascontiguousarray(mask)


# --------------------------------------------------------------------------- acquisition


def collimator(clip: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *,
               kinds: tuple[str, ...] = ("iris", "shutters", "margins"), level: tuple[float, float] = (0.0, 0.15),
               leak: tuple[float, float] = (0.0, 0.1),
               softness: tuple[float, float] = (0.5, 6.0)) -> tuple[np.ndarray, np.ndarray]:
    """A field-of-view edge: dark outside, the mask zeroed outside (vessels there are invisible).

    With d the signed distance in pixels to the field's edge (> 0 outside) and s the edge
    width, the field weight is ``w = clip(0.5 - d / s, 0, 1)`` and::

        y = w x + (1 - w) (b + l x),   mask = mask and d <= 0

    with the kind drawn from `kinds`:

    - ``"iris"``: a circle of radius r = U(0.6, 2.5) * side whose edge crosses the crop at
      0.2-0.9 of the half side from the centre, in a uniform direction; b ~ U(`level`),
      l ~ U(`leak`) (lead lets a little anatomy through), s ~ U(`softness`).
    - ``"shutters"``: 1-4 straight shutter blades (each side with probability 0.5, at least
      one), each covering U(0.05, 0.3) of the side, all turned by U(-15, 15) degrees;
      b, l, s as for the iris.
    - ``"margins"``: black margins of a letter- or pillar-boxed export: one side or two
      opposite sides, each U(0.05, 0.25) of the side, hard edge, b = l = 0 (exact black).
    """
    height, width = clip.shape[1:]
    kind = kinds[int(rng.integers(len(kinds)))]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    side = float(max(height, width))
    if kind == "iris":
        theta = rng.uniform(0.0, 2.0 * np.pi)
        radius = rng.uniform(0.6, 2.5) * side
        reach = rng.uniform(0.2, 0.9) * side / 2.0
        ny, nx = np.sin(theta), np.cos(theta)  # outward normal at the edge point
        oy, ox = cy + (reach - radius) * ny, cx + (reach - radius) * nx
        distance = np.hypot(ys - oy, xs - ox) - radius
    elif kind == "shutters":
        sides = rng.random(4) < 0.5
        if not sides.any():
            sides[int(rng.integers(4))] = True
        depths = rng.uniform(0.05, 0.3, 4)
        turn = np.deg2rad(rng.uniform(-15.0, 15.0))
        distance = np.full((height, width), -np.inf, np.float32)
        for index in np.flatnonzero(sides):
            angle = turn + index * np.pi / 2.0  # right, bottom, left, top
            ny, nx = np.sin(angle), np.cos(angle)
            half = (width if index % 2 == 0 else height) / 2.0
            edge = half - depths[index] * (width if index % 2 == 0 else height)
            distance = np.maximum(distance, (ys - cy) * ny + (xs - cx) * nx - edge)
    elif kind == "margins":
        vertical = rng.random() < 0.5  # bars at the top/bottom, else left/right
        length = height if vertical else width
        coordinate = ys if vertical else xs
        both = rng.random() < 0.5
        first_side = rng.random() < 0.5
        depths = rng.uniform(0.05, 0.25, 2) * length
        distance = np.full((height, width), -np.inf, np.float32)
        if both or first_side:
            distance = np.maximum(distance, depths[0] - 0.5 - coordinate)  # near side, pixels < depth
        if both or not first_side:
            distance = np.maximum(distance, coordinate - (length - 0.5 - depths[1]))
    else:
        raise ValueError(f"unknown collimator kind {kind!r}; choose from iris, shutters, margins")
    if kind == "margins":
        base, leakage, width_px = 0.0, 0.0, 1e-3
    else:
        base, leakage, width_px = rng.uniform(*level), rng.uniform(*leak), rng.uniform(*softness)
    weight = np.clip(0.5 - distance / width_px, 0.0, 1.0).astype(np.float32)
    out = weight * clip + (1.0 - weight) * (np.float32(base) + np.float32(leakage) * clip)
    return _finish(out), _like(_bool_mask(mask) & (distance <= 0), mask)


def burnt_in_text(clip: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *,
                  scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Burnt-in annotations in one corner: 1-3 lines of 3-14 random characters
    (`TEXT_CHARACTERS`, a Hershey font, capitals U(6, 20) px high but at most a fifth of the
    side, unless `scale` (cv2 font scale) is given; thickness 1-2) and, with probability 0.5, a ruler
    (a line of U(0.15, 0.4) of the side with ticks every 4-10 px) along the crop's edge.

    All frames get the same overlay (a static burn-in), one colour c: bright U(0.85, 1) or
    dark U(0, 0.15) with equal odds. With a the anti-aliased coverage in [0, 1]::

        y = (1 - a) x + a c,   mask = mask and a < 0.5
    """
    height, width = clip.shape[1:]
    side = min(height, width)
    layer = np.zeros((height, width), np.uint8)
    font = _FONTS[int(rng.integers(len(_FONTS)))]
    thickness = int(rng.integers(1, 3))
    if scale is None:  # capital height U(6, 20) px (burnt-in text keeps its pixel size), at most side / 5
        base_height = cv2.getTextSize("A", font, 1.0, thickness)[0][1]
        scale = min(rng.uniform(6.0, 20.0), side / 5.0) / max(base_height, 1)
    corner_bottom, corner_right = rng.random() < 0.5, rng.random() < 0.5
    margin = int(rng.integers(1, max(2, side // 25)))
    lines = int(rng.integers(1, 4))
    cursor = margin
    for _ in range(lines):
        count = int(rng.integers(3, 15))
        text = "".join(TEXT_CHARACTERS[i] for i in rng.integers(len(TEXT_CHARACTERS), size=count)).strip() or "0"
        (text_w, text_h), baseline = cv2.getTextSize(text, font, scale, thickness)
        while len(text) > 1 and text_w > width - 2 * margin:  # keep it inside the crop
            text = text[:-1]
            (text_w, text_h), baseline = cv2.getTextSize(text, font, scale, thickness)
        if cursor + text_h + baseline > height:
            break
        x = width - margin - text_w if corner_right else margin
        y = height - cursor - baseline if corner_bottom else cursor + text_h
        cv2.putText(layer, text, (int(x), int(y)), font, scale, 255, thickness, cv2.LINE_AA)
        cursor += text_h + baseline + max(1, text_h // 3)
    if rng.random() < 0.5:
        length = int(rng.uniform(0.15, 0.4) * side)
        step = int(rng.integers(4, 11))
        tick = max(2, side // 40)
        horizontal = rng.random() < 0.5
        inset = margin + tick
        if horizontal:  # along the edge opposite to the text
            y = inset if corner_bottom else height - 1 - inset
            x0 = margin if not corner_right else width - 1 - margin - length
            cv2.line(layer, (x0, y), (x0 + length, y), 255, 1)
            for x in range(x0, x0 + length + 1, step):
                cv2.line(layer, (x, y - tick), (x, y + tick), 255, 1)
        else:
            x = width - 1 - inset if not corner_right else inset
            y0 = margin if not corner_bottom else height - 1 - margin - length
            cv2.line(layer, (x, y0), (x, y0 + length), 255, 1)
            for y in range(y0, y0 + length + 1, step):
                cv2.line(layer, (x - tick, y), (x + tick, y), 255, 1)
    colour = rng.uniform(0.85, 1.0) if rng.random() < 0.5 else rng.uniform(0.0, 0.15)
    alpha = layer.astype(np.float32) / 255.0
    out = (1.0 - alpha) * clip + alpha * np.float32(colour)
    return _finish(out), _like(_bool_mask(mask) & (alpha < 0.5), mask)


def blur(clip: np.ndarray, rng: np.random.Generator, *, sigma: tuple[float, float] = (0.0, 1.5)) -> np.ndarray:
    """Gaussian blur of every frame with one sigma ~ U(`sigma`) px (kernel 2 ceil(3 sigma) + 1,
    reflected border); sigma < 0.2 px changes nothing."""
    value = float(rng.uniform(*sigma))
    if value < 0.2:
        return _finish(clip)
    kernel = 2 * int(math.ceil(3.0 * value)) + 1
    frames = [cv2.GaussianBlur(np.ascontiguousarray(frame, dtype=np.float32), (kernel, kernel), value,
                               borderType=cv2.BORDER_REFLECT_101) for frame in clip]
    return _finish(np.stack(frames))


def add_noise(clip: np.ndarray, rng: np.random.Generator, *, electronic: tuple[float, float] = (0.0, 0.02),
              photons: tuple[float, float] = (100.0, 3000.0), correlated: float = 0.3) -> np.ndarray:
    """Quantum + electronic noise, independent per frame::

        y = x + sqrt(sigma_e^2 + s / k) n,   n ~ N(0, 1)

    sigma_e ~ U(`electronic`), k (photons per unit intensity) log-uniform in `photons`, and
    s = x (Poisson noise of the detected signal) or s = 1 - x (the same seen after the
    logarithmic display most systems use: dark, dense regions are noisier) with equal odds.
    At x = 0.5 the quantum part is 0.07 (k = 100) to 0.013 (k = 3000). With probability
    `correlated`, n is blurred (sigma U(0.5, 1.2) px, as by a detector or a noise filter) and
    brought back to unit standard deviation.
    """
    sigma_e = rng.uniform(*electronic)
    k = float(np.exp(rng.uniform(np.log(photons[0]), np.log(photons[1]))))
    signal = clip if rng.random() < 0.5 else 1.0 - clip
    noise = rng.standard_normal(clip.shape, dtype=np.float32)
    if rng.random() < correlated:
        s = rng.uniform(0.5, 1.2)
        kernel = 2 * int(math.ceil(3.0 * s)) + 1
        noise = np.stack([cv2.GaussianBlur(frame, (kernel, kernel), s, borderType=cv2.BORDER_REFLECT_101)
                          for frame in noise])
        noise /= max(float(noise.std()), 1e-6)
    std = np.sqrt(np.float32(sigma_e ** 2) + np.clip(signal, 0.0, 1.0) / np.float32(k))
    return _finish(clip + std * noise)


def gamma_contrast(clip: np.ndarray, rng: np.random.Generator, *, log_gamma: float = 0.4,
                   contrast: tuple[float, float] = (0.6, 1.4), brightness: float = 0.1) -> np.ndarray:
    """Display curve::

        g = x ** gamma,   y = clip((g - mean(g)) c + mean(g) + b, 0, 1)

    gamma = exp(U(-log_gamma, log_gamma)) (0.67-1.49 by default), contrast c ~ U(`contrast`)
    about the clip's mean, brightness b ~ U(-brightness, brightness). One curve for the clip.
    """
    gamma = float(np.exp(rng.uniform(-log_gamma, log_gamma)))
    c = float(rng.uniform(*contrast))
    b = float(rng.uniform(-brightness, brightness))
    g = np.clip(clip, 0.0, 1.0) ** np.float32(gamma)
    mean = np.float32(g.mean())
    return _finish((g - mean) * np.float32(c) + mean + np.float32(b))


def jpeg(clip: np.ndarray, rng: np.random.Generator, *, quality: tuple[int, int] = (30, 95)) -> np.ndarray:
    """Lossy export: every frame rounded to uint8, JPEG-encoded (cv2.imencode) at one quality
    q uniform in `quality` (inclusive) and decoded, then / 255."""
    q = int(rng.integers(quality[0], quality[1] + 1))
    frames = np.round(np.clip(clip, 0.0, 1.0) * 255.0).astype(np.uint8)
    out = np.empty(clip.shape, np.float32)
    for index, frame in enumerate(frames):
        ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame), [cv2.IMWRITE_JPEG_QUALITY, q])
        if not ok:  # pragma: no cover - OpenCV always encodes a grey uint8 image
            raise RuntimeError("JPEG encoding failed")
        out[index] = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    return out


# --------------------------------------------------------------------------- all together


@dataclass
class SiteAugmentation:
    """What differs between hospitals, each transform applied with its probability.

    Order: geometry (`rescale` with p `rescale`, else a centre crop to `size`; `dihedral`),
    then acquisition: `collimator`, `blur`, `add_noise`, `gamma_contrast`, `burnt_in_text`
    (an overlay, drawn after the display curve), `jpeg` (the export, last).

    The default probabilities (0.2-0.5) leave about 1 in 25 clips untouched apart from
    the orientation. `zoom`, `blur_sigma` and `jpeg_quality` are the transforms' ranges.
    """

    rescale: float = 0.5
    zoom: tuple[float, float] = (0.6, 1.7)
    rot90: bool = True
    flip: float = 0.5
    collimator: float = 0.3
    blur: float = 0.3
    blur_sigma: tuple[float, float] = (0.0, 1.5)
    noise: float = 0.5
    gamma_contrast: float = 0.5
    text: float = 0.2
    jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 95)

    def window(self, crop: int) -> int:
        """Side of the window to cut around a crop of side `crop` so that zooming out by up to
        zoom[0] needs no padding: ceil(crop / zoom[0]) + 2, or `crop` without zooming out."""
        if self.rescale <= 0 or self.zoom[0] >= 1:
            return crop
        return int(math.ceil(crop / self.zoom[0])) + 2

    def __call__(self, clip: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *,
                 size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Augment `clip` (C, h, w) float in [0, 1] and `mask` (h, w); the result is `size`
        (default (h, w)): a larger input is a window centred on the wanted crop."""
        size = size or clip.shape[1:]
        if rng.random() < self.rescale:
            clip, mask = rescale(clip, mask, rng, zoom=self.zoom, size=size)
        elif clip.shape[1:] != tuple(size):
            clip, mask = centre_crop(clip, mask, size)
        clip, mask = dihedral(clip, mask, rng, rot90=self.rot90, flip=self.flip)
        if rng.random() < self.collimator:
            clip, mask = collimator(clip, mask, rng)
        if rng.random() < self.blur:
            clip = blur(clip, rng, sigma=self.blur_sigma)
        if rng.random() < self.noise:
            clip = add_noise(clip, rng)
        if rng.random() < self.gamma_contrast:
            clip = gamma_contrast(clip, rng)
        if rng.random() < self.text:
            clip, mask = burnt_in_text(clip, mask, rng)
        if rng.random() < self.jpeg:
            clip = jpeg(clip, rng, quality=self.jpeg_quality)
        return _finish(clip), np.ascontiguousarray(mask)
