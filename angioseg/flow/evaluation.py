"""End-point error of flow backends against the phantom's exact motion (`angioseg flow evaluate`).

The truth is `Motion/<seq>.npz` `flow_backward` of a DAVIS-style folder: b_t on frame t+1's
grid with frame_{t+1}(x) ≈ frame_t(x + b_t(x)), the motion of the vessel layer. Each backend
estimates the same flows, `estimate_pairs(frames[1:], frames[:-1])`, and per pixel

    EPE(x) = || f(x) - b(x) ||_2   (pixels)

is summarised per sequence and region as mean, std, and the share of pixels with EPE > 1 px
and > 3 px. Regions: "vessel" (label > 0 in frame t+1: vessels and catheter, where the vessel
layer is what one sees) and "all" (every pixel; away from the vessels the image may show the
background layer, which moves differently, so this region mixes in that disagreement).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from angioseg.errors import InputError

REGIONS = ("vessel", "all")
STATISTICS = ("epe_mean", "epe_std", "outliers_1px", "outliers_3px")


def endpoint_error(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """|| estimate - truth ||_2 per pixel: `(..., 2)` twice -> `(...)` float64."""
    return np.linalg.norm(estimate.astype(np.float64) - truth.astype(np.float64), axis=-1)


def epe_statistics(errors: np.ndarray) -> dict[str, float]:
    """Mean, std, > 1 px and > 3 px shares of the end-point errors `errors` (any shape)."""
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if errors.size == 0:
        return {"epe_mean": float("nan"), "epe_std": float("nan"), "outliers_1px": float("nan"),
                "outliers_3px": float("nan"), "pixels": 0}
    return {"epe_mean": float(errors.mean()), "epe_std": float(errors.std()), "outliers_1px": float((errors > 1).mean()),
            "outliers_3px": float((errors > 3).mean()), "pixels": int(errors.size)}


def region_mask(labels: np.ndarray | None, shape: tuple[int, ...], region: str) -> np.ndarray | None:
    """`(T-1, H, W)` bool pixels of `region` on frame t+1's grid, or None where it is unknown."""
    if region == "all":
        return np.ones(shape, bool)
    if region == "vessel":
        return None if labels is None else labels[1:] > 0
    raise InputError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}")


def _sequences(data: Path, limit: int | None) -> Iterable[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    from angioseg.data.davis import DavisFolder

    folder = DavisFolder(data)
    names = folder.names[:limit] if limit else folder.names
    found = False
    for name in names:
        sequence = folder.load(name, motion=True)
        if sequence.flow_backward is None or sequence.video.num_frames < 2:
            continue
        found = True
        labels = None if sequence.masks is None else sequence.masks.labels
        yield name, sequence.video.frames.astype(np.float32), sequence.flow_backward, labels
    if not found:
        raise InputError(f"{data} holds no sequence with exact motion (Motion/<seq>.npz) and two frames")


def evaluate_backends(
    data: str | Path, specs: list[str], *, regions: tuple[str, ...] = REGIONS, device: str = "cpu", limit: int | None = None
) -> dict[str, Any]:
    """Score every backend spec (e.g. "dis", "raft:weights=w.pth") on every sequence of `data`."""
    from angioseg.flow.backends import backend_from_spec

    for region in regions:
        region_mask(None, (0,), region)
    backends = {spec: backend_from_spec(spec, device=device) for spec in specs}
    entries = {spec: {"options": backend.options(), "cases": {}, "seconds": 0.0, "pairs": 0} for spec, backend in backends.items()}
    for name, frames, truth, labels in _sequences(Path(data), limit):
        for spec, backend in backends.items():
            start = time.perf_counter()
            estimate = backend.estimate_pairs(frames[1:], frames[:-1])
            entries[spec]["seconds"] += time.perf_counter() - start
            entries[spec]["pairs"] += len(truth)
            errors = endpoint_error(estimate, truth)
            masks = {region: region_mask(labels, errors.shape, region) for region in regions}
            entries[spec]["cases"][name] = {r: epe_statistics(errors[m]) for r, m in masks.items() if m is not None}
    for entry in entries.values():
        entry["summary"] = summarise_cases(entry["cases"])
    return {"data": str(data), "truth": "flow_backward (vessel layer, frame t+1 -> t)", "regions": list(regions),
            "backends": entries}


def summarise_cases(cases: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per region and statistic: mean and std over sequences (NaN-free sequences only)."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    regions = sorted({region for case in cases.values() for region in case}, key=REGIONS.index)
    for region in regions:
        summary[region] = {}
        for statistic in STATISTICS:
            values = [case[region][statistic] for case in cases.values() if region in case and case[region]["pixels"]]
            values = np.asarray(values, dtype=np.float64)
            summary[region][statistic] = {"mean": float(values.mean()) if values.size else float("nan"),
                                          "std": float(values.std()) if values.size else float("nan")}
    return summary


def markdown_report(report: dict[str, Any]) -> str:
    """A summary table (mean ± std over sequences) and a per-sequence table (mean ± std over pixels)."""
    lines = [f"Data: `{report['data']}`; truth: {report['truth']}; EPE in pixels. Summary: mean ± std over "
             "sequences of each sequence's value; per sequence: mean ± std over its pixels.", "",
             "| backend | region | EPE | > 1 px (%) | > 3 px (%) | s / pair |", "|---|---|---:|---:|---:|---:|"]
    for spec, entry in report["backends"].items():
        per_pair = entry["seconds"] / entry["pairs"] if entry["pairs"] else float("nan")
        for region, stats in entry["summary"].items():
            lines.append(f"| {spec} | {region} | {_pm(stats['epe_mean'])} | {_pm(stats['outliers_1px'], 100)} | "
                         f"{_pm(stats['outliers_3px'], 100)} | {per_pair:.3f} |")
    lines += ["", "| backend | sequence | region | EPE mean ± std | > 1 px (%) | > 3 px (%) | pixels |",
              "|---|---|---|---:|---:|---:|---:|"]
    for spec, entry in report["backends"].items():
        for name, case in entry["cases"].items():
            for region, s in case.items():
                lines.append(f"| {spec} | {name} | {region} | {s['epe_mean']:.3f} ± {s['epe_std']:.3f} | "
                             f"{100 * s['outliers_1px']:.1f} | {100 * s['outliers_3px']:.1f} | {s['pixels']} |")
    return "\n".join(lines) + "\n"


def _pm(stat: dict[str, float], scale: float = 1.0) -> str:
    digits = 1 if scale != 1.0 else 3
    return f"{scale * stat['mean']:.{digits}f} ± {scale * stat['std']:.{digits}f}"
