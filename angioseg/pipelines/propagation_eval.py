"""Scoring propagation (one-shot video object segmentation) methods: what `angioseg evaluate`
runs when its methods need a labelled frame (``needs_prompt``).

Protocol, per case (a labelled video of the data folder, `angioseg.pipelines.scoring.load_case`):

1. The prompt frame p is chosen from the reference labels by `prompt_frame`:
   - "peak": the frame of peak opacification, the frame with the most vessel pixels
     (label 1) in the reference; ties go to the earliest such frame (XACV's protocol);
   - "early": an early-injection frame, where the tree is still filling: the first frame whose
     vessel pixel count reaches 40 % of the peak count, n_t ≥ 0.4 · max_s n_s (MOSXAV's
     protocol, the harder one: the method must grow the tree it was shown).
   Where the reference has no label 1 at all, every foreground label (> 0) counts instead.
2. The method gets the reference labels of frame p as its prompt (every object of that frame)
   and segments the whole video.
3. DAVIS J, F and J&F (`angioseg.eval.davis.davis_j_and_f`) are scored per object on every
   frame except the prompt frame (whose answer the method was given). The objects are the
   ids > 0 present in the prompt frame (an object the method was never shown is not scored);
   each is reported by its label name. The case's J, F are the means over its objects,
   J&F = (J + F) / 2; given `unseen_labels` (names of objects the method was not trained on)
   the same means are reported over the seen and over the unseen objects separately.
4. fps = frames / seconds of the method call (`Segmenter.segment`), summed over the cases.

A method that takes no prompt (e.g. a supervised vessel model) can sit in the same table
when at least one propagation method is evaluated: it segments the video without the prompt,
its labels are matched to the reference's by name ("vessel" to "vessel"), and it is scored
only on the prompt frame's objects it has a label for (the other objects are left out of its
row, not counted as misses). A protocol evaluation of plain methods alone is refused.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Sequence

import numpy as np

from angioseg.errors import InputError
from angioseg.methods import Prompt, Segmenter
from angioseg.pipelines.executors import Executor, LocalExecutor
from angioseg.types import LabelMap

PROTOCOLS = ("peak", "early")
#: "early": the first frame whose vessel pixel count reaches this fraction of the peak count.
EARLY_FRACTION = 0.4
VESSEL_ID = 1


def target_counts(labels: np.ndarray) -> np.ndarray:
    """`(T,)` pixels per frame of label 1 (vessel), or of every label > 0 where no frame has label 1."""
    labels = np.asarray(labels)
    if labels.ndim != 3 or 0 in labels.shape:
        raise InputError(f"reference labels must be (T, H, W); got shape {labels.shape}")
    vessel = labels == VESSEL_ID
    target = vessel if vessel.any() else labels > 0
    return np.count_nonzero(target, axis=(1, 2))


def prompt_frame(labels: np.ndarray, protocol: str) -> int:
    """The frame a propagation method is prompted with under `protocol` (module docstring):
    "peak" = the first frame with the most vessel pixels; "early" = the first frame whose
    vessel pixel count reaches `EARLY_FRACTION` of that peak. Label 1 absent: all labels > 0."""
    if protocol not in PROTOCOLS:
        raise InputError(f"protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    counts = target_counts(labels)
    peak = int(counts.max())
    if peak == 0:
        raise InputError("the reference labels hold no object in any frame: there is no frame to prompt with")
    if protocol == "peak":
        return int(np.argmax(counts))  # argmax returns the first maximum
    return int(np.argmax(counts >= EARLY_FRACTION * peak))


def _object_names(ids: Sequence[int], table: dict[int, str]) -> dict[int, str]:
    """id -> report name: the table's name (``object-<id>`` where it has none; a name that two
    ids share gets its id appended)."""
    names = {i: table.get(i, f"object-{i}") for i in ids}
    repeated = {n for n in names.values() if list(names.values()).count(n) > 1}
    return {i: (f"{n} ({i})" if n in repeated else n) for i, n in names.items()}


def _means(per_object: dict[str, dict[str, float]], names: Collection[str]) -> dict[str, float] | None:
    chosen = [per_object[n] for n in names]
    if not chosen:
        return None
    j = float(np.mean([o["j"] for o in chosen]))
    f = float(np.mean([o["f"] for o in chosen]))
    return {"j": j, "f": f, "jf": (j + f) / 2.0}


def score_propagation(
    predicted: np.ndarray,
    reference: LabelMap,
    *,
    prompt_frames: int | Sequence[int],
    unseen_labels: Collection[str] = (),
    objects: Sequence[int] | None = None,
) -> dict[str, Any]:
    """DAVIS J, F, J&F of `predicted` `(T, H, W)` labels against `reference` on every frame but
    the prompt frame(s), per object (by label name) and their means (module docstring).

    `objects`: the ids to score (default: the ids > 0 of the reference at the prompt frames).
    Returns {"objects": {name: {"j", "f", "jf"}}, "j", "f", "jf", "seen": {...} or None,
    "unseen": {...} or None, "frames_scored", "prompt_frames"}.
    """
    from angioseg.eval.davis import davis_j_and_f

    predicted = np.asarray(predicted)
    if predicted.shape != reference.labels.shape:
        raise InputError(f"predicted labels {predicted.shape} do not match the reference's {reference.labels.shape}")
    prompted = sorted({int(prompt_frames)} if np.isscalar(prompt_frames) else {int(p) for p in prompt_frames})
    count = reference.num_frames
    if any(not 0 <= p < count for p in prompted):
        raise InputError(f"prompt frames {prompted} lie outside the {count} frames")
    keep = np.setdiff1d(np.arange(count), prompted)
    if keep.size == 0:
        raise InputError("every frame is a prompt frame: no frame is left to score")
    if objects is None:
        objects = sorted({int(v) for p in prompted for v in np.unique(reference.labels[p]) if v > 0})
    names = _object_names(list(objects), reference.label_table)
    unseen = {str(n) for n in unseen_labels}
    per_object: dict[str, dict[str, float]] = {}
    if objects:
        scores = davis_j_and_f(predicted[keep], reference.labels[keep], objects=list(objects))
        for label, (j, f) in scores.per_object.items():
            per_object[names[label]] = {"j": j, "f": f, "jf": (j + f) / 2.0}
    means = _means(per_object, list(per_object)) or {"j": 1.0, "f": 1.0, "jf": 1.0}  # DAVIS: nothing to find
    raw = {names[i]: reference.label_table.get(i, names[i]) for i in objects}  # report name -> table name
    return {
        "objects": per_object,
        **means,
        "seen": _means(per_object, [n for n in per_object if raw[n] not in unseen]),
        "unseen": _means(per_object, [n for n in per_object if raw[n] in unseen]),
        "frames_scored": int(keep.size),
        "prompt_frames": prompted,
    }


@dataclass(frozen=True)
class PropagationTask:
    """What a worker needs to evaluate one case with every method (picklable)."""

    data: Path
    index: int
    methods: tuple[str, ...]
    device: str
    protocol: str
    unseen_labels: tuple[str, ...]


@dataclass(frozen=True)
class PropagationCaseResult:
    """One case: its prompt frame and {method: (scores, seconds)}."""

    name: str
    frames: int
    prompt_frame: int
    methods: dict[str, tuple[dict[str, Any], float]]


def evaluate_propagation_case(task: PropagationTask) -> PropagationCaseResult:
    """Prompt every method with the reference labels of the protocol's frame, and score it."""
    from angioseg.pipelines.scoring import load_case, segmenters_for

    name, video, masks, _ = load_case(task.data, task.index)
    if video.num_frames < 2:
        raise InputError(f"case {name} has one frame: propagation is scored on the frames other than the prompt frame")
    frame = prompt_frame(masks.labels, task.protocol)
    prompt = Prompt(frame, masks.labels[frame], masks.label_table)
    results: dict[str, tuple[dict[str, Any], float]] = {}
    shown = sorted(int(v) for v in np.unique(masks.labels[frame]) if v > 0)
    for spec, segmenter in segmenters_for(task.methods, task.device).items():
        start = time.perf_counter()
        if segmenter.needs_prompt:
            result = segmenter.segment(video, prompt=prompt)
            seconds = time.perf_counter() - start
            predicted, objects = result.masks.labels, shown
        else:
            result = segmenter.segment(video)
            seconds = time.perf_counter() - start
            predicted, objects = labels_by_name(result.masks, masks.label_table, shown)
        results[spec] = (score_propagation(predicted, masks, prompt_frames=frame, unseen_labels=task.unseen_labels,
                                           objects=objects), seconds)
    return PropagationCaseResult(name, video.num_frames, frame, results)


def labels_by_name(predicted: LabelMap, reference_table: dict[int, str], objects: Sequence[int]) -> tuple[np.ndarray, list[int]]:
    """A plain method's labels renumbered to the reference's ids by label name, and the
    reference ids among `objects` it has a name for (`(T, H, W)` int64, list)."""
    by_name = {name: ref_id for ref_id, name in reference_table.items()}
    out = np.zeros(predicted.labels.shape, np.int64)
    named: list[int] = []
    for pred_id, name in predicted.label_table.items():
        ref_id = by_name.get(name)
        if pred_id == 0 or ref_id is None:
            continue
        out[predicted.labels == pred_id] = ref_id
        if ref_id in objects:
            named.append(ref_id)
    return out, sorted(named)


def _summary(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def summarise_propagation(cases: dict[str, dict[str, Any]], *, frames: int, seconds: float, options: dict[str, Any]) -> dict[str, Any]:
    """A method's report entry: per-case scores; "summary" = mean and std over cases of j, f,
    jf and, where cases have them, seen_* and unseen_*; "objects" = per label name, mean and
    std over the cases holding it; throughput."""
    columns: dict[str, list[float]] = {}
    objects: dict[str, dict[str, list[float]]] = {}
    for case in cases.values():
        for key in ("j", "f", "jf"):
            columns.setdefault(key, []).append(case[key])
        for group in ("seen", "unseen"):
            if case[group] is not None:
                for key in ("j", "f", "jf"):
                    columns.setdefault(f"{group}_{key}", []).append(case[group][key])
        for name, scores in case["objects"].items():
            for key, value in scores.items():
                objects.setdefault(name, {}).setdefault(key, []).append(value)
    return {
        "cases": cases,
        "summary": {key: _summary(values) for key, values in columns.items()},
        "objects": {name: {key: _summary(values) for key, values in scores.items()} | {"cases": len(scores["j"])}
                    for name, scores in objects.items()},
        "frames": frames,
        "seconds": seconds,
        "frames_per_second": frames / seconds if seconds else None,
        "options": options,
    }


def check_propagation_methods(methods: Sequence[str]) -> None:
    """InputError unless at least one method spec names a method that takes a prompt."""
    from angioseg.methods import method_class, parse_method_spec

    if not any(method_class(parse_method_spec(spec)[0]).needs_prompt for spec in methods):
        raise InputError(f"method(s) {', '.join(methods)} take no labelled frame: the propagation protocol needs at least "
                         f"one propagation method (e.g. fsvos); evaluate them without --protocol or --unseen")


def evaluate_propagation(
    methods: Sequence[str],
    data: str | os.PathLike[str],
    *,
    protocol: str = "peak",
    unseen_labels: Collection[str] = (),
    device: str = "cpu",
    limit: int | None = None,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run every propagation method on every case under `protocol` and score it (module
    docstring); returns the report dict ({"kind": "propagation", "data", "cases", "protocol",
    "unseen_labels", "target", "frames_scored", "jobs", "prompt_frames": {case: frame},
    "methods": {spec: entry}}, entries as `summarise_propagation`).

    Every method spec is built (and checked) before any case runs; `progress(done, total)` is
    called after each case. Throughput with several workers is per worker (as `evaluate_methods`).
    """
    from angioseg.pipelines.scoring import case_count, segmenters_for

    if protocol not in PROTOCOLS:
        raise InputError(f"protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    if limit is not None and limit <= 0:
        raise InputError(f"limit must be a positive integer; got {limit}")
    methods = list(methods)
    check_propagation_methods(methods)
    executor = executor or LocalExecutor()
    data = Path(data)
    segmenters: dict[str, Segmenter] = segmenters_for(tuple(methods), device)
    count = case_count(data, limit)
    unseen = tuple(sorted({str(n) for n in unseen_labels}))
    tasks = [PropagationTask(data, index, tuple(methods), device, protocol, unseen) for index in range(count)]
    cases: dict[str, dict[str, dict[str, Any]]] = {spec: {} for spec in methods}
    frames = {spec: 0 for spec in methods}
    seconds = {spec: 0.0 for spec in methods}
    prompts: dict[str, int] = {}
    for done, case in enumerate(executor.map(evaluate_propagation_case, tasks), start=1):
        prompts[case.name] = case.prompt_frame
        for spec, (scores, elapsed) in case.methods.items():
            cases[spec][case.name] = {**scores, "seconds": elapsed}
            frames[spec] += case.frames
            seconds[spec] += elapsed
        if progress is not None:
            progress(done, count)
    per_method = {
        spec: summarise_propagation(cases[spec], frames=frames[spec], seconds=seconds[spec], options=segmenters[spec].options())
        for spec in methods
    }
    return {"kind": "propagation", "data": str(data), "cases": count, "protocol": protocol, "unseen_labels": list(unseen),
            "target": "every object of the prompt frame", "frames_scored": "all but the prompt frame",
            "jobs": executor.workers, "prompt_frames": prompts, "methods": per_method}


def markdown_propagation_report(report: dict[str, Any]) -> str:
    """A propagation report as Markdown: one row per method (J&F, J, F, seen / unseen J&F,
    mean ± std over cases), then one J&F column per object, then throughput."""
    from angioseg.eval import markdown_table

    def pair(entry: dict[str, float]) -> tuple[float, float]:
        return entry["mean"], entry["std"]

    columns = ["jf", "j", "f", "seen_jf", "unseen_jf"] if report.get("unseen_labels") else ["jf", "j", "f"]
    rows = {name: {m: pair(v) for m, v in entry["summary"].items()} for name, entry in report["methods"].items()}
    table = markdown_table(rows, metrics=[m for m in columns if any(m in r for r in rows.values())])
    names = list(dict.fromkeys(n for entry in report["methods"].values() for n in entry["objects"]))
    object_table = ""
    if names:
        object_rows = {name: {f"{o} J&F": pair(entry["objects"][o]["jf"]) for o in entry["objects"]}
                       for name, entry in report["methods"].items()}
        object_table = "Per object (J&F):\n\n" + markdown_table(object_rows, metrics=[f"{o} J&F" for o in names]) + "\n"
    unseen = f", unseen objects: {', '.join(report['unseen_labels'])}" if report.get("unseen_labels") else ""
    speeds = ", ".join(f"{name} {entry['frames_per_second']:.1f}" for name, entry in report["methods"].items()
                       if entry["frames_per_second"])
    return (
        f"Data: `{report['data']}` ({report['cases']} videos), propagation protocol: {report['protocol']} "
        f"(prompted with the reference of one frame; scored on every other frame){unseen}.\n\n"
        f"{table}\n{object_table}Throughput (frames/s): {speeds}.\n"
    )
