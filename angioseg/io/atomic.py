"""Atomic outputs: nothing half-written is ever left at the target path.

Every writer writes into a temporary sibling (same folder, so the final rename stays on one
file system) and renames it onto the target only once everything succeeded. On any error the
temporary is removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target`.

    The temporary keeps the target's suffix, so encoders that choose a format by extension
    (PNG, MP4, NPZ) still see it. The final file gets the usual permissions (0666 less the
    umask), not the private 0600 of a temporary file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder beside `target`; on success it becomes `target`.

    An existing `target` is replaced only after the new folder is complete (with
    `overwrite=False` an existing non-empty target is an error before any work starts).
    """
    from angioseg.errors import InputError

    target = Path(target)
    if target.exists() and not target.is_dir():
        raise InputError(f"output {target} exists and is not a folder")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise InputError(f"output folder {target} exists and is not empty")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_current_umask())
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            old.rmdir()
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
