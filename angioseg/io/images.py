"""Still images: single files, multi-page TIFF, folders of frames, and PNG frame writers."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from angioseg.errors import InputError
from angioseg.io.arrays import integer_to_unit, luminance, make_video
from angioseg.io.atomic import atomic_directory, only_files_with_suffix
from angioseg.types import Video

#: File suffixes (lower case) treated as images in a folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
_DIGITS = re.compile(r"(\d+)")


def _natural_parts(text: str) -> tuple[Any, ...]:
    """'f10b' -> ('f', 10, 'b'): text lower-cased, digit runs as ints (types alternate)."""
    return tuple(int(part) if i % 2 else part.lower() for i, part in enumerate(_DIGITS.split(text)))


def natural_sort_key(name: str | os.PathLike[str]) -> tuple[tuple[Any, ...], str, str]:
    """Sort key comparing digit runs as integers and text case-insensitively.

    'f2.png' < 'f10.png' < 'F11.png', and 'frame.png' < 'frame1.png' (the stem is compared
    before the extension). Ties (e.g. 'a1' and 'A01') fall back to the plain name so the order
    is total and deterministic. Accepts a name or a path (its basename is used).
    """
    text = os.path.basename(os.fspath(name))
    stem, dot, suffix = text.rpartition(".") if "." in text.lstrip(".") else (text, "", "")
    return _natural_parts(stem), (dot + suffix).lower(), text


def list_image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly in `folder` (png, jpg, jpeg, bmp, tif, tiff), natural name order.

    Hidden files (names starting with '.') and sub-folders are skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    files = [
        entry
        for entry in folder.iterdir()
        if not entry.name.startswith(".") and entry.suffix.lower() in IMAGE_SUFFIXES and entry.is_file()
    ]
    return sorted(files, key=natural_sort_key)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; a missing, unreadable or empty file is an InputError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not data:
        raise InputError(f"{path} is empty (0 bytes)")
    return data


def _check_png_complete(path: Path, data: bytes) -> None:
    """PNG files end with an IEND chunk; a file without one was cut short."""
    if data.startswith(_PNG_SIGNATURE) and _PNG_END not in data[-4096:]:
        raise InputError(f"{path} is a truncated PNG file (no IEND chunk at the end)")


def pixels_to_unit(path: Path, pixels: np.ndarray) -> np.ndarray:
    """OpenCV pixels `(H, W)`, `(H, W, 3)` BGR or `(H, W, 4)` BGRA -> float32 `(H, W)` in [0, 1].

    Integers are divided by their dtype maximum (uint8 / 255, uint16 / 65535), floats clipped
    to [0, 1]; colour becomes luminance Y = 0.299 R + 0.587 G + 0.114 B.
    """
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        pixels = pixels[..., 2::-1]  # BGR(A) -> RGB
    elif pixels.ndim != 2:
        raise InputError(f"{path} has an unsupported pixel layout {pixels.shape}")
    if np.issubdtype(pixels.dtype, np.integer):
        unit = integer_to_unit(pixels)
    elif np.issubdtype(pixels.dtype, np.floating):
        unit = np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    else:
        raise InputError(f"{path} has unsupported pixel type {pixels.dtype}")
    if unit.ndim == 3:
        unit = luminance(unit)
    return np.clip(unit, 0.0, 1.0).astype(np.float32)


@contextlib.contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (libpng / libjpeg print straight to
    it), restoring it afterwards; does nothing when descriptor 2 cannot be duplicated."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Keep decoder chatter about corrupt files (OpenCV's log, libtiff, libpng, libjpeg) off
    stderr for the duration of a decode, so a bad input yields just its one-line InputError.
    The previous OpenCV log level and stderr are restored afterwards."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        with _stderr_to_devnull():
            yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def _decode(path: Path, data: bytes) -> np.ndarray:
    """cv2.imdecode with IMREAD_UNCHANGED; failures become InputError."""
    try:
        with quiet_opencv():
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        pixels = None
    if pixels is None or pixels.size == 0:
        raise InputError(f"{path} is not a readable image (corrupt, truncated or unsupported)")
    return pixels


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one image as float32 `(H, W)` in [0, 1] (first page of a multi-page TIFF).

    uint8 / 255, uint16 / 65535, float clipped; RGB/RGBA -> luminance (alpha ignored).
    """
    path = Path(path)
    data = _read_bytes(path)
    _check_png_complete(path, data)
    return pixels_to_unit(path, _decode(path, data))


def _bits(pixels: np.ndarray) -> int:
    """Bits per sample of an OpenCV image."""
    return int(pixels.dtype.itemsize * 8)


def read_image_file(path: str | os.PathLike[str]) -> Video:
    """Read a single image as a 1-frame `Video`, or a multi-page TIFF as a many-frame one.

    Returns frames `(T, H, W)` float32 in [0, 1]; fps is None.
    """
    path = Path(path)
    data = _read_bytes(path)
    _check_png_complete(path, data)
    pages = _decode_pages(path, data)
    sizes = {page.shape[:2] for page in pages}
    if len(sizes) > 1:
        raise InputError(f"{path} holds pages of mixed sizes {sorted(sizes)}")
    frames = np.stack([pixels_to_unit(path, page) for page in pages])
    meta = {"source_kind": "images", "bit_depth": _bits(pages[0]), "source_name": path.name}
    return make_video(path, frames, metadata=meta)


def _decode_pages(path: Path, data: bytes) -> list[np.ndarray]:
    """All pages of a TIFF (cv2.imdecodemulti), or the single image of any other format."""
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        try:
            with quiet_opencv():
                ok, pages = cv2.imdecodemulti(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            ok, pages = False, []
        if ok and pages:
            return list(pages)
    return [_decode(path, data)]


def read_image_folder(folder: str | os.PathLike[str]) -> Video:
    """Read every image in `folder` (natural name order) as one frame each.

    Returns a `Video` with frames `(T, H, W)` float32 in [0, 1]; all images must share a size.
    """
    folder = Path(folder)
    files = list_image_files(folder)
    if not files:
        raise InputError(f"{folder} contains no images ({', '.join(s[1:] for s in IMAGE_SUFFIXES)})")
    frames: list[np.ndarray] = []
    bits = 8
    for file in files:
        data = _read_bytes(file)
        _check_png_complete(file, data)
        pixels = _decode(file, data)
        frame = pixels_to_unit(file, pixels)
        if frames and frame.shape != frames[0].shape:
            raise InputError(
                f"{file} is {frame.shape[1]}x{frame.shape[0]} pixels but earlier frames in {folder} are "
                f"{frames[0].shape[1]}x{frames[0].shape[0]} (frames of mixed sizes)"
            )
        frames.append(frame)
        bits = max(bits, _bits(pixels))
    meta = {"source_kind": "images", "bit_depth": bits, "source_name": folder.name, "files": len(files)}
    return make_video(folder, np.stack(frames), metadata=meta)


def frame_to_uint(frame: np.ndarray, bits: int) -> np.ndarray:
    """float `(H, W)` in [0, 1] -> uint8 (round(x * 255)) or uint16 (round(x * 65535))."""
    top = (1 << bits) - 1
    dtype = np.uint8 if bits == 8 else np.uint16
    return np.round(np.clip(frame, 0.0, 1.0) * top).astype(dtype)


def write_frame_pngs(video: Video, folder: str | os.PathLike[str], *, bits: int = 8) -> Path:
    """Write each frame of `video` (`(T, H, W)` in [0, 1]) as a grey PNG 00000.png, 00001.png...

    `bits` is 8 or 16. The folder is written atomically (replaced only when complete).
    """
    if bits not in (8, 16):
        raise InputError(f"PNG bit depth must be 8 or 16; got {bits}")
    folder = Path(folder)
    with atomic_directory(folder, replaceable=only_files_with_suffix(".png"), what="frame folder") as tmp:
        for index, frame in enumerate(video.frames):
            target = tmp / f"{index:05d}.png"
            ok, encoded = cv2.imencode(".png", frame_to_uint(frame, bits))
            if not ok:
                raise InputError(f"could not encode frame {index} for {folder}")
            target.write_bytes(encoded.tobytes())
    return folder
