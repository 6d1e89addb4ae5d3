"""Reading an input and running a method on it: what `angioseg segment`, a server and a batch
job all call.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from angioseg.errors import InputError
from angioseg.methods import Prompt, Segmentation, Segmenter, get_from_spec
from angioseg.postprocess import filter_class_probabilities, labels_from_probabilities
from angioseg.types import LabelMap, Video

#: The method `segment` runs when none is named: the sequence CE-Net (CE-Net per frame, "all"
#: label style, then the plain temporal filter over 3 frames). Chosen on real frames: the best
#: shipped model on held-out dca1-train frames, at about 50 frames/s at 512² on 2 cores
#: (docs/methods/supervised.md).
DEFAULT_METHOD = "seq-cenet"


def make_segmenter(method: str | Segmenter = DEFAULT_METHOD, *, device: str = "cpu") -> Segmenter:
    """A segmenter from a method spec (``name`` or ``name:key=value,...``), or `method` itself."""
    if isinstance(method, Segmenter):
        return method
    from angioseg.options import check_device

    return get_from_spec(method, device=check_device(device))


def apply_temporal_filter(result: Segmentation, video: Video, *, radius: int, motion: bool = False) -> Segmentation:
    """`result` with its per-class probabilities averaged over 2K + 1 frames (K = `radius`;
    plain, or along DIS motion with `motion`) and its masks re-made at the method's own
    threshold (`Segmentation.threshold`), every label kept (`angioseg.postprocess.labels`).

    Post-steps the method applied to its own masks (e.g. DeNVeR's small-component filter) are
    not repeated on the new masks.
    """
    if radius < 0:
        raise InputError(f"the temporal filter's K must be >= 0; got {radius}")
    if radius == 0:
        return result
    start = time.perf_counter()
    binary = len(result.label_table) == 2  # filter the foreground map alone: the same, at half the cost
    source = result.probabilities if binary else result.class_probabilities
    probabilities = filter_class_probabilities(source, video.frames, radius=radius, motion=motion)
    classes = np.stack([1.0 - probabilities, probabilities], axis=1) if binary else probabilities
    labels = labels_from_probabilities(classes, result.label_table, threshold=result.threshold)
    timings = {**result.timings, "temporal_filter": time.perf_counter() - start}
    timings["total"] = result.timings.get("total", 0.0) + timings["temporal_filter"]
    options = {**result.options, "temporal_filter_k": radius, "temporal_filter_motion": motion}
    return result.replace(masks=LabelMap(labels, result.label_table), probabilities=probabilities, timings=timings, options=options)


def segment_video(
    video: Video,
    *,
    method: str | Segmenter = DEFAULT_METHOD,
    device: str = "cpu",
    prompt: Prompt | Sequence[Prompt] | None = None,
    temporal_filter: int = 0,
) -> Segmentation:
    """Run `method` on `video` (then the temporal filter of `apply_temporal_filter` when
    `temporal_filter` > 0) and return the `Segmentation`."""
    segmenter = make_segmenter(method, device=device)
    result = segmenter.segment(video, prompt=prompt)
    return apply_temporal_filter(result, video, radius=temporal_filter)


def segment_input(
    source: str | os.PathLike[str],
    *,
    method: str | Segmenter = DEFAULT_METHOD,
    device: str = "cpu",
    prompt: Prompt | Sequence[Prompt] | None = None,
    temporal_filter: int = 0,
) -> tuple[Video, Segmentation]:
    """Read `source` (anything `angioseg.io.read_video` opens) and segment it; returns
    (video, segmentation). The method is built (and its options checked) before the read."""
    from angioseg.io import read_video

    if temporal_filter < 0:
        raise InputError(f"the temporal filter's K must be >= 0; got {temporal_filter}")
    segmenter = make_segmenter(method, device=device)
    video = read_video(source)
    return video, segment_video(video, method=segmenter, prompt=prompt, temporal_filter=temporal_filter)


def segment_to_bundle(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    method: str | Segmenter = DEFAULT_METHOD,
    device: str = "cpu",
    prompt: Prompt | Sequence[Prompt] | None = None,
    temporal_filter: int = 0,
    overwrite: bool = False,
    dicom_seg: bool = False,
) -> tuple[Path, Segmentation]:
    """Segment `source` and write the bundle (`angioseg.pipelines.bundle`) to `out`.

    The output is checked (not the input, not holding it, not a foreign non-empty folder,
    writable) and locked before the method is built or the input read, so a bad `-o` fails in
    a moment and two runs to the same folder cannot both write it. With `dicom_seg` the bundle
    also holds ``segmentation.dcm``, a DICOM SEG of the masks filed with the source run
    (`angioseg.pipelines.dicom_seg`); a source that is not DICOM fails before anything is
    written. Returns (path, result).
    """
    from angioseg.io.atomic import atomic_directory
    from angioseg.pipelines.bundle import check_bundle_target, is_bundle, write_bundle_contents
    from angioseg.pipelines.dicom_seg import BUNDLE_SEG_NAME, check_dicom_seg_source, export_dicom_seg

    target = check_bundle_target(out, inputs=(source,), overwrite=overwrite)
    if dicom_seg:
        check_dicom_seg_source(source)
    with atomic_directory(target, replaceable=is_bundle) as tmp:
        video, result = segment_input(source, method=method, device=device, prompt=prompt, temporal_filter=temporal_filter)
        extra = {"dicom_seg": BUNDLE_SEG_NAME} if dicom_seg else None
        write_bundle_contents(tmp, video, result, source=str(source), extra=extra)
        if dicom_seg:
            export_dicom_seg(source, result.masks.labels, result.label_table, tmp / BUNDLE_SEG_NAME)
    return target, result
