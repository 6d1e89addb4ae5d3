"""`angioseg evaluate`: run methods on a labelled data set, one table of every metric.

The data is a DAVIS-style folder (`JPEGImages/`, `Annotations/`, optional `Motion/`) or an
image + mask folder (`DIR/images`, `DIR/masks`, each image a one-frame video). Every method
sees the same videos; the metrics compare the predicted foreground with the ground-truth
foreground (every label > 0) unless `--label` names one label id.

Writes REPORT.json (per sequence and summary) and REPORT.md (mean ± std, side by side).

Besides the metrics of `angioseg.eval.evaluate_video`, each case scores `flicker_gap`:

    flicker_gap = | flicker(predicted masks) − flicker(reference masks) |

with both flickers along the same motion. Contrast inflow and wash-out change the true masks
from frame to frame, so a low flicker alone can mean a steady segmentation or one that misses
those changes; the gap is 0 for a method whose masks change as much as the truth's do. The
reference masks' own flicker is in the report ("reference") and under the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from angioseg.errors import InputError

TABLE_METRICS = [
    "dice", "cldice", "nsd", "jaccard", "sensitivity", "specificity", "accuracy",
    "auroc", "auprc", "davis_jf", "flicker", "flicker_gap", "empty_clean", "dice_all_frames",
]


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("evaluate", help="evaluate methods on a labelled data set")
    parser.add_argument("--method", action="append", required=True, help="method name or spec name:key=value,... (e.g. seq-cenet:k=2,motion=none); repeat for a side-by-side table")
    parser.add_argument("--data", required=True, type=Path, help="DAVIS-style folder, or a folder with images/ and masks/")
    parser.add_argument("-o", "--out", required=True, type=Path, help="report path: writes REPORT.json and REPORT.md")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--label", type=int, default=None, help="evaluate one label id instead of all foreground")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first K sequences")
    parser.add_argument("--frames-scored", choices=("all", "with-target"), default="all",
                        help="all frames (default), or only frames whose ground truth has the target "
                             "(contrast-filled frames); empty-reference frames then give empty_clean")
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes sharing the cases (default 1); each gets CPUs / jobs torch threads")
    parser.set_defaults(run=run)


def case_count(data: Path, limit: int | None) -> int:
    """How many cases `load_case` can load from `data` (the first `limit` when given)."""
    from angioseg.data.datasets import ImageMaskFolder
    from angioseg.data.davis import DavisFolder

    if (data / "JPEGImages").is_dir():
        count = len(DavisFolder(data))
    elif (data / "images").is_dir() and (data / "masks").is_dir():
        count = len(ImageMaskFolder(data / "images", data / "masks"))
    else:
        raise InputError(f"{data} is neither a DAVIS-style folder (JPEGImages/) nor an image + mask folder (images/, masks/)")
    return min(count, limit) if limit else count


def load_case(data: Path, index: int) -> tuple[str, Any, Any, Any]:
    """Case `index` of `data` (natural order) as (name, video, masks, flow_backward or None)."""
    from angioseg.data.datasets import ImageMaskFolder
    from angioseg.data.davis import DavisFolder

    if (data / "JPEGImages").is_dir():
        folder = DavisFolder(data)
        sequence = folder.load(folder.names[index])
        if sequence.masks is None:
            raise InputError(f"sequence {sequence.name} in {data} has no annotations to evaluate against")
        return sequence.name, sequence.video, sequence.masks, sequence.flow_backward
    pair = ImageMaskFolder(data / "images", data / "masks").load(index)
    return pair.name, pair.video, pair.masks, None


def iterate_cases(data: Path, limit: int | None) -> tuple[int, Iterator[Any]]:
    """(count, iterator of (name, video, masks, flow_backward)) for either data layout."""
    count = case_count(data, limit)
    return count, (load_case(data, index) for index in range(count))


def report_paths(out: Path) -> tuple[Path, Path]:
    base = out.with_suffix("") if out.suffix in (".json", ".md") else out
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".md")


def score(result, masks, *, flow_backward, frames, label: int | None, frames_scored: str = "all") -> dict[str, float]:
    """Every metric of one method's `result` against ground-truth `masks` on one video
    (`frames_scored`: "all" or "with-target", see `angioseg.eval.evaluate_video`)."""
    from angioseg.eval import evaluate_video

    truth = masks.labels == label if label is not None else masks.labels > 0
    predicted = result.masks.labels == label if label is not None else result.masks.labels > 0
    return evaluate_video(predicted, truth, probabilities=result.probabilities, flow_backward=flow_backward, frames=frames,
                          frames_scored=frames_scored.replace("-", "_"))


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
class _CaseTask:
    """What a worker needs to evaluate one case with every method (picklable)."""

    data: Path
    index: int
    methods: tuple[str, ...]
    device: str
    label: int | None
    frames_scored: str


#: Segmenters built in this process, by (method specs, device): a worker process builds them
#: once for all the cases it is given.
_WORKER_SEGMENTERS: dict[tuple[tuple[str, ...], str], dict[str, Any]] = {}


def _segmenters(methods_: tuple[str, ...], device: str) -> dict[str, Any]:
    from angioseg import methods as registry

    key = (methods_, device)
    if key not in _WORKER_SEGMENTERS:
        _WORKER_SEGMENTERS[key] = {name: registry.get_from_spec(name, device=device) for name in methods_}
    return _WORKER_SEGMENTERS[key]


@dataclass(frozen=True)
class _CaseResult:
    """One case's scores: {method: (metrics, seconds)} and the flicker of its reference masks."""

    name: str
    frames: int
    methods: dict[str, tuple[dict[str, float], float]]
    reference_flicker: float


def reference_flicker(masks, *, flow_backward, frames, label: int | None) -> float:
    """Flicker of the ground-truth masks themselves, the floor a method's flicker is read
    against: contrast inflow and wash-out change the true masks between frames, and a method
    whose flicker is below this one misses those changes rather than being steadier."""
    from angioseg.eval.temporal import temporal_flicker

    truth = masks.labels == label if label is not None else masks.labels > 0
    return temporal_flicker(truth, flow_backward=flow_backward, frames=frames)


def evaluate_case(task: _CaseTask) -> _CaseResult:
    """Every method's metrics and time on one case, and the reference masks' own flicker."""
    case_name, video, masks, flow = load_case(task.data, task.index)
    if flow is None and video.num_frames > 1:  # estimated once for every method's flicker
        from angioseg.eval.temporal import estimate_backward_flow

        flow = estimate_backward_flow(video.frames)
    floor = reference_flicker(masks, flow_backward=flow, frames=video.frames, label=task.label)
    results: dict[str, tuple[dict[str, float], float]] = {}
    for name, segmenter in _segmenters(task.methods, task.device).items():
        start = time.perf_counter()
        result = segmenter.segment(video)
        seconds = time.perf_counter() - start
        metrics = score(result, masks, flow_backward=flow, frames=video.frames, label=task.label, frames_scored=task.frames_scored)
        metrics["flicker_gap"] = abs(metrics["flicker"] - floor)
        results[name] = (metrics, seconds)
    return _CaseResult(case_name, video.num_frames, results, floor)


def _start_worker(threads: int) -> None:
    """Process-pool initialiser: each of the `jobs` workers gets its share of the CPU threads."""
    import torch

    torch.set_num_threads(threads)


def _run_cases(tasks: list[_CaseTask], jobs: int) -> Iterator[_CaseResult]:
    """Results of `tasks` in their order: in this process (jobs = 1) or in `jobs` spawned worker
    processes of max(1, CPUs // jobs) torch threads each."""
    if jobs == 1 or len(tasks) <= 1:
        yield from map(evaluate_case, tasks)
        return
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context, initializer=_start_worker,
                             initargs=(threads,)) as pool:
        yield from pool.map(evaluate_case, tasks)


def evaluate_methods(methods_: list[str], data: Path, *, device: str, label: int | None, limit: int | None,
                     frames_scored: str = "all", jobs: int = 1) -> dict[str, Any]:
    """Run every method on every case; returns {"methods": {name: {...}}, "data": ...}.

    With `jobs` > 1 the cases are shared among that many worker processes; a method's
    "seconds" is then the sum of its per-case times (each worker runs on its share of the
    CPUs), so its throughput is per worker, not of the pool.
    """
    segmenters = _segmenters(tuple(methods_), device)  # also checks every spec before any work
    count = case_count(data, limit)
    tasks = [_CaseTask(data, index, tuple(methods_), device, label, frames_scored) for index in range(count)]
    cases: dict[str, dict[str, dict[str, float]]] = {name: {} for name in methods_}
    frames = {name: 0 for name in methods_}
    seconds = {name: 0.0 for name in methods_}
    reference: dict[str, float] = {}
    for case in tqdm(_run_cases(tasks, jobs), total=count, desc="evaluating", unit="video", disable=None):
        reference[case.name] = case.reference_flicker
        for name, (metrics, elapsed) in case.methods.items():
            cases[name][case.name] = metrics
            frames[name] += case.frames
            seconds[name] += elapsed
    per_method = {
        name: summarise_method(cases[name], frames=frames[name], seconds=seconds[name], options=segmenters[name].options())
        for name in methods_
    }
    return {"data": str(data), "cases": count, "target": f"label {label}" if label is not None else "foreground",
            "frames_scored": frames_scored, "jobs": jobs, "methods": per_method,
            "reference": {"flicker": _mean_and_std(reference)}}


def _mean_and_std(per_case: dict[str, float]) -> dict[str, Any]:
    """{"cases", "mean", "std"} (population std, `angioseg.eval.summarise`) of per-case values."""
    from angioseg.eval import summarise

    mean, std = summarise({"value": v} for v in per_case.values()).get("value", (0.0, 0.0))
    return {"cases": per_case, "mean": mean, "std": std}


def markdown_report(report: dict[str, Any]) -> str:
    from angioseg.eval import markdown_table

    rows = {name: {m: (v["mean"], v["std"]) for m, v in entry["summary"].items()} for name, entry in report["methods"].items()}
    table = markdown_table(rows, metrics=[m for m in TABLE_METRICS if any(m in r for r in rows.values())])
    floor = report.get("reference", {}).get("flicker")
    reference_line = (f"Flicker of the reference masks themselves (contrast inflow and wash-out change them): "
                      f"{floor['mean']:.3f} ± {floor['std']:.3f}.\n\n" if floor else "")
    speeds = ", ".join(f"{name} {entry['frames_per_second']:.1f}" for name, entry in report["methods"].items() if entry["frames_per_second"])
    return (
        f"Data: `{report['data']}` ({report['cases']} videos), target: {report['target']}, "
        f"frames scored: {report.get('frames_scored', 'all')}.\n\n"
        f"{table}\n{reference_line}Throughput (frames/s): {speeds}.\n"
    )


def run(args: argparse.Namespace) -> int:
    from angioseg.options import check_device
    from angioseg.io.atomic import atomic_file

    if args.limit is not None and args.limit <= 0:
        raise InputError(f"--limit must be a positive integer, got {args.limit}")
    if args.jobs <= 0:
        raise InputError(f"--jobs must be a positive integer, got {args.jobs}")
    device = check_device(args.device)
    report = evaluate_methods(args.method, args.data, device=device, label=args.label, limit=args.limit,
                              frames_scored=args.frames_scored, jobs=args.jobs)
    json_path, md_path = report_paths(args.out)
    markdown = markdown_report(report)
    with atomic_file(json_path) as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=float) + "\n")
    with atomic_file(md_path) as tmp:
        tmp.write_text(markdown)
    print(markdown)
    print(f"report: {json_path} and {md_path}")
    return 0
