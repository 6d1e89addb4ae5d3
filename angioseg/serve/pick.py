"""Click to pick: the vessel under a click, from one frame's vesselness response.

The frame is equalised (CLAHE) and filtered (Sato or Frangi at the scales for its size, as the
`sato` / `frangi` methods do, `angioseg.vessel`); the response is scaled by its 99.9th
percentile to [0, 1] and thresholded (Otsu over the frame unless a threshold is given). The
pick is the 8-connected component of the thresholded response that holds the clicked pixel;
a click that misses a vessel by a few pixels snaps to the strongest vessel pixel within
`SNAP_RADIUS`.
"""

from __future__ import annotations

import numpy as np

from angioseg.errors import InputError

FILTERS = ("sato", "frangi")
#: How far (pixels) a click may miss the thresholded vessel and still pick it.
SNAP_RADIUS = 6
_SCALE_PERCENTILE = 99.9


def vesselness_response(frame: np.ndarray, filter_name: str, *, device: str = "cpu") -> np.ndarray:
    """`(H, W)` vesselness of one frame in [0, 1] (module docstring)."""
    from angioseg.vessel import frangi, sato
    from angioseg.vessel.enhance import clahe, frame_scales

    if filter_name not in FILTERS:
        raise InputError(f"the pick filter must be one of {', '.join(FILTERS)}; got {filter_name!r}")
    image = clahe(np.asarray(frame, dtype=np.float32)[None])
    sigmas = frame_scales(*image.shape[1:])
    raw = (sato if filter_name == "sato" else frangi)(image, sigmas=sigmas, device=device)[0]
    scale = float(np.percentile(raw, _SCALE_PERCENTILE)) or float(raw.max()) or 1.0
    return np.clip(raw / scale, 0.0, 1.0).astype(np.float32)


def pick_component(response: np.ndarray, x: int, y: int, *, threshold: float | None = None) -> np.ndarray:
    """`(H, W)` bool: the component of ``response > threshold`` under pixel (x, y), snapped
    (module docstring); all False when no vessel lies within reach of the click."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    height, width = response.shape
    if not (0 <= x < width and 0 <= y < height):
        raise InputError(f"the click ({x}, {y}) lies outside the {width} x {height} frame")
    if threshold is None:
        level = float(threshold_otsu(response)) if float(response.max()) > float(response.min()) else 1.0
    elif 0.0 < float(threshold) < 1.0:
        level = float(threshold)
    else:
        raise InputError(f"the pick threshold must lie in (0, 1); got {threshold}")
    vessels = response > level
    seed = _snap(vessels, response, x, y)
    if seed is None:
        return np.zeros_like(vessels)
    components, _ = ndimage.label(vessels, structure=np.ones((3, 3), dtype=bool))
    return components == components[seed]


def _snap(vessels: np.ndarray, response: np.ndarray, x: int, y: int) -> tuple[int, int] | None:
    """(row, column) of the clicked pixel when it is a vessel pixel, else of the strongest
    vessel pixel within `SNAP_RADIUS`, else None."""
    if vessels[y, x]:
        return y, x
    top, left = max(0, y - SNAP_RADIUS), max(0, x - SNAP_RADIUS)
    window = np.where(vessels[top : y + SNAP_RADIUS + 1, left : x + SNAP_RADIUS + 1],
                      response[top : y + SNAP_RADIUS + 1, left : x + SNAP_RADIUS + 1], -1.0)
    rows, cols = np.mgrid[top : top + window.shape[0], left : left + window.shape[1]]
    window[(rows - y) ** 2 + (cols - x) ** 2 > SNAP_RADIUS**2] = -1.0
    if window.max() < 0:
        return None
    row, col = np.unravel_index(int(np.argmax(window)), window.shape)
    return top + int(row), left + int(col)
