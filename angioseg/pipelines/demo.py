"""The demo: two runs with exact masks, segmented by the best available method and scored
against their truth, with an overlay video and a bundle each:

- a real-anatomy run made from the real angiogram shipped in `angioseg/data/demo_frames`
  (dca1-train image 35, BSD licence, credited there; a frame no shipped model trained on):
  the real frame's vessels fill with contrast while the heart beats and the patient breathes
  (`angioseg.data.pseudo_video`);
- a phantom XCA run (`angioseg.data.phantom`).
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from angioseg.pipelines.segment import DEFAULT_METHOD

#: Methods in order of preference (the default of `angioseg segment` first); the first one
#: whose weights are shipped is used.
PREFERRED_METHODS = tuple(dict.fromkeys((DEFAULT_METHOD, "cenet", "frangi")))
#: The real frame the demo animates, inside the package.
DEMO_FRAME = "dca1_35"
#: What a demo folder holds; another name in it means it is not (only) a demo's.
DEMO_NAMES = frozenset({"phantom", "real", "segmentation", "segmentation-real", "metrics.json", "metrics.md"})


def best_method() -> str:
    """The first of `PREFERRED_METHODS` that can run here."""
    from angioseg.methods import available

    names = {name for name, _ in available(ready_only=True)}
    return next(name for name in PREFERRED_METHODS if name in names)


def demo_frame() -> tuple[Any, Any]:
    """(image `(H, W)` float32 in [0, 1], vessel mask `(H, W)` bool) of the shipped real frame."""
    from angioseg.io.images import read_image
    from angioseg.io.labels import read_label_image

    folder = Path(str(importlib.resources.files("angioseg").joinpath("data", "demo_frames")))
    return read_image(folder / f"{DEMO_FRAME}.png"), read_label_image(folder / f"{DEMO_FRAME}_mask.png") > 0


def check_demo_folder(out: Path) -> None:
    """InputError unless `out` is absent, empty or an earlier demo's folder (`DEMO_NAMES`)."""
    from angioseg.errors import InputError
    from angioseg.io.atomic import check_output_location

    check_output_location(out)
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in DEMO_NAMES and not p.name.startswith("."))
        if foreign:
            raise InputError(f"demo folder {out} holds files the demo did not write ({', '.join(foreign[:3])}); choose a new folder")


@dataclass
class DemoResult:
    """Where the demo wrote its outputs, and its reports (`angioseg.pipelines.scoring` format),
    one per run: "real" (the real-anatomy run) and "phantom"."""

    reports: dict[str, dict[str, Any]]
    markdown: str
    bundles: dict[str, Path]
    overlays: dict[str, Path]
    metrics: Path


def run_demo(
    out: str | os.PathLike[str], *, size: int = 512, frames: int = 45, seed: int = 0, method: str | None = None,
    device: str = "cpu",
) -> DemoResult:
    """Make both runs (OUT/real, OUT/phantom: DAVIS-style folders), segment them into the
    bundles OUT/segmentation-real and OUT/segmentation, score the contrast-filled frames
    (vessel label for a vessel-only method, all foreground else) and write OUT/metrics.json
    and OUT/metrics.md. `size` and `frames` shape the phantom; the real run keeps the frame's
    300 x 300 and has `frames` frames too. A second demo into the same OUT replaces the first;
    an OUT holding anything else is refused before any work."""
    import json

    from angioseg.data.davis import DavisFolder
    from angioseg.io.atomic import atomic_file
    from angioseg.pipelines.datasets import make_phantom_set, make_pseudo_video_set
    from angioseg.pipelines.report import markdown_report
    from angioseg.pipelines.segment import make_segmenter

    out = Path(out)
    check_demo_folder(out)
    spec = method or best_method()
    segmenter = make_segmenter(spec, device=device)
    image, mask = demo_frame()
    make_pseudo_video_set(out / "real", [(DEMO_FRAME, image, mask)], frames=frames, fps=15.0, seed=seed,
                          source_name="angioseg/data/demo_frames")
    make_phantom_set(out / "phantom", n=1, seed=seed, size=size, frames=frames, fps=15.0, overlay=False)
    reports, bundles, overlays = {}, {}, {}
    for key, folder, name, bundle in (("real", out / "real", DEMO_FRAME, "segmentation-real"),
                                      ("phantom", out / "phantom", "phantom_000", "segmentation")):
        reports[key], bundles[key], overlays[key] = _segment_and_score(DavisFolder(folder).load(name), segmenter, spec,
                                                                       out / bundle, source=str(folder / name))
    markdown = "\n".join(f"**{title}**\n\n{markdown_report(reports[key])}" for key, title in
                         (("real", f"Real-anatomy run from a real angiogram ({DEMO_FRAME})"), ("phantom", "Phantom run")))
    with atomic_file(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(reports, indent=2, default=float) + "\n")
    with atomic_file(out / "metrics.md") as tmp:
        tmp.write_text(markdown)
    return DemoResult(reports, markdown, bundles, overlays, out / "metrics.json")


def _segment_and_score(sequence: Any, segmenter: Any, spec: str, bundle: Path, *, source: str) -> tuple[dict[str, Any], Path, Path]:
    """Segment one demo run, write its bundle, score it: (report, bundle path, overlay path)."""
    import json

    from angioseg.pipelines.bundle import write_bundle
    from angioseg.pipelines.scoring import score, summarise_method

    result = segmenter.segment(sequence.video)
    path = write_bundle(bundle, sequence.video, result, source=source, overwrite=True)
    # A vessel-only method is scored on the vessel label; one that also labels the catheter on all foreground.
    label = None if len(result.label_table) > 2 else 1
    metrics = score(result, sequence.masks, flow_backward=sequence.flow_backward, frames=sequence.video.frames, label=label,
                    frames_scored="with-target")
    entry = summarise_method({sequence.name: metrics}, frames=sequence.video.num_frames, seconds=result.timings["total"],
                             options=result.options)
    report = {"data": source, "cases": 1, "target": "foreground" if label is None else f"label {label}",
              "frames_scored": "with-target", "methods": {spec: entry}}
    overlay = path / json.loads((path / "report.json").read_text())["overlay"]
    return report, path, overlay
