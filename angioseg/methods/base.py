"""The segmenter interface every method implements, and the registry that names them.

A method is a class with ``segment(video, *, prompt=None) -> Segmentation``, created by
``angioseg.methods.get(name, **options)``; device and dtype are options like any other, and
options are checked against the constructor's signature before it runs.

Two kinds of method:

- `Segmenter`: sees the whole run at once (`_segment`), e.g. a filter whose threshold is taken
  over the run, or a network that looks at future frames.
- `StreamingSegmenter`: processes a run frame by frame, as Cutie's ``InferenceCore.step()``:
  ``reset(...)`` once, then ``step(frame, *, mask=None)`` per frame, each returning that
  frame's `FrameResult`; `segment` is derived from them, so a UI or a live feed can drive the
  method frame by frame and get exactly what `segment` gives.

Probabilities are per class, `(T, C, H, W)`, channel c for the c-th id of the label table in
increasing order (channel 0 = background); the foreground map is Σ_{c≥1} P_c
(`angioseg.postprocess.labels`).
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from angioseg.errors import InputError
from angioseg.options import check_options, parse_spec
from angioseg.postprocess.labels import foreground_probability, one_hot_probabilities
from angioseg.types import LabelMap, Prompt, Video, as_prompts, vessel_labels

#: How far per-pixel class probabilities may sum away from 1 (float32 filters and resampling).
SUM_TOLERANCE = 1e-3


def _checked_probabilities(probabilities: np.ndarray, expected: tuple[int, ...], what: str) -> np.ndarray:
    """float32 `probabilities` of shape `expected`, finite and in [0, 1] (ValueError: a method bug)."""
    array = np.asarray(probabilities, dtype=np.float32)
    if array.shape != expected:
        raise ValueError(f"{what} {array.shape} do not match the expected {expected}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} hold NaN or infinite values")
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise ValueError(f"{what} must lie in [0, 1]; got [{array.min():.4g}, {array.max():.4g}]")
    return array


class Segmentation:
    """What a method returns for one run.

    Attributes:
        masks: `(T, H, W)` integer labels with their label table.
        class_probabilities: `(T, C, H, W)` float32 per-class probabilities (C = the table's
            size; channel order = ids in increasing order). For a two-label table it is stored
            as the foreground map and expanded on access, so binary methods cost no memory.
        probabilities: `(T, H, W)` float32 foreground probability Σ_{c≥1} P_c (AUROC/AUPRC,
            temporal filters).
        threshold: the foreground probability at which the method's masks begin.
        confidence: `(T,)` float32 per-frame confidence in [0, 1] where the method gives one
            (e.g. a propagation's), else None.
        timings: seconds per phase (at least "total" once `Segmenter.segment` returns).
        options: the options the method ran with, for reports.
    """

    def __init__(
        self,
        masks: LabelMap,
        probabilities: np.ndarray,
        timings: dict[str, float] | None = None,
        options: dict[str, Any] | None = None,
        *,
        threshold: float = 0.5,
        confidence: np.ndarray | None = None,
    ) -> None:
        """`probabilities`: `(T, C, H, W)` per class, or `(T, H, W)` foreground for a two-label table."""
        self.masks = masks
        shape = masks.labels.shape
        classes = len(masks.label_table)
        array = np.asarray(probabilities)
        if array.ndim == 3:
            if classes != 2:
                raise ValueError(f"a (T, H, W) foreground map needs a two-label table; this one has {classes} labels")
            self._foreground = _checked_probabilities(array, shape, "probabilities")
            self._classes = None
        else:
            self._classes = _checked_probabilities(array, (shape[0], classes, *shape[1:]), "class probabilities")
            sums = self._classes.sum(axis=1)
            if sums.size and float(np.abs(sums - 1.0).max()) > SUM_TOLERANCE:
                raise ValueError("class probabilities must sum to 1 at every pixel")
            self._foreground = foreground_probability(self._classes)
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must lie in (0, 1); got {threshold}")
        self.threshold = float(threshold)
        self.confidence = None if confidence is None else _checked_probabilities(confidence, (shape[0],), "confidence")
        self.timings: dict[str, float] = dict(timings or {})
        self.options: dict[str, Any] = dict(options or {})

    @property
    def probabilities(self) -> np.ndarray:
        return self._foreground

    @property
    def class_probabilities(self) -> np.ndarray:
        if self._classes is not None:
            return self._classes
        return np.stack([1.0 - self._foreground, self._foreground], axis=1)

    @property
    def label_table(self) -> dict[int, str]:
        return self.masks.label_table

    @property
    def num_frames(self) -> int:
        return self.masks.num_frames

    @property
    def frames_per_second(self) -> float | None:
        total = self.timings.get("total")
        return self.masks.num_frames / total if total else None

    def replace(self, **changes: Any) -> "Segmentation":
        """A new Segmentation with some of masks, probabilities, timings, options, threshold, confidence changed."""
        fields = {"masks": self.masks, "probabilities": self._classes if self._classes is not None else self._foreground,
                  "timings": self.timings, "options": self.options, "threshold": self.threshold, "confidence": self.confidence}
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"Segmentation has no field {sorted(unknown)}")
        fields.update(changes)
        masks, probabilities = fields.pop("masks"), fields.pop("probabilities")
        timings, options = fields.pop("timings"), fields.pop("options")
        return Segmentation(masks, probabilities, timings, options, **fields)


@dataclass
class FrameResult:
    """One frame's output of `StreamingSegmenter.step`.

    Attributes:
        labels: `(H, W)` integer label map.
        probabilities: `(C, H, W)` float32 per-class probabilities (channel order as `Segmentation`).
        confidence: the method's confidence in this frame, in [0, 1], or None.
    """

    labels: np.ndarray
    probabilities: np.ndarray
    confidence: float | None = None


class Segmenter(abc.ABC):
    """Base class: subclasses set `name`, `description`, and implement `_segment`.

    `segment` validates the input and prompt, times the call and records the options.
    `needs_prompt`: a one-shot method, which needs a labelled frame.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    needs_prompt: ClassVar[bool] = False

    def __init__(self, *, device: str = "cpu", dtype: str = "float32") -> None:
        self.device = device
        self.dtype = dtype

    @classmethod
    def is_ready(cls) -> bool:
        """Whether the method can run with its defaults here (e.g. its weights are shipped)."""
        return True

    def options(self) -> dict[str, Any]:
        """The options this segmenter runs with (reported in report.json)."""
        return {"device": self.device, "dtype": self.dtype}

    def segment(self, video: Video, *, prompt: Prompt | Sequence[Prompt] | None = None) -> Segmentation:
        """Segment every frame of `video`; `prompt`: labelled frame(s) for one-shot methods."""
        prompts = as_prompts(prompt)
        if self.needs_prompt and not prompts:
            raise InputError(f"method {self.name!r} needs a labelled frame as prompt")
        for one in prompts:
            one.check_matches(video)
        start = time.perf_counter()
        result = self._segment(video, prompts=prompts)
        result.timings.setdefault("total", time.perf_counter() - start)
        result.options = {"method": self.name, **self.options(), **result.options}
        return result

    @abc.abstractmethod
    def _segment(self, video: Video, *, prompts: tuple[Prompt, ...]) -> Segmentation:
        """Method-specific work on the whole run; `segment` wraps it."""


class StreamingSegmenter(Segmenter):
    """A method that processes a run frame by frame (module docstring).

    Subclasses implement `_reset` and `_step`, and set `threshold` (the foreground probability
    their masks begin at). `step(frame, mask=...)` takes a labelled frame: the method may
    remember it (a propagation method does), and that frame's result is the given mask.
    """

    threshold: float = 0.5
    #: Frames `segment` hands to `_step_batch` at once. Only a method whose result for a frame
    #: does not depend on the frames before it (a per-frame network) sets more than 1, to batch.
    step_batch_size: int = 1

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._shape: tuple[int, int] | None = None
        self._label_table: dict[int, str] = {}
        self._index = 0

    def label_table(self, prompts: tuple[Prompt, ...]) -> dict[int, str]:
        """The label table of the output: by default the union of the prompts' tables (the
        vessel table without prompts), or the method's own (override); every id a later
        `step(mask=...)` uses must be in it."""
        if not prompts:
            return vessel_labels()
        table: dict[int, str] = {0: "background"}
        for one in prompts:
            table.update(one.label_table)
        return table

    def reset(self, *, height: int, width: int, label_table: Mapping[int, str], fps: float | None = None) -> None:
        """Start a new run of `height` x `width` frames with output table `label_table`."""
        if height < 1 or width < 1:
            raise InputError(f"frames must have a positive size; got {height} x {width}")
        self._shape = (int(height), int(width))
        self._label_table = {int(k): str(v) for k, v in label_table.items()}
        self._index = 0
        self._reset(height=int(height), width=int(width), label_table=dict(self._label_table), fps=fps)

    def step(self, frame: np.ndarray, *, mask: np.ndarray | None = None) -> FrameResult:
        """The next frame `(H, W)` float in [0, 1] -> its result; `mask`: its `(H, W)` labels, if known."""
        if self._shape is None:
            raise InputError(f"{self.name}: call reset(...) before step(...)")
        image = np.asarray(frame, dtype=np.float32)
        if image.shape != self._shape:
            raise InputError(f"frame {self._index} is {image.shape}; this run's frames are {self._shape}")
        if mask is not None:
            mask = LabelMap(np.asarray(mask)[None], self._label_table).labels[0]
            if mask.shape != self._shape:
                raise InputError(f"mask of frame {self._index} is {mask.shape}; this run's frames are {self._shape}")
        result = self._step(image, mask=mask)
        if mask is not None:
            result = FrameResult(mask, one_hot_probabilities(mask, self._label_table), 1.0)
        self._index += 1
        return result

    def step_many(self, frames: np.ndarray) -> list[FrameResult]:
        """`step` on each of `(N, H, W)` frames without masks, in order (batched where the method allows)."""
        if self._shape is None:
            raise InputError(f"{self.name}: call reset(...) before step(...)")
        images = np.asarray(frames, dtype=np.float32)
        if images.ndim != 3 or images.shape[1:] != self._shape:
            raise InputError(f"frames {images.shape} do not match this run's (N, {self._shape[0]}, {self._shape[1]})")
        results = self._step_batch(images)
        self._index += len(images)
        return results

    def _segment(self, video: Video, *, prompts: tuple[Prompt, ...]) -> Segmentation:
        """`reset` + `step` over every frame, each prompt's labels given at its frame."""
        table = self.label_table(prompts)
        self.reset(height=video.height, width=video.width, label_table=table, fps=video.fps)
        given = {one.frame: one.labels for one in prompts}
        results: list[FrameResult] = []
        t = 0
        while t < video.num_frames:
            if t in given:
                results.append(self.step(video.frames[t], mask=given[t]))
                t += 1
                continue
            stop = min([video.num_frames, t + max(1, self.step_batch_size)] + [f for f in given if f > t])
            results.extend(self.step_many(video.frames[t:stop]))
            t = stop
        labels = np.stack([r.labels for r in results])
        probabilities = np.stack([r.probabilities for r in results])
        if probabilities.shape[1] == 2:
            probabilities = probabilities[:, 1]  # the foreground map is the whole information
        confidences = [r.confidence for r in results]
        confidence = None if any(c is None for c in confidences) else np.asarray(confidences, dtype=np.float32)
        return Segmentation(LabelMap(labels, table), probabilities, threshold=self.threshold, confidence=confidence)

    @abc.abstractmethod
    def _reset(self, *, height: int, width: int, label_table: dict[int, str], fps: float | None) -> None:
        """Forget the previous run; prepare for frames of this size."""

    @abc.abstractmethod
    def _step(self, frame: np.ndarray, *, mask: np.ndarray | None) -> FrameResult:
        """One frame `(H, W)` float32 -> its result (`mask`: its labels when known)."""

    def _step_batch(self, frames: np.ndarray) -> list[FrameResult]:
        """`(N, H, W)` consecutive frames without masks -> their results; by default `_step` on each."""
        return [self._step(frame, mask=None) for frame in frames]


_REGISTRY: dict[str, type[Segmenter]] = {}


def register(cls: type[Segmenter]) -> type[Segmenter]:
    """Class decorator adding a segmenter to the registry under `cls.name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def method_class(name: str) -> type[Segmenter]:
    """The registered class of method `name` (InputError naming the available ones)."""
    _load_builtin_methods()
    if name not in _REGISTRY:
        raise InputError(f"unknown method {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def get(name: str, **options: Any) -> Segmenter:
    """Create the method `name` with `options` (device, dtype and method-specific ones).

    Unknown options are a one-line InputError before the constructor runs; any other error
    inside the constructor is a bug and keeps its traceback.
    """
    cls = method_class(name)
    check_options(cls, options, kind="method", name=name)
    return cls(**options)


def parse_method_spec(text: str) -> tuple[str, dict[str, Any]]:
    """Split a method spec ``name`` or ``name:key=value,key=value`` into (name, options), e.g.
    ``seq-cenet:k=2,motion=none`` -> ("seq-cenet", {"k": 2, "motion": "none"}); see
    `angioseg.options.parse_spec`."""
    return parse_spec(text, kind="method")


def get_from_spec(text: str, **common: Any) -> Segmenter:
    """`get` for a method spec string (see `parse_method_spec`); `common` adds e.g. device."""
    name, options = parse_method_spec(text)
    return get(name, **{**common, **options})


def available(*, ready_only: bool = False) -> list[tuple[str, str]]:
    """(name, one-line description) of every registered method, sorted by name.

    With `ready_only`, only methods that can run with their defaults here (weights shipped).
    """
    _load_builtin_methods()
    return sorted((name, cls.description) for name, cls in _REGISTRY.items() if not ready_only or cls.is_ready())


def _load_builtin_methods() -> None:
    """Import the built-in method modules once (they register themselves)."""
    import importlib

    for module in ("angioseg.methods.vesselness", "angioseg.methods.supervised.segmenters", "angioseg.methods.denver.segmenter",
                   "angioseg.methods.flowprop", "angioseg.methods.fsvos.segmenter"):
        importlib.import_module(module)
