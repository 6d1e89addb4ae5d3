"""ResNet-18/34/50 encoders (He et al. 2016) for grey-level images, written from the paper.

The encoder is the one CE-Net uses: the stem (7×7 convolution with stride 2, normalisation,
ReLU), a 3×3 max-pool with stride 2, and four stages of BasicBlocks (two 3×3 convolutions with
an identity or 1×1-projection shortcut), the first block of stages 2-4 striding by 2.

    feature  stride  channels at width 1  produced by
    -------  ------  -------------------  -----------------------------------
    stem     2       64                   conv7×7 s2 + norm + ReLU
    layer1   4       64                   max-pool 3×3 s2 + 3 (2) BasicBlocks
    layer2   8       128                  4 (2) BasicBlocks, the first strided
    layer3   16      256                  6 (2) BasicBlocks, the first strided
    layer4   32      512                  3 (2) BasicBlocks, the first strided

(block counts for ResNet-34, ResNet-18 in brackets). ResNet-50 has 3, 4, 6, 3 Bottleneck
blocks (1×1 reduce, 3×3, 1×1 expand by 4, the stride on the 3×3), so its stages put out 4× the
channels above (256, 512, 1024, 2048). ``width`` scales every channel count
(`scaled_channels`: rounded to a multiple of 8, at least 8). ``stages`` < 4 stops early: the
memory networks (`angioseg.nn.fsvos`) drop the last stage and read stride-16 features. Weights start from He
initialisation; there are no ImageNet weights here (none can be downloaded in this project).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from angioseg.errors import InputError
from angioseg.nn.layers import check_input, check_norm, init_weights, make_norm, scaled_channels

BLOCKS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
    "resnet50": (3, 4, 6, 3),
}
#: Output channels of a stage relative to its base width (Bottleneck blocks expand by 4).
EXPANSION = {"resnet18": 1, "resnet34": 1, "resnet50": 4}
BASE_CHANNELS = (64, 128, 256, 512)

EncoderName = Literal["resnet18", "resnet34", "resnet50"]


def residual_shortcut(in_channels: int, out_channels: int, *, stride: int, norm: str) -> nn.Module:
    """A residual block's shortcut: the identity, or a 1×1 convolution with the block's stride +
    norm where the channel count or the resolution changes (keys ``shortcut.0``/``.1``)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), make_norm(norm, out_channels))


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual shortcut: ``relu(norm(conv(relu(norm(conv(x))))) + s(x))``.

    ``s`` is the identity, or a 1×1 convolution (with the block's stride) + norm when the
    channel count or the resolution changes.

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, norm: str = "batch") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = make_norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = make_norm(norm, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = residual_shortcut(in_channels, out_channels, stride=stride, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet-50's block: ``relu(norm(conv1x1(relu(norm(conv3x3_s(relu(norm(conv1x1(x)))))))) + s(x))``.

    The first 1×1 reduces to ``out_channels / 4``, the 3×3 carries the stride, the last 1×1
    expands back to ``out_channels``; ``s`` as in `BasicBlock`.

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, norm: str = "batch") -> None:
        super().__init__()
        inner = max(8, out_channels // 4)
        self.conv1 = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.norm1 = make_norm(norm, inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=stride, padding=1, bias=False)
        self.norm2 = make_norm(norm, inner)
        self.conv3 = nn.Conv2d(inner, out_channels, 1, bias=False)
        self.norm3 = make_norm(norm, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = residual_shortcut(in_channels, out_channels, stride=stride, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        y = self.norm3(self.conv3(y))
        return self.relu(y + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """ResNet-18/34 feature extractor returning the five feature maps of a U-shaped network.

    Args (keyword-only):
        depth: ``"resnet34"`` (blocks 3, 4, 6, 3), ``"resnet18"`` (2, 2, 2, 2) or ``"resnet50"``
            (Bottleneck blocks 3, 4, 6, 3; stage channels × 4).
        in_channels: 1 for grey-level frames (3 allowed, e.g. to compare with RGB models).
        width: channel multiplier (1.0 = the paper's 64, 128, 256, 512), or ``"lite"``/``"paper"``.
        norm: ``"batch"`` or ``"instance"`` (``InstanceNorm2d(affine=True)``).
        stem: optional replacement for the stem (conv7×7 s2 + norm + ReLU). It must map the
            input ``(B, C_in, H, W)`` to ``(B, channels[0], H/2, W/2)``; the encoder's max-pool
            and the four stages follow unchanged. The 3D-2D CE-Net uses it (see `cenet3d2d`).
            ``in_channels`` is then only recorded, not used.
        stages: how many of the four stages to build (1-4); the output list then ends with
            the last built stage (e.g. 3: stem, layer1, layer2, layer3 at stride 16).

    Attributes:
        channels: channel counts of the five features ``(stem, layer1, layer2, layer3, layer4)``.
        strides: ``(2, 4, 8, 16, 32)``.

    ``forward(x)``: ``x`` is ``(B, C_in, H, W)`` with H, W multiples of 32 (callers pad; see
    `angioseg.nn.layers.pad_to_multiple`); returns ``[stem (B, c0, H/2, W/2), layer1 (B, c1, H/4,
    W/4), layer2 (B, c2, H/8, W/8), layer3 (B, c3, H/16, W/16), layer4 (B, c4, H/32, W/32)]``.
    Other sizes run too; each stride-2 step then rounds up.
    """

    strides = (2, 4, 8, 16, 32)

    def __init__(
        self,
        *,
        depth: EncoderName = "resnet34",
        in_channels: int = 1,
        width: float | str = 1.0,
        norm: str = "batch",
        stem: nn.Module | None = None,
        stages: int = 4,
    ) -> None:
        super().__init__()
        if depth not in BLOCKS:
            raise InputError(f"encoder must be one of {', '.join(BLOCKS)}, not {depth!r}")
        if stages not in (1, 2, 3, 4):
            raise InputError(f"stages must be 1, 2, 3 or 4, not {stages!r}")
        if not isinstance(in_channels, int) or in_channels < 1:
            raise InputError(f"in_channels must be a positive integer, not {in_channels!r}")
        check_norm(norm)
        expansion = EXPANSION[depth]
        stem_width = scaled_channels(BASE_CHANNELS[0], width)
        widths = [scaled_channels(c, width) * expansion for c in BASE_CHANNELS][:stages]
        block: type[nn.Module] = Bottleneck if expansion > 1 else BasicBlock
        self.depth = depth
        self.num_stages = stages
        self.in_channels = in_channels
        self.norm_kind = norm
        self.blocks_per_stage = BLOCKS[depth][:stages]
        self.channels: tuple[int, ...] = (stem_width, *widths)
        self.strides = (2, 4, 8, 16, 32)[: stages + 1]
        self.custom_stem = stem is not None
        if stem is None:
            stem = nn.Sequential(
                nn.Conv2d(in_channels, stem_width, 7, stride=2, padding=3, bias=False),
                make_norm(norm, stem_width),
                nn.ReLU(inplace=True),
            )
        self.stem = stem
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        previous = stem_width
        for index, (count, channels) in enumerate(zip(self.blocks_per_stage, widths)):
            stride = 1 if index == 0 else 2
            blocks = [block(previous, channels, stride=stride, norm=norm)]
            blocks += [block(channels, channels, norm=norm) for _ in range(count - 1)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
            previous = channels
        init_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if not self.custom_stem:
            check_input(x, self.in_channels, "ResNetEncoder")
        s = self.stem(x)
        features = [s]
        y = self.maxpool(s)
        for index in range(self.num_stages):
            y = getattr(self, f"layer{index + 1}")(y)
            features.append(y)
        return features


def resnet18_encoder(*, in_channels: int = 1, width: float | str = 1.0, norm: str = "batch") -> ResNetEncoder:
    """ResNet-18 encoder (BasicBlocks 2, 2, 2, 2); see `ResNetEncoder`."""
    return ResNetEncoder(depth="resnet18", in_channels=in_channels, width=width, norm=norm)


def resnet50_encoder(*, in_channels: int = 1, width: float | str = 1.0, norm: str = "batch", stages: int = 4) -> ResNetEncoder:
    """ResNet-50 encoder (Bottleneck blocks 3, 4, 6, 3); see `ResNetEncoder`."""
    return ResNetEncoder(depth="resnet50", in_channels=in_channels, width=width, norm=norm, stages=stages)


def resnet34_encoder(*, in_channels: int = 1, width: float | str = 1.0, norm: str = "batch") -> ResNetEncoder:
    """ResNet-34 encoder (BasicBlocks 3, 4, 6, 3); see `ResNetEncoder`."""
    return ResNetEncoder(depth="resnet34", in_channels=in_channels, width=width, norm=norm)
