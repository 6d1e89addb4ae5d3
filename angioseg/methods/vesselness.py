"""Classical baseline: contrast enhancement + multiscale Hessian vesselness + threshold +
region growing.

This is DeNVeR's preprocessing (its Sec. 3.1) and the baseline every paper compares to,
brought to the strength of the textbook recipe for angiograms (CLAHE, Sato's tubeness at
scales of 1-4 px on a 300-pixel frame, Otsu, small objects removed):

- ``clahe`` (default on): `angioseg.vessel.enhance.clahe` on each frame first;
- ``scales``: "frame" (default) = `angioseg.vessel.enhance.frame_scales`, 1-4 px at a
  300-pixel side scaled with the frame; "fixed" = 1, 3, 5, 7, 9 px whatever the size (the
  earlier default);
- ``variant="paper"`` follows the paper (Otsu over the whole run, region growing);
  ``variant="public"`` the authors' public code (percentile threshold, component tests).

The measurements behind the defaults are in docs/methods/vesselness.md.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from angioseg.errors import InputError
from angioseg.methods.base import Segmentation, Segmenter, register
from angioseg.types import LabelMap, Prompt, Video, vessel_labels

#: The threshold reported for re-thresholding stays strictly inside (0, 1).
_EDGE = 1e-6
SCALES = ("frame", "fixed")


class HessianVesselness(Segmenter):
    """Vesselness filter `filter_name` over every frame, then DeNVeR's thresholding."""

    filter_name: ClassVar[str] = ""

    def __init__(self, *, device: str = "cpu", dtype: str = "float32", variant: str = "paper", clahe: bool = True,
                 scales: str = "frame") -> None:
        super().__init__(device=device, dtype=dtype)
        if variant not in ("paper", "public"):
            raise InputError(f"variant must be 'paper' or 'public'; got {variant!r}")
        if scales not in SCALES:
            raise InputError(f"scales must be one of {', '.join(SCALES)}; got {scales!r}")
        if not isinstance(clahe, bool):
            raise InputError(f"clahe must be true or false; got {clahe!r}")
        self.variant = variant
        self.clahe = clahe
        self.scales = scales

    def options(self) -> dict[str, Any]:
        return {**super().options(), "filter": self.filter_name, "variant": self.variant, "clahe": self.clahe, "scales": self.scales}

    def _segment(self, video: Video, *, prompts: tuple[Prompt, ...]) -> Segmentation:
        from angioseg.vessel import vesselness_masks
        from angioseg.vessel.enhance import clahe, frame_scales
        from angioseg.vessel.hessian import DEFAULT_SIGMAS

        start = time.perf_counter()
        frames = clahe(video.frames) if self.clahe else video.frames
        sigmas = frame_scales(video.height, video.width) if self.scales == "frame" else DEFAULT_SIGMAS
        result = vesselness_masks(frames, filter=self.filter_name, variant=self.variant, device=self.device, sigmas=sigmas)
        labels = LabelMap(result.masks.astype("uint8"), vessel_labels())
        threshold = min(max(result.threshold, _EDGE), 1.0 - _EDGE)  # the run's Otsu (or percentile) level
        return Segmentation(labels, result.response, timings={"vesselness": time.perf_counter() - start}, threshold=threshold)


@register
class FrangiVesselness(HessianVesselness):
    name = "frangi"
    description = "Frangi Hessian vesselness after CLAHE, Otsu over the run, region growing (DeNVeR preprocessing)"
    filter_name = "frangi"


@register
class SatoVesselness(HessianVesselness):
    name = "sato"
    description = "Sato Hessian tubeness after CLAHE, Otsu over the run, region growing (the textbook recipe)"
    filter_name = "sato"
