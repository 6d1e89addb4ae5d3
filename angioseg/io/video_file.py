"""Ordinary video files (mp4, avi, wmv, mkv, mov... anything FFmpeg decodes) via PyAV.

Reading turns each decoded frame into RGB (RGB48 for pixel formats deeper than 8 bits) and
then luminance in [0, 1]. Writing encodes uint8 grey or RGB frames; encoders need even frame
sizes for 4:2:0 chroma, so an odd height or width gets one extra row or column (a copy of the
last one) at the bottom or right; it is not removed on reading.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from angioseg.errors import InputError
from angioseg.io.arrays import UnrecognisedFormatError, luminance, make_video, one_line
from angioseg.io.atomic import atomic_file
from angioseg.types import Video

#: Container format for each writable suffix.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".wmv": "asf"}
#: Encoders tried, in order, for codec="auto".
AUTO_CODECS = {
    ".mp4": ("libx264", "mpeg4"),
    ".m4v": ("libx264", "mpeg4"),
    ".mov": ("libx264", "mpeg4"),
    ".mkv": ("libx264", "mpeg4"),
    ".avi": ("mpeg4", "mjpeg"),
    ".wmv": ("wmv2",),
}
_AV_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError, UnicodeDecodeError)


def has_encoder(name: str) -> bool:
    """Whether this FFmpeg build can encode with codec `name`."""
    try:
        av.codec.Codec(name, "w")
    except (ValueError, av.FFmpegError):
        return False
    return True


# ----------------------------------------------------------------------------- reading


def _bits_of(frame: av.VideoFrame) -> int:
    """Bits per component of a decoded frame's pixel format (8 when unknown)."""
    try:
        return max(int(component.bits) for component in frame.format.components) or 8
    except (ValueError, AttributeError):
        return 8


def frame_to_unit(frame: av.VideoFrame) -> tuple[np.ndarray, int]:
    """One decoded frame -> (float32 `(H, W)` luminance in [0, 1], bit depth).

    Y = 0.299 R + 0.587 G + 0.114 B of rgb24 / 255, or of rgb48le / 65535 when deeper than 8 bits.
    """
    bits = _bits_of(frame)
    if bits > 8:
        rgb, top = frame.to_ndarray(format="rgb48le"), 65535.0
    else:
        rgb, top = frame.to_ndarray(format="rgb24"), 255.0
    return np.clip(luminance(rgb) / top, 0.0, 1.0).astype(np.float32), bits


def _stream_fps(stream: Any) -> float | None:
    """stream.average_rate, else stream.guessed_rate, as float; None when unknown."""
    for rate in (stream.average_rate, getattr(stream, "guessed_rate", None)):
        if rate:
            value = float(rate)
            if np.isfinite(value) and value > 0:
                return value
    return None


def _decode_all(path: Path, container: Any, stream: Any) -> tuple[list[np.ndarray], int]:
    """Decode every frame of `stream`; errors and size changes become InputError."""
    frames: list[np.ndarray] = []
    bits = 8
    try:
        for frame in container.decode(stream):
            unit, frame_bits = frame_to_unit(frame)
            if frames and unit.shape != frames[0].shape:
                raise InputError(f"{path} changes frame size mid-stream from {frames[0].shape} to {unit.shape}")
            frames.append(unit)
            bits = max(bits, frame_bits)
    except _AV_ERRORS as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path} could not be decoded after {len(frames)} frames: {one_line(exc)}") from None
    return frames, bits


def read_video_file(path: str | os.PathLike[str]) -> Video:
    """Decode a video file with PyAV into a `Video` with frames `(T, H, W)` float32 in [0, 1].

    Uses the first video stream; fps from its average (else guessed) rate. Raises
    `UnrecognisedFormatError` when FFmpeg cannot open the file and InputError when it has no
    video stream or no decodable frames.
    """
    path = Path(path)
    try:
        container = av.open(str(path), mode="r")
    except _AV_ERRORS as exc:
        raise UnrecognisedFormatError(f"{path} is not a video file FFmpeg can open: {one_line(exc)}") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames, bits = _decode_all(path, container, stream)
        if not frames:
            raise InputError(f"{path} has a video stream but no decodable frames")
        meta = {
            "source_kind": "video",
            "source_name": path.name,
            "bit_depth": bits,
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.format.name if stream.codec_context.format else None,
            "container": container.format.name,
        }
        fps = _stream_fps(stream)
    return make_video(path, np.stack(frames), fps=fps, metadata=meta)


# ----------------------------------------------------------------------------- writing


def _as_uint8_frames(frames: np.ndarray) -> np.ndarray:
    """Validate `(T, H, W)` / `(T, H, W, 3)` frames; float in [0, 1] becomes round(x * 255)."""
    frames = np.asarray(frames)
    if not (frames.ndim == 3 or (frames.ndim == 4 and frames.shape[-1] == 3)) or 0 in frames.shape:
        raise InputError(f"video frames must be (T, H, W) or (T, H, W, 3); got shape {frames.shape}")
    if np.issubdtype(frames.dtype, np.floating):
        frames = np.round(np.clip(np.nan_to_num(frames), 0.0, 1.0) * 255.0)
    elif frames.dtype != np.uint8:
        raise InputError(f"video frames must be uint8 (or float in [0, 1]); got {frames.dtype}")
    return frames.astype(np.uint8, copy=False)


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """Pad `(T, H, W[, 3])` with one copied bottom row / right column where H / W is odd."""
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if not (pad_h or pad_w):
        return frames
    widths = [(0, 0), (0, pad_h), (0, pad_w)] + [(0, 0)] * (frames.ndim - 3)
    return np.pad(frames, widths, mode="edge")


def choose_codec(path: Path, codec: str) -> str:
    """The encoder for `path`: the first available of `AUTO_CODECS` for "auto", else `codec`."""
    suffix = path.suffix.lower()
    if suffix not in CONTAINERS:
        raise InputError(f"{path} has an unsupported video suffix; use one of {', '.join(sorted(CONTAINERS))}")
    candidates = AUTO_CODECS[suffix] if codec == "auto" else (codec,)
    for name in candidates:
        if has_encoder(name):
            return name
    raise InputError(f"cannot write {path}: this FFmpeg build has no {' or '.join(candidates)} encoder")


def _open_stream(container: Any, codec: str, fps: float, height: int, width: int) -> Any:
    """Add and configure the output video stream (yuv420p; yuvj420p for mjpeg)."""
    stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
    stream.height, stream.width = height, width
    stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    if codec == "libx264":
        stream.options = {"crf": "18", "preset": "medium"}
    else:
        stream.bit_rate = int(max(2_000_000, height * width * fps * 1.5))
    return stream


def _encode(target: Path, frames: np.ndarray, codec: str, fps: float, container_format: str) -> None:
    """Encode `(T, H, W[, 3])` uint8 even-sized frames into `target`."""
    layout = "gray" if frames.ndim == 3 else "rgb24"
    with av.open(str(target), mode="w", format=container_format) as container:
        stream = _open_stream(container, codec, fps, frames.shape[1], frames.shape[2])
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=layout)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_video_file(frames: np.ndarray, path: str | os.PathLike[str], *, fps: float, codec: str = "auto") -> str:
    """Encode uint8 frames `(T, H, W)` (grey) or `(T, H, W, 3)` (RGB) into a video file. Atomic.

    codec "auto": H.264 (libx264, yuv420p, crf 18) for .mp4/.m4v/.mov/.mkv, falling back to
    MPEG-4 part 2 ('mpeg4'); 'mpeg4' (else 'mjpeg') for .avi; 'wmv2' for .wmv. Odd sizes are
    padded by one row/column (see the module docstring). Returns the encoder name used.
    """
    path = Path(path)
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(f"cannot write {path}: fps must be a positive number; got {fps!r}")
    chosen = choose_codec(path, codec)
    data = pad_to_even(_as_uint8_frames(frames))
    with atomic_file(path) as tmp:
        try:
            _encode(tmp, data, chosen, fps, CONTAINERS[path.suffix.lower()])
        except av.FFmpegError as exc:
            raise InputError(f"cannot write {path} with the {chosen} encoder: {one_line(exc)}") from None
    return chosen
