"""Connected components of `(T, H, W)` mask stacks, per frame (8-connectivity within a frame,
never across frames): labelling, small-component removal, hysteresis growing and keeping the
components that touch a seed mask.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from angioseg.errors import InputError

__all__ = ["drop_small_components", "hysteresis", "keep_touching", "label_per_frame"]

#: 8-connectivity within a frame, none across frames (labels a `(T, H, W)` stack at once).
EIGHT_IN_FRAME = np.zeros((3, 3, 3), dtype=bool)
EIGHT_IN_FRAME[1] = True


def _stack(masks: np.ndarray, name: str = "masks") -> np.ndarray:
    array = np.asarray(masks)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise InputError(f"{name} must be (T, H, W) or (H, W); got shape {array.shape}")
    return array.astype(bool, copy=False)


def label_per_frame(masks: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of bool `(T, H, W)` within each frame: `(T, H, W)` int labels
    (0 = background, 1..count numbered over the whole stack) and their count."""
    return ndi.label(_stack(masks), structure=EIGHT_IN_FRAME)


def _select(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Bool stack of the components whose entry of `keep` (indexed by label) is True."""
    keep[0] = False
    return keep[labels]


def drop_small_components(masks: np.ndarray, min_pixels: int) -> np.ndarray:
    """Bool `(T, H, W)`: `masks` without its components of fewer than `min_pixels` pixels;
    `min_pixels` <= 1 keeps every component (a copy)."""
    stack = _stack(masks)
    if min_pixels <= 1:
        return stack.copy()
    labels, count = label_per_frame(stack)
    if count == 0:
        return np.zeros(stack.shape, dtype=bool)
    return _select(labels, np.bincount(labels.ravel(), minlength=count + 1) >= min_pixels)


def keep_touching(masks: np.ndarray, seeds: np.ndarray, *, min_pixels: int = 1) -> np.ndarray:
    """Bool `(T, H, W)`: the components of `masks` that hold at least one pixel of `seeds` in
    the same frame and have at least `min_pixels` pixels.

    Hysteresis is this with `seeds` = a stricter mask (`hysteresis`); keeping the components
    that a prior touches is this with `seeds` = the prior.
    """
    stack, seed = _stack(masks), _stack(seeds, "seeds")
    if seed.shape != stack.shape:
        raise InputError(f"seeds {seed.shape} do not match masks {stack.shape}")
    labels, count = label_per_frame(stack)
    if count == 0:
        return np.zeros(stack.shape, dtype=bool)
    keep = np.zeros(count + 1, dtype=bool)
    keep[np.unique(labels[seed & stack])] = True
    if min_pixels > 1:
        keep &= np.bincount(labels.ravel(), minlength=count + 1) >= min_pixels
    return _select(labels, keep)


def hysteresis(values: np.ndarray, *, low: float, high: float, min_pixels: int = 1, strict: bool = False) -> np.ndarray:
    """Bool `(T, H, W)` hysteresis threshold (region growing) per frame: the 8-connected
    components of {v >= low} that hold a pixel with v >= high, with at least `min_pixels`
    pixels. `strict` compares with > instead of >= (v > low, v > high)."""
    array = np.asarray(values)
    if strict:
        return keep_touching(array > low, array > high, min_pixels=min_pixels)
    return keep_touching(array >= low, array >= high, min_pixels=min_pixels)
