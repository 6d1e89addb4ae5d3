"""`angioseg train MODEL --data DIR [--data DIR ...] --out DIR`: train a supervised segmenter.

The best model by validation Dice is written to OUT/best.safetensors with the command and
data that trained it; OUT/checkpoint.pt lets `--resume` continue an interrupted run.

`angioseg train ltdnet --data DIR --out RUN --variant V` trains DSA-LTDNet or one of its
ablations (`angioseg.methods.ltdnet.training`) on DSA runs labelled {liver, tumour}; it writes
RUN/weights.safetensors. Its options: --variant, --pretrain-steps, --size, --frame-step,
--width, --extra-frames, and the shared --steps, --batch, --lr (default 1e-3 for ltdnet),
--seed, --val, --val-every, --limit, --threads, --resume; the others apply to the vessel models only.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from angioseg.cli.common import add_threads_option, non_negative_int, positive_int
from angioseg.errors import InputError


def register(verbs: argparse._SubParsersAction) -> None:
    from angioseg.methods.supervised.weights import MODEL_SPECS

    from angioseg.methods.ltdnet.weights import VARIANTS

    parser = verbs.add_parser("train", help="train a supervised segmenter on DAVIS-style folders")
    parser.add_argument("model", choices=sorted([*MODEL_SPECS, "ltdnet"]),
                        help="model to train (ltdnet: DSA liver-tumour segmentation, see --variant)")
    parser.add_argument("--data", action="append", default=[], type=Path, help="training folder (DAVIS-style, or images/ + masks/ stills); repeatable")
    parser.add_argument("--rough-data", action="append", default=[], type=Path,
                        help="training folder whose mask outlines are approximate (e.g. ARCADE polygons): pixels within --ignore-band of them do not count in the loss; repeatable")
    parser.add_argument("--ignore-band", type=non_negative_int, default=2,
                        help="pixels on each side of a rough outline left out of the loss (default 2)")
    parser.add_argument("--val", action="append", default=[], type=Path, help="validation folder (DAVIS-style); repeatable")
    parser.add_argument("--out", required=True, type=Path, help="run folder: checkpoint, best weights, summary")
    parser.add_argument("--steps", type=positive_int, default=2000, help="optimiser steps (default 2000)")
    parser.add_argument("--batch", type=positive_int, default=8, help="samples per step (default 8)")
    parser.add_argument("--crop", type=positive_int, default=256, help="square crop size (default 256)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="adam (default) or sgd (the 3D-2D paper: lr 2e-4)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default 2e-3; ltdnet 1e-3, the paper's)")
    parser.add_argument("--weight-decay", type=float, default=1e-5, help="L2 weight regularisation (default 1e-5)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    add_threads_option(parser)
    parser.add_argument("--val-every", type=positive_int, default=200, help="validate every K steps (default 200)")
    parser.add_argument("--limit", type=positive_int, default=None, help="use the first K sequences of each folder")
    parser.add_argument("--augment", choices=("basic", "site"), default="basic",
                        help="basic: flips, rotations, gamma, noise; site: also rescale, collimator, burnt-in text, blur, JPEG (default basic)")
    parser.add_argument("--static-fraction", type=float, default=0.0, help="share of samples that are stills (one frame repeated)")
    parser.add_argument("--slow-fraction", type=float, default=0.0, help="share of samples played at half speed")
    parser.add_argument("--loss", choices=("dice", "dice+bce"), default="dice", help="training loss (default dice)")
    parser.add_argument("--label-style", choices=("all", "syntax"), default="all",
                        help="what the training masks mark, recorded in the weights: all (every contrast-filled vessel, default) or syntax (ARCADE's major segments)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from these weights (same model; fine-tuning), recorded in the new file")
    ltdnet = parser.add_argument_group("ltdnet (DSA liver tumours)")
    ltdnet.add_argument("--variant", choices=list(VARIANTS), default="ltdnet",
                        help="network of the paper's Tables 1-2 (default ltdnet, the full DSA-LTDNet)")
    ltdnet.add_argument("--pretrain-steps", type=non_negative_int, default=500,
                        help="steps of TDL pre-training against the frame difference, for ffs+tdl and ltdnet (default 500)")
    ltdnet.add_argument("--size", type=positive_int, default=256, help="network input size, square (default 256)")
    ltdnet.add_argument("--frame-step", type=positive_int, default=9, help="frame difference between frames k-S and k (default 9)")
    ltdnet.add_argument("--width", choices=("lite", "paper"), default="lite", help="first-level channels: lite 8, paper 64 (default lite)")
    ltdnet.add_argument("--extra-frames", type=non_negative_int, default=2,
                        help="frames after the key frame added as samples with its masks (default 2, the paper's)")
    parser.set_defaults(run=run)


def run_ltdnet(args: argparse.Namespace) -> int:
    from angioseg.methods.ltdnet.training import LTDNetTrainConfig, train

    if not args.data or args.rough_data:
        raise InputError("ltdnet trains on --data folders of DSA runs (--rough-data is for the vessel models)")
    lr = 1e-3 if args.lr is None else args.lr
    if lr <= 0:
        raise InputError("--lr must be > 0")
    config = LTDNetTrainConfig(
        variant=args.variant, data=[str(p) for p in args.data], val=[str(p) for p in args.val], out=str(args.out),
        steps=args.steps, pretrain_steps=args.pretrain_steps, batch=args.batch, size=args.size, frame_step=args.frame_step,
        width=args.width, lr=lr, extra_frames=args.extra_frames, seed=args.seed, threads=args.threads,
        val_every=args.val_every, limit=args.limit,
        command="angioseg " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    summary = train(config, resume=args.resume)
    print(f"trained ltdnet variant {args.variant} for {summary['steps']} steps in {summary['seconds']:.0f} s -> {summary['weights']}")
    return 0


def run(args: argparse.Namespace) -> int:
    from angioseg.methods.supervised.training import TrainConfig, train

    if args.model == "ltdnet":
        return run_ltdnet(args)
    if not args.data and not args.rough_data:
        raise InputError("give training data with --data or --rough-data")
    if args.lr is None:
        args.lr = 2e-3
    if args.lr <= 0 or args.weight_decay < 0:
        raise InputError("--lr must be > 0 and --weight-decay >= 0")
    config = TrainConfig(
        model=args.model, data=[str(p) for p in args.data], val=[str(p) for p in args.val], out=str(args.out),
        steps=args.steps, batch=args.batch, crop=args.crop, optimizer=args.optimizer, lr=args.lr,
        weight_decay=args.weight_decay, seed=args.seed, threads=args.threads, val_every=args.val_every,
        checkpoint_every=args.val_every, limit=args.limit, init=str(args.init) if args.init else None,
        augment=args.augment, static_fraction=args.static_fraction, slow_fraction=args.slow_fraction, loss=args.loss,
        label_style=args.label_style, rough_data=[str(p) for p in args.rough_data], ignore_band=args.ignore_band,
        command="angioseg " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    summary = train(config, resume=args.resume)
    best = summary["best_val_dice"]
    print(f"trained {args.model} for {summary['steps']} steps in {summary['seconds']:.0f} s"
          + (f", best validation Dice {best:.4f}" if best is not None else "") + f" -> {summary['weights']}")
    return 0
