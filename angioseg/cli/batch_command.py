"""`angioseg batch INPUT... -o OUT`: segment many runs, on Ray workers, resumable after a crash
(`angioseg.pipelines.batch`), and `angioseg batch --status OUT`: where a batch stands."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from angioseg.cli.common import add_device_option, add_threads_option, non_negative_int, positive_int
from angioseg.errors import InputError

#: Exit code of a batch that finished with failed runs (each recorded with its error line).
EXIT_SOME_FAILED = 1


def register(verbs: argparse._SubParsersAction) -> None:
    from angioseg.pipelines.segment import DEFAULT_METHOD

    parser = verbs.add_parser("batch", help="segment many runs into one folder (Ray workers; resumable after a crash)")
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="files, folders (searched recursively) or @list.txt (one path per line)")
    parser.add_argument("-o", "--out", type=Path, help="batch folder: new, empty, or an earlier batch to continue")
    parser.add_argument("--status", type=Path, metavar="OUT", help="print where the batch in OUT stands, then exit")
    parser.add_argument("--method", default=DEFAULT_METHOD, metavar="SPEC", help=f"method spec, as for 'angioseg segment' (default {DEFAULT_METHOD})")
    parser.add_argument("--workers", type=positive_int, default=1, metavar="N",
                        help="workers, each with its share of the threads (default 1: in this process; more need Ray)")
    parser.add_argument("--ray-address", metavar="ADDR", help="run on an existing Ray cluster (e.g. HEAD:6379 or auto)")
    parser.add_argument("--no-ray", action="store_true", help="never use Ray (one worker, in this process)")
    parser.add_argument("--retries", type=non_negative_int, default=2, metavar="K", help="retries of a failing run before it is recorded failed (default 2)")
    parser.add_argument("--retry-failed", action="store_true", help="also retry the runs an earlier batch recorded failed")
    parser.add_argument("--dicom-seg", action="store_true", help="also write a DICOM SEG into the bundle of every DICOM run")
    add_device_option(parser)
    add_threads_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.status is not None:
        if args.inputs or args.out:
            raise InputError("angioseg batch: --status OUT takes no INPUT and no -o")
        return _print_status(args.status)
    if not args.inputs or args.out is None:
        raise InputError("angioseg batch: give INPUT... and -o OUT (or --status OUT)")
    return _run_batch(args)


def _run_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from angioseg.pipelines.batch import run_batch

    progress = functools.partial(tqdm, desc="batch", unit="run", file=sys.stderr, disable=None, dynamic_ncols=True)
    result = run_batch(args.inputs, args.out, method=args.method, workers=args.workers,
                       use_ray=False if args.no_ray else None, ray_address=args.ray_address, retries=args.retries,
                       dicom_seg=args.dicom_seg, retry_failed=args.retry_failed, device=args.device,
                       threads=args.threads, progress=progress)
    if result.skipped:
        print(f"skipped {len(result.skipped)} file(s) that are no run (e.g. {result.skipped[0][0]})", file=sys.stderr)
    print(_counts_line(args.out, result.counts))
    _print_failures(result.failures)
    return EXIT_SOME_FAILED if result.failures else 0


def _print_status(out: Path) -> int:
    from angioseg.pipelines.batch import batch_status

    result = batch_status(out)
    print(_counts_line(out, result.counts))
    _print_failures(result.failures)
    return 0


def _counts_line(out: Path, counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return f"batch {out}: {total} runs: " + ", ".join(f"{count} {status}" for status, count in counts.items())


def _print_failures(failures: list[tuple[str, str]]) -> None:
    if failures:
        print("failed:")
        for name, error in failures:
            print(f"  {name}: {error}")
