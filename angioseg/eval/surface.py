"""Boundary-distance metrics: normalised surface Dice (NSD) and the 95th-percentile Hausdorff.

Surface (boundary) of a 2-D mask M, the convention of MONAI's ``get_mask_edges`` without
sub-voxels (``M XOR binary_erosion(M)`` with SciPy's default cross-shaped structure)::

    ∂M = { p ∈ M : at least one 4-neighbour of p is outside M }

where pixels beyond the image border count as outside M (so foreground touching the border is
surface there). Distances are Euclidean between pixel centres, in pixels or scaled by `spacing`
(row, column), computed with `scipy.ndimage.distance_transform_edt`.

Videos `(T, H, W)` are scored frame by frame (surfaces are 2-D) and the per-frame values are
averaged.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from angioseg.errors import InputError
from angioseg.eval.overlap import as_frames, as_mask, mask_pair

__all__ = ["hausdorff95", "nsd", "surface_distances", "surface_pixels"]

_CROSS = ndimage.generate_binary_structure(2, 1)


def surface_pixels(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a `(H, W)` mask, or of every frame of a `(T, H, W)` mask (bool).

    ∂M = M AND NOT erode(M) with the 4-neighbour cross, border value 0 (outside = background).
    """
    frames = as_frames(as_mask(mask))
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = _CROSS  # erode within each frame only
    edges = frames & ~ndimage.binary_erosion(frames, structure=structure, border_value=0)
    return edges[0] if np.ndim(mask) == 2 else edges


def _spacing(spacing: float | Sequence[float] | None) -> tuple[float, float]:
    if spacing is None:
        return (1.0, 1.0)
    values = np.atleast_1d(np.asarray(spacing, dtype=np.float64))
    if values.size == 1:
        values = np.repeat(values, 2)
    if values.size != 2 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise InputError(f"spacing must be one or two positive numbers (row, column); got {spacing!r}")
    return (float(values[0]), float(values[1]))


def _directed(edges_from: np.ndarray, edges_to: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Distance from every pixel of `edges_from` to the nearest pixel of `edges_to` (non-empty)."""
    distance = ndimage.distance_transform_edt(~edges_to, sampling=spacing)
    return distance[edges_from]


def surface_distances(
    pred: np.ndarray, gt: np.ndarray, *, spacing: float | Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For one `(H, W)` frame pair: (d(p, ∂G) for p ∈ ∂P, d(g, ∂P) for g ∈ ∂G), float64.

    When the target surface is empty every distance is +inf; an empty source gives an empty
    array. Exact: the distance transform runs on the bounding box of ∂P ∪ ∂G, which contains
    every surface pixel, so cropping changes no nearest-surface distance.
    """
    p, g = mask_pair(pred, gt)
    if p.shape[0] != 1:
        raise InputError(f"surface_distances takes one (H, W) frame; got shape {np.shape(pred)}")
    return _frame_distances(surface_pixels(p[0]), surface_pixels(g[0]), _spacing(spacing))


def _frame_distances(
    edges_pred: np.ndarray, edges_gt: np.ndarray, spacing: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    pred_any, gt_any = bool(edges_pred.any()), bool(edges_gt.any())
    if not pred_any or not gt_any:
        to_gt = np.full(np.count_nonzero(edges_pred), np.inf)
        to_pred = np.full(np.count_nonzero(edges_gt), np.inf)
        return to_gt, to_pred
    rows = np.flatnonzero((edges_pred | edges_gt).any(axis=1))
    cols = np.flatnonzero((edges_pred | edges_gt).any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    edges_pred, edges_gt = edges_pred[box], edges_gt[box]
    return _directed(edges_pred, edges_gt, spacing), _directed(edges_gt, edges_pred, spacing)


def nsd_frame(
    pred: np.ndarray, gt: np.ndarray, tolerance: float = 2.0, spacing: tuple[float, float] = (1.0, 1.0)
) -> float:
    """NSD of one `(H, W)` bool frame pair; see `nsd`."""
    edges_pred, edges_gt = surface_pixels(pred), surface_pixels(gt)
    total = np.count_nonzero(edges_pred) + np.count_nonzero(edges_gt)
    if total == 0:
        return 1.0
    to_gt, to_pred = _frame_distances(edges_pred, edges_gt, spacing)
    # MONAI compares float32 distances with the threshold in float32; do the same so that
    # thresholds like 1.4142135 ~ sqrt(2) decide identically.
    tau = np.float32(tolerance)
    within = np.count_nonzero(to_gt.astype(np.float32) <= tau) + np.count_nonzero(to_pred.astype(np.float32) <= tau)
    return float(within / total)


def nsd(
    pred: np.ndarray,
    gt: np.ndarray,
    tolerance: float = 2.0,
    *,
    spacing: float | Sequence[float] | None = None,
) -> float:
    """Normalised surface Dice at tolerance τ (pixels, or the units of `spacing`).

    NSD = (|{p ∈ ∂P : d(p, ∂G) ≤ τ}| + |{g ∈ ∂G : d(g, ∂P) ≤ τ}|) / (|∂P| + |∂G|)

    with ∂ the 4-neighbour inner boundary of the module docstring; d ≤ τ is decided on float32
    values (as MONAI does). This equals
    ``monai.metrics.compute_surface_dice`` (2-D, one-hot [background, foreground],
    ``class_thresholds=[τ]``, ``use_subvoxels=False``, Euclidean, same spacing).

    Empty cases: both masks empty -> 1 (MONAI returns NaN); exactly one empty -> 0 (as MONAI).
    `(T, H, W)` input: mean of the per-frame values.
    """
    tau = float(tolerance)
    if not np.isfinite(tau) or tau < 0:
        raise InputError(f"NSD tolerance must be a finite number >= 0; got {tolerance!r}")
    p, g = mask_pair(pred, gt)
    sampling = _spacing(spacing)
    return float(np.mean([nsd_frame(p[t], g[t], tau, sampling) for t in range(p.shape[0])]))


def hausdorff95(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    spacing: float | Sequence[float] | None = None,
    percentile: float = 95.0,
) -> float:
    """Percentile Hausdorff distance (symmetric), MONAI's ``compute_hausdorff_distance`` convention.

    HD_q = max(q-th percentile of {d(p, ∂G)}_{p ∈ ∂P}, q-th percentile of {d(g, ∂P)}_{g ∈ ∂G})
    with linear interpolation between order statistics (`np.percentile`, as `torch.quantile`).

    Empty cases: both masks empty -> 0.0 (MONAI: NaN); exactly one empty -> +inf (as MONAI).
    `(T, H, W)` input: mean of the per-frame values (+inf if any frame is +inf).
    """
    if not 0.0 <= float(percentile) <= 100.0:
        raise InputError(f"percentile must lie in [0, 100]; got {percentile!r}")
    p, g = mask_pair(pred, gt)
    sampling = _spacing(spacing)
    values = []
    for t in range(p.shape[0]):
        edges_pred, edges_gt = surface_pixels(p[t]), surface_pixels(g[t])
        if not edges_pred.any() and not edges_gt.any():
            values.append(0.0)
            continue
        to_gt, to_pred = _frame_distances(edges_pred, edges_gt, sampling)
        if np.isinf(to_gt).any() or np.isinf(to_pred).any():
            values.append(np.inf)
            continue
        values.append(max(float(np.percentile(to_gt, percentile)), float(np.percentile(to_pred, percentile))))
    return float(np.mean(values))
