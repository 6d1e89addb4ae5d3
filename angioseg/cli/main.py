"""The `angioseg` command line: `angioseg VERB ...`.

Every verb validates its input first; a bad input ends with one line on stderr naming the
problem and exit code 2 (`InputError`), never a traceback or a partial output.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from angioseg import __version__
from angioseg.errors import InputError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`angioseg: error: ...`) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    from angioseg.cli import (
        data_commands,
        demo_command,
        evaluate_command,
        flow_command,
        info_command,
        methods_command,
        segment_command,
        train_command,
    )

    parser = OneLineArgumentParser(
        prog="angioseg",
        description="Segment vessels, catheters and lesions in X-ray angiography videos.",
    )
    parser.add_argument("--version", action="version", version=f"angioseg {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=OneLineArgumentParser)
    verbs.required = True
    info_command.register(verbs)
    data_commands.register(verbs)
    segment_command.register(verbs)
    evaluate_command.register(verbs)
    methods_command.register(verbs)
    train_command.register(verbs)
    demo_command.register(verbs)
    flow_command.register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 2 bad input, 130 interrupted)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.run(args) or 0)
    except InputError as error:
        message = " ".join(str(error).split())
        print(f"angioseg: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("angioseg: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
