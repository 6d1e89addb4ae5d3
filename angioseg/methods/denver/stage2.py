"""Stage 2 of DeNVeR: test-time training of the vessel decomposition (Sec. 3.3-3.4, Eq. 2-7).

Trainable parts, all at the stage's working resolution (h, w):

* mask network: a small U-Net (`angioseg.nn.unet.UNet`, 8-16-32-64 channels, instance norm,
  2 logits) on the frame normalised to mean 0 and standard deviation 1 over the video (and,
  when `run_stage2` gets stage 1's foreground layer, that layer scaled to standard deviation
  1 as a second channel: this package's addition, see `segmenter`); softmax -> (background
  M_t, foreground 1 - M_t) per pixel.
* canonical foreground F_c `(h, w)`: a small CNN decoding a fixed random latent code z
  (`LatentImage`, Sec. 3.3 "a CNN model with a fixed latent code z").
* background motion d_t `(T, h, w, 2)`: `bspline.BSplineMotion`, quadratic, with few control
  points (`motion_control_shape`), started from the least-squares fit of stage 1's
  deformation (`fit_bspline`).
* Eulerian field E `(h, w, 2)`: `eulerian.EulerianFlow`, the stationary per-frame motion of the
  contrast relative to the background, 0 at start.

Fixed: the canonical background C `(h, w)` (stage 1, or the temporal median when the
bootstrap is ablated), the Hessian prior masks H_t, the flow backend's forward flow f_t and
the vessel normals V of Eq. 3.

Foreground coordinates (how the foreground is integrated over time). The canonical
foreground is the foreground at a reference frame r = T // 2. The contrast moves along E in
the background's canonical frame: a point at canonical position p at frame t lies at
p + E(p) at frame t + 1 (an explicit Euler step, as for Eulerian motion fields). Frame t's
pixel x, at canonical position c = x + d_t(x), therefore reads the canonical foreground at
c traced back along E over s = t - r frames (forwards when s < 0), `trace_eulerian`:

    q_0 = c,  q_{k+1} = q_k - (s / n) E(q_k),  psi_t(x) = q_n,  n = min(max |s|, 8)

(unit Euler steps for the frames within 8 of r; longer steps beyond, to bound the cost).
The frame-to-frame motion of psi is, to first order, E(x + d_t(x)) + beta_t(x), the vessel
flow of `eulerian.vessel_flow`. Frame t is rebuilt as
Î_t = (1 - M_t) F_c(psi_t(x)) + M_t C(x + d_t(x)) (`losses.composite`).

Losses (`losses`, mean reductions; weights Sec. 4.3): L_prior (0.5, alpha = foreground
weight) against H_t; L_parallel (0.05) on the Eulerian part E(x + d_t(x)) of the vessel flow
(the blood flow; the heart motion carried by d_t need not follow the vessels); L_warp (0.1,
Eq. 4 on the coordinate maps psi_t and x + d_t, guided by f_t); L_mask (0.1, Eq. 5 with f_t);
L_rec (0.5, L1, divided by the standard deviation of the video's intensities so that its
balance with L_prior does not depend on the contrast of the run: this package's choice; on
[0, 1] frames with a standard deviation near 0.1 it weighs about 10 times more than plain
L1; on one 16-frame 128 x 128 phantom run of 200 stage-2 steps that raised Dice from 0.60
with plain L1 to 0.65).

Schedule (`stage2_schedule`, via `losses.active_losses`): L_prior alone for the first 20 %
of the iterations (the U-Net warm start), then L_parallel, L_warp, L_mask and L_rec switched
on at 20, 30, 40 and 50 %, each ramped in over 10 % of the iterations. While L_rec is off the
canonical foreground is warm-started (weight `start_weight`, this package's addition; the
decoder learns slowly from a random code): L_start = sum_t H_t |F_c(psi_t(x)) - I_t| /
sum_t H_t / std(I), the frames on the prior's vessels, with the motion held fixed.
(`start_weight=0` leaves it out, as in the paper.)

Each iteration works on `window` consecutive frames and a random `crop` x `crop` square of
them (both drawn from a seeded generator; a fraction `vessel_crops` of the draws is placed
around a random vessel pixel of the prior: this package's addition, 0 in the paper); the
trained mask network is then applied to every whole frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from angioseg.errors import InputError
from angioseg.methods.denver.bspline import BSplineMotion
from angioseg.methods.denver.eulerian import EulerianFlow
from angioseg.methods.denver.losses import (
    LOSS_NAMES,
    LossSchedule,
    LossWeights,
    active_losses,
    mask_loss,
    parallel_loss,
    prior_loss,
    rec_loss,
    vessel_normals,
    warp_loss,
)
from angioseg.methods.denver.stage1 import adam
from angioseg.warp import pixel_grid, sample_pixels
from angioseg.nn.unet import UNet

__all__ = [
    "Stage2Result",
    "Stage2Rates",
    "LatentImage",
    "MaskNet",
    "fit_bspline",
    "motion_control_shape",
    "trace_eulerian",
    "stage2_schedule",
    "run_stage2",
]


@dataclass(frozen=True)
class Stage2Rates:
    """Adam learning rates of stage 2's parts (this package's choice; the paper gives none).

    Units: the B-spline control points and E are in pixels, so their rates are roughly the
    pixels moved per step.
    """

    mask: float = 3e-3
    foreground: float = 1e-2
    motion: float = 2e-2
    eulerian: float = 1e-2

    def __post_init__(self) -> None:
        for name in ("mask", "foreground", "motion", "eulerian"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InputError(f"Stage2Rates.{name} must be a non-negative number; got {value!r}")


@dataclass
class Stage2Result:
    """What stage 2 returns, at its working resolution (h, w).

    Attributes:
        probabilities: `(T, h, w)` float32 foreground (vessel) probability 1 - M_t.
        canonical_foreground: `(h, w)` float32 F_c.
        displacement: `(T, h, w, 2)` float32 background motion d_t (pixels).
        eulerian: `(h, w, 2)` float32 Eulerian field E (pixels per frame).
        losses: name -> `(iterations,)` float64 weighted value of each loss of `LOSS_NAMES`,
            of the foreground warm start "start" (NaN while off) and "total".
    """

    probabilities: np.ndarray
    canonical_foreground: np.ndarray
    displacement: np.ndarray
    eulerian: np.ndarray
    losses: dict[str, np.ndarray]


class MaskNet(nn.Module):
    """Mask network: `(B, C, h, w)` normalised inputs -> `(B, h, w)` foreground probability
    (C = 1: the frame; C = 2: the frame and stage 1's foreground layer).

    A U-Net with `depth` levels of `base`, 2 base, ... channels, instance norm (the same
    behaviour in training and inference), 2 logits (background, foreground), softmax.
    """

    def __init__(self, *, base: int = 8, depth: int = 4, in_channels: int = 1) -> None:
        super().__init__()
        self.unet = UNet(in_channels=in_channels, num_classes=2, base=base, depth=depth, norm="instance")

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.unet(frames), dim=1)[:, 1]


class LatentImage(nn.Module):
    """Canonical foreground from a fixed random latent code (a deep-image-prior decoder).

    z `(1, latent, ceil(h / 2^levels), ceil(w / 2^levels))` ~ N(0, 1) is drawn once from `seed`
    and kept fixed; `levels` blocks of (3 x 3 conv, LeakyReLU 0.2, bilinear x 2 upsampling),
    then a 3 x 3 conv to one channel, cropped to (h, w), sigmoid: F_c in (0, 1). The last bias
    starts at logit(`start`) so that F_c starts near the vessels' mean intensity.
    """

    def __init__(
        self, height: int, width: int, *, latent: int = 8, channels: int = 16, levels: int = 2, start: float = 0.5, seed: int = 0
    ) -> None:
        super().__init__()
        self.height, self.width = height, width
        rows, cols = (math.ceil(n / 2**levels) for n in (height, width))
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self.register_buffer("z", torch.randn(1, latent, rows, cols, generator=generator))
        layers: list[nn.Module] = []
        previous = latent
        for _ in range(levels):
            layers += [nn.Conv2d(previous, channels, 3, padding=1), nn.LeakyReLU(0.2), nn.Upsample(scale_factor=2, mode="bilinear")]
            previous = channels
        layers.append(nn.Conv2d(previous, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)
        start = min(max(float(start), 0.02), 0.98)
        with torch.no_grad():
            self.body[-1].bias.fill_(math.log(start / (1.0 - start)))

    def forward(self) -> torch.Tensor:
        """`(h, w)` canonical foreground image."""
        return torch.sigmoid(self.body(self.z)[0, 0, : self.height, : self.width])


def motion_control_shape(frames: int, height: int, width: int, *, degree: int = 2) -> tuple[int, int, int]:
    """Control lattice (Tc, Hc, Wc) of the background B-spline: about one control point every
    4 frames and 6 across (few degrees of freedom, as the paper asks), at least degree + 1."""
    low = degree + 1
    return (max(low, min(frames, math.ceil(frames / 4) + degree)), max(low, min(height, 6)), max(low, min(width, 6)))


def fit_bspline(motion: BSplineMotion, displacement: torch.Tensor) -> None:
    """Set `motion`'s control points to the least-squares fit of `displacement` `(T, h, w, 2)`.

    The field is separable, d = P x_t B_t x_y B_y x_x B_x, so the least-squares control points
    are P = D x_t B_t^+ x_y B_y^+ x_x B_x^+ (the pseudo-inverse of a Kronecker product is the
    Kronecker product of the pseudo-inverses).
    """
    if displacement.shape != (motion.frames, motion.height, motion.width, 2):
        wanted = (motion.frames, motion.height, motion.width, 2)
        raise InputError(f"displacement must have shape {wanted}; got {tuple(displacement.shape)}")
    frames = torch.arange(motion.frames, device=displacement.device, dtype=torch.float64)
    basis_t = motion.time_basis(frames.to(motion.control.dtype)).double()
    inverse_t, inverse_y, inverse_x = (torch.linalg.pinv(b.double()) for b in (basis_t, motion.basis_y, motion.basis_x))
    control = torch.einsum("at,tyxd->ayxd", inverse_t, displacement.double())
    control = torch.einsum("by,ayxd->abxd", inverse_y, control)
    control = torch.einsum("cx,abxd->abcd", inverse_x, control)
    with torch.no_grad():
        motion.control.copy_(control.to(motion.control.dtype))


def trace_eulerian(field: torch.Tensor, positions: torch.Tensor, offsets: torch.Tensor, *, max_steps: int = 8) -> torch.Tensor:
    """Where the canonical points `positions` of frames r + s read the canonical foreground.

    Traces every point back along the stationary field E over its frame's offset s (forwards
    for s < 0) with n = min(max |s|, max_steps) explicit Euler steps of s / n frames each:

        q_0 = c,  q_{k+1} = q_k - (s / n) E(q_k),  result q_n

    (unit steps, the exact Euler integration of the module docstring, when |s| <= max_steps).

    Args:
        field: `(h, w, 2)` E in pixels per frame.
        positions: `(K, h', w', 2)` canonical positions c = x + d_t(x) (pixels of E's grid).
        offsets: `(K,)` integer offsets s = t - r.
        max_steps: largest number of Euler steps.

    Returns:
        `(K, h', w', 2)` positions in the canonical foreground.
    """
    steps = min(int(offsets.abs().max()) if offsets.numel() else 0, max_steps)
    if steps == 0:
        return positions
    image = field.permute(2, 0, 1)[None].expand(positions.shape[0], -1, -1, -1)  # (K, 2, h, w)
    size = (offsets.to(positions.dtype) / steps)[:, None, None, None]
    current = positions
    for _ in range(steps):
        current = current - size * sample_pixels(image, current).permute(0, 2, 3, 1)
    return current


def stage2_schedule(iterations: int, *, prior: bool = True, parallel: bool = True, weights: LossWeights | None = None) -> LossSchedule:
    """The phase schedule of the module docstring for `iterations` steps (losses ablated with
    prior=False / parallel=False stay off)."""
    def at(fraction: float) -> int:
        return int(round(fraction * iterations))

    return LossSchedule(
        prior=0 if prior else None,
        parallel=at(0.2) if parallel else None,
        warp=at(0.3),
        mask=at(0.4),
        rec=at(0.5),
        ramp=max(0, at(0.1)),
        weights=LossWeights() if weights is None else weights,
    )


def _normalise(frames: torch.Tensor, layer: torch.Tensor | None = None) -> torch.Tensor:
    """Mask-network input: frames `(T, h, w)` -> `(T, 1, h, w)` with the video's mean 0 and
    standard deviation 1; with a foreground `layer` `(T, h, w)`, `(T, 2, h, w)`, the layer
    scaled to standard deviation 1 over the video as the second channel."""
    channels = [(frames - frames.mean()) / frames.std().clamp_min(1e-6)]
    if layer is not None:
        channels.append(layer / layer.std().clamp_min(1e-6))
    return torch.stack(channels, dim=1)


class _Decomposition(nn.Module):
    """Every trainable part of stage 2 (see the module docstring)."""

    def __init__(self, frames: int, height: int, width: int, *, start: float, seed: int, in_channels: int = 1) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.mask = MaskNet(in_channels=in_channels)
            self.foreground = LatentImage(height, width, start=start, seed=seed + 1)
        self.motion = BSplineMotion(motion_control_shape(frames, height, width), frames, height, width, degree=2)
        self.eulerian = EulerianFlow(height, width)

    def optimiser(self, rates: Stage2Rates) -> torch.optim.Adam:
        groups = [
            {"params": self.mask.parameters(), "lr": rates.mask},
            {"params": self.foreground.parameters(), "lr": rates.foreground},
            {"params": self.motion.parameters(), "lr": rates.motion},
            {"params": self.eulerian.parameters(), "lr": rates.eulerian},
        ]
        return adam(groups, device=self.motion.control.device)


@dataclass
class _Inputs:
    frames: torch.Tensor  # (T, h, w) in [0, 1]
    normalised: torch.Tensor  # (T, C, h, w) mask-network input
    prior: torch.Tensor  # (T, h, w) H_t in [0, 1]
    normals: torch.Tensor  # (T, h, w, 2) V of Eq. 3
    flow: torch.Tensor  # (T-1, h, w, 2) forward flow f_t
    background: torch.Tensor  # (1, 1, h, w) canonical background C
    alpha: float  # foreground weight of Eq. 2
    start_weight: float  # weight of the canonical foreground's warm start (0: off)
    contrast: float  # 1 / standard deviation of the frames (scales L_rec, see the module docstring)


@dataclass(frozen=True)
class _Batch:
    """One step's frames (consecutive indices `times`) and crop rows / columns."""

    times: torch.Tensor
    rows: slice
    cols: slice

    def crop(self, values: torch.Tensor, *, channels_last: bool = False) -> torch.Tensor:
        """`(..., h, w[, C])` -> the crop of the last two spatial axes."""
        return values[..., self.rows, self.cols, :] if channels_last else values[..., self.rows, self.cols]


def _losses(model: _Decomposition, data: _Inputs, batch: _Batch, active: dict[str, float], reference: int) -> dict[str, torch.Tensor]:
    """The active weighted losses on one batch (see `_Batch`); flows and coordinates stay in
    pixels of the full frame, so a crop is a translation and the losses' in-frame tests
    become in-crop tests."""
    times = batch.times
    first, count = int(times[0]), times.numel()
    foreground = model.mask(batch.crop(data.normalised[times]))  # (K, ch, cw)
    background_mask = 1.0 - foreground
    out: dict[str, torch.Tensor] = {}
    if "prior" in active:
        out["prior"] = active["prior"] * prior_loss(background_mask, batch.crop(data.prior[times]), alpha=data.alpha)
    flow = batch.crop(data.flow[first : first + count - 1], channels_last=True)
    masks = torch.stack((foreground, background_mask))
    if "mask" in active and count > 1:
        out["mask"] = active["mask"] * mask_loss(masks, flow)
    displacement = model.motion(times.to(data.frames.dtype))  # (K, h, w, 2)
    height, width = displacement.shape[1:3]
    grid = pixel_grid(height, width, device=displacement.device, dtype=displacement.dtype)
    background_coords = batch.crop(grid + displacement, channels_last=True)  # x + d_t(x), (K, ch, cw, 2)
    if "rec" not in active and data.start_weight > 0:
        out["start"] = data.start_weight * _foreground_start(model, data, batch, background_coords.detach(), reference)
    if not {"parallel", "warp", "rec"} & active.keys():
        return out
    field = model.eulerian.field.permute(2, 0, 1)[None].expand(count, -1, -1, -1)  # (K, 2, h, w)
    if "parallel" in active:
        carried = sample_pixels(field, background_coords).permute(0, 2, 3, 1)  # E(x + d_t(x))
        out["parallel"] = active["parallel"] * parallel_loss(carried, normals=batch.crop(data.normals[times], channels_last=True))
    if {"warp", "rec"} & active.keys():
        offsets = times - reference
        foreground_coords = trace_eulerian(model.eulerian.field, background_coords, offsets)  # psi_t, (K, ch, cw, 2)
        if "warp" in active and count > 1:
            out["warp"] = active["warp"] * warp_loss(torch.stack((foreground_coords, background_coords)), masks, flow)
        if "rec" in active:
            canonical = model.foreground()[None, None].expand(count, -1, -1, -1)
            fg_image = sample_pixels(canonical, foreground_coords)[:, 0]
            bg_image = sample_pixels(data.background.expand(count, -1, -1, -1), background_coords)[:, 0]
            target = batch.crop(data.frames[times])
            rebuilt = rec_loss(target, foreground=fg_image, background=bg_image, background_mask=background_mask)
            out["rec"] = active["rec"] * data.contrast * rebuilt
    return out


def _foreground_start(model: _Decomposition, data: _Inputs, batch: _Batch, background_coords: torch.Tensor, reference: int) -> torch.Tensor:
    """Warm start of the canonical foreground while L_rec is off: on the prior's vessels it
    should show the frames, L_start = contrast x sum(H_t |F_c(psi_t(x)) - I_t|) / sum(H_t),
    with the motion (d and E) held fixed: only F_c learns from it."""
    prior = batch.crop(data.prior[batch.times])
    if not bool((prior > 0).any()):
        return background_coords.sum() * 0.0
    with torch.no_grad():
        coords = trace_eulerian(model.eulerian.field, background_coords, batch.times - reference)
    canonical = model.foreground()[None, None].expand(batch.times.numel(), -1, -1, -1)
    seen = sample_pixels(canonical, coords)[:, 0]
    error = (seen - batch.crop(data.frames[batch.times])).abs()
    return data.contrast * (prior * error).sum() / prior.sum()


def _draw(generator: torch.Generator, count: int, height: int, width: int, window: int, crop: int, device: torch.device,
          *, anchors: torch.Tensor | None = None, vessel_crops: float = 0.0) -> _Batch:
    """A window of `window` consecutive frames and a `crop` x `crop` square of them.

    Uniform over the positions, except that with probability `vessel_crops` (and `anchors`
    `(N, 3)` (t, y, x) prior-vessel voxels given) a random anchor is drawn and the window and
    the crop are placed uniformly among those that contain it. In a run whose vessels fill a
    few per cent of the pixels of a few frames, uniform draws rarely see one, and the L1 prior
    loss is then met best by a mask that is empty everywhere.
    """
    aimed = vessel_crops > 0 and anchors is not None and anchors.shape[0] > 0
    if not aimed or float(torch.rand((), generator=generator)) >= vessel_crops:
        first = int(torch.randint(0, count - window + 1, (1,), generator=generator))
        top = int(torch.randint(0, height - min(crop, height) + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - min(crop, width) + 1, (1,), generator=generator))
    else:
        t, y, x = (int(v) for v in anchors[int(torch.randint(0, anchors.shape[0], (1,), generator=generator))])
        first = _start_containing(generator, t, window, count)
        top = _start_containing(generator, y, min(crop, height), height)
        left = _start_containing(generator, x, min(crop, width), width)
    return _Batch(torch.arange(first, first + window, device=device), slice(top, top + crop), slice(left, left + crop))


def _start_containing(generator: torch.Generator, index: int, span: int, total: int) -> int:
    """A start s, uniform over those with s <= index < s + span and 0 <= s <= total - span."""
    low, high = max(0, index - span + 1), min(index, total - span)
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def _check_stage2(
    frames: torch.Tensor, prior: torch.Tensor, flow: torch.Tensor, background: torch.Tensor, iterations: int, window: int, crop: int | None
) -> None:
    if frames.ndim != 3:
        raise InputError(f"stage 2 needs (T, h, w) frames; got shape {tuple(frames.shape)}")
    count, height, width = frames.shape
    if tuple(prior.shape) != (count, height, width):
        raise InputError(f"prior must have shape {(count, height, width)}; got {tuple(prior.shape)}")
    if tuple(flow.shape) != (count - 1, height, width, 2):
        raise InputError(f"flow must have shape {(count - 1, height, width, 2)}; got {tuple(flow.shape)}")
    if tuple(background.shape) != (height, width):
        raise InputError(f"background must have shape {(height, width)}; got {tuple(background.shape)}")
    for name, value, low in (("iterations", iterations, 0), ("window", window, 1), ("crop", 16 if crop is None else crop, 16)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"stage-2 {name} must be an integer >= {low}; got {value!r}")


def run_stage2(
    frames: torch.Tensor,
    *,
    prior: torch.Tensor,
    flow: torch.Tensor,
    background: torch.Tensor,
    deformation: torch.Tensor | None = None,
    layer: torch.Tensor | None = None,
    iterations: int = 1000,
    window: int = 4,
    crop: int | None = 128,
    schedule: LossSchedule | None = None,
    rates: Stage2Rates | None = None,
    alpha: float = 1.0,
    start_weight: float = 0.5,
    vessel_crops: float = 0.0,
    seed: int = 0,
    progress: bool | None = None,
) -> Stage2Result:
    """Test-time training of the decomposition on one video (see the module docstring).

    Args:
        frames: `(T, h, w)` float tensor in [0, 1] (its device and dtype are used throughout).
        prior: `(T, h, w)` Hessian prior H_t in [0, 1] (binary, or area fractions after
            downsampling; the normals of Eq. 3 use H_t >= 0.5).
        flow: `(T-1, h, w, 2)` forward flow f_t of the flow backend (pixels, (dx, dy)).
        background: `(h, w)` canonical background C (fixed).
        deformation: `(T, h, w, 2)` stage-1 background displacement to start the B-spline
            from (pixels); None starts from no motion.
        layer: `(T, h, w)` stage 1's foreground layer g_f, given to the mask network as a
            second input channel (this package's addition); None: the frame alone (the paper).
        iterations: Adam steps (0: the untrained mask network is evaluated).
        window: consecutive frames per step (all frames when the video is shorter).
        crop: side of the square crop of those frames each step works on (None, or larger
            than the frame: the whole frame). The mask network is fully convolutional and
            every loss is local, so crops only trade context for speed.
        schedule: when each loss is on; None = `stage2_schedule(iterations)`.
        rates: learning rates; None = `Stage2Rates()`.
        alpha: foreground weight of Eq. 2.
        start_weight: weight of the canonical foreground's warm start (module docstring;
            0 = off, as in the paper).
        vessel_crops: fraction of the steps whose window and crop are placed around a random
            prior-vessel pixel (H_t >= 0.5) rather than uniformly (this package's addition;
            0 = uniform, as in the paper; see `_draw`).
        seed: seeds every initialisation and the window draws.
        progress: tqdm bar (None: shown on a terminal only).
    """
    _check_stage2(frames, prior, flow, background, iterations, window, crop)
    if layer is not None and tuple(layer.shape) != tuple(frames.shape):
        raise InputError(f"layer must have shape {tuple(frames.shape)}; got {tuple(layer.shape)}")
    for name, value in (("alpha", alpha), ("start_weight", start_weight)):
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise InputError(f"{name} must be a non-negative number; got {value!r}")
    if isinstance(vessel_crops, bool) or not (isinstance(vessel_crops, (int, float)) and 0 <= vessel_crops <= 1):
        raise InputError(f"vessel_crops must be a number in [0, 1]; got {vessel_crops!r}")
    count, height, width = frames.shape
    device, dtype = frames.device, frames.dtype
    prior = prior.to(device=device, dtype=dtype)
    vessels = prior >= 0.5
    start = float(frames[vessels].mean()) if bool(vessels.any()) else 0.5
    data = _Inputs(
        frames=frames,
        normalised=_normalise(frames, None if layer is None else layer.to(device=device, dtype=dtype)),
        prior=prior,
        normals=vessel_normals(vessels, device=device, dtype=dtype),
        flow=flow.to(device=device, dtype=dtype),
        background=background.to(device=device, dtype=dtype)[None, None],
        alpha=float(alpha),
        start_weight=float(start_weight),
        contrast=1.0 / max(float(frames.std()), 1e-6),
    )
    model = _Decomposition(count, height, width, start=start, seed=seed, in_channels=1 if layer is None else 2).to(device=device, dtype=dtype)
    if deformation is not None:
        fit_bspline(model.motion, deformation.to(device=device, dtype=dtype))
    optimiser = model.optimiser(Stage2Rates() if rates is None else rates)
    schedule = stage2_schedule(iterations) if schedule is None else schedule
    window = min(window, count)
    crop = max(height, width) if crop is None else crop
    reference = count // 2
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    anchors = torch.nonzero(vessels).cpu()  # (N, 3) (t, y, x)
    history = {name: np.full(iterations, np.nan) for name in LOSS_NAMES + ("start", "total")}
    bar = tqdm(range(iterations), desc="denver stage 2", unit="it", disable=None if progress is None else not progress)
    for step in bar:
        batch = _draw(generator, count, height, width, window, crop, device, anchors=anchors, vessel_crops=float(vessel_crops))
        terms = _losses(model, data, batch, active_losses(step, schedule), reference)
        if not terms:
            continue
        total = sum(terms.values())
        if total.requires_grad:  # False when every active term is a constant 0 (no vessel in the crop)
            optimiser.zero_grad(set_to_none=True)
            total.backward()
            optimiser.step()
        for name, value in terms.items():
            history[name][step] = value.item()
        history["total"][step] = total.item()
    bar.close()
    return _result(model, data, history)


@torch.no_grad()
def _result(model: _Decomposition, data: _Inputs, history: dict[str, np.ndarray], chunk: int = 8) -> Stage2Result:
    model.eval()
    probabilities = torch.cat([model.mask(data.normalised[i : i + chunk]) for i in range(0, data.frames.shape[0], chunk)])
    return Stage2Result(
        probabilities=probabilities.float().cpu().numpy(),
        canonical_foreground=model.foreground().float().cpu().numpy(),
        displacement=model.motion().float().cpu().numpy(),
        eulerian=model.eulerian.field.float().cpu().numpy(),
        losses=history,
    )
