"""Pixel grids and bilinear sampling shared by the DeNVeR parts.

Conventions (the project's, see `angioseg.flow.dis`): positions, displacements and flows are
channels-last `(..., H, W, 2)` tensors holding (x, y) in pixels, pixel centres at integers,
x along the width. The forward flow f_t (on frame t's grid) maps frame t's pixel x to
x + f_t(x) in frame t+1, i.e. F_{t->t+1}(x) = x + f_t(x) in the paper's notation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from angioseg.errors import InputError

__all__ = ["pixel_grid", "sample_pixels", "inside_frame"]


def pixel_grid(
    height: int, width: int, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """`(H, W, 2)` tensor whose entry [y, x] is (x, y), the pixel's own position."""
    if height < 1 or width < 1:
        raise InputError(f"pixel_grid needs a positive size; got {height} x {width}")
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((xx, yy), dim=-1)


def _normalised(positions: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel positions (x, y) -> grid_sample's [-1, 1] with ``align_corners=True``."""
    scale = positions.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    return positions * scale - 1.0


def sample_pixels(image: torch.Tensor, positions: torch.Tensor, *, padding_mode: str = "border") -> torch.Tensor:
    """Bilinear samples of `image` at pixel `positions` (differentiable in both).

    Args:
        image: `(N, C, H, W)` images.
        positions: `(N, H', W', 2)` positions (x, y) in pixels of `image`.
        padding_mode: grid_sample's padding outside the image ("border" repeats the edge).

    Returns:
        `(N, C, H', W')`: out[n, :, i, j] = image[n] at positions[n, i, j].
    """
    if image.ndim != 4 or positions.ndim != 4 or positions.shape[-1] != 2 or positions.shape[0] != image.shape[0]:
        shapes = f"{tuple(image.shape)} and {tuple(positions.shape)}"
        raise InputError(f"sample_pixels needs (N, C, H, W) images and (N, H', W', 2) positions; got {shapes}")
    grid = _normalised(positions.to(image.dtype), image.shape[-2], image.shape[-1])
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def inside_frame(positions: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bool `(...)` mask of the positions `(..., 2)` (x, y) with 0 <= x <= W-1 and 0 <= y <= H-1."""
    x, y = positions[..., 0], positions[..., 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
