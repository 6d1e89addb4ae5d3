"""Receiving an uploaded run: streamed to a temporary file, the size cap checked as it comes.

The body is the file itself (``POST /api/upload?name=...``, any content type). A declared
Content-Length over the cap is refused with 413 before a byte is read; a body that grows past
the cap is refused with 413 the moment it does, and its partial file removed. Only the
suffix of the client's file name is kept (readers of video files use it); the file is named
by a random token and logged by the first 12 hex digits of its SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

from angioseg.errors import InputError

_SUFFIX = re.compile(r"\.([A-Za-z0-9]{1,8})$")


class UploadTooLarge(Exception):
    """The upload is over the cap."""


@dataclass
class Upload:
    """A stored upload: its file, size and short hash."""

    path: Path
    size: int
    digest: str


def upload_suffix(name: str | None) -> str:
    """The lower-case suffix of a client's file name (``.dcm``), or "" when it has none we keep."""
    match = _SUFFIX.search(name or "")
    return f".{match.group(1).lower()}" if match else ""


def check_declared_size(content_length: str | None, limit: int) -> None:
    """UploadTooLarge when a declared Content-Length is over `limit`."""
    if content_length and content_length.strip().isdigit() and int(content_length) > limit:
        raise UploadTooLarge()


async def store_upload(chunks: AsyncIterator[bytes], folder: Path, *, suffix: str, limit: int) -> Upload:
    """Write the streamed body to a new file in `folder`; UploadTooLarge past `limit` bytes,
    InputError for an empty body. No partial file is left behind on any error."""
    path = folder / f"{secrets.token_hex(8)}{suffix}"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "xb") as handle:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge()
                digest.update(chunk)
                handle.write(chunk)
        if size == 0:
            raise InputError("the upload is empty (0 bytes)")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Upload(path, size, digest.hexdigest()[:12])
