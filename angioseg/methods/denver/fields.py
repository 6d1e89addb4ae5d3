"""Stage-1 field representations (Sec. 3.2, Fig. 2 b): coordinates in [-1, 1] -> values.

Both representations take coordinates `(N, D)` (D = 2: (x, y); D = 3: (x, y, t)), each in
[-1, 1] (pixel 0 -> -1, pixel W-1 -> +1, see `video_coordinates`), and return `(N, out)`:

* `SirenMLP`: the SIREN coordinate network, h_1 = sin(omega0 (W_1 c + b_1)), h_{i+1} =
  sin(omega_h (W_i h_i + b_i)), out = W_L h_L + b_L. Initialisation (Sitzmann et al. 2020):
  first layer W ~ U(-1/D, 1/D); later layers (output included) W ~ U(-sqrt(6/fan_in)/omega_h,
  +sqrt(6/fan_in)/omega_h); biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)); omega0 = omega_h = 30.
* `MultiResGrid` (the fast default): L explicit feature grids (2-D `(F, Ry, Rx)` or 3-D
  `(F, Rt, Ry, Rx)`) at increasing resolutions, each sampled with bi/trilinear interpolation
  (`F.grid_sample`, ``align_corners=True``: the grid nodes span [-1, 1] end to end, border
  padding outside), the L feature vectors concatenated and mapped by one linear layer.

`LayerSeparation` wires three of them into stage 1's model (NIR-style layer separation):

    Î(x, y, t) = C((x, y) + g_b(x, y, t)) + g_f(x, y, t)

with g_b the background deformation (t, x, y -> 2-D offset, in the same [-1, 1] units), C the
canonical background image (x, y -> intensity) and g_f the foreground layer (x, y, t ->
intensity), the residual that the background cannot explain (additive: vessels are darker,
so g_f is mostly <= 0 on them); Eq. 1's L_limit keeps it sparse.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from angioseg.errors import InputError

__all__ = ["SirenMLP", "MultiResGrid", "LayerSeparation", "video_coordinates", "make_stage1_fields"]


def _generator(seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    if not isinstance(seed, int):
        raise InputError(f"seed must be an integer or None; got {seed!r}")
    return torch.Generator(device="cpu").manual_seed(seed)


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator | None) -> torch.Tensor:
    """U(-bound, bound) drawn on the CPU (reproducible with `generator` on any device)."""
    return torch.empty(shape, dtype=torch.float64).uniform_(-bound, bound, generator=generator)


def _check_coords(coords: torch.Tensor, in_features: int) -> None:
    if coords.ndim != 2 or coords.shape[1] != in_features:
        raise InputError(f"coordinates must be (N, {in_features}); got shape {tuple(coords.shape)}")


def _check_size(name: str, value: int, low: int = 1) -> None:
    if not (isinstance(value, int) and value >= low):
        raise InputError(f"{name} must be an integer >= {low}; got {value!r}")


class SirenMLP(nn.Module):
    """SIREN coordinate network `(N, in_features)` -> `(N, out_features)` (see the module docstring).

    Args:
        in_features, out_features: input (2 or 3) and output sizes.
        hidden_features: width of the sine layers.
        layers: number of sine layers (>= 1); one linear output layer follows.
        omega0: frequency of the first layer (30 in SIREN).
        hidden_omega: frequency of the later sine layers (30 in SIREN).
        zero_init: start with the output layer at 0 (the network outputs 0, e.g. an identity
            deformation); the SIREN init otherwise.
        seed: initialisation seed (None: torch's global generator).
        device, dtype: of the parameters.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        hidden_features: int = 64,
        layers: int = 3,
        omega0: float = 30.0,
        hidden_omega: float = 30.0,
        zero_init: bool = False,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        sizes = {"in_features": in_features, "out_features": out_features, "hidden_features": hidden_features, "layers": layers}
        for name, value in sizes.items():
            _check_size(name, value)
        if not (omega0 > 0 and hidden_omega > 0):
            raise InputError(f"omega0 and hidden_omega must be positive; got {omega0!r}, {hidden_omega!r}")
        self.in_features, self.omega0, self.hidden_omega = in_features, float(omega0), float(hidden_omega)
        generator = _generator(seed)
        sizes = [in_features] + [hidden_features] * layers + [out_features]
        self.linears = nn.ModuleList()
        for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear = nn.Linear(fan_in, fan_out, device=device, dtype=dtype)
            bound = 1.0 / fan_in if index == 0 else math.sqrt(6.0 / fan_in) / self.hidden_omega
            with torch.no_grad():
                linear.weight.copy_(_uniform((fan_out, fan_in), bound, generator))
                linear.bias.copy_(_uniform((fan_out,), 1.0 / math.sqrt(fan_in), generator))
                if zero_init and index == len(sizes) - 2:
                    linear.weight.zero_()
                    linear.bias.zero_()
            self.linears.append(linear)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """`(N, in_features)` -> `(N, out_features)`."""
        _check_coords(coords, self.in_features)
        h = torch.sin(self.omega0 * self.linears[0](coords))
        for linear in self.linears[1:-1]:
            h = torch.sin(self.hidden_omega * linear(h))
        return self.linears[-1](h)


class MultiResGrid(nn.Module):
    """Multi-resolution explicit feature grids + linear head (see the module docstring).

    out(c) = W [G_1(c); ...; G_L(c)] + b, G_l(c) = bi/trilinear sample of grid l at c.

    Args:
        in_features: 2 ((x, y) grids `(F, Ry, Rx)`) or 3 ((x, y, t) grids `(F, Rt, Ry, Rx)`).
        out_features: output size.
        resolutions: one entry per level: an int (nodes along every axis) or a tuple of
            `in_features` ints in (x, y[, t]) order; each >= 2 (1 allowed along t).
        features: F, feature channels per level.
        init_std: grids start as N(0, init_std^2).
        zero_init: start with the head at 0 (the field outputs 0).
        seed: initialisation seed (None: torch's global generator).
        device, dtype: of the parameters.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        resolutions: Sequence[int | Sequence[int]] = (16, 32, 64, 128),
        features: int = 2,
        init_std: float = 0.1,
        zero_init: bool = False,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if in_features not in (2, 3):
            raise InputError(f"MultiResGrid takes 2-d or 3-d coordinates; got in_features={in_features!r}")
        _check_size("out_features", out_features)
        _check_size("features", features)
        if len(resolutions) == 0:
            raise InputError("MultiResGrid needs at least one resolution")
        self.in_features = in_features
        generator = _generator(seed)
        self.grids = nn.ParameterList()
        for level in resolutions:
            size = (int(level),) * in_features if isinstance(level, int) else tuple(int(n) for n in level)
            if len(size) != in_features or min(size[:2]) < 2 or min(size) < 1:
                raise InputError(f"a resolution must be an int >= 2 or {in_features} sizes (x, y[, t]), x, y >= 2; got {level!r}")
            shape = (1, features) + tuple(reversed(size))  # (1, F, [Rt,] Ry, Rx)
            values = torch.empty(shape, dtype=torch.float64).normal_(0.0, init_std, generator=generator)
            self.grids.append(nn.Parameter(values.to(device=device, dtype=dtype)))
        width = features * len(self.grids)
        self.head = nn.Linear(width, out_features, device=device, dtype=dtype)
        with torch.no_grad():
            bound = 0.0 if zero_init else 1.0 / math.sqrt(width)
            self.head.weight.copy_(_uniform((out_features, width), bound, generator))
            self.head.bias.copy_(_uniform((out_features,), bound, generator))

    def features(self, coords: torch.Tensor) -> torch.Tensor:
        """`(N, in_features)` -> concatenated grid features `(N, F * L)`."""
        _check_coords(coords, self.in_features)
        count = coords.shape[0]
        view = (1, count, 1, self.in_features) if self.in_features == 2 else (1, count, 1, 1, 3)
        grid = coords.to(self.head.weight.dtype).reshape(view)
        samples = [
            F.grid_sample(values, grid, mode="bilinear", padding_mode="border", align_corners=True).reshape(-1, count)
            for values in self.grids
        ]
        return torch.cat(samples, dim=0).t()

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """`(N, in_features)` -> `(N, out_features)`."""
        return self.head(self.features(coords))


def video_coordinates(
    frames: int, height: int, width: int, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """`(T, H, W, 3)` coordinates (x, y, t) in [-1, 1]: 2p/(n-1) - 1 along each axis (0 if n = 1)."""
    for name, value in (("frames", frames), ("height", height), ("width", width)):
        _check_size(name, value)

    def axis(n: int) -> torch.Tensor:
        return torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype) if n > 1 else torch.zeros(1, device=device, dtype=dtype)

    t, y, x = torch.meshgrid(axis(frames), axis(height), axis(width), indexing="ij")
    return torch.stack((x, y, t), dim=-1)


class LayerSeparation(nn.Module):
    """Stage 1's model: Î(c) = canonical(c_xy + deformation(c)) + foreground(c), c = (x, y, t).

    The pair (C, g_b) has a gauge freedom: C shifted by a constant u and g_b - u render the
    same video, and nothing in Eq. 1 resists the drift (L_smooth sees only the Jacobian). Left
    free, Adam walks g_b by tens of pixels, and C, sampled outside its domain, is smeared by
    the border padding. With `anchor_time` (the default for `make_stage1_fields`: 0, the
    middle frame) the deformation is pinned to vanish at that time,

        g_b(x, y, t) = G(x, y, t) - G(x, y, anchor_time),

    so C is the background in the anchor frame's geometry (this package's choice).

    Args:
        deformation: G, `(N, 3)` -> `(N, 2)` offsets in [-1, 1] units (dx * 2/(W-1), ...).
        canonical: C, `(N, 2)` -> `(N, 1)` canonical background intensity.
        foreground: g_f, `(N, 3)` -> `(N, 1)` foreground layer.
        anchor_time: t in [-1, 1] where g_b is pinned to 0; None leaves g_b = G.
    """

    def __init__(self, deformation: nn.Module, canonical: nn.Module, foreground: nn.Module, *, anchor_time: float | None = None) -> None:
        super().__init__()
        self.deformation, self.canonical, self.foreground = deformation, canonical, foreground
        self.anchor_time = anchor_time

    def offsets(self, coords: torch.Tensor) -> torch.Tensor:
        """g_b at `(N, 3)` coordinates -> `(N, 2)` offsets (pinned at `anchor_time`)."""
        offsets = self.deformation(coords)
        if self.anchor_time is None:
            return offsets
        anchored = torch.cat((coords[:, :2], torch.full_like(coords[:, 2:], float(self.anchor_time))), dim=1)
        return offsets - self.deformation(anchored)

    def forward(self, coords: torch.Tensor) -> dict[str, torch.Tensor]:
        """`(N, 3)` coordinates -> {"prediction", "background", "foreground": `(N, 1)`, "offsets": `(N, 2)`}."""
        _check_coords(coords, 3)
        offsets = self.offsets(coords)
        background = self.canonical(coords[:, :2] + offsets)
        foreground = self.foreground(coords)
        return {"prediction": background + foreground, "background": background, "foreground": foreground, "offsets": offsets}


def _levels(n: int, divisors: Sequence[int]) -> list[int]:
    return [max(2, math.ceil(n / d)) for d in divisors]


def make_stage1_fields(
    kind: str = "grid",
    *,
    frames: int,
    height: int,
    width: int,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    anchor_time: float | None = 0.0,
) -> LayerSeparation:
    """Stage 1's three fields as a `LayerSeparation`, "grid" (`MultiResGrid`) or "siren".

    The sizes are this package's choice (the paper gives none). "grid": deformation on
    (x, y, t) grids of W/64..W/32 nodes and up to 8..16 along t, zero at start; canonical image
    on grids of W/8, W/4, W/2, W nodes; foreground on W/8..W/2 x T. "siren": deformation
    3 x 64 (zero at start), canonical and foreground 4 x 128 sine layers. `anchor_time`: see
    `LayerSeparation` (the deformation vanishes in the middle frame by default).
    """
    for name, value in (("frames", frames), ("height", height), ("width", width)):
        _check_size(name, value)
    options = dict(device=device, dtype=dtype)
    seeds = (None, None, None) if seed is None else (seed, seed + 1, seed + 2)
    if kind == "grid":
        coarse = zip(_levels(width, (64, 32)), _levels(height, (64, 32)), (8, 16))
        smooth = [(x, y, min(frames, t)) for x, y, t in coarse]
        deformation = MultiResGrid(3, 2, resolutions=smooth, zero_init=True, seed=seeds[0], **options)
        image = list(zip(_levels(width, (8, 4, 2, 1)), _levels(height, (8, 4, 2, 1))))
        canonical = MultiResGrid(2, 1, resolutions=image, seed=seeds[1], **options)
        layer = [(x, y, frames) for x, y in zip(_levels(width, (8, 4, 2)), _levels(height, (8, 4, 2)))]
        foreground = MultiResGrid(3, 1, resolutions=layer, init_std=0.01, seed=seeds[2], **options)
    elif kind == "siren":
        deformation = SirenMLP(3, 2, hidden_features=64, layers=3, zero_init=True, seed=seeds[0], **options)
        canonical = SirenMLP(2, 1, hidden_features=128, layers=4, seed=seeds[1], **options)
        foreground = SirenMLP(3, 1, hidden_features=128, layers=4, seed=seeds[2], **options)
    else:
        raise InputError(f"unknown field kind {kind!r}; expected 'grid' or 'siren'")
    return LayerSeparation(deformation, canonical, foreground, anchor_time=anchor_time)
