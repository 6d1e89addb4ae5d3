"""`angioseg methods`: list the segmentation methods: name, what each needs, label style, description."""

from __future__ import annotations

import argparse


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("methods", help="list the segmentation methods")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg.methods import available, method_class

    entries = available()
    width = max(len(name) for name, _ in entries)
    for name, description in entries:
        cls = method_class(name)
        needs = "one labelled frame" if cls.needs_prompt else ("shipped weights" if hasattr(cls, "weights_name") else "nothing")
        print(f"{name:<{width}}  {needs:<18}  {description}")
    return 0
