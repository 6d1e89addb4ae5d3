"""`angioseg methods`: list the segmentation methods with a one-line description each."""

from __future__ import annotations

import argparse


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("methods", help="list the segmentation methods")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg.methods import available

    entries = available()
    width = max(len(name) for name, _ in entries)
    for name, description in entries:
        print(f"{name:<{width}}  {description}")
    return 0
