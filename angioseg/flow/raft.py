"""RAFT optical flow (Teed & Deng, "RAFT: Recurrent All-Pairs Field Transforms", ECCV 2020).

Two configurations, as in the paper and its public release:

* ``large`` (5.26 M parameters): feature encoder with residual blocks and instance norm,
  256-d features; context encoder with batch norm giving a 128-d hidden state and 128-d
  context; 4-level correlation pyramid of radius 4; separable ConvGRU (1x5 then 5x1);
  convex 8x upsampling with a learned mask.
* ``small`` (0.99 M parameters): bottleneck blocks, 128-d features with instance norm,
  context encoder without normalisation giving hidden 96 / context 64; radius 3; one 3x3
  ConvGRU; bilinear 8x upsampling.

Flow convention (the same as `angioseg.flow.dis`): `RAFT(image1, image2)` returns f on
image1's grid, (dx, dy) in pixels, with image1(x) ≈ image2(x + f(x)). So the forward flow
f_t is RAFT(frame t, frame t+1) and the backward flow b_t (the phantom's `flow_backward`) is
RAFT(frame t+1, frame t).

Correlation volume. With g1, g2 `(B, D, h, w)` the features of both images at 1/8 resolution,

    C[b, i, j, k, l] = sum_d g1[b, d, i, j] g2[b, d, k, l] / sqrt(D)

is the volume of all pairs `(B, h, w, h, w)`. Level m of the pyramid average-pools the last
two dimensions by 2^m (m = 0..3). For a pixel (i, j) of image1 whose current estimate of its
match in image2 is p = (x, y) (1/8-resolution pixels), the lookup samples level m bilinearly
(zero outside) at p / 2^m + (dx, dy) for every integer offset with |dx|, |dy| <= r, and
concatenates the levels: `(B, L (2r+1)^2, h, w)`. Channels are ordered as in the release:
level-major, then the x offset, then the y offset (channel m (2r+1)^2 + (dx + r)(2r+1) +
(dy + r)), so the released weights read the same features.

Convex upsampling. The flow f at 1/8 resolution `(B, 2, h, w)` becomes `(B, 2, 8h, 8w)`: the
fine pixel (8i + s, 8j + t) takes

    F[8i + s, 8j + t] = sum_{k=0..8} softmax_k(M[b, 64k + 8s + t, i, j]) * 8 f[i + ky - 1, j + kx - 1]

with k = 3 ky + kx over the 3x3 neighbours of the coarse cell (zeros outside the grid, as in
the release) and M `(B, 576, h, w)` the mask predicted from the hidden state (times 0.25).
The weights are positive and sum to one, so a constant flow c gives 8c wherever no
neighbour falls outside the grid.

Inputs: `RAFT.forward` takes `(B, 3, H, W)` images in [0, 255] like the authors' release
(it maps them to [-1, 1] itself; torchvision's port expects [-1, 1] but holds the same
weights), H and W multiples of 8 and at least 64. `raft_flow` / `raft_flows` take grey
`(H, W)` frames in [0, 1], repeat them to 3 channels, scale to [0, 255], pad (replicate) and
crop back.

Weights: `load_raft` reads the authors' release checkpoints (`raft-things.pth`, keys
``module.fnet.conv1.weight``...), torchvision's `raft_large` / `raft_small` state dicts
(``feature_encoder.convnormrelu.0.weight``...) and angioseg's own safetensors files (the
authors' layout without the ``module.`` prefix), see `convert_state_dict`.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from angioseg.errors import InputError

#: Weights file format name written in angioseg's safetensors metadata.
WEIGHTS_FORMAT = "angioseg-raft"
#: Layouts `convert_state_dict` understands.
SOURCES = ("authors", "torchvision", "auto")


@dataclass(frozen=True)
class RaftConfig:
    """The architecture of one RAFT configuration (see the module docstring)."""

    name: str
    block: str  # "residual" (large) or "bottleneck" (small)
    widths: tuple[int, int, int, int]  # stem, layer1, layer2, layer3 channels of both encoders
    feature_dim: int
    hidden_dim: int
    context_dim: int
    context_norm: str  # "batch" or "none"
    corr_levels: int
    corr_radius: int
    motion_corr: tuple[int, ...]  # widths of the correlation branch of the motion encoder
    motion_flow: tuple[int, int]  # widths of its flow branch
    motion_out: int  # motion features, the flow (2 channels) included
    separable_gru: bool
    flow_head_hidden: int
    convex_upsampling: bool

    @property
    def corr_channels(self) -> int:
        return self.corr_levels * (2 * self.corr_radius + 1) ** 2

    @property
    def min_size(self) -> int:
        """Smallest input side: the coarsest correlation level keeps at least one pixel."""
        return 8 * 2 ** (self.corr_levels - 1)


CONFIGS: dict[str, RaftConfig] = {
    "large": RaftConfig(
        name="large", block="residual", widths=(64, 64, 96, 128), feature_dim=256, hidden_dim=128,
        context_dim=128, context_norm="batch", corr_levels=4, corr_radius=4, motion_corr=(256, 192),
        motion_flow=(128, 64), motion_out=128, separable_gru=True, flow_head_hidden=256, convex_upsampling=True,
    ),
    "small": RaftConfig(
        name="small", block="bottleneck", widths=(32, 32, 64, 96), feature_dim=128, hidden_dim=96,
        context_dim=64, context_norm="none", corr_levels=4, corr_radius=3, motion_corr=(96,),
        motion_flow=(64, 32), motion_out=82, separable_gru=False, flow_head_hidden=128, convex_upsampling=False,
    ),
}


def get_config(name: str | RaftConfig) -> RaftConfig:
    """The `RaftConfig` named "small" or "large" (InputError otherwise)."""
    if isinstance(name, RaftConfig):
        return name
    if name not in CONFIGS:
        raise InputError(f"unknown RAFT configuration {name!r}; choose one of {', '.join(CONFIGS)}")
    return CONFIGS[name]


# ---- encoders -------------------------------------------------------------------------------


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels)  # no affine parameters, no running statistics (as released)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


class ResidualBlock(nn.Module):
    """Two 3x3 conv + norm + ReLU, with a strided 1x1 projection when `stride` > 1.

    `(B, C_in, H, W)` -> `(B, C_out, H / stride, W / stride)`.
    """

    def __init__(self, in_channels: int, out_channels: int, *, norm: str, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=stride)
        self.norm1 = _norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(norm, out_channels)
        self.downsample = None
        if stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride), _norm(norm, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + y)


class BottleneckBlock(nn.Module):
    """1x1 (C_out / 4), strided 3x3, 1x1 (C_out), each with norm + ReLU, plus the shortcut.

    `(B, C_in, H, W)` -> `(B, C_out, H / stride, W / stride)`.
    """

    def __init__(self, in_channels: int, out_channels: int, *, norm: str, stride: int) -> None:
        super().__init__()
        middle = out_channels // 4
        self.conv1 = nn.Conv2d(in_channels, middle, 1)
        self.norm1 = _norm(norm, middle)
        self.conv2 = nn.Conv2d(middle, middle, 3, padding=1, stride=stride)
        self.norm2 = _norm(norm, middle)
        self.conv3 = nn.Conv2d(middle, out_channels, 1)
        self.norm3 = _norm(norm, out_channels)
        self.downsample = None
        if stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride), _norm(norm, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        y = F.relu(self.norm3(self.conv3(y)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + y)


class Encoder(nn.Module):
    """Feature or context encoder: `(B, 3, H, W)` -> `(B, output_dim, H / 8, W / 8)`.

    7x7 stride-2 stem, then three stages of two blocks (strides 1, 2, 2), then a 1x1 conv.
    """

    def __init__(self, config: RaftConfig, *, output_dim: int, norm: str) -> None:
        super().__init__()
        stem, width1, width2, width3 = config.widths
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3)
        self.norm1 = _norm(norm, stem)
        self.layer1 = self._stage(config, stem, width1, norm=norm, stride=1)
        self.layer2 = self._stage(config, width1, width2, norm=norm, stride=2)
        self.layer3 = self._stage(config, width2, width3, norm=norm, stride=2)
        self.conv2 = nn.Conv2d(width3, output_dim, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def _stage(config: RaftConfig, in_channels: int, out_channels: int, *, norm: str, stride: int) -> nn.Sequential:
        block = ResidualBlock if config.block == "residual" else BottleneckBlock
        return nn.Sequential(
            block(in_channels, out_channels, norm=norm, stride=stride),
            block(out_channels, out_channels, norm=norm, stride=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.norm1(self.conv1(x)))
        return self.conv2(self.layer3(self.layer2(self.layer1(x))))


# ---- correlation ------------------------------------------------------------------------------


def correlation_volume(features1: Tensor, features2: Tensor) -> Tensor:
    """All-pairs correlation C[b, i, j, k, l] = <g1[b, :, i, j], g2[b, :, k, l]> / sqrt(D).

    `(B, D, h, w)` twice -> `(B, h, w, h, w)`.
    """
    batch, depth, height, width = features1.shape
    first = features1.reshape(batch, depth, height * width).transpose(1, 2)
    second = features2.reshape(batch, depth, height * width)
    return torch.matmul(first, second).view(batch, height, width, height, width) / math.sqrt(depth)


def sample_bilinear(image: Tensor, points: Tensor) -> Tensor:
    """Bilinear samples of `image` `(N, C, H, W)` at pixel coordinates `points` `(N, P, Q, 2)` (x, y).

    Pixel centres sit at integer coordinates; outside the image the value is 0. Returns
    `(N, C, P, Q)`. (Normalised so that a one-pixel-wide image is handled too.)
    """
    height, width = image.shape[-2:]
    x = (2.0 * points[..., 0] + 1.0) / width - 1.0
    y = (2.0 * points[..., 1] + 1.0) / height - 1.0
    grid = torch.stack([x, y], dim=-1).to(image.dtype)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class CorrelationPyramid:
    """The correlation pyramid of two feature maps and its local lookup (module docstring).

    `features1`, `features2`: `(B, D, h, w)`.
    """

    def __init__(self, features1: Tensor, features2: Tensor, *, levels: int, radius: int) -> None:
        batch, _, height, width = features1.shape
        volume = correlation_volume(features1, features2).reshape(batch * height * width, 1, height, width)
        self.radius = radius
        self.levels = [volume]
        for _ in range(levels - 1):
            volume = F.avg_pool2d(volume, 2, stride=2)
            self.levels.append(volume)

    def offsets(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        """`(1, 2r+1, 2r+1, 2)`: entry [0, a, c] = (a - r, c - r), the x offset first (release order)."""
        steps = torch.arange(-self.radius, self.radius + 1, device=device, dtype=dtype)
        along_x, along_y = torch.meshgrid(steps, steps, indexing="ij")
        return torch.stack([along_x, along_y], dim=-1)[None]

    def lookup(self, coords: Tensor) -> Tensor:
        """Correlation features around `coords` `(B, 2, h, w)` -> `(B, L (2r+1)^2, h, w)`."""
        batch, _, height, width = coords.shape
        centres = coords.permute(0, 2, 3, 1).reshape(batch * height * width, 1, 1, 2)
        offsets = self.offsets(coords.device, coords.dtype)
        features = []
        for level, volume in enumerate(self.levels):
            sampled = sample_bilinear(volume, centres / 2**level + offsets)
            features.append(sampled.view(batch, height, width, -1))
        return torch.cat(features, dim=-1).permute(0, 3, 1, 2).contiguous()


# ---- update block ----------------------------------------------------------------------------------


class MotionEncoder(nn.Module):
    """Correlation `(B, L (2r+1)^2, h, w)` and flow `(B, 2, h, w)` -> `(B, motion_out, h, w)` (flow last)."""

    def __init__(self, config: RaftConfig) -> None:
        super().__init__()
        corr = config.motion_corr
        flow1, flow2 = config.motion_flow
        self.convc1 = nn.Conv2d(config.corr_channels, corr[0], 1)
        self.convc2 = nn.Conv2d(corr[0], corr[1], 3, padding=1) if len(corr) > 1 else None
        self.convf1 = nn.Conv2d(2, flow1, 7, padding=3)
        self.convf2 = nn.Conv2d(flow1, flow2, 3, padding=1)
        self.conv = nn.Conv2d(corr[-1] + flow2, config.motion_out - 2, 3, padding=1)

    def forward(self, flow: Tensor, corr: Tensor) -> Tensor:
        c = F.relu(self.convc1(corr))
        if self.convc2 is not None:
            c = F.relu(self.convc2(c))
        f = F.relu(self.convf2(F.relu(self.convf1(flow))))
        return torch.cat([F.relu(self.conv(torch.cat([c, f], dim=1))), flow], dim=1)


def _gru_step(hidden: Tensor, x: Tensor, convz: nn.Conv2d, convr: nn.Conv2d, convq: nn.Conv2d) -> Tensor:
    """h' = (1 - z) h + z q, z = σ(Wz [h, x]), r = σ(Wr [h, x]), q = tanh(Wq [r h, x])."""
    hx = torch.cat([hidden, x], dim=1)
    z = torch.sigmoid(convz(hx))
    r = torch.sigmoid(convr(hx))
    q = torch.tanh(convq(torch.cat([r * hidden, x], dim=1)))
    return (1 - z) * hidden + z * q


class ConvGRU(nn.Module):
    """3x3 convolutional GRU (small): hidden `(B, Ch, h, w)`, input `(B, Ci, h, w)` -> `(B, Ch, h, w)`."""

    def __init__(self, hidden_dim: int, input_dim: int) -> None:
        super().__init__()
        self.convz = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)
        self.convr = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)
        self.convq = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)

    def forward(self, hidden: Tensor, x: Tensor) -> Tensor:
        return _gru_step(hidden, x, self.convz, self.convr, self.convq)


class SepConvGRU(nn.Module):
    """Separable GRU (large): a 1x5 GRU step then a 5x1 one; shapes as `ConvGRU`."""

    def __init__(self, hidden_dim: int, input_dim: int) -> None:
        super().__init__()
        total = hidden_dim + input_dim
        self.convz1 = nn.Conv2d(total, hidden_dim, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(total, hidden_dim, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(total, hidden_dim, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(total, hidden_dim, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(total, hidden_dim, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(total, hidden_dim, (5, 1), padding=(2, 0))

    def forward(self, hidden: Tensor, x: Tensor) -> Tensor:
        hidden = _gru_step(hidden, x, self.convz1, self.convr1, self.convq1)
        return _gru_step(hidden, x, self.convz2, self.convr2, self.convq2)


class FlowHead(nn.Module):
    """Hidden state `(B, Ch, h, w)` -> flow update `(B, 2, h, w)`."""

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim, hidden_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_dim, 2, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class UpdateBlock(nn.Module):
    """One recurrent update: motion encoder, GRU, flow head and (large) upsampling mask."""

    def __init__(self, config: RaftConfig) -> None:
        super().__init__()
        self.encoder = MotionEncoder(config)
        gru = SepConvGRU if config.separable_gru else ConvGRU
        self.gru = gru(config.hidden_dim, config.motion_out + config.context_dim)
        self.flow_head = FlowHead(config.hidden_dim, config.flow_head_hidden)
        self.mask = None
        if config.convex_upsampling:
            self.mask = nn.Sequential(
                nn.Conv2d(config.hidden_dim, 256, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(256, 64 * 9, 1)
            )

    def forward(self, hidden: Tensor, context: Tensor, corr: Tensor, flow: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """-> (hidden `(B, Ch, h, w)`, delta flow `(B, 2, h, w)`, mask logits `(B, 576, h, w)` or None)."""
        motion = self.encoder(flow, corr)
        hidden = self.gru(hidden, torch.cat([context, motion], dim=1))
        delta = self.flow_head(hidden)
        mask = None if self.mask is None else 0.25 * self.mask(hidden)
        return hidden, delta, mask


# ---- upsampling ------------------------------------------------------------------------------------


def convex_upsample(flow: Tensor, mask: Tensor) -> Tensor:
    """Convex 8x upsampling (module docstring): flow `(B, 2, h, w)`, mask `(B, 576, h, w)` -> `(B, 2, 8h, 8w)`."""
    batch, _, height, width = flow.shape
    weights = torch.softmax(mask.view(batch, 1, 9, 8, 8, height, width), dim=2)
    neighbours = F.unfold(8 * flow, kernel_size=3, padding=1).view(batch, 2, 9, 1, 1, height, width)
    fine = (weights * neighbours).sum(dim=2)  # (B, 2, 8 [row s], 8 [col t], h, w)
    return fine.permute(0, 1, 4, 2, 5, 3).reshape(batch, 2, 8 * height, 8 * width)


def bilinear_upsample(flow: Tensor) -> Tensor:
    """8 x bilinear interpolation (corners aligned, as released): `(B, 2, h, w)` -> `(B, 2, 8h, 8w)`."""
    height, width = flow.shape[-2:]
    return 8 * F.interpolate(flow, size=(8 * height, 8 * width), mode="bilinear", align_corners=True)


def coords_grid(batch: int, height: int, width: int, *, device: torch.device, dtype: torch.dtype) -> Tensor:
    """`(B, 2, h, w)` pixel coordinates (x, y) of every cell."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype), torch.arange(width, device=device, dtype=dtype), indexing="ij"
    )
    return torch.stack([xs, ys])[None].expand(batch, 2, height, width).clone()


# ---- the network ------------------------------------------------------------------------------------


class RAFT(nn.Module):
    """RAFT in configuration `config` ("large" or "small"); see the module docstring."""

    def __init__(self, config: str | RaftConfig = "large") -> None:
        super().__init__()
        self.config = get_config(config)
        cfg = self.config
        self.fnet = Encoder(cfg, output_dim=cfg.feature_dim, norm="instance")
        self.cnet = Encoder(cfg, output_dim=cfg.hidden_dim + cfg.context_dim, norm=cfg.context_norm)
        self.update_block = UpdateBlock(cfg)

    def forward(
        self, image1: Tensor, image2: Tensor, *, iterations: int = 12, flow_init: Tensor | None = None
    ) -> list[Tensor]:
        """Flow estimates after each of `iterations` updates, each `(B, 2, H, W)` (dx, dy).

        image1, image2: `(B, 3, H, W)` in [0, 255], H and W multiples of 8, at least
        `config.min_size`. flow_init: optional `(B, 2, H/8, W/8)` starting flow. Each estimate
        f satisfies image1(x) ≈ image2(x + f(x)) on image1's grid.
        """
        self._check_inputs(image1, image2, iterations)
        cfg = self.config
        first = 2.0 * (image1 / 255.0) - 1.0
        second = 2.0 * (image2 / 255.0) - 1.0
        features1, features2 = self.fnet(torch.cat([first, second], dim=0)).chunk(2, dim=0)
        pyramid = CorrelationPyramid(features1, features2, levels=cfg.corr_levels, radius=cfg.corr_radius)
        hidden, context = self.cnet(first).split([cfg.hidden_dim, cfg.context_dim], dim=1)
        hidden, context = torch.tanh(hidden), F.relu(context)
        batch, _, height, width = features1.shape
        coords0 = coords_grid(batch, height, width, device=first.device, dtype=first.dtype)
        coords1 = coords0.clone() if flow_init is None else coords0 + flow_init
        estimates = []
        for _ in range(iterations):
            coords1 = coords1.detach()
            flow = coords1 - coords0
            hidden, delta, mask = self.update_block(hidden, context, pyramid.lookup(coords1), flow)
            coords1 = coords1 + delta
            flow = coords1 - coords0
            estimates.append(bilinear_upsample(flow) if mask is None else convex_upsample(flow, mask))
        return estimates

    def _check_inputs(self, image1: Tensor, image2: Tensor, iterations: int) -> None:
        if image1.shape != image2.shape or image1.dim() != 4 or image1.shape[1] != 3:
            raise InputError(f"RAFT needs two (B, 3, H, W) images of one shape; got {tuple(image1.shape)} and {tuple(image2.shape)}")
        height, width = image1.shape[-2:]
        if height % 8 or width % 8 or min(height, width) < self.config.min_size:
            raise InputError(f"RAFT input sides must be multiples of 8 and at least {self.config.min_size}; got {height}x{width}")
        if iterations < 1:
            raise InputError(f"RAFT needs at least one iteration; got {iterations}")


def build_raft(
    config: str | RaftConfig = "large", *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> RAFT:
    """A freshly initialised RAFT (train mode) on `device` in `dtype`."""
    return RAFT(config).to(device=device, dtype=dtype)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- flow on grey frames -------------------------------------------------------------------------------


def _padding(height: int, width: int, minimum: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) replicate padding to multiples of 8 of at least `minimum`, centred."""
    target_h = max(minimum, -(-height // 8) * 8)
    target_w = max(minimum, -(-width // 8) * 8)
    pad_h, pad_w = target_h - height, target_w - width
    return pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2


def _model_place(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    parameter = next(model.parameters())
    return parameter.device, parameter.dtype


def _grey_batch(frames: np.ndarray, pad: tuple[int, int, int, int], device: torch.device, dtype: torch.dtype) -> Tensor:
    """`(N, H, W)` in [0, 1] -> `(N, 3, H', W')` in [0, 255], replicate-padded."""
    tensor = torch.as_tensor(np.ascontiguousarray(frames, dtype=np.float32), device=device)
    tensor = (tensor.clamp(0.0, 1.0) * 255.0).to(dtype)[:, None]
    return F.pad(tensor, pad, mode="replicate").expand(-1, 3, -1, -1)


def raft_flows(model: RAFT, first: np.ndarray, second: np.ndarray, *, iterations: int = 12) -> np.ndarray:
    """Flows f_n with first[n](x) ≈ second[n](x + f_n(x)) for grey frames.

    first, second: `(N, H, W)` float in [0, 1]. Returns `(N, H, W, 2)` float32 (dx, dy) on
    first's grid, the DIS convention. Runs on the model's device and dtype, without gradients,
    in the model's current mode (`load_raft` returns it in eval mode).
    """
    if first.shape != second.shape or first.ndim != 3:
        raise InputError(f"raft_flows needs two (N, H, W) frame stacks of one shape; got {first.shape} and {second.shape}")
    count, height, width = first.shape
    pad = _padding(height, width, model.config.min_size)
    device, dtype = _model_place(model)
    with torch.inference_mode():
        image1 = _grey_batch(first, pad, device, dtype)
        image2 = _grey_batch(second, pad, device, dtype)
        flow = model(image1, image2, iterations=iterations)[-1]
    left, _, top, _ = pad
    flow = flow[:, :, top : top + height, left : left + width]
    return flow.permute(0, 2, 3, 1).float().cpu().numpy().astype(np.float32)


def raft_flow(model: RAFT, first: np.ndarray, second: np.ndarray, *, iterations: int = 12) -> np.ndarray:
    """f `(H, W, 2)` float32 with first(x) ≈ second(x + f(x)); frames `(H, W)` float in [0, 1]."""
    if first.ndim != 2:
        raise InputError(f"raft_flow needs (H, W) frames; got shape {first.shape}")
    return raft_flows(model, first[None], second[None], iterations=iterations)[0]


# ---- state-dict layouts ------------------------------------------------------------------------------

_ENCODER_NAMES = {"fnet": "feature_encoder", "cnet": "context_encoder"}
_TORCHVISION_UPDATE = {
    "update_block.encoder.convc1.": "update_block.motion_encoder.convcorr1.0.",
    "update_block.encoder.convc2.": "update_block.motion_encoder.convcorr2.0.",
    "update_block.encoder.convf1.": "update_block.motion_encoder.convflow1.0.",
    "update_block.encoder.convf2.": "update_block.motion_encoder.convflow2.0.",
    "update_block.encoder.conv.": "update_block.motion_encoder.conv.0.",
    "update_block.flow_head.": "update_block.flow_head.",
    "update_block.mask.0.": "mask_predictor.convrelu.0.",
    "update_block.mask.2.": "mask_predictor.conv.",
}


def _torchvision_encoder_name(key: str) -> str:
    encoder, rest = key.split(".", 1)
    prefix = _ENCODER_NAMES[encoder]
    if match := re.fullmatch(r"(conv1|norm1|conv2)\.(\w+)", rest):
        part = {"conv1": "convnormrelu.0", "norm1": "convnormrelu.1", "conv2": "conv"}[match[1]]
        return f"{prefix}.{part}.{match[2]}"
    if match := re.fullmatch(r"(layer\d\.\d)\.(conv|norm)(\d)\.(\w+)", rest):
        index = 0 if match[2] == "conv" else 1
        return f"{prefix}.{match[1]}.convnormrelu{match[3]}.{index}.{match[4]}"
    if re.fullmatch(r"layer\d\.\d\.downsample\.[01]\.\w+", rest):
        return f"{prefix}.{rest}"
    raise KeyError(key)


def _torchvision_name(key: str) -> str:
    """torchvision's name for our state-dict key `key`."""
    if key.split(".", 1)[0] in _ENCODER_NAMES:
        return _torchvision_encoder_name(key)
    if match := re.fullmatch(r"update_block\.gru\.conv([zrq])([12]?)\.(\w+)", key):
        return f"update_block.recurrent_block.convgru{match[2] or '1'}.conv{match[1]}.{match[3]}"
    for ours, theirs in _TORCHVISION_UPDATE.items():
        if key.startswith(ours):
            return theirs + key[len(ours) :]
    raise KeyError(key)


def _authors_aliases(config: RaftConfig, keys: list[str]) -> dict[str, str]:
    """Extra keys of the release: a strided block's shortcut norm is also registered as
    norm3 (residual) or norm4 (bottleneck), so it is stored twice. alias -> our key."""
    alias = "norm3" if config.block == "residual" else "norm4"
    out = {}
    for key in keys:
        if match := re.fullmatch(r"(\wnet\.layer\d\.\d)\.downsample\.1\.(\w+)", key):
            out[f"{match[1]}.{alias}.{match[2]}"] = key
    return out


def foreign_names(config: str | RaftConfig, *, source: str) -> dict[str, str]:
    """{our key: its name in `source` ("authors" without the "module." prefix, or "torchvision")}."""
    keys = list(_template(get_config(config)))
    if source == "authors":
        return {key: key for key in keys}
    if source == "torchvision":
        return {key: _torchvision_name(key) for key in keys}
    raise InputError(f"unknown RAFT weights layout {source!r}; choose one of {', '.join(SOURCES)}")


@functools.lru_cache(maxsize=4)
def _template(config: RaftConfig) -> dict[str, torch.Size]:
    """Our state-dict keys and shapes for `config` (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = RAFT(config)
    return {key: value.shape for key, value in model.state_dict().items()}


def _unwrap(state: Any) -> dict[str, Tensor]:
    if isinstance(state, Mapping):
        for key in ("state_dict", "model"):
            if key in state and isinstance(state[key], Mapping):
                state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise InputError("RAFT weights must be a state dict (a mapping of names to tensors)")
    return dict(state)


def detect_source(state: Mapping[str, Tensor]) -> str:
    """"authors" (also angioseg's own files) or "torchvision", from the key names."""
    keys = list(state)
    if any(k.startswith("feature_encoder.") for k in keys):
        return "torchvision"
    if any(k.startswith(("fnet.", "module.fnet.")) for k in keys):
        return "authors"
    raise InputError("RAFT weights have neither the authors' keys (fnet.*) nor torchvision's (feature_encoder.*)")


def detect_config(state: Mapping[str, Tensor], *, source: str) -> str:
    """"large" or "small", from the width of the feature encoder's stem."""
    key = "feature_encoder.convnormrelu.0.weight" if source == "torchvision" else "fnet.conv1.weight"
    if key not in state:
        raise InputError(f"RAFT {source} weights lack key {key!r}; cannot tell large from small")
    stems = {cfg.widths[0]: name for name, cfg in CONFIGS.items()}
    width = int(state[key].shape[0])
    if width not in stems:
        raise InputError(f"RAFT weights key {key!r} has {width} channels; expected 64 (large) or 32 (small)")
    return stems[width]


def convert_state_dict(state: Mapping[str, Any], *, source: str = "auto", config: str = "auto") -> dict[str, Tensor]:
    """Our state dict from the authors' release, torchvision's port or angioseg's own file.

    source: "authors" (keys like ``module.update_block.gru.convz1.weight``, the prefix
    optional), "torchvision" (``update_block.recurrent_block.convgru1.convz.weight``) or
    "auto". config: "large", "small" or "auto" (from the feature encoder's width). A
    missing key, an unexpected key or a wrong shape is an InputError naming the key; only
    batch norm's `num_batches_tracked` counters may be missing (they are set to 0).
    """
    state = _unwrap(state)
    source = detect_source(state) if source == "auto" else source
    if source not in SOURCES:
        raise InputError(f"unknown RAFT weights layout {source!r}; choose one of {', '.join(SOURCES)}")
    prefix = "module." if source == "authors" and all(k.startswith("module.") for k in state) else ""
    state = {key[len(prefix) :]: value for key, value in state.items()}
    cfg = get_config(detect_config(state, source=source) if config == "auto" else config)
    template = _template(cfg)
    names = foreign_names(cfg, source=source)
    out = {key: _take(state, names[key], shape, prefix=prefix, source=source) for key, shape in template.items()}
    aliases = _authors_aliases(cfg, list(template)) if source == "authors" else {}
    unexpected = sorted(set(state) - set(names.values()) - set(aliases))
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise InputError(f"RAFT {source} weights hold unexpected key {prefix + unexpected[0]!r}{more} for RAFT-{cfg.name}")
    return out


def _take(state: dict[str, Tensor], name: str, shape: torch.Size, *, prefix: str, source: str) -> Tensor:
    if name not in state:
        if name.endswith("num_batches_tracked"):
            return torch.zeros((), dtype=torch.long)
        raise InputError(f"RAFT {source} weights lack key {prefix + name!r}")
    tensor = state[name]
    if tensor.shape != shape:
        raise InputError(f"RAFT {source} weights key {prefix + name!r} has shape {tuple(tensor.shape)}; expected {tuple(shape)}")
    return tensor


# ---- files ----------------------------------------------------------------------------------------------


def read_state_file(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """(state dict, safetensors metadata or {}) of a `.safetensors` or `.pth` / `.pt` file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"RAFT weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                return {key: handle.get_tensor(key) for key in handle.keys()}, dict(handle.metadata() or {})
        except (SafetensorError, OSError) as error:
            raise InputError(f"{path} is not a readable safetensors file ({error})") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad input file
        raise InputError(f"{path} is not a PyTorch state dict readable with weights_only=True ({type(error).__name__})") from None
    return _unwrap(state), {}


def load_raft(
    path: str | Path,
    *,
    config: str = "auto",
    source: str = "auto",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> RAFT:
    """RAFT with the weights at `path` (authors' `.pth`, torchvision's `.pth` or angioseg's
    `.safetensors`), in eval mode on `device` in `dtype`. config "auto": from the file's
    metadata, else from the weights' shapes."""
    state, metadata = read_state_file(path)
    if config == "auto" and metadata.get("config") in CONFIGS:
        config = metadata["config"]
    try:
        converted = convert_state_dict(state, source=source, config=config)
    except InputError as error:
        raise InputError(f"{path}: {error}") from None
    model = RAFT(detect_config(converted, source="authors"))
    model.load_state_dict(converted, strict=True)
    return model.to(device=device, dtype=dtype).eval()


def save_raft(model: RAFT, path: str | Path, *, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write `model`'s weights to `path` as safetensors (atomically); metadata values become
    strings (non-strings as JSON), with the format name and configuration added."""
    from safetensors.torch import save_file

    from angioseg.io.atomic import atomic_file

    state = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()}
    extra = {key: value if isinstance(value, str) else json.dumps(value, default=str) for key, value in (metadata or {}).items()}
    info = {**extra, "format": WEIGHTS_FORMAT, "config": model.config.name}
    with atomic_file(path) as tmp:
        save_file(state, str(tmp), metadata=info)
    return Path(path)
