"""`angioseg serve [--host H] [--port P] [--root DIR] [--max-upload SIZE]`: the browser
workspace (`angioseg.serve`): browse and upload runs, segment, correct, propagate, download."""

from __future__ import annotations

import argparse
from pathlib import Path

from angioseg.cli.common import add_device_option, add_threads_option
from angioseg.errors import InputError


def upload_size(text: str) -> int:
    """An argparse type: a size such as 2GB (`angioseg.serve.server.parse_size`)."""
    from angioseg.serve.server import parse_size

    try:
        return parse_size(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 0..65535, got {text!r}")
    return value


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("serve", help="a local browser workspace: open runs, segment, correct, propagate, download")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only; any other prints a warning)")
    parser.add_argument("--port", type=port_number, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="the folder whose runs the page may open (default: the current folder); nothing outside it is served")
    parser.add_argument("--max-upload", type=upload_size, default="2GB", metavar="SIZE",
                        help="largest upload accepted, e.g. 500MB, 2GB, 1GiB (default 2GB)")
    add_device_option(parser)
    add_threads_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from angioseg.serve.server import run_server

    run_server(args.root, host=args.host, port=args.port, max_upload_bytes=args.max_upload, device=args.device,
               threads=args.threads)
    return 0
