"""Paths a client names, resolved under the workspace root or refused.

A client names files by a path relative to ``--root``. Refused, before the file system is
touched (`PathRefused`, HTTP 400): NUL bytes, backslashes, absolute paths (``/x``, ``C:x``,
``//host``), ``..`` components, and any of these hidden behind one, two or three rounds of
URL encoding (``%2e%2e%2f``, ``%252e%252e``). Refused after resolution (HTTP 403): a path
whose real location (symbolic links followed) is not inside the root. Messages never repeat
the path, so they can be logged.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

#: How many rounds of URL decoding are inspected for a hidden traversal.
DECODE_ROUNDS = 3
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class PathRefused(Exception):
    """A client path that is not allowed: `status` 400 (malformed) or 403 (outside the root)."""

    status: int
    reason: str

    def __str__(self) -> str:
        return self.reason


def _decoded_forms(text: str) -> list[str]:
    """`text` and its URL-decoded forms (up to `DECODE_ROUNDS` rounds, until stable)."""
    forms = [text]
    for _ in range(DECODE_ROUNDS):
        decoded = unquote(forms[-1]) if "%" in forms[-1] else forms[-1]
        if decoded == forms[-1]:
            break
        forms.append(decoded)
    return forms


def malformed_reason(text: str) -> str | None:
    """Why the relative path `text` is refused before any look-up, or None when it is not."""
    for form in _decoded_forms(text):
        if "\x00" in form:
            return "a NUL byte in a path"
        if "\\" in form:
            return "a backslash in a path"
        if form.startswith("/") or _DRIVE.match(form):
            return "an absolute path"
        if ".." in form.split("/"):
            return "a parent-folder (..) component in a path"
    return None


def resolve_under_root(root: Path, text: str) -> Path:
    """The real path of `text` (relative to `root`, which must be resolved); raises
    `PathRefused` for a malformed path or one outside the root, FileNotFoundError when the
    path does not exist."""
    reason = malformed_reason(text)
    if reason is not None:
        raise PathRefused(400, reason)
    parts = [part for part in text.split("/") if part not in ("", ".")]
    candidate = root.joinpath(*parts)
    try:
        real = candidate.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError("no such file or folder under the root") from None
    except (OSError, RuntimeError):  # a symbolic-link loop, a name too long
        raise PathRefused(400, "a path that cannot be resolved") from None
    if not is_within(real, root):
        raise PathRefused(403, "a path that leads out of the root")
    return real


def is_within(path: Path, root: Path) -> bool:
    """Whether the resolved `path` is `root` or lies inside it."""
    return path == root or root in path.parents


def relative_name(path: Path, root: Path) -> str:
    """`path` relative to `root`, with forward slashes ("" for the root itself)."""
    relative = os.path.relpath(path, root)
    return "" if relative == "." else relative.replace(os.sep, "/")
