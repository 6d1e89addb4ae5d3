"""Stage 1 of DeNVeR: layer-separation bootstrapping (Sec. 3.2, Eq. 1).

The whole video I `(T, H, W)` is fitted by the `fields.LayerSeparation` model

    Î(x, y, t) = C((x, y) + g_b(x, y, t)) + g_f(x, y, t)

(canonical background C, background deformation g_b, foreground residual g_f; coordinates in
[-1, 1], see `fields.video_coordinates`) by minimising

    L_bootstrap = L_recons + lambda_smooth L_smooth(g_b) + lambda_limit L_limit(g_f),
    lambda_smooth = lambda_limit = 0.02 (Sec. 4.3),

with Adam on random mini-batches of the T·H·W pixel coordinates (drawn from a seeded
generator on the CPU, so a run is repeatable for a seed).

Three choices of this package make the fit find the background motion (measured on 30-frame
256 x 256 phantom runs, where the deformation otherwise stayed below 0.05 px):

* the frames are standardised, (I - mean) / std, before the fit (and the outputs mapped back):
  on [0, 1] frames the squared error is ~1e-3 while lambda_smooth L_smooth of a 2 px/frame
  motion is ~5e-3, so the smoothness term flattened every motion; standardised, the balance
  no longer depends on the run's contrast;
* the deformation is pinned to 0 in the middle frame (`fields.LayerSeparation`,
  ``anchor_time``): otherwise (C, g_b) drift together by tens of pixels;
* the foreground layer joins after `foreground_start` (half) of the iterations: until then
  the background alone explains the video, so the motion is learned before the free-form
  foreground can absorb it. L_smooth is taken:

* "grid" representation: by finite differences on a fixed (x, y, t) lattice covering the video
  (every frame, 2 W/32 + 1 x 2 H/32 + 1 nodes: twice as dense as the finest deformation grid,
  whose values are piecewise linear, so the differences see every slope) —
  `losses.jacobian_smoothness_loss_grid`;
* "siren": by automatic differentiation at the mini-batch coordinates —
  `losses.jacobian_smoothness_loss_autograd`.

Only the canonical background C is used by stage 2 (it stays fixed there, Sec. 3.3); the
deformation is used to start stage 2's B-spline background motion, and the foreground residual
is returned for inspection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from angioseg.errors import InputError
from angioseg.methods.denver.fields import LayerSeparation, make_stage1_fields, video_coordinates
from angioseg.methods.denver.losses import LAMBDA_LIMIT, LAMBDA_SMOOTH, bootstrap_loss, jacobian_smoothness_loss

__all__ = ["Stage1Result", "DEFAULT_STAGE1_LR", "adam", "run_stage1", "to_pixels"]

#: Adam learning rates per representation (this package's choice; grids are explicit values
#: and take large steps, SIREN weights the usual 1e-4).
DEFAULT_STAGE1_LR = {"grid": 1e-2, "siren": 1e-4}


@dataclass
class Stage1Result:
    """What stage 1 returns, all at the resolution it ran at (h, w).

    Attributes:
        canonical: `(h, w)` float32 canonical background C sampled on the pixel grid.
        deformation: `(T, h, w, 2)` float32 background displacement d_t, (dx, dy) in pixels:
            frame t's background at pixel x shows the canonical image at x + d_t(x) (the
            convention of `bspline.BSplineMotion`).
        background: `(T, h, w)` float32 B_t(x) = C(x + d_t(x)), the background of each frame.
        foreground: `(T, h, w)` float32 foreground residual g_f (I ≈ B + g_f; negative on
            dark vessels).
        losses: `(iterations,)` float64 L_bootstrap of each mini-batch.
    """

    canonical: np.ndarray
    deformation: np.ndarray
    background: np.ndarray
    foreground: np.ndarray
    losses: np.ndarray


def adam(params, *, lr: float | None = None, device: torch.device) -> torch.optim.Adam:
    """Adam, with the fused kernel on the CPU and CUDA (the same update, one kernel for all
    parameters: 5 x faster steps on stage 1's 3.6 M grid values at 256 x 256 x 80)."""
    options = {"fused": True} if torch.device(device).type in ("cpu", "cuda") else {}
    return torch.optim.Adam(params, **({} if lr is None else {"lr": lr}), **options)


def to_pixels(offsets: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Offsets `(..., 2)` in [-1, 1] units -> pixels: (dx (W-1)/2, dy (H-1)/2)."""
    scale = offsets.new_tensor([(width - 1) / 2.0, (height - 1) / 2.0])
    return offsets * scale


def _smooth_lattice(frames: int, height: int, width: int, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """`(T, Hl, Wl, 3)` lattice on which the grid deformation's Jacobian is differenced."""
    rows = min(height, 2 * math.ceil(height / 32) + 1)
    cols = min(width, 2 * math.ceil(width / 32) + 1)
    return video_coordinates(frames, max(rows, 2), max(cols, 2), device=device, dtype=dtype)


def _smoothness(model: LayerSeparation, representation: str, batch: torch.Tensor, out: dict, lattice: torch.Tensor | None) -> torch.Tensor:
    if representation == "siren":
        return jacobian_smoothness_loss(out["offsets"], coords=batch)
    offsets = model.offsets(lattice.reshape(-1, 3)).reshape(lattice.shape[:-1] + (2,))
    return jacobian_smoothness_loss(offsets)


def _check_stage1(frames: torch.Tensor, representation: str, iterations: int, batch_size: int, lr: float | None) -> None:
    if frames.ndim != 3 or min(frames.shape) < 1:
        raise InputError(f"stage 1 needs (T, H, W) frames; got shape {tuple(frames.shape)}")
    if min(frames.shape[1:]) < 2:
        raise InputError(f"stage 1 needs frames of at least 2 x 2 pixels; got {tuple(frames.shape[1:])}")
    if representation not in DEFAULT_STAGE1_LR:
        raise InputError(f"representation must be 'grid' or 'siren'; got {representation!r}")
    for name, value, low in (("iterations", iterations, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"stage-1 {name} must be an integer >= {low}; got {value!r}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise InputError(f"stage-1 lr must be a positive number; got {lr!r}")


def run_stage1(
    frames: torch.Tensor,
    *,
    representation: str = "grid",
    iterations: int = 1000,
    batch_size: int = 16384,
    lr: float | None = None,
    lambda_smooth: float = LAMBDA_SMOOTH,
    lambda_limit: float = LAMBDA_LIMIT,
    foreground_start: float = 0.5,
    seed: int = 0,
    progress: bool | None = None,
) -> Stage1Result:
    """Fit the layer-separation model of Eq. 1 to a whole video.

    Args:
        frames: `(T, h, w)` float tensor in [0, 1] (its device and dtype are used throughout).
        representation: "grid" (`fields.MultiResGrid`, fast) or "siren" (`fields.SirenMLP`).
        iterations: Adam steps (0: the untrained fields are evaluated).
        batch_size: pixel coordinates per step (drawn uniformly with replacement).
        lr: Adam learning rate; None = `DEFAULT_STAGE1_LR[representation]`.
        lambda_smooth, lambda_limit: Eq. 1 weights (0.02 each in the paper).
        foreground_start: fraction of the iterations before g_f joins (module docstring).
        seed: seeds the fields' initialisation and the mini-batch draws.
        progress: tqdm bar (None: shown on a terminal only).

    Returns:
        a `Stage1Result` (numpy arrays on the CPU).
    """
    _check_stage1(frames, representation, iterations, batch_size, lr)
    if isinstance(foreground_start, bool) or not (isinstance(foreground_start, (int, float)) and 0.0 <= foreground_start <= 1.0):
        raise InputError(f"stage-1 foreground_start must be a number in [0, 1]; got {foreground_start!r}")
    count, height, width = frames.shape
    device, dtype = frames.device, frames.dtype
    model = make_stage1_fields(representation, frames=count, height=height, width=width, seed=seed, device=device, dtype=dtype)
    optimiser = adam(model.parameters(), lr=DEFAULT_STAGE1_LR[representation] if lr is None else lr, device=device)
    coords = video_coordinates(count, height, width, device=device, dtype=dtype).reshape(-1, 3)
    offset, scale = float(frames.mean()), max(float(frames.std()), 1e-6)
    targets = ((frames - offset) / scale).reshape(-1, 1)  # standardised: see the module docstring
    lattice = None if representation == "siren" else _smooth_lattice(count, height, width, device=device, dtype=dtype)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    history = np.zeros(iterations, dtype=np.float64)
    bar = tqdm(range(iterations), desc="denver stage 1", unit="it", disable=None if progress is None else not progress)
    for step in bar:
        index = torch.randint(0, coords.shape[0], (batch_size,), generator=generator).to(device)
        batch = coords[index]
        if representation == "siren":
            batch = batch.clone().requires_grad_(True)
        out = model(batch)
        if step < foreground_start * iterations:
            out["prediction"] = out["background"]
            out["foreground"] = out["foreground"].detach() * 0.0
        smooth = _smoothness(model, representation, batch, out, lattice)
        loss = bootstrap_loss(out["prediction"], targets[index], smoothness=smooth, foreground=out["foreground"],
                              lambda_smooth=lambda_smooth, lambda_limit=lambda_limit)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        history[step] = loss.item()
    bar.close()
    return _evaluate(model, count, height, width, history, device=device, dtype=dtype, offset=offset, scale=scale)


@torch.no_grad()
def _evaluate(
    model: LayerSeparation, count: int, height: int, width: int, history: np.ndarray, *, device: torch.device, dtype: torch.dtype,
    offset: float = 0.0, scale: float = 1.0,
) -> Stage1Result:
    """The trained fields on the full pixel lattice, one frame at a time, back in the frames'
    intensity units (I = offset + scale x standardised)."""
    model.eval()
    grid = video_coordinates(1, height, width, device=device, dtype=dtype)[0]  # (h, w, 3), t = 0
    canonical = offset + scale * model.canonical(grid[..., :2].reshape(-1, 2)).reshape(height, width)
    times = torch.linspace(-1.0, 1.0, count, device=device, dtype=dtype) if count > 1 else torch.zeros(1, device=device, dtype=dtype)
    deformation, background, foreground = [], [], []
    for t in times:
        coords = grid.clone()
        coords[..., 2] = t
        out = model(coords.reshape(-1, 3))
        deformation.append(to_pixels(out["offsets"], height, width).reshape(height, width, 2))
        background.append(offset + scale * out["background"].reshape(height, width))
        foreground.append(scale * out["foreground"].reshape(height, width))

    def numpy(values: list[torch.Tensor]) -> np.ndarray:
        return torch.stack(values).float().cpu().numpy()

    return Stage1Result(canonical.float().cpu().numpy(), numpy(deformation), numpy(background), numpy(foreground), history)
