"""CE-Net (Gu et al., "CE-Net: Context Encoder Network for 2D Medical Image Segmentation",
IEEE TMI 2019), the backbone of the sequence CE-Net and of the 3D-2D CE-Net papers.

Written from the paper and its public definition (no code copied):

* encoder: ResNet-34 (`angioseg.nn.resnet`), features e1..e4 at strides 4, 8, 16, 32;
* context extractor on e4: a Dense Atrous Convolution block (`DACBlock`) then Residual
  Multi-kernel Pooling (`RMPBlock`, C -> C + 4 channels);
* decoder: four `DecoderBlock` (1×1 conv, 3×3 transposed conv stride 2, 1×1 conv, each with
  norm + ReLU), with additive skips ``d4 = dec4(rmp(dac(e4))) + e3``, ``d3 = dec3(d4) + e2``,
  ``d2 = dec2(d3) + e1``, ``d1 = dec1(d2)``;
* head: 4×4 transposed conv stride 2 (C1 -> 32·w), ReLU, 3×3 conv, ReLU, 3×3 conv -> logits at
  the input resolution (the public model ends with a sigmoid; here the logits are returned).

Any input size runs: `CENet.forward` reflect-pads H and W up to a multiple of 32 (bottom/right)
and crops the logits back, so a 300×300 or 97×131 frame gives a 300×300 or 97×131 map.

Export (the route to ONNX): every op is a plain convolution, transposed convolution, max-pool,
bilinear resize with an explicit size, pad, concat, add, ReLU or normalisation, nothing is done
in place on an input, and ``torch.export.export`` succeeds (tested) for `forward` with a
dynamic batch at a fixed H, W. For dynamic H, W export `forward_padded` with sizes ``32·k``,
``k ≥ 12`` (then no RMP map is 1×1), and pad and crop outside the graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from angioseg.errors import InputError
from angioseg.nn.layers import check_input, check_norm, init_weights, make_norm, pad_to_multiple, scaled_channels
from angioseg.nn.resnet import ResNetEncoder

#: H and W are padded to a multiple of this (the encoder's total stride).
SIZE_MULTIPLE = 32


class DACBlock(nn.Module):
    """Dense Atrous Convolution block on C channels (C -> C, same size).

    Three 3×3 convolutions C -> C with dilation 1, 3 and 5 (``dilate1``, ``dilate2``,
    ``dilate3``; padding = dilation) and one 1×1 convolution C -> C (``conv1x1``) are shared by
    four cascade branches of growing receptive field (3, 7, 9 and 19 pixels)::

        branch1 = relu(dilate1(x))
        branch2 = relu(conv1x1(dilate2(x)))
        branch3 = relu(conv1x1(dilate2(dilate1(x))))
        branch4 = relu(conv1x1(dilate3(dilate2(dilate1(x)))))
        out     = x + branch1 + branch2 + branch3 + branch4

    All biases start at zero. Shapes: ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dilate1 = nn.Conv2d(channels, channels, 3, dilation=1, padding=1)
        self.dilate2 = nn.Conv2d(channels, channels, 3, dilation=3, padding=3)
        self.dilate3 = nn.Conv2d(channels, channels, 3, dilation=5, padding=5)
        self.conv1x1 = nn.Conv2d(channels, channels, 1)
        init_weights(self)  # He weights, zero biases

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four branch outputs, each ``(B, C, H, W)``."""
        d1 = self.dilate1(x)
        d21 = self.dilate2(d1)
        return [
            F.relu(d1),
            F.relu(self.conv1x1(self.dilate2(x))),
            F.relu(self.conv1x1(d21)),
            F.relu(self.conv1x1(self.dilate3(d21))),
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b2, b3, b4 = self.branches(x)
        return x + b1 + b2 + b3 + b4


class RMPBlock(nn.Module):
    """Residual Multi-kernel Pooling on C channels (C -> C + 4, same size).

    Max-pooling with kernel = stride = 2, 3, 5 and 6, ONE 1×1 convolution C -> 1 (``conv``,
    shared by the four pooled maps), bilinear upsampling back to the input size
    (``align_corners=False``, explicit output size), then ``cat([m2, m3, m5, m6, x])``.

    Where the map is smaller than a kernel (inputs under 192 pixels reach the context extractor
    at under 6 pixels), that kernel is clamped to the map size (a global max along that axis)
    instead of failing; at 192 px and above the block is exactly the published one.

    Shapes: ``(B, C, H, W) -> (B, C + 4, H, W)``.
    """

    kernels = (2, 3, 5, 6)

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1)

    def pooled_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four upsampled one-channel maps, each ``(B, 1, H, W)``."""
        h, w = x.shape[-2], x.shape[-1]
        maps = []
        for k in self.kernels:
            # clamp only known (eager) sizes; symbolic sizes under torch.export keep the kernel
            kh = min(k, h) if isinstance(h, int) else k
            kw = min(k, w) if isinstance(w, int) else k
            pooled = F.max_pool2d(x, kernel_size=(kh, kw), stride=(kh, kw))
            maps.append(F.interpolate(self.conv(pooled), size=(h, w), mode="bilinear", align_corners=False))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([*self.pooled_maps(x), x], dim=1)


class DecoderBlock(nn.Module):
    """CE-Net decoder block: doubles H and W.

    1×1 conv ``in -> in // 4`` + norm + ReLU, 3×3 transposed conv stride 2 (padding 1, output
    padding 1) ``in // 4 -> in // 4`` + norm + ReLU, 1×1 conv ``in // 4 -> out`` + norm + ReLU.

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, 2H, 2W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, norm: str = "batch") -> None:
        super().__init__()
        mid = max(1, in_channels // 4)
        self.conv1 = nn.Conv2d(in_channels, mid, 1)
        self.norm1 = make_norm(norm, mid)
        self.deconv2 = nn.ConvTranspose2d(mid, mid, 3, stride=2, padding=1, output_padding=1)
        self.norm2 = make_norm(norm, mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1)
        self.norm3 = make_norm(norm, out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.norm1(self.conv1(x)))
        x = self.relu(self.norm2(self.deconv2(x)))
        return self.relu(self.norm3(self.conv3(x)))


class CENet(nn.Module):
    """CE-Net: ResNet encoder + DAC + RMP + decoder + head (see the module docstring).

    Args (keyword-only):
        in_channels: input channels (1 for grey frames).
        num_classes: output logit channels (1 for vessel/background with a sigmoid).
        encoder: ``"resnet34"`` (the paper) or ``"resnet18"``.
        width: channel multiplier, 1.0 (``"paper"``) or ``"lite"`` (`angioseg.nn.layers.LITE_WIDTH`)
            or any positive number; every channel count is rounded to a multiple of 8 (≥ 8).
        norm: ``"batch"`` (the CE-Net paper) or ``"instance"`` (the 3D-2D paper).
        stem: optional replacement for the encoder stem (see `ResNetEncoder`); used by
            `angioseg.nn.cenet3d2d.CENet3D2D`.

    ``forward(x)``: ``(B, in_channels, H, W)`` float -> ``(B, num_classes, H, W)`` logits, any
    H, W ≥ 1 (reflect-padded to a multiple of 32 inside, output cropped back).
    `forward_padded` is the same without the padding, for inputs already a multiple of 32.
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        num_classes: int = 1,
        encoder: str = "resnet34",
        width: float | str = 1.0,
        norm: str = "batch",
        stem: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise InputError(f"num_classes must be a positive integer, not {num_classes!r}")
        check_norm(norm)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.encoder = ResNetEncoder(depth=encoder, in_channels=in_channels, width=width, norm=norm, stem=stem)  # type: ignore[arg-type]
        _, c1, c2, c3, c4 = self.encoder.channels
        self.dac = DACBlock(c4)
        self.rmp = RMPBlock(c4)
        self.decoder4 = DecoderBlock(c4 + 4, c3, norm=norm)
        self.decoder3 = DecoderBlock(c3, c2, norm=norm)
        self.decoder2 = DecoderBlock(c2, c1, norm=norm)
        self.decoder1 = DecoderBlock(c1, c1, norm=norm)
        head = scaled_channels(32, width)
        self.final_deconv = nn.ConvTranspose2d(c1, head, 4, stride=2, padding=1)
        self.final_conv2 = nn.Conv2d(head, head, 3, padding=1)
        self.final_conv3 = nn.Conv2d(head, num_classes, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        for module in (self.rmp, self.decoder4, self.decoder3, self.decoder2, self.decoder1):
            init_weights(module)
        for module in (self.final_deconv, self.final_conv2, self.final_conv3):
            init_weights(module)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` with H, W multiples of 32 -> ``(B, num_classes, H, W)`` logits."""
        _, e1, e2, e3, e4 = self.encoder(x)
        e4 = self.rmp(self.dac(e4))
        d4 = self.decoder4(e4) + e3
        d3 = self.decoder3(d4) + e2
        d2 = self.decoder2(d3) + e1
        d1 = self.decoder1(d2)
        y = self.relu(self.final_deconv(d1))
        y = self.relu(self.final_conv2(y))
        return self.final_conv3(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, "CENet")
        h, w = x.shape[-2], x.shape[-1]
        y = self.forward_padded(pad_to_multiple(x, SIZE_MULTIPLE))
        return y[..., :h, :w]
