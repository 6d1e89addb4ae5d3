"""DSA-LTDNet variants (the paper's Tables 1 and 2) and their safetensors weights.

A weights file stores the network's state dict and, as metadata (strings): ``architecture``
"ltdnet", ``config`` (`LTDNetConfig`, JSON), ``variant``, ``inputs`` (`InputSpec`: network size,
frame-difference step...) and ``info`` (the training record: config, data, steps, git commit).
`load_ltdnet(path)` rebuilds the network from the file alone.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from angioseg.errors import InputError
from angioseg.io.atomic import atomic_file
from angioseg.methods.ltdnet.inputs import InputSpec
from angioseg.nn.ltdnet import PAPER_LAMBDA_LRS, PAPER_LAMBDA_TDL, LTDNet, LTDNetConfig, base_channels

ARCHITECTURE = "ltdnet"
SHIPPED_NAME = "ltdnet.safetensors"
#: Weights files must stay small enough to ship in the package.
MAX_WEIGHTS_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Variant:
    """One row of the paper's tables: the network and how its losses are weighted.

    Attributes:
        name: the `angioseg train ltdnet --variant` name.
        backbone, motion, liver: the `LTDNetConfig` fields.
        lambda_tdl: λ0, the TDL's L1 weight in the joint loss (0: TDL unsupervised).
        lambda_lrs: λ1, the LRS loss weight.
        pretrain_tdl: whether the TDL is first trained alone against FD with L1.
        label: the row's name in the paper's tables.
        paper_dice: the paper's Dice (%) for this row (None where it has none).
    """

    name: str
    label: str
    backbone: str = "unet"
    motion: str = "none"
    liver: bool = False
    lambda_tdl: float = 0.0
    lambda_lrs: float = PAPER_LAMBDA_LRS
    pretrain_tdl: bool = False
    paper_dice: float | None = None

    def network(self, *, width: str | int = "lite", depth: int = 5) -> LTDNetConfig:
        return LTDNetConfig(backbone=self.backbone, motion=self.motion, liver=self.liver, base=base_channels(width), depth=depth)


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("unet", "U-Net (baseline)", paper_dice=70.75),
    Variant("attention-unet", "Attention U-Net", backbone="attention-unet", paper_dice=71.03),
    Variant("unet++", "U-Net++", backbone="unet++", paper_dice=70.73),
    Variant("ffs+of", "FFS, KF + OF", motion="of", paper_dice=68.35),
    Variant("ffs+fd", "FFS, KF + FD", motion="fd", paper_dice=71.73),
    Variant("ffs+bs", "FFS, KF + BS", motion="bs", paper_dice=68.89),
    Variant("ffs+tdl-nosup", "FFS, KF + TDL w/o supervision", motion="tdl", lambda_tdl=0.0, paper_dice=69.90),
    Variant("ffs+tdl", "FFS + TDL (KF + TDL w/ supervision)", motion="tdl", lambda_tdl=PAPER_LAMBDA_TDL,
            pretrain_tdl=True, paper_dice=72.32),
    Variant("ffs+lrs", "FFS + LRS", liver=True, paper_dice=72.01),
    Variant("ltdnet", "DSA-LTDNet", motion="tdl", liver=True, lambda_tdl=PAPER_LAMBDA_TDL, pretrain_tdl=True, paper_dice=73.68),
)}


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise InputError(f"unknown DSA-LTDNet variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name]


def shipped_ltdnet_weights() -> Path:
    """Where the shipped DSA-LTDNet weights live inside the installed package (may not exist)."""
    return Path(str(importlib.resources.files("angioseg").joinpath("weights", SHIPPED_NAME)))


def save_ltdnet(net: LTDNet, path: str | Path, *, variant: str, inputs: InputSpec, info: dict[str, Any]) -> Path:
    """Write the state dict and the description (module docstring) to `path`, atomically.

    InputError when the file would exceed `MAX_WEIGHTS_BYTES` (nothing is written then).
    """
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in net.state_dict().items()}
    size = sum(t.numel() * t.element_size() for t in state.values())
    if size > MAX_WEIGHTS_BYTES:
        raise InputError(f"the {variant} network holds {size / 2**20:.1f} MB of weights; at most "
                         f"{MAX_WEIGHTS_BYTES / 2**20:.0f} MB may be shipped: choose a smaller width")
    metadata = {"architecture": ARCHITECTURE, "config": net.config.to_json(), "variant": variant,
                "inputs": json.dumps(inputs.to_dict()), "info": json.dumps(info, default=str)}
    with atomic_file(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return Path(path)


@dataclass
class LoadedLTDNet:
    """A network read back: the model (eval mode), what it is, and its training record."""

    net: LTDNet
    variant: str
    inputs: InputSpec
    info: dict[str, Any]
    path: Path

    @property
    def config(self) -> LTDNetConfig:
        return self.net.config

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def load_ltdnet(path: str | Path, *, device: str | torch.device = "cpu") -> LoadedLTDNet:
    """The network stored at `path` (InputError, one line, for a missing or foreign file)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"DSA-LTDNet weights file {path} does not exist; train one with 'angioseg train ltdnet'")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("architecture") != ARCHITECTURE:
            raise InputError(f"{path} holds no DSA-LTDNet network (architecture {metadata.get('architecture')!r})")
        net = LTDNet(LTDNetConfig.from_dict(json.loads(metadata["config"])))
        net.load_state_dict(load_file(str(path), device="cpu"), strict=True)
        inputs = InputSpec.from_dict(json.loads(metadata.get("inputs", "{}")))
        info = json.loads(metadata.get("info", "{}"))
    except (SafetensorError, OSError, RuntimeError, KeyError, TypeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not a usable DSA-LTDNet weights file ({str(error).splitlines()[0]})") from None
    return LoadedLTDNet(net.to(device).eval(), metadata.get("variant", "?"), inputs, info, path)
