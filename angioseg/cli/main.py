"""The `angioseg` command line: `angioseg VERB ...`.

Every verb validates its input first; a bad input ends with one line on stderr naming the
problem and exit code 2 (`InputError`), never a traceback or a partial output. The verbs only
parse arguments, call `angioseg.pipelines` (or the layer that owns the work) and print.

Before a verb runs: the thread count of every verb that computes is set once for torch, BLAS
and OpenCV (``--threads``, else the cores idle now: `angioseg.threads`), and SIGTERM becomes
SystemExit, so an atomic writer removes its temporary folder on the way out.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Sequence

from angioseg import __version__
from angioseg.errors import InputError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`angioseg: error: ...`) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    from angioseg.cli import (
        batch_command,
        data_commands,
        demo_command,
        evaluate_command,
        export_command,
        flow_command,
        hcc_command,
        info_command,
        methods_command,
        propagate_command,
        segment_command,
        serve_command,
        train_command,
    )

    parser = OneLineArgumentParser(
        prog="angioseg",
        description="Segment vessels, catheters and lesions in X-ray angiography videos.",
    )
    parser.add_argument("--version", action="version", version=f"angioseg {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=OneLineArgumentParser)
    verbs.required = True
    for module in (info_command, data_commands, segment_command, propagate_command, evaluate_command, methods_command,
                   train_command, demo_command, flow_command, hcc_command, serve_command, export_command,
                   batch_command):
        module.register(verbs)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_TERMINATED)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 2 bad input, 130 interrupted,
    143 terminated)."""
    from angioseg.threads import apply_threads

    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if hasattr(args, "threads"):
            args.threads = apply_threads(args.threads)
        return int(args.run(args) or 0)
    except InputError as error:
        message = " ".join(str(error).split())
        print(f"angioseg: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("angioseg: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`angioseg methods | head`): nothing left to say
        sys.stderr.close()
        return 0
    except OSError as error:  # a file the user named cannot be read or written; a bug keeps its traceback
        if error.filename is None:
            raise
        print(f"angioseg: error: {error.filename}: {error.strerror or 'cannot be used'} ({type(error).__name__})",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
