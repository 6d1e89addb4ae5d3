"""Encoding frames and masks for the browser, and decoding the masks it sends back.

Frames go out as 8-bit grey PNGs, optionally windowed (`window_level`). Label maps go out
and masks come in as run-length encodings (RLE) or base64 PNGs.

RLE: a JSON object ``{"size": [H, W], "values": [v0, v1, ...], "counts": [n0, n1, ...]}``:
the pixels in row-major order are ``n0`` times ``v0``, then ``n1`` times ``v1``, and so on
(every count >= 1, the counts summing to H x W). A binary mask is the same with values 0 / 1.

PNG: ``{"png": "<base64>"}``, the frame's size; for a binary mask a pixel is set where its
alpha (when the image has one) or its grey / palette value is above half (alpha) or above 0.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any, Mapping

import numpy as np
from PIL import Image

from angioseg.errors import InputError

#: Largest label id a label map may carry (label PNGs are 8-bit).
MAX_LABEL = 255


def frame_png(frame: np.ndarray, *, center: float | None = None, width: float | None = None) -> bytes:
    """An `(H, W)` float frame in [0, 1] as an 8-bit grey PNG, windowed when `center` and
    `width` (in the frame's [0, 1] units) are given."""
    image = window_level(frame, center, width) if center is not None or width is not None else frame
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    return png_bytes(Image.fromarray(pixels, mode="L"))


def window_level(frame: np.ndarray, center: float | None, width: float | None) -> np.ndarray:
    """Map [center - width/2, center + width/2] to [0, 1], clipping outside (defaults 0.5, 1)."""
    center = 0.5 if center is None else float(center)
    width = 1.0 if width is None else float(width)
    if not (np.isfinite(center) and np.isfinite(width)) or width <= 0:
        raise InputError("window width must be a positive number and the level a finite one")
    return np.clip((np.asarray(frame, dtype=np.float32) - (center - width / 2.0)) / width, 0.0, 1.0)


def label_png(labels: np.ndarray) -> bytes:
    """An `(H, W)` label map (ids 0..255) as an 8-bit grey PNG whose value is the id."""
    return png_bytes(Image.fromarray(np.asarray(labels, dtype=np.uint8), mode="L"))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def encode_rle(labels: np.ndarray) -> dict[str, Any]:
    """The RLE (module docstring) of an `(H, W)` integer array."""
    flat = np.asarray(labels).ravel()
    if flat.size == 0:
        return {"size": list(labels.shape), "values": [], "counts": []}
    starts = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1])
    counts = np.diff(np.concatenate([starts, [flat.size]]))
    return {"size": [int(s) for s in labels.shape], "values": flat[starts].astype(int).tolist(), "counts": counts.tolist()}


def decode_rle(rle: Mapping[str, Any], shape: tuple[int, int]) -> np.ndarray:
    """`(H, W)` int32 array from an RLE; InputError unless it is well formed and of `shape`."""
    try:
        size = tuple(int(s) for s in rle["size"])
        values = np.asarray(rle["values"], dtype=np.int64)
        counts = np.asarray(rle["counts"], dtype=np.int64)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise InputError('an RLE mask needs "size", "values" and "counts" lists of integers') from None
    if size != tuple(shape):
        raise InputError(f"the mask is {list(size)} but the frames are {list(shape)} (height, width)")
    if values.ndim != 1 or values.shape != counts.shape:
        raise InputError("an RLE mask needs as many values as counts")
    if counts.size and (counts.min() < 1 or counts.sum() != shape[0] * shape[1]):
        raise InputError(f"the RLE counts must be >= 1 and sum to {shape[0] * shape[1]} pixels")
    if counts.size == 0 and shape[0] * shape[1]:
        raise InputError("the RLE mask is empty")
    if values.size and (values.min() < 0 or values.max() > MAX_LABEL):
        raise InputError(f"RLE values must lie in 0..{MAX_LABEL}")
    return np.repeat(values, counts).astype(np.int32).reshape(shape)


def decode_png(data: str, shape: tuple[int, int], *, binary: bool) -> np.ndarray:
    """`(H, W)` int32 array from a base64 PNG (a data: URL prefix is allowed): the mask
    (`binary`: 0 / 1, see the module docstring) or the label ids (grey or palette index)."""
    text = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        raw = base64.b64decode(text, validate=True)
        image = Image.open(io.BytesIO(raw))
        if image.format != "PNG":
            raise InputError("the mask is not a PNG image")
        if (image.height, image.width) != tuple(shape):
            raise InputError(f"the mask is {[image.height, image.width]} but the frames are {list(shape)} (height, width)")
        image.load()
    except InputError:
        raise
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError, SyntaxError):
        raise InputError("the mask is not a readable base64 PNG image") from None
    return _png_values(image, binary=binary)


def _png_values(image: Image.Image, *, binary: bool) -> np.ndarray:
    if binary and ("A" in image.getbands() or "transparency" in image.info):
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
        return (alpha > 127).astype(np.int32)
    if image.mode in ("P", "L", "1", "I;16", "I"):
        values = np.asarray(image).astype(np.int64)
    else:
        values = np.asarray(image.convert("L")).astype(np.int64)
    if binary:
        return (values > 0).astype(np.int32)
    if values.size and (values.min() < 0 or values.max() > MAX_LABEL):
        raise InputError(f"label ids in the PNG must lie in 0..{MAX_LABEL}")
    return values.astype(np.int32)


def decode_mask(payload: Mapping[str, Any], shape: tuple[int, int], *, binary: bool) -> np.ndarray:
    """A mask sent as ``{"rle": {...}}`` or ``{"png": "<base64>"}`` (InputError otherwise)."""
    if isinstance(payload.get("rle"), Mapping):
        array = decode_rle(payload["rle"], shape)
        return (array > 0).astype(np.int32) if binary else array
    if isinstance(payload.get("png"), str):
        return decode_png(payload["png"], shape, binary=binary)
    raise InputError('a mask is {"rle": {"size", "values", "counts"}} or {"png": "<base64 PNG>"}')
