"""Supervised segmenters behind the common interface: U-Net, CE-Net, sequence CE-Net and
3D-2D CE-Net, running the weights shipped in `angioseg/weights/` (or any `weights=` file).

U-Net and CE-Net see one frame at a time and are streaming methods (`reset` / `step`;
`segment` batches `batch` frames per forward pass through the same per-frame path). The
sequence CE-Net filters over past and future frames and the 3D-2D CE-Net reads a clip centred
on each frame, so both see the whole run.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import torch

from angioseg.errors import InputError
from angioseg.methods.base import FrameResult, Segmentation, Segmenter, StreamingSegmenter, register
from angioseg.methods.supervised.inference import predict_probabilities
from angioseg.methods.supervised.onnx_backend import OnnxModel
from angioseg.methods.supervised.weights import load_model, shipped_weights, weights_dir
from angioseg.nn import fold_for_inference
from angioseg.nn.layers import to_channels_last
from angioseg.postprocess import motion_compensated_filter, temporal_filter
from angioseg.types import LabelMap, Prompt, Video, vessel_labels


class NetworkSegmenter(Segmenter):
    """A trained network applied to every frame (or every clip) of the run.

    Options: `weights` (a safetensors file; default the shipped one), `batch` (frames per
    forward pass), `threshold` on the vessel probability, `device`, and `backend`: "torch"
    (any device) or "onnx" (the same network exported to ONNX and run by ONNX Runtime on the
    CPU; see `benchmarks/inference.py` for which is faster here), and `fold`: run the 3D-2D
    model with its input layers folded into one convolution (`angioseg.nn.FoldedCENet3D2D`,
    the same logits to float rounding; default on).
    """

    weights_name: ClassVar[str] = ""

    def __init__(self, *, device: str = "cpu", dtype: str = "float32", weights: str | None = None,
                 batch: int = 4, threshold: float = 0.5, backend: str = "torch", fold: bool = True, flip_average: bool = False) -> None:
        super().__init__(device=device, dtype=dtype)
        if not isinstance(flip_average, bool):
            raise InputError(f"flip_average must be true or false; got {flip_average!r}")
        self.flip_average = flip_average
        if backend not in ("torch", "onnx"):
            raise InputError(f"backend must be 'torch' or 'onnx'; got {backend!r}")
        if backend == "onnx" and torch.device(device).type != "cpu":
            raise InputError(f"backend 'onnx' runs on the CPU only; got device {device!r}")
        if batch < 1:
            raise InputError(f"batch must be >= 1; got {batch}")
        if dtype != "float32":
            raise InputError(f"method {self.name!r} runs in float32 only; got dtype {dtype!r}")
        if not 0.0 < threshold < 1.0:
            raise InputError(f"threshold must lie in (0, 1); got {threshold}")
        self.weights_path = weights or str(shipped_weights(self.weights_name))
        self.batch = int(batch)
        self.threshold = float(threshold)
        model, self.spec, self.training_info = load_model(self.weights_path, device=device)
        self.fold = bool(fold)
        self.model = fold_for_inference(model) if self.fold else model  # same logits, faster (3D-2D)
        self.backend = backend
        self.runner = OnnxModel.from_torch(self.model, self.spec) if backend == "onnx" else self.model
        to_channels_last(self.model)  # with channels-last inputs: 2-3x faster on CPU

    @classmethod
    def is_ready(cls) -> bool:
        return (weights_dir() / f"{cls.default_weights_name()}.safetensors").is_file()

    @classmethod
    def default_weights_name(cls) -> str:
        return cls.weights_name

    @classmethod
    def shipped_label_style(cls) -> str:
        """The label style its shipped weights were trained for ("all" or "syntax")."""
        from angioseg.methods.supervised.weights import label_style, read_metadata

        return label_style(read_metadata(weights_dir() / f"{cls.default_weights_name()}.safetensors")["info"])

    def options(self) -> dict[str, Any]:
        from angioseg.methods.supervised.weights import label_style

        return {**super().options(), "weights": self.weights_path, "batch": self.batch, "threshold": self.threshold, "backend": self.backend,
                "fold": self.fold, "flip_average": self.flip_average, "label_style": label_style(self.training_info)}

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """`(T, H, W)` float32 vessel probability of every frame of `(T, H, W)` frames; with
        `flip_average`, the mean of the frames' and their left-right mirror images'
        probabilities (test-time augmentation: two forward passes)."""
        def run(images: np.ndarray) -> np.ndarray:
            return predict_probabilities(self.runner, self.spec, images, batch=self.batch, device=self.device,
                                         channels_last=self.backend == "torch")

        probabilities = run(frames)
        if self.flip_average:
            mirrored = run(np.ascontiguousarray(frames[:, :, ::-1]))[:, :, ::-1]
            probabilities = 0.5 * (probabilities + mirrored)
        return probabilities

    def _segment(self, video: Video, *, prompts: tuple[Prompt, ...]) -> Segmentation:
        start = time.perf_counter()
        probabilities = self.probabilities(video.frames)
        timings = {"network": time.perf_counter() - start}
        probabilities = self.post_process(probabilities, video, timings)
        labels = (probabilities >= self.threshold).astype(np.uint8)
        return Segmentation(LabelMap(labels, vessel_labels()), probabilities, timings, threshold=self.threshold)

    def post_process(self, probabilities: np.ndarray, video: Video, timings: dict[str, float]) -> np.ndarray:
        return probabilities


class FrameNetworkSegmenter(StreamingSegmenter, NetworkSegmenter):
    """A per-frame network as a streaming method: `step` runs one frame, `segment` runs
    `batch` frames per forward pass through `_step_batch` (the same masks; batching is faster)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.step_batch_size = self.batch

    def label_table(self, prompts: tuple[Prompt, ...]) -> dict[int, str]:
        return vessel_labels()

    def _reset(self, *, height: int, width: int, label_table: dict[int, str], fps: float | None) -> None:
        if label_table != vessel_labels():
            raise InputError(f"method {self.name!r} segments vessels only; its label table is {vessel_labels()}")

    def _step(self, frame: np.ndarray, *, mask: np.ndarray | None) -> FrameResult:
        return self._step_batch(frame[None])[0]

    def _step_batch(self, frames: np.ndarray) -> list[FrameResult]:
        foreground = self.probabilities(frames)
        labels = (foreground >= self.threshold).astype(np.uint8)
        return [FrameResult(label, np.stack([1.0 - p, p]), None) for label, p in zip(labels, foreground)]


@register
class UNetSegmenter(FrameNetworkSegmenter):
    name = "unet"
    description = "U-Net baseline, per frame (shipped weights, trained on phantoms + ARCADE pseudo-videos)"
    weights_name = "unet"


#: Shipped CE-Net weights by (label style, width): "all" (every contrast-filled vessel) or
#: "syntax" (ARCADE's major segments); "lite" (width 1/8) or "wide" (width 1/4, 4x the
#: multiply-adds).
CENET_WEIGHTS = {("all", "lite"): "cenet", ("all", "wide"): "cenet-wide", ("syntax", "lite"): "cenet-syntax"}
#: The width `cenet` and `seq-cenet` load when none is given.
DEFAULT_CENET_WIDTH = "wide"


def _cenet_weights(style: str, width: str) -> str:
    if (style, width) not in CENET_WEIGHTS:
        shipped = ", ".join(f"style={s},width={w}" for s, w in CENET_WEIGHTS)
        raise InputError(f"no shipped CE-Net weights for style={style},width={width}; shipped: {shipped}")
    return CENET_WEIGHTS[(style, width)]


@register
class CENetSegmenter(FrameNetworkSegmenter):
    """CE-Net per frame; `style` and `width` pick the shipped weights: style "all" (default,
    every vessel) or "syntax" (ARCADE's major segments), width "wide" (default for "all") or
    "lite" (the fastest)."""

    name = "cenet"
    description = "CE-Net (ResNet-34, DAC + RMP), per frame; style=all (default) or syntax, width=wide (default) or lite"
    weights_name = CENET_WEIGHTS[("all", DEFAULT_CENET_WIDTH)]

    def __init__(self, *, style: str = "all", width: str | None = None, **options: Any) -> None:
        self.width = width or (DEFAULT_CENET_WIDTH if style == "all" else "lite")
        self.weights_name = _cenet_weights(style, self.width)
        self.style = style
        super().__init__(**options)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "width": self.width}


@register
class SequenceCENetSegmenter(NetworkSegmenter):
    """CE-Net per frame, then the temporal filter over 2K+1 frames, plain (``motion="none"``,
    default) or along DIS motion (``motion="dis"``).

    Why plain by default (20 ARCADE val pseudo-videos, vessel label, contrast-filled frames;
    per-frame CE-Net: Dice 0.471, flicker 0.222): plain K = 1 gives Dice 0.475, flicker 0.173,
    along DIS motion 0.477 and 0.164; but DIS halves the speed (23-26 against about 55 frames/s
    at 512² on 2 cores) and keeps only 0.57-0.65 of it with one core busy
    (`benchmarks/segment.py --busy-core`).
    """

    name = "seq-cenet"
    description = "Sequence CE-Net: CE-Net per frame + temporal filter over 2K+1 frames (plain or motion-compensated)"
    weights_name = CENET_WEIGHTS[("all", DEFAULT_CENET_WIDTH)]

    def __init__(self, *, k: int = 1, motion: str = "none", style: str = "all", width: str | None = None,
                 **options: Any) -> None:
        self.width = width or (DEFAULT_CENET_WIDTH if style == "all" else "lite")
        self.weights_name = _cenet_weights(style, self.width)
        self.style = style
        if k < 0:
            raise InputError(f"k must be >= 0; got {k}")
        if motion not in ("none", "dis"):
            raise InputError(f"motion must be 'none' or 'dis'; got {motion!r}")
        super().__init__(**options)
        self.k = int(k)
        self.motion = motion

    def options(self) -> dict[str, Any]:
        return {**super().options(), "k": self.k, "motion": self.motion, "width": self.width}

    def post_process(self, probabilities: np.ndarray, video: Video, timings: dict[str, float]) -> np.ndarray:
        start = time.perf_counter()
        if self.motion == "none":
            filtered = temporal_filter(probabilities, radius=self.k)
        else:
            filtered = motion_compensated_filter(probabilities, video.frames, radius=self.k)
        timings["temporal_filter"] = time.perf_counter() - start
        return filtered


@register
class CENet3D2DSegmenter(NetworkSegmenter):
    """3D-2D CE-Net: a Conv3d over 2N+1 frames feeding CE-Net; the mask of the centre frame."""

    name = "cenet3d2d"
    description = "3D-2D CE-Net: Conv3d over 2N+1 frames into CE-Net (N = 2 default, N = 1 option)"

    def __init__(self, *, n: int = 2, **options: Any) -> None:
        if n not in (1, 2):
            raise InputError(f"n must be 1 or 2 (weights are shipped for both); got {n}")
        self.n = int(n)
        self.weights_name = f"cenet3d2d-n{n}"
        super().__init__(**options)

    @classmethod
    def default_weights_name(cls) -> str:
        return "cenet3d2d-n2"

    def options(self) -> dict[str, Any]:
        return {**super().options(), "n": self.n}
