"""Argument types and options shared by the verbs (one-line errors through argparse)."""

from __future__ import annotations

import argparse
import functools
from typing import Callable, Iterable

from tqdm import tqdm


def integer_at_least(minimum: int, kind: str) -> Callable[[str], int]:
    """An argparse type: an integer >= `minimum`, with a one-line message naming `kind`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {kind} integer, got {text!r}")
        return value

    return parse


positive_int = integer_at_least(1, "positive")
non_negative_int = integer_at_least(0, "non-negative")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def frame_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frame rate in frames per second, got {text!r}") from None
    if not 1.0 <= value <= 120.0:
        raise argparse.ArgumentTypeError(f"frame rate must lie in [1, 120] fps, got {text!r}")
    return value


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """`--threads N`: CPU threads for torch, NumPy's BLAS and OpenCV (`angioseg.threads`)."""
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for torch, BLAS and OpenCV (default: the cores idle now, at most all)")


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps (default cpu)")


def progress_bar() -> Callable[..., Iterable]:
    """tqdm, shown on a terminal only."""
    return functools.partial(tqdm, disable=None)
