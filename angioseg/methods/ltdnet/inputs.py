"""From a DSA run to DSA-LTDNet's inputs and back: resizing, the per-sample input images, and
the prediction on a run's key frame at the run's own resolution.

Every frame is resized to ``size × size`` (256 in the paper; aspect ratio not kept, as the paper
resizes its 1021 × 788 runs to 256²) with area averaging (`cv2.INTER_AREA`), and the motion
images are computed on the resized frames (`angioseg.methods.ltdnet.keyframe`). Masks become
*soft* targets at that size: the share of each network pixel the structure covers (area
averaging of the binary mask), so a tumour smaller than a network pixel still counts. Predicted
logits are resized back to the run's size bilinearly before the sigmoid and the threshold.

Input scaling: frames stay in the `Video` units [0, 1]; FD and BS are differences in those
units; optical flow is in network pixels divided by `InputSpec.flow_scale` (8) so that it is of
order one like the other inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
import torch

from angioseg.errors import InputError
from angioseg.methods.ltdnet.keyframe import (
    BACKGROUND_FRAMES,
    DEFAULT_STEP,
    background_subtraction,
    flow_between,
    frame_difference,
    tdl_window,
)
from angioseg.nn.ltdnet import LTDNet, LTDNetConfig


@dataclass(frozen=True)
class InputSpec:
    """How a run becomes network inputs (stored in the weights file).

    Attributes:
        size: the square network size (256 in the paper).
        frame_step: s of FD = F_k − F_{k−s} (9 in the paper); also the OF's frame gap.
        background_frames: n of BS = F_k − median(F_0 .. F_{n−1}).
        flow_scale: optical flow (network pixels) is divided by this.
    """

    size: int = 256
    frame_step: int = DEFAULT_STEP
    background_frames: int = BACKGROUND_FRAMES
    flow_scale: float = 8.0

    def __post_init__(self) -> None:
        for name in ("size", "frame_step", "background_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, not {value!r}")
        if not self.flow_scale > 0:
            raise InputError(f"flow_scale must be positive, not {self.flow_scale!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "InputSpec":
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """`(T, H, W)` -> `(T, size, size)` float32, area averaging (bilinear where enlarging)."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.shape[1:] == (size, size):
        return frames.copy()
    shrink = frames.shape[1] >= size and frames.shape[2] >= size
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interpolation) for f in frames]).astype(np.float32)


def soft_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """`(H, W)` bool -> `(size, size)` float32 in [0, 1]: the share of each network pixel covered."""
    return np.clip(resize_frames(np.asarray(mask, np.float32)[None], size)[0], 0.0, 1.0)


def sample_inputs(frames: np.ndarray, key: int, *, config: LTDNetConfig, spec: InputSpec,
                  background: np.ndarray | None = None, flow: np.ndarray | None = None,
                  with_fd: bool = False) -> dict[str, np.ndarray]:
    """The inputs of one sample whose "key frame" is `key`, from resized frames `(T, S, S)`.

    Args:
        frames: the run (or a slice of it holding every frame needed) at network size.
        key: the sample's frame index in `frames`.
        config: which inputs the network reads.
        spec: frame step, background frames, flow scale.
        background: the BS background `(S, S)` when `frames` is a slice that lacks the run's
            first frames (the median of the run's first n frames); None: from `frames`.
        flow: the precomputed OF `(2, S, S)` (already divided by the flow scale); None: DIS now.
        with_fd: also return ``"fd"``, the TDL's target.
    Returns:
        float32 arrays: ``"key" (1, S, S)``; ``"window" (10, S, S)`` (motion tdl); ``"motion"
        (C, S, S)`` (fd, bs, of); ``"fd" (1, S, S)`` (with_fd).
    """
    out = {"key": np.asarray(frames[key], np.float32)[None]}
    if config.motion == "tdl":
        out["window"] = np.asarray(tdl_window(frames, key, count=config.tdl_frames), np.float32)
    elif config.motion == "fd":
        out["motion"] = frame_difference(frames, key, spec.frame_step)[None]
    elif config.motion == "bs":
        if background is None:
            out["motion"] = background_subtraction(frames, key, background_frames=spec.background_frames)[None]
        else:
            out["motion"] = (np.asarray(frames[key], np.float32) - background)[None].astype(np.float32)
    elif config.motion == "of":
        out["motion"] = flow if flow is not None else flow_between(frames, key, spec.frame_step) / np.float32(spec.flow_scale)
    if with_fd:
        out["fd"] = frame_difference(frames, key, spec.frame_step)[None]
    return out


def to_batch(samples: list[dict[str, np.ndarray]], device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Stack per-sample arrays into ``(B, C, S, S)`` float32 tensors, key by key."""
    return {name: torch.from_numpy(np.stack([np.asarray(s[name], np.float32) for s in samples])).to(device)
            for name in samples[0]}


def run_network(net: LTDNet, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`net` on a batch from `to_batch` (the names match `LTDNet.forward`'s arguments)."""
    return net(batch["key"], window=batch.get("window"), motion=batch.get("motion"))


@torch.inference_mode()
def predict_key_frame(net: LTDNet, frames: np.ndarray, key: int, *, spec: InputSpec,
                      device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """Tumour (and liver) probabilities on the key frame of a run, at the run's resolution.

    Args:
        net: the network, in eval mode, on `device`.
        frames: the run, `(T, H, W)` float in [0, 1].
        key: the key frame's index.
    Returns:
        ``"tumour"`` `(H, W)` float32 in [0, 1]; ``"liver"`` likewise for networks with LRS;
        ``"td"`` the learned temporal difference at network size `(S, S)` (TDL networks).
    """
    frames = np.asarray(frames, np.float32)
    height, width = frames.shape[1:]
    small = resize_frames(frames, spec.size)
    inputs = sample_inputs(small, key, config=net.config, spec=spec)
    outputs = run_network(net, to_batch([inputs], device))
    result: dict[str, np.ndarray] = {}
    for name in ("tumour", "liver"):
        if name in outputs:
            logits = outputs[name][0, 0].float().cpu().numpy()
            logits = cv2.resize(logits, (width, height), interpolation=cv2.INTER_LINEAR)
            result[name] = (1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))).astype(np.float32)
    if "td" in outputs:
        result["td"] = outputs["td"][0, 0].float().cpu().numpy()
    return result
