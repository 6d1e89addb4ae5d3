"""`fsvos`: label one frame, get every frame — the FSVOS memory network as a streaming method.

Per frame t (``step(frame)``):

1. the key encoder turns the frame into its key and skip features;
2. the key reads the memory (`angioseg.nn.matching`: by default a local 7 × 7 window of
   every memory frame around the query's own position; the best-matching key's position,
   Eq. 8-9, or global matching as options);
3. the decoder turns each object's readout into a logit, soft-aggregated into class
   probabilities ``(C, H, W)``; labels are the most probable class where the foreground
   probability reaches 0.5;
4. every r-th propagated frame (r = 1 by default: every frame) is added to the memory with
   its predicted probabilities as soft masks (`MemoryBank`: bounded, labelled frames
   permanent, the oldest other frame evicted first).

``step(frame, mask=labels)`` adds a labelled frame to the memory (permanent). `segment`
propagates **forward** from the first labelled frame to the end and **backward** from it to
frame 0, every labelled frame in memory for both sweeps.

Per-frame confidence: the mean probability margin (most probable class minus the second)
over the pixels where some object's probability exceeds 0.1 — the pixels where the method
has an opinion; 1 when there are none. A drifting propagation shows as falling confidence.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from angioseg.errors import InputError
from angioseg.methods.base import FrameResult, Segmentation, StreamingSegmenter, register
from angioseg.methods.fsvos.memory import EVICTION_POLICIES, MemoryBank
from angioseg.methods.fsvos.weights import load_fsvos, shipped_fsvos_weights
from angioseg.nn.matching import MatchingConfig
from angioseg.postprocess.labels import labels_from_probabilities, one_hot_probabilities
from angioseg.types import LabelMap, Prompt, Video

#: Pixels count towards the confidence where some object's probability exceeds this.
CONFIDENCE_SUPPORT = 0.1
MEMORY_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def probability_margin_confidence(probabilities: np.ndarray) -> float:
    """Mean (top-1 − top-2) class probability over pixels where an object's probability > 0.1
    (1.0 where there are none). ``probabilities``: ``(C, H, W)`` with C ≥ 2."""
    objects = probabilities[1:].max(axis=0)
    support = objects > CONFIDENCE_SUPPORT
    if not support.any():
        return 1.0
    ordered = np.sort(probabilities[:, support], axis=0)
    return float(np.clip((ordered[-1] - ordered[-2]).mean(), 0.0, 1.0))


@register
class FSVOSSegmenter(StreamingSegmenter):
    """One labelled frame -> every frame, by a space-time memory network with local matching."""

    name: ClassVar[str] = "fsvos"
    description: ClassVar[str] = "one labelled frame -> every frame: memory network with local matching (FSVOS)"
    needs_prompt: ClassVar[bool] = True
    threshold: float = 0.5

    def __init__(self, *, device: str = "cpu", dtype: str = "float32", weights: str | None = None,
                 window: int | None = 7, reference: str = "same", top_k: int | None = None,
                 matching: str = "auto", keyframe_every: int = 1, memory_frames: int = 8,
                 eviction: str = "oldest", memory_dtype: str = "float32", scale: float = 1.0) -> None:
        super().__init__(device=device, dtype=dtype)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0.25 <= float(scale) <= 4.0:
            raise InputError(f"scale must be a number from 0.25 to 4 (the network's input size over the frame's); got {scale!r}")
        self.scale = float(scale)
        if dtype != "float32":
            raise InputError(f"method 'fsvos' computes in float32; got dtype {dtype!r} (memory_dtype=float16 halves the memory)")
        if memory_dtype not in MEMORY_DTYPES:
            raise InputError(f"memory_dtype must be float32 or float16; got {memory_dtype!r}")
        if eviction not in EVICTION_POLICIES:
            raise InputError(f"eviction must be one of {', '.join(EVICTION_POLICIES)}; got {eviction!r}")
        window = None if window in (None, 0, "global", "none") else window
        self.matching = MatchingConfig(window=window, reference=reference, top_k=top_k, implementation=matching)  # type: ignore[arg-type]
        self.keyframe_every = keyframe_every
        self.memory_frames = memory_frames
        self.eviction = eviction
        self.memory_dtype = memory_dtype
        MemoryBank(capacity=memory_frames, keyframe_every=keyframe_every)  # validates both
        self.weights_path = str(weights) if weights else str(shipped_fsvos_weights())
        self.torch_device = torch.device(device)
        self.net, self.training_info = load_fsvos(self.weights_path, device=self.torch_device)
        self.memory: MemoryBank | None = None
        self._objects: list[int] = []

    @classmethod
    def is_ready(cls) -> bool:
        return shipped_fsvos_weights().is_file()

    def options(self) -> dict[str, Any]:
        return {**super().options(), "weights": self.weights_path, "window": self.matching.window,
                "reference": self.matching.reference, "top_k": self.matching.top_k,
                "matching": self.matching.implementation, "keyframe_every": self.keyframe_every,
                "memory_frames": self.memory_frames, "eviction": self.eviction, "memory_dtype": self.memory_dtype,
                "scale": self.scale}

    # ---- streaming ------------------------------------------------------------------------
    def _reset(self, *, height: int, width: int, label_table: dict[int, str], fps: float | None) -> None:
        self.memory = MemoryBank(capacity=self.memory_frames, keyframe_every=self.keyframe_every,
                                 eviction=self.eviction, storage_dtype=MEMORY_DTYPES[self.memory_dtype])
        self._objects = sorted(i for i in label_table if i != 0)
        if not self._objects:
            raise InputError("fsvos needs at least one object label (id > 0) in the label table")

    def _network_size(self) -> tuple[int, int]:
        height, width = self._shape or (1, 1)
        return max(16, round(height * self.scale)), max(16, round(width * self.scale))

    def _resized(self, image: np.ndarray, *, nearest: bool = False) -> np.ndarray:
        """`image` (H, W) at the network's size (`scale` × the frame's)."""
        height, width = self._network_size()
        if (height, width) == image.shape:
            return image
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)

    def _tensor(self, frame: np.ndarray) -> torch.Tensor:
        image = self._resized(np.ascontiguousarray(frame, dtype=np.float32))
        return torch.from_numpy(np.ascontiguousarray(image))[None, None].to(self.torch_device)

    def _remember(self, features: dict[str, torch.Tensor], object_masks: torch.Tensor, *, permanent: bool) -> None:
        """Add a frame with ``object_masks (1, O, H, W)`` in [0, 1] to the memory."""
        assert self.memory is not None
        values = self.net.encode_value(features, object_masks)
        self.memory.add(features["key"][0], values[0], frame=self._index, permanent=permanent)

    def _step(self, frame: np.ndarray, *, mask: np.ndarray | None) -> FrameResult:
        with torch.inference_mode():
            features = self.net.encode_key(self._tensor(frame))
            if mask is not None:
                masks = np.stack([self._resized((mask == obj).astype(np.float32)) for obj in self._objects])
                self._remember(features, torch.from_numpy(masks)[None].to(self.torch_device), permanent=True)
                return FrameResult(mask, np.zeros(0, np.float32), 1.0)  # replaced by `step` with the given mask
            if self.memory is None or not len(self.memory):
                raise InputError("fsvos: give a labelled frame (step(frame, mask=...)) before the first unlabelled one")
            keys, values = self.memory.stacked()
            logits, affinity = self.net.segment(features, keys, values, self.matching)
            probabilities = torch.softmax(logits, dim=1)
            if self.eviction == "usage":
                self.memory.record_usage(affinity)
            if self.memory.wants_keyframe():
                self._remember(features, probabilities[:, 1:], permanent=False)
        if self.scale != 1.0:
            probabilities = torch.nn.functional.interpolate(probabilities, size=self._shape, mode="bilinear", align_corners=False)
        class_probabilities = probabilities[0].cpu().numpy()
        labels = labels_from_probabilities(class_probabilities[None], self._label_table, threshold=self.threshold)[0]
        return FrameResult(labels, class_probabilities, probability_margin_confidence(class_probabilities))

    # ---- whole runs -----------------------------------------------------------------------
    def _sweep(self, video: Video, order: list[int], prompts: dict[int, np.ndarray], table: dict[int, str]) -> dict[int, FrameResult]:
        """Propagate along `order` (frame indices) with every prompt in memory first."""
        self.reset(height=video.height, width=video.width, label_table=table, fps=video.fps)
        for frame_index, labels in sorted(prompts.items()):
            self._index = frame_index
            self.step(video.frames[frame_index], mask=labels)
        results: dict[int, FrameResult] = {}
        for t in order:
            self._index = t
            if t in prompts:
                results[t] = FrameResult(prompts[t], np.zeros(0, np.float32), 1.0)
                continue
            results[t] = self.step(video.frames[t])
        return results

    def _segment(self, video: Video, *, prompts: tuple[Prompt, ...]) -> Segmentation:
        table = self.label_table(prompts)
        given = {one.frame: LabelMap(np.asarray(one.labels)[None], table).labels[0] for one in prompts}
        first = min(given)
        start = time.perf_counter()
        results = self._sweep(video, list(range(first, video.num_frames)), given, table)
        forward = time.perf_counter() - start
        if first > 0:
            results.update(self._sweep(video, list(range(first - 1, -1, -1)), given, table))
        labels = np.stack([results[t].labels for t in range(video.num_frames)])
        probabilities = np.stack([
            one_hot_probabilities(given[t], table) if t in given else results[t].probabilities
            for t in range(video.num_frames)
        ])
        confidence = np.asarray([results[t].confidence for t in range(video.num_frames)], dtype=np.float32)
        if probabilities.shape[1] == 2:
            probabilities = probabilities[:, 1]
        timings = {"forward": forward, "backward": time.perf_counter() - start - forward}
        return Segmentation(LabelMap(labels, table), probabilities, timings, threshold=self.threshold, confidence=confidence)
