"""The metrics of the DSA-LTDNet tables, on the key frame of each held-out run, at the run's
own resolution (predictions are resized back from 256², `inputs.predict_key_frame`).

Per run, with P the predicted tumour mask (probability ≥ 0.5), G the true tumour mask and L
the true liver mask (liver or tumour pixels) on the key frame:

- Dice = 2|P ∩ G| / (|P| + |G|) (1 when both are empty); sensitivity = |P ∩ G| / |G|;
  precision = |P ∩ G| / |P|, counted as 0 when P is empty and G is not (predicting nothing
  is not precise) and 1 when both are empty. Tables give the mean over runs.
- **Per-tumour detection**: the tumours are the entries of the run's meta.json ``"tumours"``
  list (each with ``"class"`` "rich" | "poor", ``"id"``, ``"centroid"``, ``"area"`` or
  ``"area_px"``). A tumour's connected component is the union of the 8-connected components of
  G that hold its pixels on the key frame, read from the folder's ``Instances/NAME.npz``
  (``instances`` `(T, H, W)`, pixel = tumour id; written by `angioseg data dsa-liver`); where
  that file is absent, the component of G holding the tumour's centroid (else the nearest
  within max(3, 2·√(area/π)) px). A tumour with no component (none of its pixels on the key
  frame, or no component near its centroid) is counted as "unmatched" and left out. **A tumour
  counts as detected when P overlaps its connected component by at least one pixel.** (Chosen over "P covers ≥ 50 % of it": at 256² a small
  tumour is a few network pixels, and the coverage rule would score the resizing rather than
  the finding; Dice and sensitivity already measure coverage.) Two tumours drawn as one
  component are both detected by one overlap. Detection rates pool the tumours of all runs,
  per class. Where a run's meta has no "tumours", G's components count as tumours of class
  "unknown".
- **False positives outside the liver**: |P \\ L| pixels, and the predicted components that
  touch neither G nor L.

Centroids: a dict ``{"x", "y"}`` or ``{"row", "col"}``, or a pair read as ``(x, y)`` (column,
row) in pixels of the run (`CENTROID_ORDER`); a per-frame list of pairs is read at the key frame.

Run as ``python -m angioseg.methods.ltdnet.evaluation --data DIR --weights W [W ...] -o REPORT.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from angioseg.data.davis import DavisFolder
from angioseg.errors import InputError
from angioseg.io.atomic import atomic_file
from angioseg.methods.ltdnet.inputs import predict_key_frame
from angioseg.methods.ltdnet.keyframe import MIN_FRAMES, select_key_frame
from angioseg.methods.ltdnet.training import truth_masks
from angioseg.methods.ltdnet.weights import VARIANTS, load_ltdnet

#: How a centroid given as a bare pair is read.
CENTROID_ORDER = "xy"
EIGHT = np.ones((3, 3), dtype=bool)
#: Folder of per-run tumour-id maps in a DAVIS-style folder (`angioseg data dsa-liver`).
INSTANCES_DIR = "Instances"
DETECTION_RULE = "a tumour is detected when the predicted mask overlaps its connected component of the true tumour mask (>= 1 pixel)"


def centroid_rc(entry: Any, key: int | None = None) -> tuple[float, float] | None:
    """(row, col) of a meta.json centroid (module docstring), or None when it cannot be read."""
    if isinstance(entry, dict):
        if "row" in entry and "col" in entry:
            return float(entry["row"]), float(entry["col"])
        if "x" in entry and "y" in entry:
            return float(entry["y"]), float(entry["x"])
        return None
    try:
        array = np.asarray(entry, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if array.ndim == 2 and array.shape[1] == 2 and key is not None and len(array):
        array = array[min(key, len(array) - 1)]
    if array.shape != (2,) or not np.isfinite(array).all():
        return None
    x, y = array if CENTROID_ORDER == "xy" else array[::-1]
    return float(y), float(x)


def match_tumours(truth: np.ndarray, tumours: list[dict[str, Any]] | None, *, key: int | None = None,
                  instances: np.ndarray | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Label G's components and match the meta tumours to them (module docstring).

    Args:
        truth: G, `(H, W)` bool.
        tumours: the meta.json entries, or None (G's components become tumours of class "unknown").
        key: the key frame (for per-frame centroids).
        instances: `(H, W)` tumour ids on the key frame, or None (centroids are used).
    Returns (component labels `(H, W)` int, one dict per tumour: ``class``, ``components``
    (labels, empty = unmatched), ``area_px`` of its components).
    """
    components, count = ndi.label(truth, structure=EIGHT)
    areas = np.bincount(components.ravel(), minlength=count + 1)
    rows: list[dict[str, Any]] = []
    if tumours is None:
        return components, [{"class": "unknown", "components": [c], "area_px": int(areas[c])} for c in range(1, count + 1)]
    coords = np.argwhere(components > 0) if count else np.zeros((0, 2), int)
    for tumour in tumours:
        tumour = tumour if isinstance(tumour, dict) else {}
        klass = str(tumour.get("class", "unknown"))
        if instances is not None and "id" in tumour:
            found = sorted(set(np.unique(components[instances == int(tumour["id"])]).tolist()) - {0})
            rows.append({"class": klass, "components": found, "area_px": int(areas[found].sum()) if found else 0})
            continue
        centre = centroid_rc(tumour.get("centroid"), key)
        matched = 0
        if centre is not None and count:
            r, c = int(round(centre[0])), int(round(centre[1]))
            if 0 <= r < truth.shape[0] and 0 <= c < truth.shape[1] and components[r, c]:
                matched = int(components[r, c])
            else:
                area = float(tumour.get("area", tumour.get("area_px", 0)) or 0)
                reach = max(3.0, 2.0 * math.sqrt(max(area, 0.0) / math.pi))
                distances = np.hypot(coords[:, 0] - centre[0], coords[:, 1] - centre[1])
                nearest = int(np.argmin(distances))
                if distances[nearest] <= reach:
                    matched = int(components[tuple(coords[nearest])])
        rows.append({"class": klass, "components": [matched] if matched else [], "area_px": int(areas[matched]) if matched else 0})
    return components, rows


def score_key_frame(predicted: np.ndarray, labels: np.ndarray, label_table: dict[int, str] | None, *,
                    tumours: list[dict[str, Any]] | None = None, key: int | None = None,
                    instances: np.ndarray | None = None, predicted_liver: np.ndarray | None = None) -> dict[str, Any]:
    """The metrics of one run (module docstring). `predicted` `(H, W)` bool tumour mask,
    `labels` `(H, W)` the true label map of the key frame, `instances` `(H, W)` its tumour ids
    (or None)."""
    predicted = np.asarray(predicted, bool)
    liver, truth = truth_masks(np.asarray(labels), label_table)
    overlap = int((predicted & truth).sum())
    p, g = int(predicted.sum()), int(truth.sum())
    components, matched = match_tumours(truth, tumours, key=key, instances=instances)
    hit = set(np.unique(components[predicted]).tolist()) - {0}
    for row in matched:
        row["detected"] = bool(hit.intersection(row["components"]))
    predicted_components, count = ndi.label(predicted, structure=EIGHT)
    touching = set(np.unique(predicted_components[truth | liver]).tolist()) - {0}
    result = {
        "dice": 1.0 if p + g == 0 else 2.0 * overlap / (p + g),
        "sensitivity": 1.0 if g == 0 else overlap / g,
        "precision": (1.0 if g == 0 else 0.0) if p == 0 else overlap / p,
        "predicted_px": p,
        "truth_px": g,
        "fp_outside_liver_px": int((predicted & ~liver).sum()),
        "fp_components_outside_liver": int(count - len(touching)),
        "predicted_components": int(count),
        "tumours": matched,
    }
    if predicted_liver is not None:
        pl = np.asarray(predicted_liver, bool)
        total = int(pl.sum() + liver.sum())
        result["liver_dice"] = 1.0 if total == 0 else 2.0 * int((pl & liver).sum()) / total
    return result


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over runs and pooled per-class detection rates of `score_key_frame` rows."""
    def mean(name: str) -> float | None:
        values = [r[name] for r in rows if name in r]
        return float(np.mean(values)) if values else None

    summary: dict[str, Any] = {"runs": len(rows)}
    for name in ("dice", "sensitivity", "precision", "liver_dice"):
        summary[name] = mean(name)
    summary["dice_std"] = float(np.std([r["dice"] for r in rows])) if rows else None
    tumours = [t for r in rows for t in r["tumours"]]
    detection: dict[str, Any] = {}
    for klass in sorted({t["class"] for t in tumours} | {"rich", "poor"}):
        matched = [t for t in tumours if t["class"] == klass and t["components"]]
        detection[klass] = {"tumours": len(matched), "detected": sum(t["detected"] for t in matched),
                            "rate": (sum(t["detected"] for t in matched) / len(matched)) if matched else None,
                            "unmatched": sum(1 for t in tumours if t["class"] == klass and not t["components"])}
    every = [t for t in tumours if t["components"]]
    detection["all"] = {"tumours": len(every), "detected": sum(t["detected"] for t in every),
                        "rate": (sum(t["detected"] for t in every) / len(every)) if every else None,
                        "unmatched": sum(1 for t in tumours if not t["components"])}
    summary["detection"] = detection
    summary["fp_outside_liver_px"] = int(sum(r["fp_outside_liver_px"] for r in rows))
    summary["fp_outside_liver_px_per_run"] = mean("fp_outside_liver_px")
    summary["runs_with_fp_outside_liver"] = int(sum(1 for r in rows if r["fp_outside_liver_px"] > 0))
    summary["fp_components_outside_liver"] = int(sum(r["fp_components_outside_liver"] for r in rows))
    return summary


def load_instances(root: str | Path, name: str) -> np.ndarray | None:
    """``Instances/NAME.npz``'s ``instances`` `(T, H, W)` (tumour ids), or None where absent."""
    path = Path(root) / INSTANCES_DIR / f"{name}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data["instances"])
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"{path} is not a readable tumour-instance file ({error})") from None


def evaluate_weights(weights: str | Path, data: str | Path, *, device: str = "cpu", limit: int | None = None) -> dict[str, Any]:
    """Score one weights file on every annotated run of a DAVIS-style folder (key frames)."""
    loaded = load_ltdnet(weights, device=device)
    davis = DavisFolder(data)
    rows, skipped = [], []
    started = time.perf_counter()
    for name in davis.names[:limit] if limit else davis.names:
        sequence = davis.load(name, motion=False)
        frames = sequence.video.frames
        if sequence.masks is None or frames.shape[0] < MIN_FRAMES:
            skipped.append(f"{name}: " + ("no annotations" if sequence.masks is None else f"{frames.shape[0]} frames"))
            continue
        key = select_key_frame(frames)
        try:
            probabilities = predict_key_frame(loaded.net, frames, key, spec=loaded.inputs, device=device)
        except InputError as error:
            skipped.append(f"{name}: {error}")
            continue
        liver = probabilities.get("liver")
        instances = load_instances(davis.root, name)
        row = score_key_frame(probabilities["tumour"] >= 0.5, sequence.masks.labels[key], sequence.masks.label_table,
                              tumours=sequence.meta.get("tumours"), key=key,
                              instances=None if instances is None or instances.shape != frames.shape else instances[key],
                              predicted_liver=None if liver is None else liver >= 0.5)
        rows.append({"sequence": name, "key_frame": key, **row})
    variant = VARIANTS.get(loaded.variant)
    return {
        "weights": str(weights), "variant": loaded.variant, "label": variant.label if variant else loaded.variant,
        "paper_dice": variant.paper_dice if variant else None, "inputs": loaded.inputs.to_dict(),
        "config": loaded.config.to_dict(), "training": {k: loaded.info.get(k) for k in ("steps_done", "pretrain_steps_done",
                                                                                          "training_runs", "commit", "seconds")},
        "data": str(data), "skipped": skipped, "seconds": round(time.perf_counter() - started, 1),
        "detection_rule": DETECTION_RULE, "summary": summarise(rows), "per_run": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m angioseg.methods.ltdnet.evaluation",
                                     description="score DSA-LTDNet weights on the key frames of held-out runs")
    parser.add_argument("--data", required=True, help="DAVIS-style folder of annotated DSA runs")
    parser.add_argument("--weights", nargs="+", required=True, help="weights files (angioseg train ltdnet)")
    parser.add_argument("-o", "--out", required=True, help="report: one JSON, a list with one entry per weights file")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=None, help="score only the first K runs")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        reports = [evaluate_weights(w, args.data, device=args.device, limit=args.limit) for w in args.weights]
        with atomic_file(args.out) as tmp:
            Path(tmp).write_text(json.dumps(reports, indent=2) + "\n")
    except InputError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    for report in reports:
        s = report["summary"]
        print(f"{report['variant']}: Dice {s['dice']:.4f} over {s['runs']} runs -> {args.out}" if s["dice"] is not None
              else f"{report['variant']}: no runs scored")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
