"""Small building blocks shared by the networks: widths, normalisation, any-size padding.

Layer rule: this package imports only torch, numpy and `angioseg.errors`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from angioseg.errors import InputError

NormKind = Literal["batch", "instance"]

#: The width multiplier that ``width="lite"`` stands for (channels 8, 16, 32, 64 in the four
#: ResNet stages instead of 64, 128, 256, 512). Chosen by measurement on 2 CPU cores at 512²
#: (see `angioseg.nn.benchmark`): it keeps the 3D-2D CE-Net (N = 2) near 40 ms per frame.
LITE_WIDTH = 0.125

_NORMS = ("batch", "instance")


def resolve_width(width: float | str) -> float:
    """The numeric width multiplier: a positive float, or ``"lite"`` (`LITE_WIDTH`) or ``"paper"`` (1.0)."""
    if isinstance(width, str):
        if width == "lite":
            return LITE_WIDTH
        if width == "paper":
            return 1.0
        raise InputError(f"width must be a positive number, 'paper' or 'lite', not {width!r}")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise InputError(f"width must be a positive number, 'paper' or 'lite', not {width!r}")
    return float(width)


def scaled_channels(base: int, width: float | str) -> int:
    """``base * width`` rounded to the nearest multiple of 8, at least 8 (64 at width 1 stays 64)."""
    factor = resolve_width(width)
    return max(8, int(round(base * factor / 8.0)) * 8)


def check_norm(norm: str) -> NormKind:
    """Validate a normalisation name (``"batch"`` or ``"instance"``)."""
    if norm not in _NORMS:
        raise InputError(f"norm must be one of {', '.join(_NORMS)}, not {norm!r}")
    return norm  # type: ignore[return-value]


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d(channels, affine=True)`` with faster CPU paths; the same maths.

    Same parameters, state-dict keys and results (to float rounding) as the torch module —
    it *is* an ``nn.InstanceNorm2d``:

    * contiguous (NCHW) input: ``F.group_norm`` with one channel per group, about twice as
      fast as torch's instance norm on CPU;
    * channels-last input: the statistics come from ``torch.var_mean`` over the pixels of the
      NHWC view and the normalisation is one ``addcmul``, so the output stays channels-last.
      (torch's instance norm returns NCHW here, which makes every following layer convert;
      torch 2.13's channels-last group norm computes the variance in one pass and loses
      precision when the mean is large against the spread — errors of 1e-3 on unit-variance
      outputs where the mean is 6 standard deviations — so it is not used.)

    Modules tracking running statistics, or without affine parameters, use torch's code.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.track_running_stats or not self.affine or x.ndim != 4:
            return super().forward(x)
        if x.is_contiguous():
            return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)
        if x.is_contiguous(memory_format=torch.channels_last):
            b, c, h, w = x.shape
            pixels = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
            var, mean = torch.var_mean(pixels, dim=1, correction=0)  # (B, C) each
            scale = self.weight * torch.rsqrt(var + self.eps)
            shift = self.bias - mean * scale
            return torch.addcmul(shift[:, :, None, None], x, scale[:, :, None, None])
        return super().forward(x)


def make_norm(norm: str, channels: int) -> nn.Module:
    """``BatchNorm2d(channels)`` or an ``InstanceNorm2d(channels, affine=True)`` (see `InstanceNorm2d`).

    Instance norm keeps no running statistics, so it behaves the same in train and eval mode.
    """
    if check_norm(norm) == "batch":
        return nn.BatchNorm2d(channels)
    return InstanceNorm2d(channels, affine=True)


def init_weights(module: nn.Module) -> None:
    """He-normal (fan-out, ReLU) convolutions, zero biases, unit/zero norm affine parameters."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the last two dimensions at the bottom and right up to a multiple of ``multiple``.

    Args:
        x: ``(B, C, H, W)``.
    Returns:
        ``(B, C, H', W')`` with ``H' = ceil(H / multiple) * multiple`` (same for W); ``x`` itself
        when nothing is to be added. The padding mirrors the image (``reflect``: ``c b | a b c |
        b a``) so that no artificial edge is created; where a side is too small to mirror
        (padding ≥ its size, e.g. a 10-pixel-high input padded to 32) the border pixel is
        repeated instead (``replicate``). The original pixels keep their coordinates, so the
        caller crops the output with ``[..., :H, :W]``.

    With symbolic sizes (``torch.export`` with dynamic H, W) the padding is always applied,
    possibly of size 0, and always mirrors, so that no branch depends on the size.
    """
    h, w = x.shape[-2], x.shape[-1]
    ph = (-h) % multiple
    pw = (-w) % multiple
    if not (isinstance(h, int) and isinstance(w, int)):
        return F.pad(x, (0, pw, 0, ph), mode="reflect")
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def check_input(x: torch.Tensor, channels: int, what: str) -> None:
    """Raise `InputError` unless ``x`` is a floating ``(B, channels, H, W)`` tensor with H, W ≥ 1."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{what} expects a torch.Tensor, not {type(x).__name__}")
    if x.ndim != 4 or int(x.shape[1]) != channels:
        raise InputError(f"{what} expects a (B, {channels}, H, W) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InputError(f"{what} expects a floating-point tensor, got {x.dtype}")
    if x.shape[0] < 1 or x.shape[-2] < 1 or x.shape[-1] < 1:
        raise InputError(f"{what} got an empty tensor of shape {tuple(x.shape)}")


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store every 4-D parameter and buffer of ``model`` channels-last (NHWC), in place; returns ``model``.

    ``model.to(memory_format=torch.channels_last)`` refuses models holding a 5-D tensor (the
    3D-2D CE-Net's Conv3d weight); this converts the 4-D tensors and leaves the others. On CPU
    the full-resolution convolutions of the lite networks run 2-3 times faster channels-last;
    feed inputs made with ``x.contiguous(memory_format=torch.channels_last)`` as well.
    """
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.ndim == 4:
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return model
