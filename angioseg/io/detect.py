"""`read_video`: one entry point that recognises the input by its content, and `describe`.

Files are sniffed by their first bytes: 'DICM' at offset 128 (DICOM), ``\\x93NUMPY`` (npy),
``PK\\x03\\x04`` / ``PK\\x05\\x06`` (npz), PNG / JPEG / BMP / TIFF signatures (images). Anything
else is tried with FFmpeg (PyAV) and as DICOM without a preamble, in the order its first bytes
and suffix make more likely. A folder is a series of images or of DICOM files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from angioseg.errors import InputError
from angioseg.io.arrays import UnrecognisedFormatError, read_array
from angioseg.io.dicom import DICOM_SUFFIXES, is_dicom_candidate, read_dicom, read_dicom_folder
from angioseg.io.images import IMAGE_SUFFIXES, list_image_files, read_image_file, read_image_folder
from angioseg.io.video_file import read_video_file
from angioseg.types import Video

_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (128, b"DICM", "dicom"),
    (0, b"\x93NUMPY", "npy"),
    (0, b"PK\x03\x04", "npz"),
    (0, b"PK\x05\x06", "npz"),  # an empty zip archive (np.savez with no arrays)
    (0, b"\x89PNG\r\n\x1a\n", "image"),
    (0, b"\xff\xd8\xff", "image"),
    (0, b"BM", "image"),
    (0, b"II*\x00", "image"),
    (0, b"MM\x00*", "image"),
)
# First two bytes of a preamble-less DICOM stream: group 0x0002 or 0x0008, little endian.
_DICOM_GROUPS = (b"\x02\x00", b"\x08\x00")


def sniff(head: bytes) -> str | None:
    """Kind of a file from its first 132 bytes: 'dicom', 'npy', 'npz', 'image' or None."""
    for offset, signature, kind in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return kind
    return None


def _head(path: Path) -> bytes:
    """First 132 bytes; InputError for an unreadable or empty file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not head:
        raise InputError(f"{path} is empty (0 bytes)")
    return head


def _guess_order(path: Path, head: bytes) -> list[Callable[[Path], Video]]:
    """Readers to try for a file without a known signature, most likely first."""
    dicom_first = head[:2] in _DICOM_GROUPS or path.suffix.lower() in DICOM_SUFFIXES
    return [read_dicom, read_video_file] if dicom_first else [read_video_file, read_dicom]


def _read_unknown(path: Path, head: bytes) -> Video:
    """Try FFmpeg and preamble-less DICOM; a reader that recognises the file but finds it bad
    raises at once, and if none recognises it the file is reported as unrecognised."""
    for reader in _guess_order(path, head):
        try:
            return reader(path)
        except UnrecognisedFormatError:
            continue
    what = "DICOM" if path.suffix.lower() in DICOM_SUFFIXES else "video, image, array or DICOM"
    raise InputError(f"{path} is not a recognised {what} file (unknown or corrupt content)")


def _read_file(path: Path) -> Video:
    """Dispatch a file on its signature."""
    head = _head(path)
    kind = sniff(head)
    if kind == "dicom":
        return read_dicom(path)
    if kind in ("npy", "npz"):
        return read_array(path)
    if kind == "image":
        return read_image_file(path)
    return _read_unknown(path, head)


def _read_folder(folder: Path) -> Video:
    """A folder of images, or of DICOM files when it holds no images."""
    try:
        entries = [e for e in folder.iterdir() if e.is_file() and not e.name.startswith(".")]
    except OSError as exc:
        raise InputError(f"{folder} cannot be listed: {exc.strerror or exc}") from None
    if list_image_files(folder):
        return read_image_folder(folder)
    dicoms = [e for e in entries if is_dicom_candidate(e)]
    if dicoms:
        return read_dicom_folder(folder, dicoms)
    kinds = ", ".join(s[1:] for s in IMAGE_SUFFIXES + (".dcm",))
    raise InputError(f"{folder} contains no images or DICOM files ({kinds})")


def read_video(path: str | os.PathLike[str]) -> Video:
    """Read any supported input into a `Video` (frames `(T, H, W)` float32 in [0, 1]).

    Decides by content: DICOM (single/multi-frame, with or without preamble), npy/npz arrays,
    PNG/JPEG/BMP/TIFF images (multi-page TIFF = many frames), any video FFmpeg decodes, or a
    folder of images / single-frame DICOM files. Every bad input raises InputError naming it.
    metadata holds at least 'source_kind', 'bit_depth' and 'source_name'.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        return _read_folder(path)
    if not path.is_file():
        raise InputError(f"{path} is not a regular file or folder")
    return _read_file(path)


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read `path` with `read_video` and summarise it (backs ``angioseg info``).

    Returns {"path", "source_kind", "frames", "height", "width", "fps", "bit_depth",
    "pixel_spacing", ...every other metadata entry}.
    """
    video = read_video(path)
    summary: dict[str, Any] = {
        "path": str(path),
        "source_kind": video.metadata.get("source_kind"),
        "frames": video.num_frames,
        "height": video.height,
        "width": video.width,
        "fps": video.fps,
        "bit_depth": video.metadata.get("bit_depth"),
        "pixel_spacing": video.pixel_spacing,
    }
    for key, value in video.metadata.items():
        summary.setdefault(key, value)
    return summary
