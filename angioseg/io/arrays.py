"""NumPy array inputs (``.npy`` / ``.npz``) and the small helpers every reader shares.

Helpers kept here (and imported by the other readers): `luminance`, `one_line`,
`make_video` and `UnrecognisedFormatError`.
"""

from __future__ import annotations

import os
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from angioseg.errors import InputError
from angioseg.io.atomic import atomic_file
from angioseg.types import Video

#: ITU-R BT.601 luma weights for (R, G, B).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

#: npz keys that may hold the frames, in order of preference.
FRAME_KEYS = ("frames", "video")
#: npz keys that hold side information rather than frames.
SIDE_KEYS = ("fps", "pixel_spacing")


#: What third-party parsers raise on corrupt or truncated bytes (caught at the library boundary).
CORRUPT_DATA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OSError,
    EOFError,
    SyntaxError,
    NotImplementedError,
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
    tokenize.TokenError,
)


class UnrecognisedFormatError(InputError):
    """The file is not in the format a reader expected (so `read_video` may try another)."""


def one_line(exc: BaseException, limit: int = 160) -> str:
    """First line of an exception's message, shortened, for embedding in one-sentence errors."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Luma of an `(..., 3)` or `(..., 4)` RGB(A) array: Y = 0.299 R + 0.587 G + 0.114 B.

    Alpha (a 4th channel) is ignored. Returns float32 with the input's scale, shape `(...)`.
    """
    rgb = np.asarray(rgb)
    red, green, blue = (rgb[..., i].astype(np.float32) for i in range(3))
    return (LUMA_WEIGHTS[0] * red + LUMA_WEIGHTS[1] * green + LUMA_WEIGHTS[2] * blue).astype(np.float32)


def make_video(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    *,
    fps: float | None = None,
    pixel_spacing: tuple[float, float] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Video:
    """Build a `Video` from `(T, H, W)` float frames in [0, 1], naming `path` in any error."""
    try:
        return Video(frames=frames, fps=fps, pixel_spacing=pixel_spacing, metadata=metadata or {})
    except InputError as exc:
        raise InputError(f"{path} does not hold a valid video: {one_line(exc)}") from None


def integer_to_unit(values: np.ndarray) -> np.ndarray:
    """Scale an integer or bool array to float32 in [0, 1] by the range of its dtype.

    Unsigned: x = v / max with max = iinfo(dtype).max (bool maps to 0/1). Signed: the whole
    range maps, x = (v - min) / (max - min) with min, max = iinfo(dtype), so negative values
    are kept (never clipped to 0).
    """
    if values.dtype == bool:
        return values.astype(np.float32)
    info = np.iinfo(values.dtype)
    low = float(info.min)
    return ((values.astype(np.float64) - low) / (float(info.max) - low)).astype(np.float32)


def _load(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """(frames array, side entries) of a .npy or .npz file, loaded without pickles; the file
    is closed before returning and any parse failure becomes an InputError."""
    try:
        with open(path, "rb") as handle:
            _check_npy_size(path, handle)
            data = np.load(handle, allow_pickle=False)
            if isinstance(data, np.ndarray):
                return data, {}
            with data:
                return _pick_npz_array(path, data)
    except InputError:
        raise
    except MemoryError:
        raise InputError(f"{path} declares an array too large for this machine's memory") from None
    except CORRUPT_DATA_ERRORS as exc:
        raise InputError(f"{path} is not a readable NumPy file: {one_line(exc)}") from None


def _check_npy_size(path: Path, handle: Any) -> None:
    """For a ``.npy`` stream: InputError when its header declares more bytes than the file
    holds (truncated, or a header claiming a huge array); the stream is rewound after."""
    if handle.read(6) != b"\x93NUMPY":
        handle.seek(0)
        return
    handle.seek(0)
    version = np.lib.format.read_magic(handle)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(handle)
    if not dtype.hasobject:
        needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
        held = os.fstat(handle.fileno()).st_size - handle.tell()
        if needed > held:
            raise InputError(f"{path} declares an array of shape {tuple(shape)} ({needed} bytes) but holds only "
                             f"{held} bytes of data (truncated, or a corrupt header)")
    handle.seek(0)


def _pick_npz_array(path: Path, data: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Return the frames array of an npz archive and its side entries (fps, pixel_spacing).

    Members that are not ``.npy`` arrays (other files in a zip) are ignored.
    """
    try:
        arrays = {key: data[key] for key in data.files}
    except CORRUPT_DATA_ERRORS as exc:
        raise InputError(f"{path} holds an unreadable array: {one_line(exc)}") from None
    except MemoryError:
        raise InputError(f"{path} declares an array too large for this machine's memory") from None
    arrays = {key: value for key, value in arrays.items() if isinstance(value, np.ndarray)}
    side = {key: arrays[key] for key in SIDE_KEYS if key in arrays}
    for key in FRAME_KEYS:
        if key in arrays:
            return arrays[key], side
    rest = [key for key in arrays if key not in SIDE_KEYS]
    if not rest:
        raise InputError(f"{path} holds no arrays")
    if len(rest) > 1:
        raise InputError(f"{path} holds several arrays {rest} and none is named 'frames' or 'video'")
    return arrays[rest[0]], side


def _side_fps(path: Path, side: dict[str, Any]) -> float | None:
    """The optional scalar 'fps' entry of an npz archive."""
    if "fps" not in side:
        return None
    value = side["fps"]
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise InputError(f"{path} has an 'fps' entry that is not a single number")
    fps = float(value.reshape(-1)[0])
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(f"{path} has an invalid 'fps' entry {fps!r}")
    return fps


def _side_spacing(path: Path, side: dict[str, Any]) -> tuple[float, float] | None:
    """The optional `(row, col)` 'pixel_spacing' entry of an npz archive."""
    if "pixel_spacing" not in side:
        return None
    value = side["pixel_spacing"]
    if value.size != 2 or not np.issubdtype(value.dtype, np.number):
        raise InputError(f"{path} has a 'pixel_spacing' entry that is not two numbers")
    row, col = (float(v) for v in value.reshape(-1))
    if not (np.isfinite(row) and np.isfinite(col) and row > 0 and col > 0):
        raise InputError(f"{path} has an invalid 'pixel_spacing' entry ({row!r}, {col!r}): expected two positive "
                         "finite numbers")
    return row, col


def array_to_frames(path: Path, array: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Turn an array of shape `(H, W)`, `(T, H, W)` or `(T, H, W, 3|4)` into `(T, H, W)` in [0, 1].

    Integers (and bool) are divided by their dtype maximum; floats already in [0, 1] are kept,
    other floats are min-max rescaled, x = (v - min) / (max - min), and flagged
    ``rescaled=True`` in the returned metadata. RGB(A) becomes luminance.
    """
    meta: dict[str, Any] = {"bit_depth": 1 if array.dtype == bool else int(array.dtype.itemsize * 8)}
    if array.ndim == 2:
        array = array[None]
    colour = array.ndim == 4 and array.shape[-1] in (3, 4)
    if array.ndim != 3 and not colour:
        raise InputError(f"{path} holds an array of shape {array.shape}; expected (H, W), (T, H, W) or (T, H, W, 3|4)")
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        frames = integer_to_unit(array)
    elif np.issubdtype(array.dtype, np.floating):
        frames = _float_to_unit(path, array, meta)
    else:
        raise InputError(f"{path} holds an array of unsupported dtype {array.dtype}")
    if colour:
        frames = luminance(frames)
    return np.clip(frames, 0.0, 1.0).astype(np.float32), meta


def _float_to_unit(path: Path, array: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Floats kept when already in [0, 1], else min-max rescaled (meta['rescaled'] = True)."""
    if not np.isfinite(array).all():
        raise InputError(f"{path} holds NaN or infinite values")
    values = array.astype(np.float32)
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0:
        return values
    meta["rescaled"] = True
    if high == low:
        return np.zeros_like(values)
    return ((values.astype(np.float64) - low) / (high - low)).astype(np.float32)


def read_array(path: str | os.PathLike[str]) -> Video:
    """Read a ``.npy`` or ``.npz`` file into a `Video`.

    Accepted arrays: `(H, W)`, `(T, H, W)` or `(T, H, W, 3|4)` (RGB(A) -> luminance). An npz
    archive's frames come from key 'frames', else 'video', else its only array; an optional
    scalar 'fps' and a 2-vector 'pixel_spacing' are read too. Pickles are never loaded.
    """
    path = Path(path)
    array, side = _load(path)
    frames, meta = array_to_frames(path, array)
    meta.update(source_kind="array", source_name=path.name)
    return make_video(path, frames, fps=_side_fps(path, side), pixel_spacing=_side_spacing(path, side), metadata=meta)


def write_video_npz(video: Video, path: str | os.PathLike[str]) -> Path:
    """Write `video` as a compressed npz: 'frames' `(T, H, W)` float32, plus 'fps' and
    'pixel_spacing' when known. `read_array` reads it back unchanged. Atomic."""
    path = Path(path)
    entries: dict[str, np.ndarray] = {"frames": np.asarray(video.frames, dtype=np.float32)}
    if video.fps is not None:
        entries["fps"] = np.asarray(video.fps, dtype=np.float64)
    if video.pixel_spacing is not None:
        entries["pixel_spacing"] = np.asarray(video.pixel_spacing, dtype=np.float64)
    with atomic_file(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **entries)
    return path
