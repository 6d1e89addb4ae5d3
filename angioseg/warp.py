"""Sampling images at pixel positions and warping them along flow fields: the one home of
this for the whole package (data generators, flow, post-processing, methods, evaluation).

It sits at the bottom of the package with `errors`, `types` and `options` (it imports no other
angioseg module), so that the generators in `angioseg.data` and the scores in `angioseg.eval`
warp the same way without importing each other.

Conventions (the project's): positions and flows are channels-last `(..., H, W, 2)` holding
(x, y) in pixels, pixel centres at integers, x along the width. A backward flow b on frame
t+1's grid warps frame t onto frame t+1:

    warped(x) = frame_t(x + b(x))

NumPy functions (`sample_at`, `warp_backward`, `pixel_positions`) run OpenCV's `remap`; the
torch ones (`sample_pixels`, `pixel_grid`, `inside_frame`) run `grid_sample` and are
differentiable in the image and in the positions.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from angioseg.errors import InputError

__all__ = ["BORDERS", "inside_frame", "pixel_grid", "pixel_positions", "sample_at", "sample_pixels", "warp_backward"]

#: Border rules of `sample_at`: what a position outside the image reads.
BORDERS = {
    "replicate": cv2.BORDER_REPLICATE,  # the nearest edge pixel
    "constant": cv2.BORDER_CONSTANT,  # 0
    "reflect": cv2.BORDER_REFLECT,  # mirrored, edge pixel repeated (…cba|abc…)
    "reflect101": cv2.BORDER_REFLECT101,  # mirrored about the edge pixel (…dcb|abc…)
}


def pixel_positions(height: int, width: int) -> np.ndarray:
    """`(H, W, 2)` float32 whose entry [y, x] is (x, y), each pixel's own position."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([xs, ys], axis=-1)


def sample_at(image: np.ndarray, positions: np.ndarray, *, nearest: bool = False, border: str = "replicate") -> np.ndarray:
    """Samples of `image` at `positions`: out[i, j] = image at positions[i, j] = (x, y).

    Args:
        image: `(H, W)` or `(H, W, C)` array (bool is sampled as uint8 and returned as bool).
        positions: `(H', W', 2)` (x, y) in pixels of `image`.
        nearest: nearest-neighbour instead of bilinear interpolation.
        border: a key of `BORDERS`.

    Returns:
        `(H', W')` (or `(H', W', C)`) array of the image's dtype (float32 for float64 input).
    """
    if border not in BORDERS:
        raise InputError(f"border must be one of {', '.join(BORDERS)}; got {border!r}")
    positions = np.asarray(positions)
    if positions.ndim != 3 or positions.shape[-1] != 2:
        raise InputError(f"positions must be (H, W, 2) (x, y); got shape {positions.shape}")
    source = np.asarray(image)
    is_bool = source.dtype == bool
    if is_bool:
        source = source.astype(np.uint8)
    elif source.dtype == np.float64:
        source = source.astype(np.float32)
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    map_x = positions[..., 0].astype(np.float32, copy=False)
    map_y = positions[..., 1].astype(np.float32, copy=False)

    def remap(plane: np.ndarray) -> np.ndarray:
        return cv2.remap(np.ascontiguousarray(plane), map_x, map_y, interpolation, borderMode=BORDERS[border], borderValue=0)

    # One channel at a time: OpenCV's multi-channel remap of 2 or more than 4 float channels
    # does not give the same values as its single-channel remap.
    out = remap(source) if source.ndim == 2 else np.stack([remap(source[..., c]) for c in range(source.shape[-1])], axis=-1)
    return out.astype(bool) if is_bool else out


def warp_backward(image: np.ndarray, flow: np.ndarray, *, nearest: bool = False, border: str = "replicate") -> np.ndarray:
    """`image` sampled at x + flow(x): frame t warped onto frame t+1 with the backward flow b_t.

    `image` `(H, W)`; `flow` `(H, W, 2)` (dx, dy) on the output grid. Outside the image the
    border rule applies (default: the edge value is repeated).
    """
    flow = np.asarray(flow)
    positions = pixel_positions(flow.shape[0], flow.shape[1]) + flow.astype(np.float32, copy=False)
    return sample_at(image, positions, nearest=nearest, border=border)


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
    """Pixel positions (x, y) -> grid_sample's [-1, 1] with ``align_corners=True``:
    x_n = 2 x / (W - 1) - 1 (a one-pixel-wide image maps x = 0 to -1)."""
    scale = positions.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    return positions * scale - 1.0


def sample_pixels(image: torch.Tensor, positions: torch.Tensor, *, padding_mode: str = "border") -> torch.Tensor:
    """Bilinear samples of `image` at pixel `positions` (differentiable in both).

    Args:
        image: `(N, C, H, W)` images.
        positions: `(N, H', W', 2)` positions (x, y) in pixels of `image`.
        padding_mode: grid_sample's value outside the image: "border" repeats the edge,
            "zeros" reads 0 (bilinear weights still blend the edge pixel with 0 within one pixel).

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
