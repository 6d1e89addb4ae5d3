"""Liver-tumour (HCC) segmentation of a DSA run with DSA-LTDNet: what `angioseg hcc` calls.

`analyse_video(video, weights=...)` picks the key frame (`angioseg.methods.ltdnet.keyframe`),
runs the network on it and measures the tumours; `hcc_to_folder(source, out)` reads any run
`angioseg.io.read_video` opens and writes, atomically (nothing appears at OUT until all is
written; an earlier `hcc` output is replaced only with `overwrite`):

    OUT/key_frame.png        the key frame, 8-bit grey
    OUT/tumour_mask.png      tumour mask on the key frame, 0 / 255
    OUT/liver_mask.png       liver mask, 0 / 255 (networks with a liver branch)
    OUT/labels.png           label map {0 background, 1 liver, 2 tumour} (tumour over liver), DAVIS palette
    OUT/masks.npz            "labels" (H, W) uint8 + "label_table" (JSON), "tumour" and "liver" (H, W)
                             bool, "tumour_instances" (H, W) uint16 (0 none, i = tumour i of the report)
    OUT/probabilities.npz    "tumour" and "liver" (H, W) float16 probabilities on the key frame
    OUT/overlay.png          the key frame with liver and tumours in two colours and a legend
    OUT/report.json          key frame, its selection scores, the tumours (count; each one's
                             area in px and mm², centroid), liver area, weights, timings

Tumours are the 8-connected components of the tumour mask (probability ≥ 0.5) at the run's
resolution; areas in mm² use the run's pixel spacing (row × column) where the source gives it,
else they are null. Nothing that could identify a patient is written: the report keeps the
run's size, frame rate, pixel spacing and a few technical facts of the source, not its file
name (DICOM file names often carry a patient's name) nor any DICOM patient attribute.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from angioseg.errors import InputError
from angioseg.types import Video

HCC_FORMAT = "angioseg-hcc"
HCC_VERSION = 1
HCC_LABELS = {0: "background", 1: "liver", 2: "tumour"}
HCC_NAMES = frozenset({"key_frame.png", "tumour_mask.png", "liver_mask.png", "labels.png", "masks.npz",
                       "probabilities.npz", "overlay.png", "report.json"})
THRESHOLD = 0.5
#: The overlay names at most this many tumours (the largest; ids follow decreasing area).
MAX_OVERLAY_IDS = 30
#: Source facts copied into the report (technical only; never names or identifiers).
_SOURCE_FACTS = ("source_kind", "bit_depth", "modality", "photometric", "fps_source", "pixel_spacing_source")
_EIGHT = np.ones((3, 3), dtype=bool)


def is_hcc_output(folder: str | os.PathLike[str]) -> bool:
    """Whether `folder` is an earlier `angioseg hcc` output (its report says so; no other names)."""
    folder = Path(folder)
    try:
        report = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and report.get("format") == HCC_FORMAT and all(p.name in HCC_NAMES for p in folder.iterdir())


def resolve_weights(weights: str | os.PathLike[str] | None) -> Path:
    """`weights`, or the shipped DSA-LTDNet weights; one-line InputError when neither exists."""
    from angioseg.methods.ltdnet.weights import shipped_ltdnet_weights

    if weights is not None:
        return Path(weights)
    shipped = shipped_ltdnet_weights()
    if not shipped.is_file():
        raise InputError("no DSA-LTDNet weights are shipped yet (angioseg/weights/ltdnet.safetensors); pass --weights W "
                         "with weights from 'angioseg train ltdnet'")
    return shipped


@dataclass
class HCCResult:
    """What `analyse_video` finds on one run (arrays at the run's resolution)."""

    key_frame: int
    tumour_probability: np.ndarray  # (H, W) float32
    liver_probability: np.ndarray | None  # (H, W) float32, None without a liver branch
    tumour_instances: np.ndarray  # (H, W) int32: 0 none, i = tumour i
    tumours: list[dict[str, Any]]
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def tumour_mask(self) -> np.ndarray:
        return self.tumour_instances > 0

    @property
    def liver_mask(self) -> np.ndarray | None:
        return None if self.liver_probability is None else self.liver_probability >= THRESHOLD

    def labels(self) -> np.ndarray:
        """`(H, W)` uint8 label map in `HCC_LABELS` (tumour drawn over liver)."""
        labels = np.zeros(self.tumour_probability.shape, np.uint8)
        if self.liver_mask is not None:
            labels[self.liver_mask] = 1
        labels[self.tumour_mask] = 2
        return labels


def measure_tumours(mask: np.ndarray, probability: np.ndarray, spacing: tuple[float, float] | None) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """8-connected components of `mask` `(H, W)`, numbered by decreasing area, and for each: area
    in px and mm² (None without `spacing` (row, col) mm), centroid (x, y) px, bounding box,
    mean and max probability. Returns (instances `(H, W)` int32, list of dicts)."""
    components, count = ndi.label(np.asarray(mask, bool), structure=_EIGHT)
    if count == 0:
        return components.astype(np.int32), []
    areas = np.bincount(components.ravel(), minlength=count + 1)[1:]
    order = np.argsort(-areas, kind="stable") + 1
    renumber = np.zeros(count + 1, np.int32)
    renumber[order] = np.arange(1, count + 1)
    instances = renumber[components]
    pixel_mm2 = spacing[0] * spacing[1] if spacing else None
    tumours = []
    slices = ndi.find_objects(instances)
    for index in range(1, count + 1):
        box = slices[index - 1]
        region = instances[box] == index
        rows, cols = np.nonzero(region)
        area = int(rows.size)
        rows, cols = rows + box[0].start, cols + box[1].start
        region_probability = probability[box][region]
        tumours.append({
            "id": index,
            "area_px": area,
            "area_mm2": None if pixel_mm2 is None else round(area * pixel_mm2, 4),
            "centroid_xy": [round(float(cols.mean()), 2), round(float(rows.mean()), 2)],
            "bbox_xywh": [int(box[1].start), int(box[0].start), int(box[1].stop - box[1].start), int(box[0].stop - box[0].start)],
            "mean_probability": round(float(region_probability.mean()), 4),
            "max_probability": round(float(region_probability.max()), 4),
        })
    return instances, tumours


def analyse_video(video: Video, *, weights: str | os.PathLike[str] | None = None, frame_step: int | None = None,
                  device: str = "cpu", loaded: Any = None) -> HCCResult:
    """Key frame, tumour and liver segmentation and tumour measurements of one DSA run.

    Args:
        video: the run (at least 15 frames; TDL networks also need 9 frames before the key frame).
        weights: a DSA-LTDNet weights file; None: the shipped one (`resolve_weights`).
        frame_step: s of the frame difference / optical flow (networks that read them); None:
            the step the weights were trained with.
        device: torch device.
        loaded: an already loaded network (`load_ltdnet`), instead of `weights`.
    """
    from dataclasses import replace

    from angioseg.methods.ltdnet.inputs import predict_key_frame
    from angioseg.methods.ltdnet.keyframe import check_run_length, key_frame_scores
    from angioseg.methods.ltdnet.weights import load_ltdnet
    from angioseg.options import check_device

    started = time.perf_counter()
    if loaded is None:
        loaded = load_ltdnet(resolve_weights(weights), device=check_device(device))
    spec = loaded.inputs
    if frame_step is not None:
        if isinstance(frame_step, bool) or not isinstance(frame_step, int) or frame_step < 1:
            raise InputError(f"the frame step must be a positive integer; got {frame_step!r}")
        spec = replace(spec, frame_step=frame_step)
    check_run_length(video.num_frames)
    candidates, scores = key_frame_scores(video.frames)
    key = int(candidates[int(np.argmin(scores))])
    selected = time.perf_counter()
    probabilities = predict_key_frame(loaded.net, video.frames, key, spec=spec, device=device)
    predicted = time.perf_counter()
    tumour = probabilities["tumour"]
    instances, tumours = measure_tumours(tumour >= THRESHOLD, tumour, video.pixel_spacing)
    liver = probabilities.get("liver")
    pixel_mm2 = video.pixel_spacing[0] * video.pixel_spacing[1] if video.pixel_spacing else None
    liver_px = None if liver is None else int((liver >= THRESHOLD).sum())
    tumour_px = int((instances > 0).sum())
    config = loaded.config
    report = {
        "format": HCC_FORMAT,
        "version": HCC_VERSION,
        "input": {"frames": video.num_frames, "height": video.height, "width": video.width, "fps": video.fps,
                  "pixel_spacing_mm": list(video.pixel_spacing) if video.pixel_spacing else None,
                  **{k: video.metadata[k] for k in _SOURCE_FACTS if k in video.metadata}},
        "key_frame": key,
        "key_frame_selection": {"rule": "argmin over the last 15 frames of the mean of the summed absolute differences "
                                        "to the previous and next frame", "candidates": candidates.tolist(),
                                "scores": [round(float(s), 6) for s in scores]},
        "frame_step": spec.frame_step,
        "frames_read": ([key - config.tdl_frames + 1, key] if config.motion == "tdl"
                        else [max(key - spec.frame_step, 0), key] if config.motion in ("fd", "of") else [key, key]),
        "network": {"variant": loaded.variant, "config": config.to_dict(), "inputs": spec.to_dict(),
                    "weights_file": loaded.path.name, "weights_sha256": loaded.sha256(),
                    "trained": {k: loaded.info.get(k) for k in ("steps_done", "training_runs", "commit")}},
        "threshold": THRESHOLD,
        "tumour_count": len(tumours),
        "tumours": tumours,
        "tumour_area_px": tumour_px,
        "tumour_area_mm2": None if pixel_mm2 is None else round(tumour_px * pixel_mm2, 4),
        "liver_area_px": liver_px,
        "liver_area_mm2": None if pixel_mm2 is None or liver_px is None else round(liver_px * pixel_mm2, 4),
        "label_table": {str(k): v for k, v in HCC_LABELS.items()},
        "timings_s": {"key_frame": round(selected - started, 4), "network": round(predicted - selected, 4),
                      "total": round(time.perf_counter() - started, 4)},
    }
    return HCCResult(key, tumour, liver, instances, tumours, report)


def _grey_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.asarray(image, np.uint8)).save(path, format="PNG")


def render_hcc_overlay(frame: np.ndarray, labels: np.ndarray, tumours: list[dict[str, Any]], *, liver: bool = True) -> np.ndarray:
    """The key frame `(H, W)` with the liver and the tumours of `labels` (`HCC_LABELS`) in two
    colours (`angioseg.io.render_overlay`), the report ids of the `MAX_OVERLAY_IDS` largest
    tumours beside them, and a legend in
    the *bottom-right* corner (the liver lies in the upper left of a DSA run, where the usual
    legend would hide it). Returns `(H, W, 3)` uint8."""
    import cv2

    from angioseg.io import render_overlay
    from angioseg.io.overlay import legend_layers
    from angioseg.io.palette import overlay_colour

    table = HCC_LABELS if liver else {0: "background", 2: "tumour"}
    rgb = render_overlay(Video(np.asarray(frame, np.float32)[None]), labels[None], table, legend=False)[0].astype(np.float32)
    height, width = labels.shape
    out = np.ascontiguousarray(np.clip(np.round(rgb), 0, 255).astype(np.uint8))
    scale = max(0.3, min(height, width) / 900.0)
    for tumour in tumours[:MAX_OVERLAY_IDS]:
        x, y, w, _ = tumour["bbox_xywh"]
        cv2.putText(out, str(tumour["id"]), (min(x + w + 1, width - 1), max(y, 1) + int(8 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, overlay_colour(2), max(1, int(round(scale * 1.5))), cv2.LINE_AA)
    entries = [(label, name) for label, name in table.items() if label != 0]
    colour, ink = legend_layers(height, width, entries)
    h, w = ink.shape
    region = out[height - h:, width - w:].astype(np.float32) * 0.4
    out[height - h:, width - w:] = np.clip(np.round(region * (1.0 - ink[..., None]) + colour * ink[..., None]), 0, 255).astype(np.uint8)
    return out


def write_hcc_contents(folder: Path, video: Video, result: HCCResult) -> dict[str, Any]:
    """Write the outputs (module docstring) into the (temporary) folder `folder`; returns the report."""
    from PIL import Image

    from angioseg.io.labels import palette_image

    key_frame = video.frames[result.key_frame]
    _grey_png(np.round(np.clip(key_frame, 0, 1) * 255), folder / "key_frame.png")
    _grey_png(result.tumour_mask.astype(np.uint8) * 255, folder / "tumour_mask.png")
    files = ["key_frame.png", "tumour_mask.png"]
    if result.liver_mask is not None:
        _grey_png(result.liver_mask.astype(np.uint8) * 255, folder / "liver_mask.png")
        files.append("liver_mask.png")
    labels = result.labels()
    palette_image(labels).save(folder / "labels.png", format="PNG")
    masks = {"labels": labels, "label_table": np.array(json.dumps({str(k): v for k, v in HCC_LABELS.items()})),
             "tumour": result.tumour_mask, "tumour_instances": result.tumour_instances.astype(np.uint16)}
    probabilities = {"tumour": result.tumour_probability.astype(np.float16)}
    if result.liver_probability is not None:
        masks["liver"] = result.liver_mask
        probabilities["liver"] = result.liver_probability.astype(np.float16)
    np.savez_compressed(folder / "masks.npz", **masks)
    np.savez_compressed(folder / "probabilities.npz", **probabilities)
    overlay = render_hcc_overlay(key_frame, labels, result.tumours, liver=result.liver_mask is not None)
    Image.fromarray(overlay).save(folder / "overlay.png", format="PNG")
    files += ["labels.png", "masks.npz", "probabilities.npz", "overlay.png", "report.json"]
    report = {**result.report, "files": files}
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def hcc_to_folder(source: str | os.PathLike[str], out: str | os.PathLike[str], *, weights: str | os.PathLike[str] | None = None,
                  frame_step: int | None = None, device: str = "cpu", overwrite: bool = False) -> tuple[Path, HCCResult]:
    """Read `source`, analyse it (`analyse_video`) and write the outputs to `out` atomically.

    The output is checked (not the input, not inside it, not a foreign non-empty folder,
    writable) and the weights loaded before the run is read, so a bad `-o` or a missing
    weights file fails at once. A run too short for the method is a one-line InputError and
    leaves nothing behind. Returns (the output folder, the result).
    """
    from angioseg.io import read_video
    from angioseg.io.atomic import atomic_directory
    from angioseg.methods.ltdnet.weights import load_ltdnet
    from angioseg.options import check_device
    from angioseg.pipelines.bundle import check_bundle_target

    target = check_bundle_target(out, inputs=(source,), overwrite=overwrite, recognise=is_hcc_output)
    loaded = load_ltdnet(resolve_weights(weights), device=check_device(device))
    with atomic_directory(target, replaceable=is_hcc_output) as tmp:
        video = read_video(source)
        result = analyse_video(video, frame_step=frame_step, device=device, loaded=loaded)
        result.report = write_hcc_contents(tmp, video, result)
    return target, result
