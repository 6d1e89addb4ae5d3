"""`angioseg methods`: list the segmentation methods: name, what each needs, the label style
it segments ("all": every contrast-filled vessel; "syntax": ARCADE's major segments; the
classical filters and DeNVeR find every vessel they see, "all"), description."""

from __future__ import annotations

import argparse


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("methods", help="list the segmentation methods")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg.methods import available, method_class

    entries = available()
    width = max(len(name) for name, _ in entries)
    print(f"{'method':<{width}}  {'needs':<18}  {'labels':<7}  description")
    for name, description in entries:
        cls = method_class(name)
        needs = "one labelled frame" if cls.needs_prompt else ("shipped weights" if hasattr(cls, "weights_name") else "nothing")
        if cls.needs_prompt:
            style = "prompt"  # the objects of the labelled frame, whatever they are
        else:
            style = cls.shipped_label_style() if hasattr(cls, "shipped_label_style") and cls.is_ready() else "all"
        print(f"{name:<{width}}  {needs:<18}  {style:<7}  {description}")
    return 0
