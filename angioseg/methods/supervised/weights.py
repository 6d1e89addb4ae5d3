"""Model specifications and safetensors weights (no unpickling, no network).

A weights file stores the network's state dict and, as safetensors metadata (strings), the
architecture, its options, the clip radius, and how it was trained (command, data, steps,
validation Dice). `load_model(path)` rebuilds the network from the file alone.
"""

from __future__ import annotations

import importlib.resources
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from angioseg.errors import InputError
from angioseg.io.atomic import atomic_file
from angioseg.nn import build_model

def weights_dir() -> Path:
    """The folder of the shipped weights, inside the installed package (`importlib.resources`:
    found from a wheel install as from a checkout)."""
    return Path(str(importlib.resources.files("angioseg").joinpath("weights")))


@dataclass(frozen=True)
class ModelSpec:
    """What a named model is: architecture, its options and the clip radius N it reads.

    radius 0 = one frame in, 2-D; radius N = a clip of 2N + 1 frames centred on the target.
    """

    architecture: str
    options: dict[str, Any] = field(default_factory=dict)
    radius: int = 0

    def build(self) -> nn.Module:
        return build_model(self.architecture, **self.options)


#: The models `angioseg train` knows, by name. "lite" widths are made for CPUs.
MODEL_SPECS: dict[str, ModelSpec] = {
    "unet": ModelSpec("unet", {"base": 16}),
    "cenet": ModelSpec("cenet", {"width": "lite", "norm": "batch"}),
    # Twice the lite width (4x the multiply-adds): the quality candidate of issue 13.
    "cenet-wide": ModelSpec("cenet", {"width": 0.25, "norm": "batch"}),
    # The same network trained on ARCADE's major segments ("syntax" labels): `cenet:style=syntax`.
    "cenet-syntax": ModelSpec("cenet", {"width": "lite", "norm": "batch"}),
    "cenet3d2d-n1": ModelSpec("cenet3d2d", {"width": "lite", "temporal_radius": 1}, radius=1),
    "cenet3d2d-n2": ModelSpec("cenet3d2d", {"width": "lite", "temporal_radius": 2}, radius=2),
}


def get_spec(name: str) -> ModelSpec:
    if name not in MODEL_SPECS:
        raise InputError(f"unknown model {name!r}; choose one of {', '.join(MODEL_SPECS)}")
    return MODEL_SPECS[name]


def save_weights(model: nn.Module, spec: ModelSpec, path: str | Path, *, info: dict[str, Any]) -> Path:
    """Write `model`'s state dict and its description to `path` (safetensors, atomic)."""
    state = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()}
    metadata = {
        "architecture": spec.architecture,
        "options": json.dumps(spec.options),
        "radius": str(spec.radius),
        "info": json.dumps(info, default=str),
    }
    with atomic_file(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return Path(path)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The description stored in a weights file: architecture, options, radius, info."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise InputError(f"{path} is not a readable safetensors weights file ({error})") from None
    if "architecture" not in raw:
        raise InputError(f"{path} has no architecture in its metadata; it was not written by angioseg")
    return {
        "architecture": raw["architecture"],
        "options": json.loads(raw.get("options", "{}")),
        "radius": int(raw.get("radius", "0")),
        "info": json.loads(raw.get("info", "{}")),
    }


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelSpec, dict[str, Any]]:
    """Rebuild the network stored at `path`; returns (model in eval mode, spec, info)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights file {path} does not exist")
    meta = read_metadata(path)
    spec = ModelSpec(meta["architecture"], meta["options"], meta["radius"])
    model = spec.build()
    try:
        state = load_file(str(path), device="cpu")
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError) as error:
        raise InputError(f"{path} does not fit a {spec.architecture} with options {spec.options}: {str(error).splitlines()[0]}") from None
    return model.to(device).eval(), spec, meta["info"]


def shipped_weights(name: str) -> Path:
    """Path of the weights shipped for model `name` (InputError when not shipped)."""
    path = weights_dir() / f"{name}.safetensors"
    if not path.is_file():
        raise InputError(f"no shipped weights for model {name!r} (looked for {path.name} in the package); train them with 'angioseg train {name}'")
    return path


#: Label styles: "all" = every contrast-filled vessel (DCA1, XCAD, DeNVeR's XACV); "syntax" =
#: ARCADE's major SYNTAX segments only.
LABEL_STYLES = ("all", "syntax")


def label_style(info: dict[str, Any]) -> str:
    """The label style a weights file was trained for: its config's ``label_style``; weights
    written before styles were recorded learned from ARCADE major-segment pseudo-videos (with
    phantoms), hence "syntax"."""
    style = info.get("config", {}).get("label_style")
    return style if style in LABEL_STYLES else "syntax"
