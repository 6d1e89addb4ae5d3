"""Background motion as a low-degree spatio-temporal B-spline (Sec. 3.3, Fig. 3).

A lattice of control displacements P `(Tc, Hc, Wc, 2)` defines the displacement at frame t,
pixel (x, y) as the separable tensor-product spline

    d(t, y, x) = sum_{a, b, c} B(u_t(t) - a) B(u_y(y) - b) B(u_x(x) - c) P[a, b, c]

with B the centred uniform (cardinal) B-spline of degree k (1 linear, 2 quadratic, 3 cubic,
the default), support (-(k+1)/2, (k+1)/2):

    k = 1: B(u) = max(0, 1 - |u|)
    k = 2: B(u) = 3/4 - u^2 for |u| < 1/2;  (3/2 - |u|)^2 / 2 for 1/2 <= |u| < 3/2
    k = 3: B(u) = 2/3 - u^2 + |u|^3 / 2 for |u| < 1;  (2 - |u|)^3 / 6 for 1 <= |u| < 2

Each axis of n samples (frames or pixels, positions p = 0 .. n-1) and c >= k + 1 control points
maps p to the knot coordinate u(p) = m + p (c - 1 - 2m) / (n - 1), m = (k - 1) / 2. Control
point j therefore sits at p_j = (j - m)(n - 1) / (c - 1 - 2m): for the cubic spline the first
and last control points lie one spacing outside the frame, so that every sample has its full
support of k + 1 control points. On [m, c - 1 - m] the weights sum to 1 (partition of unity)
and reproduce linear functions exactly: control points set to a linear field's values at the
p_j give that linear field at every sample.

In DeNVeR the displacement is the background layer's motion: frame t's background at pixel x
shows the canonical background at x + d_t(x) (pixels, (dx, dy)).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from angioseg.errors import InputError

__all__ = ["bspline_kernel", "bspline_basis", "control_positions", "BSplineMotion"]

_DEGREES = (1, 2, 3)


def bspline_kernel(u: torch.Tensor, *, degree: int = 3) -> torch.Tensor:
    """Centred cardinal B-spline B(u) of `degree` (1, 2 or 3), elementwise (formulas above)."""
    if degree not in _DEGREES:
        raise InputError(f"degree must be 1, 2 or 3; got {degree!r}")
    a = u.abs()
    zero = torch.zeros_like(a)
    if degree == 1:
        return (1.0 - a).clamp_min(0.0)
    if degree == 2:
        return torch.where(a < 0.5, 0.75 - a * a, torch.where(a < 1.5, 0.5 * (1.5 - a) ** 2, zero))
    return torch.where(a < 1.0, 2.0 / 3.0 - a * a + 0.5 * a**3, torch.where(a < 2.0, (2.0 - a) ** 3 / 6.0, zero))


def _check_axis(count: int, length: int, degree: int) -> None:
    if degree not in _DEGREES:
        raise InputError(f"degree must be 1, 2 or 3; got {degree!r}")
    if not (isinstance(count, int) and count >= degree + 1):
        raise InputError(f"a degree-{degree} B-spline needs at least {degree + 1} control points per axis; got {count!r}")
    if not (isinstance(length, int) and length >= 1):
        raise InputError(f"axis length must be a positive integer; got {length!r}")


def _knot_coordinate(positions: torch.Tensor, count: int, length: int, degree: int) -> torch.Tensor:
    """u(p) = m + p (c - 1 - 2m) / (n - 1), m = (k - 1)/2; the middle of the knots when n = 1."""
    margin = (degree - 1) / 2.0
    if length == 1:
        return positions + (count - 1) / 2.0
    return margin + positions * ((count - 1 - 2.0 * margin) / (length - 1))


def control_positions(
    count: int, length: int, *, degree: int = 3, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """`(count,)` positions p_j (in samples of an axis of `length`) of the control points."""
    _check_axis(count, length, degree)
    margin = (degree - 1) / 2.0
    j = torch.arange(count, device=device, dtype=dtype)
    if length == 1:
        return j - (count - 1) / 2.0
    return (j - margin) * ((length - 1) / (count - 1 - 2.0 * margin))


def bspline_basis(positions: torch.Tensor, *, count: int, length: int, degree: int = 3) -> torch.Tensor:
    """Basis matrix `(n, count)`: [i, j] = B(u(positions[i]) - j), positions `(n,)` in samples."""
    _check_axis(count, length, degree)
    if positions.ndim != 1:
        raise InputError(f"positions must be 1-d; got shape {tuple(positions.shape)}")
    u = _knot_coordinate(positions, count, length, degree)
    j = torch.arange(count, device=positions.device, dtype=positions.dtype)
    return bspline_kernel(u[:, None] - j[None, :], degree=degree)


class BSplineMotion(nn.Module):
    """Spatio-temporal B-spline displacement field over a `frames` x `height` x `width` video.

    Args:
        control_shape: (Tc, Hc, Wc) (or (Tc, Hc, Wc, 2)) control points along t, y, x; each
            at least degree + 1.
        frames, height, width: size of the video the field covers.
        degree: B-spline degree, 1, 2 or 3 (default cubic).
        device, dtype: of the control points and the cached spatial bases.

    Attributes:
        control: `(Tc, Hc, Wc, 2)` parameter, control displacements (dx, dy) in pixels, 0 at
            start (no motion).
    """

    def __init__(
        self,
        control_shape: Sequence[int],
        frames: int,
        height: int,
        width: int,
        *,
        degree: int = 3,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        shape = tuple(int(n) for n in control_shape)
        if len(shape) == 4 and shape[3] == 2:
            shape = shape[:3]
        if len(shape) != 3:
            raise InputError(f"control_shape must be (Tc, Hc, Wc); got {tuple(control_shape)!r}")
        self.frames, self.height, self.width, self.degree = int(frames), int(height), int(width), degree
        for count, length in zip(shape, (self.frames, self.height, self.width)):
            _check_axis(count, length, degree)
        self.control = nn.Parameter(torch.zeros(shape + (2,), device=device, dtype=dtype))
        ys = torch.arange(self.height, device=device, dtype=dtype)
        xs = torch.arange(self.width, device=device, dtype=dtype)
        self.register_buffer("basis_y", bspline_basis(ys, count=shape[1], length=self.height, degree=degree), persistent=False)
        self.register_buffer("basis_x", bspline_basis(xs, count=shape[2], length=self.width, degree=degree), persistent=False)

    def control_points(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Positions of the control points along t (frames), y and x (pixels): `(Tc,)`, `(Hc,)`, `(Wc,)`."""
        options = dict(degree=self.degree, device=self.control.device, dtype=self.control.dtype)
        tc, hc, wc = self.control.shape[:3]
        return (
            control_positions(tc, self.frames, **options),
            control_positions(hc, self.height, **options),
            control_positions(wc, self.width, **options),
        )

    def time_basis(self, t_indices: torch.Tensor) -> torch.Tensor:
        """`(T, Tc)` temporal weights at the (integer or fractional) frame indices `(T,)`."""
        return bspline_basis(t_indices, count=self.control.shape[0], length=self.frames, degree=self.degree)

    def forward(self, t_indices: torch.Tensor | Sequence[float] | None = None) -> torch.Tensor:
        """Displacements `(T, H, W, 2)` (dx, dy) in pixels at the frame indices `(T,)`.

        Frame indices may be fractional and must lie in [0, frames - 1]; None = every frame.
        """
        device, dtype = self.control.device, self.control.dtype
        if t_indices is None:
            t = torch.arange(self.frames, device=device, dtype=dtype)
        else:
            t = torch.as_tensor(t_indices, device=device).to(dtype).reshape(-1)
        if t.numel() and (float(t.min()) < 0 or float(t.max()) > self.frames - 1):
            raise InputError(f"frame indices must lie in [0, {self.frames - 1}]; got {float(t.min())} .. {float(t.max())}")
        per_frame = torch.einsum("ta,abcd->tbcd", self.time_basis(t), self.control)
        rows = torch.einsum("yb,tbcd->tycd", self.basis_y, per_frame)
        return torch.einsum("xc,tycd->tyxd", self.basis_x, rows)
