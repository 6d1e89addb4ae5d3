"""`angioseg evaluate`: run methods on a labelled data set, one table of every metric.

The data is a DAVIS-style folder (`JPEGImages/`, `Annotations/`, optional `Motion/`) or an
image + mask folder (`DIR/images`, `DIR/masks`, each image a one-frame video). Every method
sees the same videos; the metrics compare the predicted foreground with the ground-truth
foreground (every label > 0) unless `--label` names one label id.

Writes REPORT.json (per sequence and summary) and REPORT.md (mean ± std, side by side).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from angioseg.errors import InputError

TABLE_METRICS = [
    "dice", "cldice", "nsd", "jaccard", "sensitivity", "specificity", "accuracy",
    "auroc", "auprc", "davis_jf", "flicker", "empty_clean", "dice_all_frames",
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
    parser.set_defaults(run=run)


def iterate_cases(data: Path, limit: int | None) -> tuple[int, Iterator[Any]]:
    """(count, iterator of (name, video, masks, flow_backward)) for either data layout."""
    from angioseg.data.datasets import ImageMaskFolder
    from angioseg.data.davis import DavisFolder

    if (data / "JPEGImages").is_dir():
        folder = DavisFolder(data)
        names = folder.names[:limit] if limit else folder.names

        def davis_cases():
            for name in names:
                sequence = folder.load(name)
                if sequence.masks is None:
                    raise InputError(f"sequence {name} in {data} has no annotations to evaluate against")
                yield name, sequence.video, sequence.masks, sequence.flow_backward

        return len(names), davis_cases()
    if (data / "images").is_dir() and (data / "masks").is_dir():
        pairs = ImageMaskFolder(data / "images", data / "masks")
        count = min(len(pairs), limit) if limit else len(pairs)

        def image_cases():
            for index in range(count):
                pair = pairs.load(index)
                yield pair.name, pair.video, pair.masks, None

        return count, image_cases()
    raise InputError(f"{data} is neither a DAVIS-style folder (JPEGImages/) nor an image + mask folder (images/, masks/)")


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


def evaluate_methods(methods_: list[str], data: Path, *, device: str, label: int | None, limit: int | None,
                     frames_scored: str = "all") -> dict[str, Any]:
    """Run every method on every case; returns {"methods": {name: {...}}, "data": ...}."""
    from angioseg import methods as registry

    segmenters = {name: registry.get_from_spec(name, device=device) for name in methods_}
    cases: dict[str, dict[str, dict[str, float]]] = {name: {} for name in methods_}
    frames = {name: 0 for name in methods_}
    seconds = {name: 0.0 for name in methods_}
    count, iterator = iterate_cases(data, limit)
    for case_name, video, masks, flow in tqdm(iterator, total=count, desc="evaluating", unit="video", disable=None):
        for name, segmenter in segmenters.items():
            start = time.perf_counter()
            result = segmenter.segment(video)
            seconds[name] += time.perf_counter() - start
            frames[name] += video.num_frames
            cases[name][case_name] = score(result, masks, flow_backward=flow, frames=video.frames, label=label,
                                           frames_scored=frames_scored)
    per_method = {
        name: summarise_method(cases[name], frames=frames[name], seconds=seconds[name], options=segmenters[name].options())
        for name in methods_
    }
    return {"data": str(data), "cases": count, "target": f"label {label}" if label is not None else "foreground",
            "frames_scored": frames_scored, "methods": per_method}


def markdown_report(report: dict[str, Any]) -> str:
    from angioseg.eval import markdown_table

    rows = {name: {m: (v["mean"], v["std"]) for m, v in entry["summary"].items()} for name, entry in report["methods"].items()}
    table = markdown_table(rows, metrics=[m for m in TABLE_METRICS if any(m in r for r in rows.values())])
    speeds = ", ".join(f"{name} {entry['frames_per_second']:.1f}" for name, entry in report["methods"].items() if entry["frames_per_second"])
    return (
        f"Data: `{report['data']}` ({report['cases']} videos), target: {report['target']}, "
        f"frames scored: {report.get('frames_scored', 'all')}.\n\n"
        f"{table}\n\nThroughput (frames/s): {speeds}.\n"
    )


def run(args: argparse.Namespace) -> int:
    from angioseg.options import check_device
    from angioseg.io.atomic import atomic_file

    if args.limit is not None and args.limit <= 0:
        raise InputError(f"--limit must be a positive integer, got {args.limit}")
    device = check_device(args.device)
    report = evaluate_methods(args.method, args.data, device=device, label=args.label, limit=args.limit,
                              frames_scored=args.frames_scored)
    json_path, md_path = report_paths(args.out)
    markdown = markdown_report(report)
    with atomic_file(json_path) as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=float) + "\n")
    with atomic_file(md_path) as tmp:
        tmp.write_text(markdown)
    print(markdown)
    print(f"report: {json_path} and {md_path}")
    return 0
