"""Segmentation networks written from their papers: U-Net, CE-Net, 3D-2D CE-Net.

``build_model(name, **options)`` creates one by name ("unet", "cenet", "cenet3d2d");
`count_parameters` counts its parameters. All take and return ``(B, C, H, W)`` float tensors
of any H, W (padded inside, cropped back) and return logits.

Layer rule: this package imports only torch, numpy and `angioseg.errors`.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from angioseg.errors import InputError
from angioseg.nn.cenet import CENet, DACBlock, DecoderBlock, RMPBlock
from angioseg.nn.cenet3d2d import (
    CENet3D2D,
    CentreSlice2D,
    FoldedCENet3D2D,
    FoldedInputLayer,
    centre_slice_2d_model,
    fold_for_inference,
    make_clips,
)
from angioseg.nn.layers import LITE_WIDTH, pad_to_multiple, resolve_width, scaled_channels
from angioseg.nn.losses import dice_loss
from angioseg.nn.resnet import BasicBlock, ResNetEncoder, resnet18_encoder, resnet34_encoder
from angioseg.nn.unet import UNet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "unet": UNet,
    "cenet": CENet,
    "cenet3d2d": CENet3D2D,
}


def build_model(name: str, **options: Any) -> nn.Module:
    """Create a network by name: ``"unet"`` (`UNet`), ``"cenet"`` (`CENet`), ``"cenet3d2d"``
    (`CENet3D2D`), with its keyword options (e.g. ``build_model("cenet", width="lite")``).

    Raises `InputError` for an unknown name or option.
    """
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    try:
        return MODELS[name](**options)
    except TypeError as error:
        raise InputError(f"bad options for model {name!r}: {error}") from error


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``model`` (each shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "FoldedCENet3D2D",
    "FoldedInputLayer",
    "fold_for_inference",
    "LITE_WIDTH",
    "MODELS",
    "BasicBlock",
    "CENet",
    "CENet3D2D",
    "CentreSlice2D",
    "DACBlock",
    "DecoderBlock",
    "RMPBlock",
    "ResNetEncoder",
    "UNet",
    "build_model",
    "centre_slice_2d_model",
    "count_parameters",
    "dice_loss",
    "make_clips",
    "pad_to_multiple",
    "resnet18_encoder",
    "resnet34_encoder",
    "resolve_width",
    "scaled_channels",
]
