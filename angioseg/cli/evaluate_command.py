"""`angioseg evaluate`: run methods on a labelled data set, one table of every metric
(`angioseg.pipelines.scoring.evaluate_methods`; see there for the data layouts and metrics).

Writes REPORT.json (per sequence and summary) and REPORT.md (mean ± std, side by side).
Propagation methods (they need a labelled frame) are scored by the protocol of
`angioseg.pipelines.propagation_eval` (``--protocol peak|early``, ``--unseen NAMES``); methods
that need no prompt join their table, scored on the objects they name.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from angioseg.cli.common import add_device_option, add_threads_option, positive_int
from angioseg.errors import InputError


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("evaluate", help="evaluate methods on a labelled data set")
    parser.add_argument("--method", action="append", default=[], help="method name or spec name:key=value,... (e.g. seq-cenet:k=2,motion=none); repeat for a side-by-side table")
    parser.add_argument("--methods", action="append", default=[], type=method_list, metavar="A,B,...",
                        help="several methods at once, comma-separated (a spec's own key=value options may follow it: "
                             "frangi,seq-cenet:k=2,motion=none); adds to --method")
    parser.add_argument("--data", required=True, type=Path, help="DAVIS-style folder, or a folder with images/ and masks/")
    parser.add_argument("-o", "--out", required=True, type=Path, help="report path: writes REPORT.json and REPORT.md")
    add_device_option(parser)
    parser.add_argument("--label", type=int, default=None, help="evaluate one label id instead of all foreground")
    parser.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first K sequences")
    parser.add_argument("--frames-scored", choices=("all", "with-target"), default="all",
                        help="all frames (default), or only frames whose ground truth has the target "
                             "(contrast-filled frames); empty-reference frames then give empty_clean")
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="worker processes sharing the cases (default 1); the threads are divided among them")
    parser.add_argument("--protocol", choices=("peak", "early"), default=None,
                        help="propagation methods (they need a labelled frame): prompt with the reference of the frame of "
                             "peak opacification (peak, the default for them) or of an early-injection frame (early); "
                             "scores DAVIS J, F, J&F per object on every other frame")
    parser.add_argument("--unseen", type=name_list, default=(), metavar="NAME,...",
                        help="label names of objects the propagation methods were not trained on (e.g. electrode,clip): "
                             "their mean is reported apart from the seen objects'")
    add_threads_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg.options import check_device
    from angioseg.pipelines import evaluate_methods, markdown_report, write_report
    from angioseg.pipelines.executors import LocalExecutor, ProcessExecutor
    from angioseg.threads import worker_threads

    methods = [*args.method, *(spec for group in args.methods for spec in group)]
    if not methods:
        raise InputError("evaluate: name the methods with --method NAME (repeatable) or --methods A,B")
    device = check_device(args.device)
    executor = LocalExecutor() if args.jobs == 1 else ProcessExecutor(args.jobs, threads=worker_threads(args.jobs, total=args.threads))
    with _progress() as advance:
        report = evaluate_methods(methods, args.data, device=device, label=args.label, limit=args.limit,
                                  frames_scored=args.frames_scored, executor=executor, progress=advance,
                                  protocol=args.protocol, unseen_labels=args.unseen)
    markdown = markdown_report(report)
    json_path, md_path = write_report(report, args.out, markdown=markdown)
    print(markdown)
    print(f"report: {json_path} and {md_path}")
    return 0


def method_list(text: str) -> list[str]:
    """`--methods` text -> method specs: split at commas, a piece of the form key=value (no
    colon) continuing the spec before it, so "a,b:k=2,m=x,c" -> ["a", "b:k=2,m=x", "c"]."""
    specs: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            raise argparse.ArgumentTypeError(f"empty method name in {text!r}")
        if specs and ":" in specs[-1] and "=" in piece and ":" not in piece:
            specs[-1] += "," + piece
        else:
            specs.append(piece)
    return specs


def name_list(text: str) -> tuple[str, ...]:
    """`--unseen` text -> label names (comma-separated, blanks dropped)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected label names such as electrode,clip, got {text!r}")
    return names


class _progress:
    """A tqdm bar (terminal only) fed by `evaluate_methods`' progress(done, total) calls."""

    def __enter__(self):
        from tqdm import tqdm

        self.bar = None

        def advance(done: int, total: int) -> None:
            if self.bar is None:
                self.bar = tqdm(total=total, desc="evaluating", unit="video", disable=None)
            self.bar.update(1)

        return advance

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
