"""The segmenter interface every method implements, and the registry that names them.

A method is a class with `segment(video, *, prompt=None) -> Segmentation`. It is created by
`angioseg.methods.get(name, **options)`; device and dtype are options like any other.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from angioseg.errors import InputError
from angioseg.options import parse_spec
from angioseg.types import LabelMap, Video


@dataclass
class Segmentation:
    """What a method returns for one video.

    Attributes:
        masks: `(T, H, W)` integer labels with their label table.
        probabilities: `(T, H, W)` float32 foreground probability in [0, 1] (for AUROC/AUPRC
            and for post-steps such as the temporal filter).
        timings: seconds spent per phase (at least "total").
        options: the options the method ran with (device, thresholds...), for reports.
    """

    masks: LabelMap
    probabilities: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        probabilities = np.asarray(self.probabilities, dtype=np.float32)
        if probabilities.shape != self.masks.labels.shape:
            raise ValueError(f"probabilities {probabilities.shape} do not match masks {self.masks.labels.shape}")
        self.probabilities = probabilities

    @property
    def label_table(self) -> dict[int, str]:
        return self.masks.label_table

    @property
    def frames_per_second(self) -> float | None:
        total = self.timings.get("total")
        return self.masks.num_frames / total if total else None


class Segmenter(abc.ABC):
    """Base class: subclasses set `name`, `description`, and implement `_segment`.

    `segment` validates the input, times the call and records the options.
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

    def segment(self, video: Video, *, prompt: LabelMap | None = None) -> Segmentation:
        """Segment every frame of `video`; `prompt` is a labelled frame for one-shot methods."""
        if self.needs_prompt and prompt is None:
            raise InputError(f"method {self.name!r} needs a labelled frame as prompt")
        start = time.perf_counter()
        result = self._segment(video, prompt=prompt)
        result.timings.setdefault("total", time.perf_counter() - start)
        result.options = {"method": self.name, **self.options(), **result.options}
        return result

    @abc.abstractmethod
    def _segment(self, video: Video, *, prompt: LabelMap | None) -> Segmentation:
        """Method-specific work; `segment` wraps it."""


_REGISTRY: dict[str, type[Segmenter]] = {}


def register(cls: type[Segmenter]) -> type[Segmenter]:
    """Class decorator adding a segmenter to the registry under `cls.name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def get(name: str, **options: Any) -> Segmenter:
    """Create the method `name` with `options` (device, dtype and method-specific ones)."""
    _load_builtin_methods()
    if name not in _REGISTRY:
        raise InputError(f"unknown method {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    try:
        return _REGISTRY[name](**options)
    except TypeError as error:
        raise InputError(f"bad options for method {name!r}: {error}") from None


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

    for module in ("angioseg.methods.vesselness", "angioseg.methods.supervised.segmenters", "angioseg.methods.denver.segmenter"):
        importlib.import_module(module)


def temporal_filter(probabilities: np.ndarray, *, radius: int = 1, weights: np.ndarray | None = None) -> np.ndarray:
    """The sequence CE-Net paper's temporal filter, Eq. (1): f(n, k) = sum_{l=-K}^{K} h(l) g(n, k - l).

    Args:
        probabilities: `(T, H, W)` per-frame maps g.
        radius: K; the filter spans 2K + 1 frames.
        weights: h(l) for l = -K..K (2K + 1 values); default h(l) = 1 / (2K + 1).

    At the ends of the run the first and last frames are repeated (g(k) = g(0) for k < 0 and
    g(k) = g(T-1) for k >= T), so every output frame is a full weighted average and a constant
    video stays constant.

    Returns:
        `(T, H, W)` float32 filtered maps.
    """
    g = np.asarray(probabilities, dtype=np.float32)
    if g.ndim != 3:
        raise InputError(f"temporal filter needs (T, H, W) maps; got shape {g.shape}")
    if radius < 0:
        raise InputError(f"temporal filter radius must be >= 0; got {radius}")
    h = np.full(2 * radius + 1, 1.0 / (2 * radius + 1)) if weights is None else np.asarray(weights, dtype=np.float64)
    if h.shape != (2 * radius + 1,):
        raise InputError(f"temporal filter needs {2 * radius + 1} weights for K = {radius}; got {h.shape[0]}")
    count = g.shape[0]
    frame_index = np.arange(count)
    out = np.zeros_like(g)
    for offset, weight in zip(range(-radius, radius + 1), h):
        source = np.clip(frame_index - offset, 0, count - 1)  # f(k) += h(l) g(k - l)
        out += np.float32(weight) * g[source]
    return out
