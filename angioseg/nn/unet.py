"""A compact U-Net (Ronneberger et al. 2015) baseline, written from the paper.

``depth`` resolution levels with ``base · 2^i`` channels (16, 32, 64, 128 at the defaults);
each level is two 3×3 convolutions + norm + ReLU ("double conv"); max-pool 2×2 going down,
2×2 transposed convolution going up, concatenated skips, a 1×1 convolution to the logits.
About 0.48 M parameters at ``base=16, depth=4``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from angioseg.errors import InputError
from angioseg.nn.layers import check_input, check_norm, init_weights, make_norm, pad_to_multiple


class DoubleConv(nn.Module):
    """(3×3 conv + norm + ReLU) × 2. Shapes: ``(B, in, H, W) -> (B, out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: str = "batch") -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            make_norm(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            make_norm(norm, out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UNet(nn.Module):
    """U-Net baseline.

    Args (keyword-only):
        in_channels: input channels (1 for grey frames).
        num_classes: output logit channels.
        base: channels of the first level (doubled at each level down).
        depth: number of resolution levels, ≥ 1 (``depth - 1`` poolings).
        norm: ``"batch"`` or ``"instance"``.

    ``forward(x)``: ``(B, in_channels, H, W)`` float -> ``(B, num_classes, H, W)`` logits for any
    H, W ≥ 1: reflect-padded (bottom/right) to a multiple of ``2^(depth-1)`` inside, cropped back.
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        num_classes: int = 1,
        base: int = 16,
        depth: int = 4,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("base", base), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, not {value!r}")
        check_norm(norm)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.size_multiple = 2 ** (depth - 1)
        channels = [base * 2**i for i in range(depth)]
        self.down = nn.ModuleList()
        previous = in_channels
        for c in channels:
            self.down.append(DoubleConv(previous, c, norm=norm))
            previous = c
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for c in reversed(channels[:-1]):
            self.up.append(nn.ConvTranspose2d(2 * c, c, 2, stride=2))
            self.merge.append(DoubleConv(2 * c, c, norm=norm))
        self.head = nn.Conv2d(channels[0], num_classes, 1)
        init_weights(self)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Padded input -> (deepest feature, the skips of the levels above it, finest first)."""
        skips = []
        y = x
        for index, block in enumerate(self.down):
            if index:
                y = F.max_pool2d(y, 2)
            y = block(y)
            skips.append(y)
        return skips.pop(), skips

    def merge_skip(self, level: int, y: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Decoder step `level` (0 = deepest): upsample `y`, concatenate the skip, convolve."""
        return self.merge[level](torch.cat([self.up[level](y), skip], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, type(self).__name__)
        h, w = x.shape[-2], x.shape[-1]
        y, skips = self.encode(pad_to_multiple(x, self.size_multiple))
        for level in range(len(self.up)):
            y = self.merge_skip(level, y, skips.pop())
        return self.head(y)[..., :h, :w]
