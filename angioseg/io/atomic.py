"""Atomic outputs: nothing half-written is ever left at the target path, and nothing that
angioseg did not write is ever replaced.

Every writer writes into a temporary sibling (same folder, so the final rename stays on one
file system) and renames it onto the target only once everything succeeded. On any error,
KeyboardInterrupt or SIGTERM (the command line turns SIGTERM into SystemExit) the temporary
is removed and the target is untouched.

Folders (`atomic_directory`) are guarded further:

- an existing non-empty target is replaced only when the caller's `replaceable` test says it
  is the caller's own earlier output (by default: never); a file in its place is an error;
- the output location is checked before any work: parent creatable and writable, name short
  enough for the temporary's name;
- a lock file beside the target (``.NAME.lock``, `fcntl.flock`) makes a second writer to the
  same target fail at once instead of silently discarding one result;
- temporaries left by an earlier writer that died (``.NAME.*.tmp`` / ``.NAME.*.old``) are
  removed once the lock is held, since no live writer can own them then.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from angioseg.errors import InputError

#: Characters the temporary adds to a name: "." + name + "." + 8 random + ".tmp" / ".old".
_TEMPORARY_OVERHEAD = 14


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target`.

    The temporary keeps the target's suffix, so encoders that choose a format by extension
    (PNG, MP4, NPZ) still see it. The final file gets the usual permissions (0666 less the
    umask), not the private 0600 of a temporary file.
    """
    target = Path(target)
    _make_parent(target)
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


def _make_parent(target: Path) -> None:
    """Create `target`'s parent folder, or say in one line why it cannot be."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"cannot write {target}: a file stands where its folder {target.parent} should be") from None
    except OSError as error:
        raise InputError(f"cannot create the folder {target.parent} for {target}: {error.strerror}") from None


def check_output_location(target: str | os.PathLike[str]) -> Path:
    """Check, before any work, that a folder can be written at `target`: not a file, name short
    enough, parent (or its nearest existing ancestor) a writable folder. Returns the path."""
    target = Path(target)
    too_long = next((part for part in target.parts if len(os.fsencode(part)) > 255), None)
    if too_long is not None:
        raise InputError(f"output name {too_long[:40]}... is too long ({len(os.fsencode(too_long))} bytes; at most 255)")
    if target.exists() and not target.is_dir():
        raise InputError(f"output {target} exists and is not a folder")
    ancestor = next((p for p in (target.parent, *target.parent.parents) if p.exists()), None)
    if ancestor is None or not ancestor.is_dir():
        raise InputError(f"cannot write {target}: {ancestor} is not a folder")
    name_max = 255
    with contextlib.suppress(OSError, ValueError):
        name_max = os.pathconf(ancestor, "PC_NAME_MAX")
    if len(os.fsencode(target.name)) + _TEMPORARY_OVERHEAD > name_max:
        raise InputError(f"output name {target.name[:40]}... is too long ({len(os.fsencode(target.name))} bytes; at "
                         f"most {name_max - _TEMPORARY_OVERHEAD} here)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {target}: no permission to write in {ancestor}")
    return target


@contextlib.contextmanager
def output_lock(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on ``.NAME.lock`` beside `target` (InputError at once when another
    writer holds it); the lock file is removed on release."""
    import fcntl

    target = Path(target)
    lock_path = target.parent / f".{target.name}.lock"
    while True:
        try:
            handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise InputError(f"cannot write {target}: {error.strerror}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise InputError(f"another angioseg run is writing {target}; wait for it or choose another output") from None
        # The holder before us may have removed the file after we opened it: lock the live one.
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(handle).st_ino == os.stat(lock_path).st_ino:
                break
        os.close(handle)
    try:
        yield lock_path
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock_path.unlink()
        os.close(handle)


def remove_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Remove ``.NAME.*.tmp`` / ``.NAME.*.old`` folders beside `target` (call with the lock held)."""
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    for path in target.parent.glob(f".{target.name}.*"):
        if path.is_dir() and path.suffix in (".tmp", ".old") and path.name.count(".") >= 3:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def never(_: Path) -> bool:
    """The default `replaceable` test: no existing non-empty folder is replaced."""
    return False


def only_files_with_suffix(suffix: str) -> Callable[[Path], bool]:
    """A `replaceable` test: the folder holds nothing but files ending in `suffix`."""

    def test(folder: Path) -> bool:
        return all(p.is_file() and p.name.endswith(suffix) for p in folder.iterdir())

    return test


@contextlib.contextmanager
def atomic_directory(
    target: str | os.PathLike[str], *, replaceable: Callable[[Path], bool] = never, what: str = "output folder"
) -> Iterator[Path]:
    """Yield an empty temporary folder beside `target`; on success it becomes `target`.

    Checked before the caller does any work (module docstring): the location, the lock, and
    an existing non-empty `target`, which is replaced (only after the new folder is complete)
    when ``replaceable(target)`` is True and is an InputError otherwise.
    """
    target = check_output_location(target)
    if target.is_dir() and any(target.iterdir()) and not replaceable(target):
        raise InputError(f"{what} {target} is not empty and was not written by angioseg; choose a new or empty folder")
    _make_parent(target)
    with output_lock(target):
        remove_stale_temporaries(target)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        except OSError as error:
            if error.errno == errno.ENAMETOOLONG:
                raise InputError(f"output name {target.name[:40]}... is too long") from None
            raise InputError(f"cannot write {target}: {error.strerror}") from None
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
