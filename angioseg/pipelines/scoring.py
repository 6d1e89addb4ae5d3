"""Scoring methods against reference masks: what `angioseg evaluate` runs.

The data is a DAVIS-style folder (`JPEGImages/`, `Annotations/`, optional `Motion/`) or an
image + mask folder (`DIR/images`, `DIR/masks`, each image a one-frame video). Every method
sees the same videos; the metrics compare the predicted foreground with the ground-truth
foreground (every label > 0) unless `label` names one label id.

Besides the metrics of `angioseg.eval.evaluate_video`, each case scores `flicker_gap`:

    flicker_gap = | flicker(predicted masks) − flicker(reference masks) |

with both flickers along the same motion. Contrast inflow and wash-out change the true masks
from frame to frame, so a low flicker alone can mean a steady segmentation or one that misses
those changes; the gap is 0 for a method whose masks change as much as the truth's do. The
reference masks' own flicker is in the report ("reference").

Cases run on an `Executor` (`angioseg.pipelines.executors`): in this process, in a process
pool, or (later) on a cluster; the report is the same whichever runs them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection

import numpy as np

from angioseg.errors import InputError
from angioseg.methods import Segmentation, Segmenter, get_from_spec
from angioseg.pipelines.executors import Executor, LocalExecutor
from angioseg.types import LabelMap, Video

FRAMES_SCORED = ("all", "with-target")


def case_count(data: Path, limit: int | None = None) -> int:
    """How many cases `load_case` can load from `data` (the first `limit` when given)."""
    from angioseg.data.datasets import ImageMaskFolder
    from angioseg.data.davis import DavisFolder

    data = Path(data)
    if (data / "JPEGImages").is_dir():
        count = len(DavisFolder(data))
    elif (data / "images").is_dir() and (data / "masks").is_dir():
        count = len(ImageMaskFolder(data / "images", data / "masks"))
    else:
        raise InputError(f"{data} is neither a DAVIS-style folder (JPEGImages/) nor an image + mask folder (images/, masks/)")
    return min(count, limit) if limit else count


def load_case(data: Path, index: int) -> tuple[str, Video, LabelMap, np.ndarray | None]:
    """Case `index` of `data` (natural order) as (name, video, masks, flow_backward or None)."""
    from angioseg.data.datasets import ImageMaskFolder
    from angioseg.data.davis import DavisFolder

    data = Path(data)
    if (data / "JPEGImages").is_dir():
        folder = DavisFolder(data)
        sequence = folder.load(folder.names[index])
        if sequence.masks is None:
            raise InputError(f"sequence {sequence.name} in {data} has no annotations to evaluate against")
        return sequence.name, sequence.video, sequence.masks, sequence.flow_backward
    pair = ImageMaskFolder(data / "images", data / "masks").load(index)
    return pair.name, pair.video, pair.masks, None


def _target(labels: np.ndarray, label: int | None) -> np.ndarray:
    return labels == label if label is not None else labels > 0


def score(result: Segmentation, masks: LabelMap, *, flow_backward: np.ndarray | None, frames: np.ndarray, label: int | None,
          frames_scored: str = "all") -> dict[str, float]:
    """Every metric of one method's `result` against reference `masks` on one video
    (`frames_scored`: "all" or "with-target", see `angioseg.eval.evaluate_video`)."""
    from angioseg.eval import evaluate_video

    return evaluate_video(_target(result.masks.labels, label), _target(masks.labels, label), probabilities=result.probabilities,
                          flow_backward=flow_backward, frames=frames, frames_scored=frames_scored.replace("-", "_"))


def reference_flicker(masks: LabelMap, *, flow_backward: np.ndarray | None, frames: np.ndarray, label: int | None) -> float:
    """Flicker of the reference masks themselves, the floor a method's flicker is read
    against: contrast inflow and wash-out change the true masks between frames, and a method
    whose flicker is below this one misses those changes rather than being steadier."""
    from angioseg.eval.temporal import temporal_flicker

    return temporal_flicker(_target(masks.labels, label), flow_backward=flow_backward, frames=frames)


def summarise_method(cases: dict[str, dict[str, float]], *, frames: int, seconds: float, options: dict[str, Any]) -> dict[str, Any]:
    """The report entry of one method: per-case metrics, mean and std, throughput."""
    from angioseg.eval import summarise

    return {
        "cases": cases,
        "summary": {metric: {"mean": mean, "std": std} for metric, (mean, std) in summarise(list(cases.values())).items()},
        "frames": frames,
        "seconds": seconds,
        "frames_per_second": frames / seconds if seconds else None,
        "options": options,
    }


@dataclass(frozen=True)
class CaseTask:
    """What a worker needs to evaluate one case with every method (picklable)."""

    data: Path
    index: int
    methods: tuple[str, ...]
    device: str
    label: int | None
    frames_scored: str


@dataclass(frozen=True)
class CaseResult:
    """One case's scores: {method: (metrics, seconds)} and the flicker of its reference masks."""

    name: str
    frames: int
    methods: dict[str, tuple[dict[str, float], float]]
    reference_flicker: float


#: Segmenters built in this process, by (method specs, device): a worker process builds them
#: once for all the cases it is given.
_SEGMENTERS: dict[tuple[tuple[str, ...], str], dict[str, Segmenter]] = {}


def segmenters_for(methods: tuple[str, ...], device: str) -> dict[str, Segmenter]:
    """The segmenters of `methods` (specs) on `device`, built once per process."""
    key = (methods, device)
    if key not in _SEGMENTERS:
        _SEGMENTERS[key] = {spec: get_from_spec(spec, device=device) for spec in methods}
    return _SEGMENTERS[key]


def _check_label(task: CaseTask, case_name: str, masks: LabelMap) -> None:
    """InputError when the label to score is not a foreground id of the case's label table
    (scoring an absent label would compare two empty masks and report a perfect score)."""
    if task.label is None or (task.label > 0 and task.label in masks.label_table):
        return
    named = ", ".join(f"{k} ({v})" for k, v in sorted(masks.label_table.items()) if k > 0) or "none"
    raise InputError(f"{task.data}: label {task.label} is not in the label table of sequence {case_name}; "
                     f"its labels are {named}")


def evaluate_case(task: CaseTask) -> CaseResult:
    """Every method's metrics and time on one case, and the reference masks' own flicker."""
    case_name, video, masks, flow = load_case(task.data, task.index)
    _check_label(task, case_name, masks)
    if flow is None and video.num_frames > 1:  # estimated once for every method's flicker
        from angioseg.eval.temporal import estimate_backward_flow

        flow = estimate_backward_flow(video.frames)
    floor = reference_flicker(masks, flow_backward=flow, frames=video.frames, label=task.label)
    results: dict[str, tuple[dict[str, float], float]] = {}
    for spec, segmenter in segmenters_for(task.methods, task.device).items():
        start = time.perf_counter()
        result = segmenter.segment(video)
        seconds = time.perf_counter() - start
        metrics = score(result, masks, flow_backward=flow, frames=video.frames, label=task.label, frames_scored=task.frames_scored)
        metrics["flicker_gap"] = abs(metrics["flicker"] - floor)
        results[spec] = (metrics, seconds)
    return CaseResult(case_name, video.num_frames, results, floor)


def needs_prompt(spec: str) -> bool:
    """Whether the method of `spec` (``name`` or ``name:key=value,...``) needs a labelled frame."""
    from angioseg.methods import method_class, parse_method_spec

    return method_class(parse_method_spec(spec)[0]).needs_prompt


def _mean_and_std(per_case: dict[str, float]) -> dict[str, Any]:
    """{"cases", "mean", "std"} (population std, `angioseg.eval.summarise`) of per-case values."""
    from angioseg.eval import summarise

    mean, std = summarise({"value": v} for v in per_case.values()).get("value", (0.0, 0.0))
    return {"cases": per_case, "mean": mean, "std": std}


def evaluate_methods(
    methods: list[str],
    data: str | os.PathLike[str],
    *,
    device: str = "cpu",
    label: int | None = None,
    limit: int | None = None,
    frames_scored: str = "all",
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
    protocol: str | None = None,
    unseen_labels: Collection[str] = (),
) -> dict[str, Any]:
    """Run every method on every case and score it; returns the report dict
    ({"data", "cases", "target", "frames_scored", "jobs", "methods": {spec: entry}, "reference"}).

    Propagation methods (``needs_prompt``), or a `protocol` ("peak", "early") or
    `unseen_labels` given, go to `angioseg.pipelines.propagation_eval.evaluate_propagation`
    (protocol "peak" by default; `label` and `frames_scored` do not apply there); methods that
    need no prompt are then scored beside them on the objects they name (e.g. "vessel").

    Every method spec is built (and checked) before any case runs. With a multi-worker
    executor a method's "seconds" is the sum of its per-case times (each worker runs on its
    share of the CPUs), so its throughput is per worker, not of the pool. `progress(done,
    total)` is called after each case.
    """
    if frames_scored not in FRAMES_SCORED:
        raise InputError(f"frames scored must be one of {', '.join(FRAMES_SCORED)}; got {frames_scored!r}")
    if protocol is not None or unseen_labels or any(needs_prompt(spec) for spec in methods):
        from angioseg.pipelines.propagation_eval import evaluate_propagation

        if label is not None or frames_scored != "all":
            raise InputError("a label and frames scored do not apply to propagation methods: they score every object "
                             "of the prompt frame on every other frame")
        return evaluate_propagation(methods, data, protocol=protocol or "peak", unseen_labels=unseen_labels, device=device,
                                    limit=limit, executor=executor, progress=progress)
    if limit is not None and limit <= 0:
        raise InputError(f"limit must be a positive integer; got {limit}")
    executor = executor or LocalExecutor()
    data = Path(data)
    segmenters = segmenters_for(tuple(methods), device)
    count = case_count(data, limit)
    tasks = [CaseTask(data, index, tuple(methods), device, label, frames_scored) for index in range(count)]
    cases: dict[str, dict[str, dict[str, float]]] = {spec: {} for spec in methods}
    frames = {spec: 0 for spec in methods}
    seconds = {spec: 0.0 for spec in methods}
    reference: dict[str, float] = {}
    for done, case in enumerate(executor.map(evaluate_case, tasks), start=1):
        reference[case.name] = case.reference_flicker
        for spec, (metrics, elapsed) in case.methods.items():
            cases[spec][case.name] = metrics
            frames[spec] += case.frames
            seconds[spec] += elapsed
        if progress is not None:
            progress(done, count)
    per_method = {
        spec: summarise_method(cases[spec], frames=frames[spec], seconds=seconds[spec], options=segmenters[spec].options())
        for spec in methods
    }
    return {"data": str(data), "cases": count, "target": f"label {label}" if label is not None else "foreground",
            "frames_scored": frames_scored, "jobs": executor.workers, "methods": per_method,
            "reference": {"flicker": _mean_and_std(reference)}}
