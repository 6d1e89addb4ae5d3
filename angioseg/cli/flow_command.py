"""`angioseg flow ...`: optical flow backends.

- `angioseg flow train --data DIR --out DIR [--config small] [--steps N] ...`: fit RAFT to the
  exact motion of phantom folders (`angioseg.flow.raft_training`).
- `angioseg flow evaluate --data DIR --backend dis --backend raft:weights=PATH [-o REPORT]`:
  end-point error of each backend against the exact motion (`angioseg.flow.evaluation`);
  prints a Markdown table and, with `-o`, writes REPORT.json and REPORT.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from angioseg.cli.common import add_device_option, add_threads_option, non_negative_int, positive_float, positive_int
from angioseg.errors import InputError


def register(verbs: argparse._SubParsersAction) -> None:
    flow = verbs.add_parser("flow", help="optical flow: train RAFT on phantoms, evaluate backends")
    commands = flow.add_subparsers(dest="flow_verb", metavar="COMMAND", parser_class=type(flow))
    commands.required = True
    _register_train(commands)
    _register_evaluate(commands)


def _register_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="fit RAFT to the exact motion of phantom folders")
    parser.add_argument("--data", action="append", required=True, type=Path, help="DAVIS-style folder with Motion/ (repeatable)")
    parser.add_argument("--out", required=True, type=Path, help="run folder: raft-<config>.safetensors, checkpoint, log")
    parser.add_argument("--config", choices=("small", "large"), default="small", help="RAFT configuration (default small)")
    parser.add_argument("--init", type=Path, default=None, help="start from these weights (authors' or torchvision .pth, or .safetensors)")
    parser.add_argument("--steps", type=positive_int, default=2000, help="optimiser steps (default 2000)")
    parser.add_argument("--batch", type=positive_int, default=4, help="frame pairs per step (default 4)")
    parser.add_argument("--crop", type=positive_int, default=256, help="square crop side, rounded down to a multiple of 8 (default 256)")
    parser.add_argument("--iterations", type=positive_int, default=12, help="RAFT update iterations (default 12)")
    parser.add_argument("--lr", type=positive_float, default=2e-4, help="peak learning rate (default 2e-4)")
    parser.add_argument("--weight-decay", type=float, default=1e-5, help="AdamW weight decay (default 1e-5)")
    parser.add_argument("--supervision", choices=("vessel", "dense"), default="vessel",
                        help="vessel: loss on vessel/catheter pixels only (default); dense: every pixel")
    parser.add_argument("--mask-dilation", type=non_negative_int, default=2, help="dilate the vessel mask by K px (default 2)")
    parser.add_argument("--no-flip", action="store_true", help="no random flips")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_threads_option(parser)
    parser.add_argument("--checkpoint-every", type=positive_int, default=500, help="write a checkpoint every K steps (default 500)")
    parser.add_argument("--limit", type=positive_int, default=None, help="use the first K sequences of each folder")
    parser.set_defaults(run=run_train)


def _register_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="end-point error of flow backends against exact motion")
    parser.add_argument("--data", required=True, type=Path, help="DAVIS-style folder with Motion/ (e.g. from 'angioseg data phantom')")
    parser.add_argument("--backend", action="append", required=True,
                        help="backend spec: dis, zero, or raft:weights=PATH[,config=large,iterations=12,batch=4]; repeatable")
    parser.add_argument("-o", "--out", type=Path, default=None, help="report path: writes REPORT.json and REPORT.md")
    parser.add_argument("--region", choices=("vessel", "all", "both"), default="both", help="pixels scored (default both)")
    parser.add_argument("--device", default="cpu", help="torch device for RAFT (default cpu)")
    parser.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first K sequences")
    add_threads_option(parser)
    parser.set_defaults(run=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from angioseg.flow.raft_training import train_raft

    if args.weight_decay < 0:
        raise InputError(f"--weight-decay must be >= 0, got {args.weight_decay}")
    result = train_raft(
        data=args.data, out=args.out, config=args.config, init=args.init, steps=args.steps, batch=args.batch,
        crop=args.crop, iterations=args.iterations, lr=args.lr, weight_decay=args.weight_decay,
        supervision=args.supervision, mask_dilation=args.mask_dilation, flip=not args.no_flip, seed=args.seed,
        device=args.device, checkpoint_every=args.checkpoint_every, limit=args.limit,
        command="angioseg " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    tail = result.losses[-50:]
    print(f"trained RAFT-{args.config} for {len(result.losses)} steps in {result.seconds:.0f} s, "
          f"final loss {sum(tail) / len(tail):.4f} -> {result.weights}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from angioseg.flow.evaluation import REGIONS, evaluate_backends, markdown_report
    from angioseg.pipelines.report import write_report

    regions = REGIONS if args.region == "both" else (args.region,)
    report = evaluate_backends(args.data, args.backend, regions=regions, device=args.device, limit=args.limit)
    markdown = markdown_report(report)
    print(markdown)
    if args.out is not None:
        json_path, md_path = write_report(report, args.out, markdown=markdown)
        print(f"report: {json_path} and {md_path}")
    return 0
