"""Label masks: DAVIS-style indexed PNG folders, label NPZ files and probability NPZ files.

NPZ files never hold pickles: the label table is stored as JSON text in a 0-d unicode array.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from angioseg.errors import InputError
from angioseg.io.arrays import CORRUPT_DATA_ERRORS, one_line
from angioseg.io.atomic import atomic_directory, atomic_file, only_files_with_suffix
from angioseg.io.images import list_image_files
from angioseg.io.palette import DAVIS_PALETTE
from angioseg.types import DEFAULT_LABELS, LabelMap

_PIL_ERRORS = (*CORRUPT_DATA_ERRORS, Image.DecompressionBombError)


# ----------------------------------------------------------------------------- PNG folders


def _check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """`(T, H, W)` integer labels in [0, 255] as uint8; anything else is an InputError."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.ndim != 3 or 0 in labels.shape:
        raise InputError(f"labels for {where} must be (T, H, W); got shape {labels.shape}")
    if labels.dtype == bool:
        return labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels for {where} must be integers; got {labels.dtype}")
    if labels.min() < 0 or labels.max() > 255:
        raise InputError(f"labels for {where} must lie in 0..255 for palette PNGs; got {labels.min()}..{labels.max()}")
    return labels.astype(np.uint8)


def palette_image(mask: np.ndarray) -> Image.Image:
    """A `(H, W)` uint8 mask as an indexed ('P') PIL image with the DAVIS palette."""
    height, width = mask.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
    image.putpalette(DAVIS_PALETTE.reshape(-1).tolist())
    return image


def write_label_pngs(labels: np.ndarray, folder: str | os.PathLike[str]) -> Path:
    """Write `(T, H, W)` integer labels (0..255) as indexed PNGs 00000.png, 00001.png... with
    the DAVIS palette. The folder is written atomically."""
    folder = Path(folder)
    masks = _check_labels(labels, str(folder))
    with atomic_directory(folder, replaceable=only_files_with_suffix(".png"), what="mask folder") as tmp:
        for index, mask in enumerate(masks):
            palette_image(mask).save(tmp / f"{index:05d}.png", format="PNG", optimize=False)
    return folder


def _open_image(path: Path) -> Image.Image:
    """Open and fully load an image with PIL; failures become InputError."""
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except _PIL_ERRORS as exc:
        raise InputError(f"{path} is not a readable mask image (corrupt or truncated): {one_line(exc)}") from None


def _grey_labels(path: Path, grey: np.ndarray) -> np.ndarray:
    """Grey mask -> labels: only {0, 255} means binary (>0 -> 1); otherwise values are labels."""
    values = np.unique(grey)
    if set(values.tolist()) <= {0, 255}:
        return (grey > 0).astype(np.uint8)
    if values.max() > 255 or values.min() < 0:
        raise InputError(f"{path} holds grey values up to {values.max()}, too large for label ids (0..255)")
    return grey.astype(np.uint8)


def _rgb_labels(path: Path, rgb: np.ndarray) -> np.ndarray:
    """RGB mask `(H, W, 3)` -> labels through the DAVIS palette (unknown colours are an error)."""
    rgb = rgb[..., :3].astype(np.uint8)
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return _grey_labels(path, rgb[..., 0])
    codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    palette = DAVIS_PALETTE.astype(np.int32)
    palette_codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    lookup = {int(code): index for index, code in reversed(list(enumerate(palette_codes)))}
    colours, inverse = np.unique(codes, return_inverse=True)
    unknown = [int(c) for c in colours if int(c) not in lookup]
    if unknown:
        r, g, b = unknown[0] >> 16, (unknown[0] >> 8) & 255, unknown[0] & 255
        raise InputError(f"{path} holds colour ({r}, {g}, {b}), which is not in the DAVIS palette")
    mapped = np.array([lookup[int(c)] for c in colours], dtype=np.uint8)
    return mapped[inverse.reshape(codes.shape)]


def read_label_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one mask image as `(H, W)` uint8 label ids.

    Indexed ('P') PNGs give their indices; grey masks with only {0, 255} become 0/1, other grey
    values are ids; RGB masks are mapped through the DAVIS palette (grey-looking RGB is grey).
    """
    path = Path(path)
    image = _open_image(path)
    if image.mode in ("P", "PA"):
        return np.asarray(image.getchannel(0), dtype=np.uint8)
    if image.mode in ("RGB", "RGBA"):
        return _rgb_labels(path, np.asarray(image))
    if image.mode in ("LA", "La"):
        image = image.getchannel(0)
    if image.mode == "1":
        return np.asarray(image, dtype=np.uint8)
    try:
        grey = np.asarray(image)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path} has an unsupported mask mode {image.mode}: {one_line(exc)}") from None
    if grey.ndim != 2:
        raise InputError(f"{path} has an unsupported mask layout {grey.shape}")
    return _grey_labels(path, grey)


def read_label_pngs(folder: str | os.PathLike[str]) -> np.ndarray:
    """Read a folder of mask images (natural name order) as `(T, H, W)` uint8 label ids."""
    folder = Path(folder)
    files = list_image_files(folder)
    if not files:
        raise InputError(f"{folder} contains no mask images")
    masks: list[np.ndarray] = []
    for file in files:
        mask = read_label_image(file)
        if masks and mask.shape != masks[0].shape:
            raise InputError(f"{file} has size {mask.shape} but earlier masks in {folder} have {masks[0].shape}")
        masks.append(mask)
    return np.stack(masks)


# ----------------------------------------------------------------------------- NPZ files


def _table_json(label_table: Mapping[int, str]) -> np.ndarray:
    """Label table as JSON text in a 0-d unicode array (no pickle needed to load it)."""
    return np.array(json.dumps({str(int(k)): str(v) for k, v in label_table.items()}, sort_keys=True))


def _parse_table(path: Path, entry: np.ndarray) -> dict[int, str]:
    """Inverse of `_table_json`."""
    try:
        table = json.loads(str(entry.reshape(()).item()))
        return {int(k): str(v) for k, v in table.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{path} has an unreadable 'label_table' entry: {one_line(exc)}") from None


def _load_npz(path: Path, required: str) -> dict[str, np.ndarray]:
    """All entries of an npz archive (no pickles); `required` must be among them."""
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    try:
        with np.load(path, allow_pickle=False) as data:
            entries = {key: np.asarray(data[key]) for key in data.files}
    except CORRUPT_DATA_ERRORS as exc:
        raise InputError(f"{path} is not a readable npz archive: {one_line(exc)}") from None
    if required not in entries:
        raise InputError(f"{path} has no '{required}' entry")
    return entries


def _save_npz(path: Path, entries: dict[str, np.ndarray]) -> Path:
    """np.savez_compressed through atomic_file."""
    with atomic_file(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **entries)
    return path


def write_labels_npz(label_map: LabelMap, path: str | os.PathLike[str]) -> Path:
    """Write 'labels' `(T, H, W)` (smallest unsigned dtype that fits) and 'label_table' (JSON). Atomic."""
    labels = np.asarray(label_map.labels)
    dtype = np.uint8 if labels.size == 0 or labels.max() <= 255 else np.uint16 if labels.max() <= 65535 else np.uint32
    entries = {"labels": labels.astype(dtype), "label_table": _table_json(label_map.label_table)}
    return _save_npz(Path(path), entries)


def read_labels_npz(path: str | os.PathLike[str]) -> LabelMap:
    """Read a `LabelMap` written by `write_labels_npz` (default table when none is stored)."""
    path = Path(path)
    entries = _load_npz(path, "labels")
    table = _parse_table(path, entries["label_table"]) if "label_table" in entries else dict(DEFAULT_LABELS)
    try:
        return LabelMap(labels=entries["labels"], label_table=table)
    except InputError as exc:
        raise InputError(f"{path} holds an invalid label map: {one_line(exc)}") from None


def write_probabilities_npz(
    probabilities: np.ndarray, path: str | os.PathLike[str], *, label_table: Mapping[int, str]
) -> Path:
    """Write probabilities `(T, H, W)` (foreground) or `(T, C, H, W)` (per class) as compressed
    float16 'probabilities' plus 'label_table' (JSON). Values must be finite in [0, 1]. Atomic."""
    path = Path(path)
    probs = np.asarray(probabilities)
    if probs.ndim not in (3, 4) or not np.issubdtype(probs.dtype, np.floating):
        raise InputError(
            f"probabilities for {path} must be float (T, H, W) or (T, C, H, W); got {probs.dtype} {probs.shape}"
        )
    if not np.isfinite(probs).all() or probs.min() < 0 or probs.max() > 1:
        raise InputError(f"probabilities for {path} must be finite values in [0, 1]")
    entries = {"probabilities": probs.astype(np.float16), "label_table": _table_json(label_table)}
    return _save_npz(path, entries)


def read_probabilities_npz(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[int, str]]:
    """Read (probabilities as float32 `(T, H, W)` or `(T, C, H, W)`, label table)."""
    path = Path(path)
    entries = _load_npz(path, "probabilities")
    table = _parse_table(path, entries["label_table"]) if "label_table" in entries else dict(DEFAULT_LABELS)
    return entries["probabilities"].astype(np.float32), table
