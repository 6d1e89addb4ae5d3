"""`angioseg evaluate`: run methods on a labelled data set, one table of every metric
(`angioseg.pipelines.scoring.evaluate_methods`; see there for the data layouts and metrics).

Writes REPORT.json (per sequence and summary) and REPORT.md (mean ± std, side by side).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from angioseg.cli.common import add_device_option, add_threads_option, positive_int


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("evaluate", help="evaluate methods on a labelled data set")
    parser.add_argument("--method", action="append", required=True, help="method name or spec name:key=value,... (e.g. seq-cenet:k=2,motion=none); repeat for a side-by-side table")
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
    add_threads_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg.options import check_device
    from angioseg.pipelines import evaluate_methods, markdown_report, write_report
    from angioseg.pipelines.executors import LocalExecutor, ProcessExecutor
    from angioseg.threads import worker_threads

    device = check_device(args.device)
    executor = LocalExecutor() if args.jobs == 1 else ProcessExecutor(args.jobs, threads=worker_threads(args.jobs, total=args.threads))
    with _progress() as advance:
        report = evaluate_methods(args.method, args.data, device=device, label=args.label, limit=args.limit,
                                  frames_scored=args.frames_scored, executor=executor, progress=advance)
    markdown = markdown_report(report)
    json_path, md_path = write_report(report, args.out, markdown=markdown)
    print(markdown)
    print(f"report: {json_path} and {md_path}")
    return 0


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
