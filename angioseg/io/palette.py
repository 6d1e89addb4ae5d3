"""Colour tables: the DAVIS / PASCAL VOC label palette and the overlay display colours."""

from __future__ import annotations

import numpy as np


def davis_palette(size: int = 256) -> np.ndarray:
    """The DAVIS (PASCAL VOC) palette, `(size, 3)` uint8.

    Bit-interleaving rule: for label i, bit 3k of i sets bit (7 - k) of red, bit 3k + 1 of
    green and bit 3k + 2 of blue. So 1 = (128, 0, 0), 2 = (0, 128, 0), 3 = (128, 128, 0),
    4 = (0, 0, 128), 5 = (128, 0, 128)...
    """
    palette = np.zeros((size, 3), dtype=np.uint8)
    for index in range(size):
        value, rgb = index, [0, 0, 0]
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        palette[index] = rgb
    return palette


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


#: The standard 256-entry DAVIS palette, `(256, 3)` uint8 (read-only).
DAVIS_PALETTE: np.ndarray = _read_only(davis_palette())

#: Overlay colours (RGB) by label id: bright and distinct on grey X-ray frames.
OVERLAY_COLOURS: dict[int, tuple[int, int, int]] = {
    1: (255, 60, 60),  # vessel: red
    2: (0, 230, 255),  # catheter: cyan
    3: (255, 230, 0),  # yellow
    4: (60, 230, 60),  # green
    5: (255, 60, 255),  # magenta
    6: (255, 150, 0),  # orange
    7: (90, 140, 255),  # blue
    8: (180, 255, 120),  # lime
}


def overlay_colour(label: int) -> tuple[int, int, int]:
    """RGB for `label` (>= 1), cycling through `OVERLAY_COLOURS` beyond its last id."""
    count = len(OVERLAY_COLOURS)
    return OVERLAY_COLOURS[(int(label) - 1) % count + 1]
