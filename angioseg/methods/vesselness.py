"""Classical baseline: multiscale Hessian vesselness + threshold + region growing.

This is DeNVeR's preprocessing (its Sec. 3.1) and the baseline every paper compares to.
`variant="paper"` follows the paper (Otsu over the whole run, region growing);
`variant="public"` follows the authors' public code (percentile threshold, component tests).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from angioseg.methods.base import Segmentation, Segmenter, register
from angioseg.types import LabelMap, Prompt, Video, vessel_labels

#: The threshold reported for re-thresholding stays strictly inside (0, 1).
_EDGE = 1e-6


class HessianVesselness(Segmenter):
    """Vesselness filter `filter_name` over every frame, then DeNVeR's thresholding."""

    filter_name: ClassVar[str] = ""

    def __init__(self, *, device: str = "cpu", dtype: str = "float32", variant: str = "paper") -> None:
        super().__init__(device=device, dtype=dtype)
        self.variant = variant

    def options(self) -> dict[str, Any]:
        return {**super().options(), "filter": self.filter_name, "variant": self.variant}

    def _segment(self, video: Video, *, prompts: tuple[Prompt, ...]) -> Segmentation:
        from angioseg.vessel import vesselness_masks

        start = time.perf_counter()
        result = vesselness_masks(video.frames, filter=self.filter_name, variant=self.variant, device=self.device)
        labels = LabelMap(result.masks.astype("uint8"), vessel_labels())
        threshold = min(max(result.threshold, _EDGE), 1.0 - _EDGE)  # the run's Otsu (or percentile) level
        return Segmentation(labels, result.response, timings={"vesselness": time.perf_counter() - start}, threshold=threshold)


@register
class FrangiVesselness(HessianVesselness):
    name = "frangi"
    description = "Frangi Hessian vesselness, Otsu over the run, region growing (DeNVeR preprocessing)"
    filter_name = "frangi"


@register
class SatoVesselness(HessianVesselness):
    name = "sato"
    description = "Sato Hessian tubeness, Otsu over the run, region growing (DeNVeR preprocessing)"
    filter_name = "sato"
