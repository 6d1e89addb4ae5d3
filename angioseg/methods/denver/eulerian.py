"""Vessel flow from a stationary Eulerian field carried by the background motion (Fig. 3).

The paper (Fig. 3): "Background heartbeat uses a low-degree B-spline; foreground vessel flow
uses a stationary Eulerian field. Final vessel flow combines warped Eulerian motion with
background flow". Implemented composition, all `(..., H, W, 2)` (dx, dy) in pixels:

* d_t `(T, H, W, 2)`: background displacement of frame t (`BSplineMotion`): frame t's
  background at pixel x shows the canonical (heart-attached) point x + d_t(x).
* beta_t `(T-1, H, W, 2)`: background forward flow t -> t+1 on frame t's grid, the x' with
  x' + d_{t+1}(x') = x + d_t(x), beta_t(x) = x' - x (`background_flow`).
* E `(H, W, 2)`: one stationary Eulerian field in the canonical frame, the per-frame motion of
  the contrast along the vessels relative to the heart.
* E_t(x) = E(x + d_t(x)): E carried to frame t by the background ("warped Eulerian motion";
  bilinear sampling, border repeated; the vectors are moved, not rotated by the Jacobian of
  the deformation, exact for translations and first-order otherwise).
* vessel flow t -> t+1: v_t(x) = E_t(x) + beta_t(x).

Hand checks: no background motion (d = 0) gives beta = 0 and v_t = E; a background that
translates by s per frame (d_t = -t s) gives beta_t = s and v_t(x) = E(x - t s) + s, i.e. E
shifted with the background plus the translation.
"""

from __future__ import annotations

import torch
from torch import nn

from angioseg.errors import InputError
from angioseg.warp import pixel_grid, sample_pixels

__all__ = ["transport", "background_flow", "vessel_flow", "EulerianFlow"]


def _check_field(name: str, value: torch.Tensor, ndim: int) -> None:
    if value.ndim != ndim or value.shape[-1] != 2:
        raise InputError(f"{name} must be a {ndim}-d tensor ending in 2 (dx, dy); got shape {tuple(value.shape)}")


def _sample_fields(fields: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """`(T, H, W, 2)` fields sampled at `(T, H, W, 2)` pixel positions -> `(T, H, W, 2)`."""
    return sample_pixels(fields.permute(0, 3, 1, 2), positions).permute(0, 2, 3, 1)


def transport(field: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """E_t(x) = E(x + d_t(x)): the canonical field `(H, W, 2)` seen in each frame.

    Args:
        field: `(H, W, 2)` canonical field E.
        displacement: `(T, H, W, 2)` background displacements d_t.

    Returns:
        `(T, H, W, 2)`.
    """
    _check_field("field", field, 3)
    _check_field("displacement", displacement, 4)
    if displacement.shape[1:] != field.shape:
        raise InputError(f"field {tuple(field.shape)} and displacement {tuple(displacement.shape)} sizes differ")
    height, width = field.shape[:2]
    positions = pixel_grid(height, width, device=displacement.device, dtype=displacement.dtype) + displacement
    return _sample_fields(field.expand(displacement.shape[0], -1, -1, -1), positions)


def background_flow(displacement: torch.Tensor, *, iterations: int = 3) -> torch.Tensor:
    """Forward flow beta_t `(T-1, H, W, 2)` of the background between consecutive frames.

    Solves x' + d_{t+1}(x') = x + d_t(x) by the fixed point x'_0 = x, x'_{k+1} = x + d_t(x) -
    d_{t+1}(x'_k) (d_{t+1} sampled bilinearly; converges when |grad d| < 1), beta_t = x' - x.
    One iteration gives the first-order beta_t = d_t - d_{t+1}; exact for translations.

    Args:
        displacement: `(T, H, W, 2)` background displacements d_t (pixels).
        iterations: fixed-point iterations, >= 1.
    """
    _check_field("displacement", displacement, 4)
    if not (isinstance(iterations, int) and iterations >= 1):
        raise InputError(f"iterations must be a positive integer; got {iterations!r}")
    height, width = displacement.shape[1:3]
    if displacement.shape[0] < 2:
        return displacement[:0].clone()
    grid = pixel_grid(height, width, device=displacement.device, dtype=displacement.dtype)
    canonical = grid + displacement[:-1]  # x + d_t(x)
    target = grid.expand_as(canonical)
    for _ in range(iterations):
        target = canonical - _sample_fields(displacement[1:], target)
    return target - grid


def vessel_flow(field: torch.Tensor, *, displacement: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
    """v_t(x) = E(x + d_t(x)) + beta_t(x), the vessel flow t -> t+1 for t = 0 .. T-2.

    Args:
        field: `(H, W, 2)` Eulerian field E.
        displacement: `(T, H, W, 2)` background displacements d_t.
        flow: `(T-1, H, W, 2)` background flow beta_t; None = `background_flow(displacement)`.

    Returns:
        `(T-1, H, W, 2)`.
    """
    _check_field("displacement", displacement, 4)
    flow = background_flow(displacement) if flow is None else flow
    _check_field("flow", flow, 4)
    if flow.shape[0] != displacement.shape[0] - 1 or flow.shape[1:] != displacement.shape[1:]:
        wanted = (displacement.shape[0] - 1,) + tuple(displacement.shape[1:])
        raise InputError(f"flow must have shape {wanted}; got {tuple(flow.shape)}")
    return transport(field, displacement[:-1]) + flow


class EulerianFlow(nn.Module):
    """The learnable stationary Eulerian field E `(H, W, 2)` (pixels per frame, 0 at start).

    ``forward(displacement, flow=None)`` = `vessel_flow(E, displacement=..., flow=...)`.
    """

    def __init__(
        self, height: int, width: int, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__()
        if not (isinstance(height, int) and isinstance(width, int) and height >= 1 and width >= 1):
            raise InputError(f"EulerianFlow needs a positive integer size; got {height!r} x {width!r}")
        self.field = nn.Parameter(torch.zeros(height, width, 2, device=device, dtype=dtype))

    def forward(self, displacement: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
        """`(T, H, W, 2)` background displacements -> `(T-1, H, W, 2)` vessel flow."""
        return vessel_flow(self.field, displacement=displacement, flow=flow)
