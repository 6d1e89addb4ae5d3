"""DAVIS region similarity J and contour accuracy F, per object, like the DAVIS evaluation.

* J (per frame, per object) = |P ∩ G| / |P ∪ G|; 1 when both masks are empty.
* F (per frame, per object): boundary maps B_P, B_G are the one-pixel inner boundaries
  {p ∈ M : a 4-neighbour of p is outside M} (outside the image counts as outside M; the same
  surface as `angioseg.eval.surface`). With r = ceil(0.008 · sqrt(H² + W²)) pixels and
  D_r(B) = B dilated by ``skimage.morphology.disk(r)`` (every pixel within Euclidean
  distance r of B):

      precision = |B_P ∩ D_r(B_G)| / |B_P|,   recall = |B_G ∩ D_r(B_P)| / |B_G|,
      F = 2 · precision · recall / (precision + recall)   (0 when both are 0),

  F = 1 when both boundaries are empty, 0 when exactly one is (a boundary is empty exactly
  when its mask is).
* Aggregation: for each object (label id present anywhere in the reference video, 0 = background
  excluded; if the reference has none, the ids present in the prediction) J and F are averaged
  over all frames; the video's J and F are the means over objects; J&F = (J + F) / 2.
  No objects in either video: J = F = 1.

Masks are handled as bool and counts as int64 / Python int, so long videos and label arrays of
any integer type (uint8 included) never overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from angioseg.errors import InputError
from angioseg.eval.overlap import as_frames, mask_pair
from angioseg.eval.surface import surface_pixels

__all__ = ["DavisScores", "boundary_f", "boundary_tolerance", "davis_f", "davis_j", "davis_j_and_f"]


def boundary_tolerance(height: int, width: int, fraction: float = 0.008) -> int:
    """Matching radius r = ceil(fraction · image diagonal) pixels (DAVIS: fraction = 0.008)."""
    return int(math.ceil(fraction * math.hypot(height, width)))


def _disk(radius: int) -> np.ndarray:
    from skimage.morphology import disk

    return disk(radius).astype(np.uint8)


def _dilate(boundary: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return cv2.dilate(boundary.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def boundary_f_frame(pred: np.ndarray, gt: np.ndarray, kernel: np.ndarray) -> float:
    """F of one `(H, W)` bool frame pair with a given disk kernel; see the module docstring."""
    b_pred, b_gt = surface_pixels(pred), surface_pixels(gt)
    n_pred, n_gt = np.count_nonzero(b_pred), np.count_nonzero(b_gt)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    precision = np.count_nonzero(b_pred & _dilate(b_gt, kernel)) / n_pred
    recall = np.count_nonzero(b_gt & _dilate(b_pred, kernel)) / n_gt
    if precision + recall == 0:
        return 0.0
    return float(2.0 * precision * recall / (precision + recall))


def _j_frames(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    inter = np.count_nonzero(pred & gt, axis=(1, 2)).astype(np.int64)
    union = np.count_nonzero(pred | gt, axis=(1, 2)).astype(np.int64)
    out = np.ones(pred.shape[0], dtype=np.float64)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def _f_frames(pred: np.ndarray, gt: np.ndarray, tolerance: int | None) -> np.ndarray:
    radius = boundary_tolerance(pred.shape[1], pred.shape[2]) if tolerance is None else int(tolerance)
    if radius < 0:
        raise InputError(f"boundary tolerance must be >= 0 pixels; got {tolerance!r}")
    kernel = _disk(radius)
    return np.array([boundary_f_frame(pred[t], gt[t], kernel) for t in range(pred.shape[0])], dtype=np.float64)


def davis_j(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity J = |P ∩ G| / |P ∪ G| of binary masks (1 when both empty).

    `(T, H, W)` input: mean over frames.
    """
    p, g = mask_pair(pred, gt)
    return float(_j_frames(p, g).mean())


def davis_f(pred: np.ndarray, gt: np.ndarray, *, tolerance: int | None = None) -> float:
    """Contour accuracy F of binary masks (module docstring); `tolerance` overrides r in pixels.

    `(T, H, W)` input: mean over frames.
    """
    p, g = mask_pair(pred, gt)
    return float(_f_frames(p, g, tolerance).mean())


boundary_f = davis_f


@dataclass
class DavisScores:
    """DAVIS scores of one video: means over objects of the per-object frame means."""

    j: float
    f: float
    jf: float
    per_object: dict[int, tuple[float, float]] = field(default_factory=dict)  # id -> (J, F)


def _labels(array: np.ndarray, name: str) -> np.ndarray:
    labels = np.asarray(array)
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{name} must be an integer label map; got dtype {labels.dtype}")
    return as_frames(labels, name)


def davis_j_and_f(
    pred_labels: np.ndarray,
    gt_labels: np.ndarray,
    *,
    objects: list[int] | None = None,
    tolerance: int | None = None,
) -> DavisScores:
    """DAVIS J, F and J&F of integer label videos `(T, H, W)` (or one `(H, W)` frame).

    `objects` overrides the object ids (default: ids > 0 present in `gt_labels`, else in
    `pred_labels`). See the module docstring for the definitions and empty conventions.
    """
    pred_array, gt_array = np.asarray(pred_labels), np.asarray(gt_labels)
    if pred_array.shape != gt_array.shape:
        raise InputError(
            f"prediction shape {pred_array.shape} does not match ground-truth shape {gt_array.shape}"
        )
    pred, gt = _labels(pred_array, "prediction"), _labels(gt_array, "ground truth")
    if objects is None:
        ids = [int(i) for i in np.unique(gt) if i != 0]
        if not ids:
            ids = [int(i) for i in np.unique(pred) if i != 0]
    else:
        ids = [int(i) for i in objects]
    if not ids:
        return DavisScores(j=1.0, f=1.0, jf=1.0, per_object={})
    per_object: dict[int, tuple[float, float]] = {}
    for obj in ids:
        p, g = pred == obj, gt == obj
        per_object[obj] = (float(_j_frames(p, g).mean()), float(_f_frames(p, g, tolerance).mean()))
    j = float(np.mean([v[0] for v in per_object.values()]))
    f = float(np.mean([v[1] for v in per_object.values()]))
    return DavisScores(j=j, f=f, jf=(j + f) / 2.0, per_object=per_object)


def davis_frame_scores(pred: np.ndarray, gt: np.ndarray, tolerance: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (J, F) arrays `(T,)` of bool `(T, H, W)` masks (already validated)."""
    return _j_frames(pred, gt), _f_frames(pred, gt, tolerance)
