"""FSVOS weights: safetensors with the architecture and the training record as metadata."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from angioseg.errors import InputError
from angioseg.io.atomic import atomic_file
from angioseg.nn.fsvos import FSVOSConfig, FSVOSNet

ARCHITECTURE = "fsvos"
SHIPPED_NAME = "fsvos.safetensors"


def shipped_fsvos_weights() -> Path:
    """Where the shipped FSVOS weights live inside the installed package."""
    return Path(str(importlib.resources.files("angioseg").joinpath("weights", SHIPPED_NAME)))


def save_fsvos(net: FSVOSNet, path: str | Path, *, info: dict[str, Any]) -> Path:
    """Write the network's state dict, its `FSVOSConfig` and `info` (training record), atomically."""
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in net.state_dict().items()}
    metadata = {"architecture": ARCHITECTURE, "config": json.dumps(net.config.to_dict()),
                "info": json.dumps(info, default=str)}
    with atomic_file(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return Path(path)


def load_fsvos(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[FSVOSNet, dict[str, Any]]:
    """The network stored at `path` (eval mode) and its training record."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"FSVOS weights file {path} does not exist; train one with 'python -m angioseg.methods.fsvos.training'")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("architecture") != ARCHITECTURE:
            raise InputError(f"{path} holds no FSVOS network (architecture {metadata.get('architecture')!r})")
        net = FSVOSNet(FSVOSConfig.from_dict(json.loads(metadata["config"])))
        net.load_state_dict(load_file(str(path), device="cpu"), strict=True)
    except (SafetensorError, OSError, RuntimeError, KeyError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not a usable FSVOS weights file ({str(error).splitlines()[0]})") from None
    return net.to(device).eval(), json.loads(metadata.get("info", "{}"))
