"""Overlap metrics from the confusion counts, and clDice.

Every function takes a prediction and a reference mask of the same shape, either one frame
`(H, W)` or a video `(T, H, W)`. Masks are bool or integer arrays (non-zero = foreground);
a float array is accepted only when every value is 0 or 1 (threshold probability maps first).

A metric of a video is the mean of its per-frame values, each frame scored on its own with
the empty-mask rule below; `confusion` alone pools (sums) counts unless ``per_frame=True``.

Empty-mask rule (one rule for every ratio here): when a ratio's denominator is 0, the value
is 1.0 if prediction and reference agree on every pixel of the frame, else 0.0. So Dice and
Jaccard of two empty masks are 1 and of an empty vs a non-empty mask 0; sensitivity of a frame
without reference foreground is 1 if nothing is predicted there, else 0; precision of a frame
with nothing predicted is 1 if the reference is empty too, else 0; specificity of a frame whose
reference is all foreground is 1 if the prediction is too, else 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from angioseg.errors import InputError

__all__ = [
    "Confusion",
    "accuracy",
    "cldice",
    "confusion",
    "dice",
    "jaccard",
    "precision",
    "recall",
    "scores_from_confusion",
    "sensitivity",
    "specificity",
]


# ---- input checks shared by the whole package -------------------------------------------------
def as_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """`mask` as a bool array (non-zero = foreground); InputError for anything else."""
    array = np.asarray(mask)
    if array.dtype == bool:
        return array
    if np.issubdtype(array.dtype, np.integer):
        return array != 0
    if np.issubdtype(array.dtype, np.floating):
        if not np.isin(array, (0.0, 1.0)).all():
            raise InputError(
                f"{name} must be a binary mask (bool, integer or 0/1 floats); "
                f"got {array.dtype} values outside {{0, 1}} (threshold probability maps first)"
            )
        return array != 0
    raise InputError(f"{name} must be a bool or integer mask; got dtype {array.dtype}")


def as_frames(array: np.ndarray, name: str = "mask") -> np.ndarray:
    """A `(H, W)` or `(T, H, W)` array as `(T, H, W)` (a view); InputError for other shapes."""
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise InputError(f"{name} must be (H, W) or (T, H, W); got an array of shape {array.shape}")
    if 0 in array.shape:
        raise InputError(f"{name} must not be empty; got shape {array.shape}")
    return array


def mask_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated bool `(T, H, W)` views of `pred` and `gt`; InputError naming both shapes."""
    pred_array, gt_array = np.asarray(pred), np.asarray(gt)
    if pred_array.shape != gt_array.shape:
        raise InputError(
            f"prediction shape {pred_array.shape} does not match ground-truth shape {gt_array.shape}"
        )
    return as_frames(as_mask(pred_array, "prediction"), "prediction"), as_frames(
        as_mask(gt_array, "ground truth"), "ground truth"
    )


# ---- confusion counts -----------------------------------------------------------------------
class Confusion(NamedTuple):
    """True/false positives/negatives: np.int64 scalars, or `(T,)` int64 arrays per frame."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray


def confusion(pred: np.ndarray, gt: np.ndarray, *, per_frame: bool = False) -> Confusion:
    """TP = |P ∩ G|, FP = |P \\ G|, FN = |G \\ P|, TN = |¬P ∩ ¬G| as int64.

    Pooled over every pixel by default; with ``per_frame=True`` each is a `(T,)` int64 array
    (a 2-D input counts as one frame). Counting never overflows: the counts are int64 and no
    intermediate narrower integer type is used.
    """
    p, g = mask_pair(pred, gt)
    tp = np.count_nonzero(p & g, axis=(1, 2)).astype(np.int64)
    positives_pred = np.count_nonzero(p, axis=(1, 2)).astype(np.int64)
    positives_gt = np.count_nonzero(g, axis=(1, 2)).astype(np.int64)
    pixels = np.int64(p.shape[1]) * np.int64(p.shape[2])
    fp = positives_pred - tp
    fn = positives_gt - tp
    tn = pixels - tp - fp - fn
    if per_frame:
        return Confusion(tp, fp, fn, tn)
    return Confusion(*(np.int64(x.sum(dtype=np.int64)) for x in (tp, fp, fn, tn)))


def _ratio(numerator: np.ndarray, denominator: np.ndarray, agree: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.where(agree, 1.0, 0.0)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def scores_from_confusion(counts: Confusion) -> dict[str, np.ndarray]:
    """The six ratio metrics from counts (scalars or per-frame arrays), vectorised.

    dice = 2TP / (2TP + FP + FN); jaccard = TP / (TP + FP + FN);
    accuracy = (TP + TN) / (TP + FP + FN + TN); sensitivity = TP / (TP + FN);
    specificity = TN / (TN + FP); precision = TP / (TP + FP).
    A zero denominator gives 1.0 where FP = FN = 0 (prediction == reference), else 0.0.
    Returns float64 arrays shaped like the counts.
    """
    tp, fp, fn, tn = (np.asarray(x, dtype=np.int64) for x in counts)
    agree = (fp == 0) & (fn == 0)
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, agree),
        "jaccard": _ratio(tp, tp + fp + fn, agree),
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn, agree),
        "sensitivity": _ratio(tp, tp + fn, agree),
        "specificity": _ratio(tn, tn + fp, agree),
        "precision": _ratio(tp, tp + fp, agree),
    }


def _frame_mean(pred: np.ndarray, gt: np.ndarray, key: str) -> float:
    return float(np.mean(scores_from_confusion(confusion(pred, gt, per_frame=True))[key]))


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice = 2TP / (2TP + FP + FN); 1 for two empty masks, 0 for empty vs non-empty.

    `(T, H, W)` input: mean of the per-frame values.
    """
    return _frame_mean(pred, gt, "dice")


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """Jaccard (IoU) = TP / (TP + FP + FN); 1 for two empty masks, 0 for empty vs non-empty.

    `(T, H, W)` input: mean of the per-frame values.
    """
    return _frame_mean(pred, gt, "jaccard")


def accuracy(pred: np.ndarray, gt: np.ndarray) -> float:
    """Accuracy = (TP + TN) / (TP + FP + FN + TN) (never undefined for a non-empty frame).

    `(T, H, W)` input: mean of the per-frame values.
    """
    return _frame_mean(pred, gt, "accuracy")


def sensitivity(pred: np.ndarray, gt: np.ndarray) -> float:
    """Sensitivity (recall) = TP / (TP + FN).

    A frame without reference foreground scores 1 if nothing is predicted, else 0.
    `(T, H, W)` input: mean of the per-frame values.
    """
    return _frame_mean(pred, gt, "sensitivity")


recall = sensitivity


def specificity(pred: np.ndarray, gt: np.ndarray) -> float:
    """Specificity = TN / (TN + FP).

    A frame whose reference is all foreground scores 1 if the prediction is too, else 0.
    `(T, H, W)` input: mean of the per-frame values.
    """
    return _frame_mean(pred, gt, "specificity")


def precision(pred: np.ndarray, gt: np.ndarray) -> float:
    """Precision = TP / (TP + FP).

    A frame with nothing predicted scores 1 if the reference is empty too, else 0.
    `(T, H, W)` input: mean of the per-frame values.
    """
    return _frame_mean(pred, gt, "precision")


# ---- clDice ---------------------------------------------------------------------------------
def skeleton(mask: np.ndarray) -> np.ndarray:
    """2-D skeleton of a bool mask by `skimage.morphology.skeletonize`.

    If skeletonisation of a non-empty mask were ever empty, the mask itself is used, so the
    skeleton of a non-empty mask is never empty.
    """
    from skimage.morphology import skeletonize

    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    skel = skeletonize(mask).astype(bool, copy=False)
    return skel if skel.any() else mask.astype(bool, copy=True)


def cldice_frame(pred: np.ndarray, gt: np.ndarray) -> float:
    """clDice of one `(H, W)` bool frame pair; see `cldice`."""
    pred_any, gt_any = bool(pred.any()), bool(gt.any())
    if not pred_any and not gt_any:
        return 1.0
    if not pred_any or not gt_any:
        return 0.0
    skel_pred, skel_gt = skeleton(pred), skeleton(gt)
    tprec = np.count_nonzero(skel_pred & gt) / np.count_nonzero(skel_pred)
    tsens = np.count_nonzero(skel_gt & pred) / np.count_nonzero(skel_gt)
    if tprec + tsens == 0:
        return 0.0
    return float(2.0 * tprec * tsens / (tprec + tsens))


def cldice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Centreline Dice.

    Tprec = |S(P) ∩ G| / |S(P)|, Tsens = |S(G) ∩ P| / |S(G)|,
    clDice = 2 Tprec Tsens / (Tprec + Tsens), with S the 2-D skeleton
    (`skimage.morphology.skeletonize`, per frame).

    Empty cases: both masks empty -> 1; exactly one empty -> 0; Tprec + Tsens = 0 -> 0.
    `(T, H, W)` input: mean of the per-frame values.
    """
    p, g = mask_pair(pred, gt)
    return float(np.mean([cldice_frame(p[t], g[t]) for t in range(p.shape[0])]))
