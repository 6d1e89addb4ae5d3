"""Threshold-free pixel metrics from probability maps: AUROC and AUPRC (average precision).

Scores and reference masks of any (equal) shape are pooled over every pixel. Exact by default:
the negatives' scores are sorted once (a copy of the scores, no index arrays) and every distinct
positive score is located in them by binary search, so memory stays ~one copy of the scores
(about 84 MB for an 80 x 512 x 512 float32 video). ``bins=K`` instead quantises scores in [0, 1]
into K equal-width bins, streaming frame by frame (a few KB), and treats each bin as one tied
score; it is an approximation whose error shrinks with K.

Definitions, with P positives and N negatives:

* AUROC = (1 / (P N)) Σ_{i ∈ pos} ( #{j ∈ neg : s_j < s_i} + ½ #{j ∈ neg : s_j = s_i} ),
  the Mann-Whitney statistic with ties counted half (equal to the trapezoid under the ROC
  curve through every distinct threshold, and to the average-rank formula).
* AUPRC = average precision = Σ_n (R_n − R_{n−1}) P_n over the distinct thresholds t_n in
  decreasing order, with R_n, P_n the recall and precision of "score ≥ t_n" (R_0 = 0): the
  scikit-learn ``average_precision_score`` convention (no interpolation).

Single-class references (chosen: the chance level of a random scorer, never NaN):
no negatives or no positives -> AUROC = 0.5; no positives -> AUPRC = 0.0 (the prevalence);
no negatives -> AUPRC = 1.0 (as the formula gives: every precision is 1).
"""

from __future__ import annotations

import numpy as np

from angioseg.errors import InputError
from angioseg.eval.overlap import as_mask

__all__ = ["auprc", "auroc", "auroc_auprc"]


def _check(probabilities: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(probabilities)
    labels = np.asarray(gt)
    if scores.shape != labels.shape:
        raise InputError(
            f"probability map shape {scores.shape} does not match ground-truth shape {labels.shape}"
        )
    if scores.size == 0:
        raise InputError("probability map is empty")
    if scores.dtype == bool:
        scores = scores.astype(np.uint8)
    if not (np.issubdtype(scores.dtype, np.floating) or np.issubdtype(scores.dtype, np.integer)):
        raise InputError(f"probabilities must be real numbers; got dtype {scores.dtype}")
    if np.issubdtype(scores.dtype, np.floating) and not np.isfinite(scores).all():
        raise InputError("probability map contains NaN or infinite values")
    return scores, as_mask(labels, "ground truth")


def _from_groups(
    pos_counts: np.ndarray, neg_below: np.ndarray, neg_tied: np.ndarray, n_pos: int, n_neg: int
) -> tuple[float, float]:
    """AUROC and AP from tie groups holding positives, in increasing score order.

    pos_counts[k]: positives with the k-th distinct positive score u_k; neg_below[k]: negatives
    scoring < u_k; neg_tied[k]: negatives scoring = u_k. Integer arithmetic in int64 throughout.
    """
    if n_pos == 0:
        return 0.5, 0.0
    if n_neg == 0:
        return 0.5, 1.0
    pos_counts = pos_counts.astype(np.int64)
    neg_below = neg_below.astype(np.int64)
    neg_tied = neg_tied.astype(np.int64)
    below = int(np.dot(pos_counts, neg_below))
    tied = int(np.dot(pos_counts, neg_tied))
    auc = (below + 0.5 * tied) / (float(n_pos) * float(n_neg))
    # Decreasing thresholds: TP(>= u_k) is the count of positives at or above u_k.
    true_pos = np.cumsum(pos_counts[::-1])[::-1]
    false_pos = n_neg - neg_below
    precisions = true_pos / (true_pos + false_pos).astype(np.float64)
    average_precision = float(np.dot(pos_counts / float(n_pos), precisions))
    return float(auc), average_precision


def _exact(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    positives = scores[labels]
    negatives = scores[~labels]
    negatives.sort()  # in place on the copy made by the boolean index
    values, counts = np.unique(positives, return_counts=True)
    del positives
    below = np.searchsorted(negatives, values, side="left")
    tied = np.searchsorted(negatives, values, side="right") - below
    return _from_groups(counts, below, tied, int(counts.sum()), int(negatives.size))


def _binned(scores: np.ndarray, labels: np.ndarray, bins: int) -> tuple[float, float]:
    if isinstance(bins, bool) or int(bins) != bins or bins < 2:
        raise InputError(f"bins must be an integer >= 2 (or None for the exact metric); got {bins!r}")
    bins = int(bins)
    pos_hist = np.zeros(bins, dtype=np.int64)
    neg_hist = np.zeros(bins, dtype=np.int64)
    flat_scores = scores.reshape(-1, scores.shape[-1]) if scores.ndim > 1 else scores[None]
    flat_labels = labels.reshape(flat_scores.shape)
    low, high = float(scores.min()), float(scores.max())
    if low < 0.0 or high > 1.0:
        raise InputError(f"binned AUROC/AUPRC needs probabilities in [0, 1]; got values in [{low:.4g}, {high:.4g}]")
    chunk = max(1, (1 << 20) // flat_scores.shape[1])  # about a million pixels at a time
    for start in range(0, flat_scores.shape[0], chunk):
        block = flat_scores[start : start + chunk].astype(np.float64)
        index = np.minimum((block * bins).astype(np.int64), bins - 1)
        lab = flat_labels[start : start + chunk]
        pos_hist += np.bincount(index[lab], minlength=bins)
        neg_hist += np.bincount(index[~lab], minlength=bins)
    neg_below_all = np.concatenate(([0], np.cumsum(neg_hist)[:-1]))
    keep = pos_hist > 0
    return _from_groups(
        pos_hist[keep], neg_below_all[keep], neg_hist[keep], int(pos_hist.sum()), int(neg_hist.sum())
    )


def auroc_auprc(probabilities: np.ndarray, gt: np.ndarray, *, bins: int | None = None) -> tuple[float, float]:
    """(AUROC, AUPRC) pooled over every pixel; one pass shared by both. See the module docstring."""
    scores, labels = _check(probabilities, gt)
    if bins is None:
        return _exact(scores, labels)
    return _binned(scores, labels, bins)


def auroc(probabilities: np.ndarray, gt: np.ndarray, *, bins: int | None = None) -> float:
    """Area under the ROC curve over pixels (Mann-Whitney with half-counted ties).

    AUROC = Σ_{i ∈ pos} (#{neg < s_i} + ½ #{neg = s_i}) / (P N); 0.5 when the reference has a
    single class. Exact unless ``bins`` is given.
    """
    return auroc_auprc(probabilities, gt, bins=bins)[0]


def auprc(probabilities: np.ndarray, gt: np.ndarray, *, bins: int | None = None) -> float:
    """Average precision over pixels: AP = Σ_n (R_n − R_{n−1}) P_n, thresholds decreasing.

    0.0 when the reference has no positives (its prevalence), 1.0 when it has no negatives.
    Exact unless ``bins`` is given.
    """
    return auroc_auprc(probabilities, gt, bins=bins)[1]
