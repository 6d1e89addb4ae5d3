"""Evaluation metrics: the one set every angioseg comparison is made with.

Modules: `overlap` (confusion counts, Dice, Jaccard, accuracy, sensitivity, specificity,
precision, clDice), `surface` (NSD, Hausdorff-95), `ranking` (AUROC, AUPRC), `davis` (J, F,
J&F), `temporal` (flicker), `metrics` (`evaluate_video`, aggregation, Markdown tables).

Masks are bool/int `(H, W)` frames or `(T, H, W)` videos; every metric has a defined (finite)
value on empty masks, documented in its docstring. numpy / scipy / scikit-image / OpenCV only.
"""

from angioseg.eval.davis import DavisScores, boundary_tolerance, davis_f, davis_j, davis_j_and_f
from angioseg.eval.metrics import METRIC_KEYS, MetricAccumulator, evaluate_video, markdown_table, summarise
from angioseg.eval.overlap import (
    Confusion,
    accuracy,
    cldice,
    confusion,
    dice,
    jaccard,
    precision,
    recall,
    scores_from_confusion,
    sensitivity,
    specificity,
)
from angioseg.eval.ranking import auprc, auroc, auroc_auprc
from angioseg.eval.surface import hausdorff95, nsd, surface_distances, surface_pixels
from angioseg.eval.temporal import estimate_backward_flow, temporal_flicker

__all__ = [
    "METRIC_KEYS",
    "Confusion",
    "DavisScores",
    "MetricAccumulator",
    "accuracy",
    "auprc",
    "auroc",
    "auroc_auprc",
    "boundary_tolerance",
    "cldice",
    "confusion",
    "davis_f",
    "davis_j",
    "davis_j_and_f",
    "dice",
    "estimate_backward_flow",
    "evaluate_video",
    "hausdorff95",
    "jaccard",
    "markdown_table",
    "nsd",
    "precision",
    "recall",
    "scores_from_confusion",
    "sensitivity",
    "specificity",
    "summarise",
    "surface_distances",
    "surface_pixels",
    "temporal_flicker",
]
