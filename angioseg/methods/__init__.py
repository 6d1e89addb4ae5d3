"""Segmentation methods behind one interface: `get(name, **options).segment(video)`.

One folder (or module) per system; no method imports another method's module. What methods
share lives below them: `angioseg.postprocess` (temporal filters, connected components,
label maps from probabilities), `angioseg.warp`, `angioseg.vessel`, `angioseg.flow`, `angioseg.nn`.
"""

from angioseg.methods.base import (
    FrameResult,
    Segmentation,
    Segmenter,
    StreamingSegmenter,
    available,
    get,
    get_from_spec,
    method_class,
    parse_method_spec,
    register,
)
from angioseg.types import Prompt

__all__ = [
    "FrameResult",
    "Prompt",
    "Segmentation",
    "Segmenter",
    "StreamingSegmenter",
    "available",
    "get",
    "get_from_spec",
    "method_class",
    "parse_method_spec",
    "register",
]
