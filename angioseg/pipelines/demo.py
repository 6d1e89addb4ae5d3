"""The demo: one phantom XCA run with exact masks, segmented by the best available method,
scored against its truth; the overlay video, the bundle and a metrics report on disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Methods in order of preference; the first one whose weights are shipped is used.
PREFERRED_METHODS = ("cenet3d2d", "cenet", "frangi")


def best_method() -> str:
    """The first of `PREFERRED_METHODS` that can run here."""
    from angioseg.methods import available

    names = {name for name, _ in available(ready_only=True)}
    return next(name for name in PREFERRED_METHODS if name in names)


#: What a demo folder holds; another name in it means it is not (only) a demo's.
DEMO_NAMES = frozenset({"phantom", "segmentation", "metrics.json", "metrics.md"})


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
    """Where the demo wrote its outputs, and its report (`angioseg.pipelines.scoring` format)."""

    report: dict[str, Any]
    markdown: str
    bundle: Path
    overlay: Path
    metrics: Path


def run_demo(
    out: str | os.PathLike[str], *, size: int = 512, frames: int = 45, seed: int = 0, method: str | None = None,
    device: str = "cpu",
) -> DemoResult:
    """Make the phantom run in OUT/phantom, segment it into the bundle OUT/segmentation, score
    the contrast-filled frames (vessel label for a vessel-only method, all foreground else) and
    write OUT/metrics.json and OUT/metrics.md. A second demo into the same OUT replaces the
    first; an OUT holding anything else is refused before any work."""
    import json

    from angioseg.data.davis import DavisFolder
    from angioseg.io.atomic import atomic_file
    from angioseg.pipelines.bundle import write_bundle
    from angioseg.pipelines.datasets import make_phantom_set
    from angioseg.pipelines.report import markdown_report
    from angioseg.pipelines.scoring import score, summarise_method
    from angioseg.pipelines.segment import make_segmenter

    out = Path(out)
    check_demo_folder(out)
    spec = method or best_method()
    segmenter = make_segmenter(spec, device=device)
    data_dir = make_phantom_set(out / "phantom", n=1, seed=seed, size=size, frames=frames, fps=15.0, overlay=False)
    sequence = DavisFolder(data_dir).load("phantom_000")
    result = segmenter.segment(sequence.video)
    bundle = write_bundle(out / "segmentation", sequence.video, result, source=str(data_dir / "DICOM" / "phantom_000.dcm"),
                          overwrite=True)
    # A vessel-only method is scored on the vessel label; one that also labels the catheter on all foreground.
    label = None if len(result.label_table) > 2 else 1
    metrics = score(result, sequence.masks, flow_backward=sequence.flow_backward, frames=sequence.video.frames, label=label,
                    frames_scored="with-target")
    entry = summarise_method({"phantom_000": metrics}, frames=sequence.video.num_frames, seconds=result.timings["total"],
                             options=result.options)
    report = {"data": str(data_dir), "cases": 1, "target": "foreground" if label is None else f"label {label}",
              "frames_scored": "with-target", "methods": {spec: entry}}
    markdown = markdown_report(report)
    with atomic_file(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=float) + "\n")
    with atomic_file(out / "metrics.md") as tmp:
        tmp.write_text(markdown)
    overlay = bundle / json.loads((bundle / "report.json").read_text())["overlay"]
    return DemoResult(report, markdown, bundle, overlay, out / "metrics.json")
