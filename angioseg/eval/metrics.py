"""One video -> one dict of metrics, and the aggregation every comparison table is built from.

`evaluate_video` is the single entry point: every claim "method A beats method B" is made on
its keys (`METRIC_KEYS`), aggregated over cases with `MetricAccumulator` / `summarise` and
printed with `markdown_table`.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from angioseg.errors import InputError
from angioseg.eval.davis import davis_frame_scores
from angioseg.eval.overlap import as_frames, cldice_frame, confusion, scores_from_confusion
from angioseg.eval.ranking import auroc_auprc
from angioseg.eval.surface import nsd_frame
from angioseg.eval.temporal import temporal_flicker

__all__ = ["METRIC_KEYS", "MetricAccumulator", "evaluate_video", "markdown_table", "summarise"]

#: Keys of `evaluate_video`, in table order; auroc/auprc only appear with probabilities.
METRIC_KEYS: tuple[str, ...] = (
    "dice",
    "jaccard",
    "accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "cldice",
    "nsd",
    "auroc",
    "auprc",
    "davis_j",
    "davis_f",
    "davis_jf",
    "flicker",
)


def _label_video(array: Any, name: str) -> np.ndarray:
    labels = np.asarray(array)
    if labels.dtype == bool:
        return as_frames(labels, name)
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{name} must be an integer label map (T, H, W); got dtype {labels.dtype}")
    return as_frames(labels, name)


def _binary(labels: np.ndarray, label: int | None) -> np.ndarray:
    return labels != 0 if label is None else labels == label


def evaluate_video(
    pred_labels: np.ndarray,
    gt_labels: np.ndarray,
    *,
    probabilities: np.ndarray | None = None,
    flow_backward: np.ndarray | None = None,
    frames: Any = None,
    label: int | None = None,
    nsd_tolerance: float = 2.0,
    frames_scored: str = "all",
) -> dict[str, float]:
    """Every metric of one predicted video against its reference, as Python floats (no NaN).

    Args:
        pred_labels, gt_labels: `(T, H, W)` integer label maps (or one `(H, W)` frame, or
            `LabelMap`s).
        probabilities: optional `(T, H, W)` foreground probabilities for AUROC/AUPRC.
        flow_backward: `(T−1, H, W, 2)` backward flow (dx, dy) for the flicker; else
        frames: `(T, H, W)` float video in [0, 1] (or a `Video`) from which DIS flow is
            estimated. One of the two is required when T ≥ 2.
        label: None = every non-zero label vs background; an id = that label vs the rest.
        nsd_tolerance: NSD tolerance τ in pixels.
        frames_scored: "all" (every frame) or "with_target": the per-frame metrics and
            AUROC/AUPRC only over frames whose reference contains the target, as papers that
            annotate contrast-filled frames score; the frames with an empty reference (before the
            contrast arrives) are then scored by `empty_clean` instead (see below).

    Returns keys, in this order: dice, jaccard, accuracy, sensitivity, specificity, precision,
    cldice, nsd, [auroc, auprc when probabilities are given], davis_j, davis_f, davis_jf,
    flicker. All are computed on the binary masks selected by `label`:

    * dice ... precision, cldice, nsd, davis_j, davis_f: per frame (each with its documented
      empty-mask value), then the mean over all T frames. davis_j therefore equals jaccard
      (both are the per-frame IoU with IoU(∅, ∅) = 1); the binary foreground is DAVIS's one
      object, so davis_jf = (davis_j + davis_f) / 2.
    * auroc, auprc: pooled over all T·H·W pixels (exact), the scores being `probabilities`
      and the positives the reference mask.
    * flicker: `temporal_flicker` of the predicted mask (always over all frames).
    * with ``frames_scored="with_target"``: ``empty_clean`` = the fraction of the frames with an
      empty reference where the prediction is empty too (absent when every frame has the
      target), and ``dice_all_frames`` = the mean Dice over all T frames as with "all"; when
      no frame has the target, only flicker, dice_all_frames and empty_clean are returned (the
      aggregation skips missing metrics per case).
    """
    if frames_scored not in ("all", "with_target"):
        raise InputError(f"frames_scored must be 'all' or 'with_target'; got {frames_scored!r}")
    # A LabelMap is accepted for either side (its `.labels` array is used).
    pred_array = np.asarray(getattr(pred_labels, "labels", pred_labels))
    gt_array = np.asarray(getattr(gt_labels, "labels", gt_labels))
    if pred_array.shape != gt_array.shape:
        raise InputError(
            f"prediction shape {pred_array.shape} does not match ground-truth shape {gt_array.shape}"
        )
    pred = _binary(_label_video(pred_array, "prediction"), label)
    gt = _binary(_label_video(gt_array, "ground truth"), label)
    tau = float(nsd_tolerance)
    if not math.isfinite(tau) or tau < 0:
        raise InputError(f"NSD tolerance must be a finite number >= 0; got {nsd_tolerance!r}")
    if frames is not None and flow_backward is None:
        video_shape = tuple(np.shape(getattr(frames, "frames", frames)))
        if (video_shape if len(video_shape) == 3 else (1, *video_shape)) != pred.shape:
            raise InputError(f"video frames shape {tuple(video_shape)} does not match label shape {pred.shape}")
    if pred.shape[0] >= 2 and flow_backward is None and frames is None:
        raise InputError("evaluate_video needs flow_backward= or frames= to measure flicker on a video of two or more frames")

    if frames_scored == "with_target":
        return _evaluate_frames_with_target(pred, gt, probabilities=probabilities, flow_backward=flow_backward,
                                            frames=frames, tau=tau)
    results = _frame_metrics(pred, gt, probabilities=probabilities, tau=tau)
    results["flicker"] = temporal_flicker(pred, flow_backward=flow_backward, frames=frames)
    _check_finite(results)
    return results


def _evaluate_frames_with_target(pred, gt, *, probabilities, flow_backward, frames, tau: float) -> dict[str, float]:
    """`evaluate_video` with ``frames_scored="with_target"`` on binary `(T, H, W)` masks."""
    has_target = gt.reshape(gt.shape[0], -1).any(axis=1)
    results: dict[str, float] = {}
    if has_target.any():
        scores = None
        if probabilities is not None:
            scores = np.asarray(probabilities)
            if scores.size != pred.size:
                raise InputError(f"probability map shape {scores.shape} does not match label shape {pred.shape}")
            scores = scores.reshape(pred.shape)[has_target]
        results = _frame_metrics(pred[has_target], gt[has_target], probabilities=scores, tau=tau)
    results["dice_all_frames"] = float(scores_from_confusion(confusion(pred, gt, per_frame=True))["dice"].mean())
    results["flicker"] = temporal_flicker(pred, flow_backward=flow_backward, frames=frames)
    if not has_target.all():
        empty_predictions = ~pred[~has_target].reshape(int((~has_target).sum()), -1).any(axis=1)
        results["empty_clean"] = float(empty_predictions.mean())
    _check_finite(results)
    return results


def _check_finite(results: dict[str, float]) -> None:
    bad = [key for key, value in results.items() if not math.isfinite(value)]
    if bad:  # pragma: no cover - every metric is defined on every input
        raise AssertionError(f"non-finite metric values for {bad}")


def _frame_metrics(pred: np.ndarray, gt: np.ndarray, *, probabilities, tau: float) -> dict[str, float]:
    """Per-frame metrics (mean over frames) and pooled AUROC/AUPRC of binary `(T, H, W)` masks."""
    results: dict[str, float] = {}
    per_frame = scores_from_confusion(confusion(pred, gt, per_frame=True))
    for key in ("dice", "jaccard", "accuracy", "sensitivity", "specificity", "precision"):
        results[key] = float(per_frame[key].mean())
    count = pred.shape[0]
    results["cldice"] = float(np.mean([cldice_frame(pred[t], gt[t]) for t in range(count)]))
    results["nsd"] = float(np.mean([nsd_frame(pred[t], gt[t], tau) for t in range(count)]))
    if probabilities is not None:
        scores = np.asarray(probabilities)
        if scores.shape not in (pred.shape, pred.shape[1:]) or scores.size != pred.size:
            raise InputError(f"probability map shape {scores.shape} does not match label shape {pred.shape}")
        results["auroc"], results["auprc"] = auroc_auprc(scores.reshape(pred.shape), gt)
    j_frames, f_frames = davis_frame_scores(pred, gt)
    results["davis_j"] = float(j_frames.mean())
    results["davis_f"] = float(f_frames.mean())
    results["davis_jf"] = (results["davis_j"] + results["davis_f"]) / 2.0
    return results


# ---- aggregation ------------------------------------------------------------------------------
def _check_value(case: str, key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"metric {key!r} of case {case!r} is not a number: {value!r}") from None
    if math.isnan(number):
        raise InputError(f"metric {key!r} of case {case!r} is NaN; every metric must be defined")
    return number


def summarise(results: Iterable[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """{metric: (mean, std)} over cases; std is the population std (ddof = 0; 0 for one case).

    A metric missing from some cases (e.g. auroc without probabilities) is summarised over the
    cases that have it. Metrics keep the order in which they first appear.
    """
    columns: dict[str, list[float]] = {}
    for index, case in enumerate(results):
        for key, value in case.items():
            columns.setdefault(key, []).append(_check_value(f"#{index}", key, value))
    return {key: (float(np.mean(values)), float(np.std(values))) for key, values in columns.items()}


class MetricAccumulator:
    """Cumulative store of per-case metric dicts (MONAI-style), e.g. one per video.

    ``acc.add("video_03", evaluate_video(...))`` then ``acc.mean()``, ``acc.std()`` (population,
    ddof = 0), ``acc.summary()`` ({metric: (mean, std)}) and ``acc.table_rows()``.
    """

    def __init__(self) -> None:
        self._cases: dict[str, dict[str, float]] = {}

    def add(self, name: str, metrics: Mapping[str, float]) -> None:
        """Record one case; InputError for a repeated name or a NaN / non-numeric value."""
        name = str(name)
        if name in self._cases:
            raise InputError(f"case {name!r} was already added to this accumulator")
        self._cases[name] = {key: _check_value(name, key, value) for key, value in metrics.items()}

    def __len__(self) -> int:
        return len(self._cases)

    @property
    def cases(self) -> dict[str, dict[str, float]]:
        """A copy of {case name: metrics} in insertion order."""
        return {name: dict(metrics) for name, metrics in self._cases.items()}

    def summary(self) -> dict[str, tuple[float, float]]:
        """{metric: (mean, std)} over the cases added so far (see `summarise`)."""
        return summarise(self._cases.values())

    def mean(self) -> dict[str, float]:
        """{metric: mean over the cases that have it}."""
        return {key: value[0] for key, value in self.summary().items()}

    def std(self) -> dict[str, float]:
        """{metric: population standard deviation (ddof = 0) over the cases that have it}."""
        return {key: value[1] for key, value in self.summary().items()}

    def table_rows(self, *, include_summary: bool = True) -> list[dict[str, Any]]:
        """One dict per case ``{"case": name, metric: value, ...}`` in insertion order, then (by
        default) a ``"mean"`` row and a ``"std"`` row. A metric a case lacks is absent from its row.
        """
        rows: list[dict[str, Any]] = [{"case": name, **metrics} for name, metrics in self._cases.items()]
        if include_summary and self._cases:
            rows.append({"case": "mean", **self.mean()})
            rows.append({"case": "std", **self.std()})
        return rows


def markdown_table(results: Mapping[str, Mapping[str, tuple[float, float]]], *, metrics: list[str]) -> str:
    """Side-by-side Markdown table: one row per method, one column per metric, ``mean ± std``.

    `results` maps method name -> {metric: (mean, std)} (the output of `summarise`). Values are
    printed with 3 decimals; a metric a method lacks is printed as ``n/a``.
    """
    if not metrics:
        raise InputError("markdown_table needs at least one metric column")
    header = "| method | " + " | ".join(metrics) + " |"
    rule = "|---|" + "|".join("---:" for _ in metrics) + "|"
    lines = [header, rule]
    for method, summary in results.items():
        cells = []
        for key in metrics:
            if key not in summary:
                cells.append("n/a")
                continue
            mean, std = summary[key]
            cells.append(f"{float(mean):.3f} ± {float(std):.3f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
