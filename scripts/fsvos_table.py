"""Markdown tables of the FSVOS evaluation reports (scripts/evaluate_fsvos.sh writes them).

    python scripts/fsvos_table.py out/fsvos/eval > docs/results/fsvos.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SETS = {
    "phantom": "held-out multi-object phantom runs (8 × 30 frames, 384²; electrode and clip unseen)",
    "dca1": "dca1-train frames 31-40 as pseudo-videos (10 × 24 frames, 300², every vessel)",
    "arcade": "ARCADE val pseudo-videos (the first 10 of out/baselines/arcade-val: 10 × 24 frames, 512²)",
}


def display(spec: str) -> str:
    """A method spec without its weights path: 'fsvos:weights=W,window=7' -> 'fsvos window=7'."""
    name, _, options = spec.partition(":")
    kept = [o for o in options.split(",") if o and not o.startswith("weights=")]
    weights = next((o for o in options.split(",") if o.startswith("weights=")), "")
    nocl = "nocl" in weights
    label = name + (" " + " ".join(kept) if kept else "")
    if name == "fsvos" and not kept:
        label += " (default: local k=7, same-position windows, r=1)"
    if nocl:
        label += " [no contrastive loss]"
    elif "refine/ctrl" in weights:
        label += " [no refinement, fine-tuned alike]"
    elif "runs/cl" in weights:
        label += " [no refinement, before fine-tuning]"
    label = label.replace("window=none", "global (STCN-style)").replace("reference=match", "best-match windows (paper Eq. 8-9)")
    return label


def number(summary: dict, key: str) -> str:
    entry = summary.get(key)
    return f"{entry['mean']:.3f}" if entry else "–"


def load(folder: Path, name: str) -> dict | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def table(report: dict, *, columns: tuple[str, ...]) -> list[str]:
    heads = {"jf": "J&F", "j": "J", "f": "F", "seen_jf": "J&F seen", "unseen_jf": "J&F unseen", "vessel": "vessel J&F", "fps": "fps"}
    lines = ["| method | " + " | ".join(heads[c] for c in columns) + " |", "|---|" + "---:|" * len(columns)]
    for spec, entry in report["methods"].items():
        cells = []
        for column in columns:
            if column == "fps":
                fps = entry.get("frames_per_second")
                cells.append(f"{fps:.1f}" if fps else "–")
            elif column == "vessel":
                vessel = entry.get("objects", {}).get("vessel")
                cells.append(f"{vessel['jf']['mean']:.3f}" if vessel else "–")
            elif spec.startswith(("seq-cenet", "cenet", "unet")) and column in ("jf", "j", "f", "seen_jf", "unseen_jf"):
                cells.append("–")  # plain methods score the vessel only: see that column
            else:
                cells.append(number(entry["summary"], column))
        lines.append(f"| {display(spec)} | " + " | ".join(cells) + " |")
    return lines


def main(folder: str) -> int:
    root = Path(folder)
    out = ["# FSVOS: one labelled frame -> every frame", "",
           "Regenerate: `scripts/train_fsvos.sh` then `scripts/train_fsvos_refine.sh` (weights),",
           "`scripts/evaluate_fsvos.sh` (reports in out/fsvos/eval,",
           "this page via `python scripts/fsvos_table.py out/fsvos/eval`). DAVIS J (region), F (contour), J&F",
           "per object, averaged over objects then videos; the prompt frame is not scored. `peak`: the prompt",
           "is the reference of the frame of peak opacification (XACV's protocol); `early`: of the first",
           "frame with 40 % of the peak's vessel pixels (MOSXAV's, harder). Plain methods (`seq-cenet`) are",
           "scored on the vessel only. fps: frames per second of the whole propagation (forward and",
           "backward sweeps) on this 2-core CPU, during the evaluation (other work shared the CPU: compare",
           "within a table; `benchmarks/fsvos.py` measures speed on a quiet machine).", ""]
    for key, title in SETS.items():
        out += [f"## {title}", ""]
        for protocol in ("peak", "early"):
            report = load(root, f"main_{key}_{protocol}")
            if report is None:
                continue
            columns = ("jf", "j", "f", "seen_jf", "unseen_jf", "vessel", "fps") if key == "phantom" else ("jf", "j", "f", "fps")
            out += [f"Protocol `{protocol}`:", ""] + table(report, columns=columns) + [""]
    out += ["## Ablations", ""]
    if any(load(root, f"refine_{key}") for key in SETS):
        out += ["Fine refinement (stride-2 / full-size residual logits): the shipped network against the same",
                "fine-tuning without it, and the network both started from, protocol `peak`:", ""]
        for key in SETS:
            report = load(root, f"refine_{key}")
            if report:
                columns = ("jf", "j", "f", "seen_jf", "unseen_jf", "fps") if key == "phantom" else ("jf", "j", "f", "fps")
                out += [f"{key}:", ""] + table(report, columns=columns) + [""]
    if any(load(root, f"contrastive_{key}") for key in SETS):
        out += ["Contrastive loss (weight 0.01 vs 0, same data, steps and seed), protocol `peak`:", ""]
    else:
        out += ["Contrastive loss: not in this evaluation (its weights were not at hand); the measurement on the",
                "network before the fine refinement is in [fsvos_previous.md](fsvos_previous.md#ablations).", ""]
    for key in SETS:
        report = load(root, f"contrastive_{key}")
        if report:
            out += [f"{key}:", ""] + table(report, columns=("jf", "j", "f", "fps")) + [""]
    for name, title in (("window", "Window k (and the same-position reference)"), ("keyframes", "Keyframe interval r")):
        out += [f"{title}, protocol `peak`:", ""]
        for key in SETS:
            report = load(root, f"{name}_{key}")
            if report:
                out += [f"{key}:", ""] + table(report, columns=("jf", "j", "fps")) + [""]
    report = load(root, "scale_phantom")
    if report:
        out += ["Network input scale (frames enlarged before the network, results resized back), phantoms:", ""]
        out += table(report, columns=("jf", "seen_jf", "unseen_jf", "fps")) + [""]
    report = load(root, "unfold_dca1")
    if report:
        out += ["Local matching by the literal unfold sampling vs the masked fast path (same output to 1e-5), dca1:", ""]
        out += table(report, columns=("jf", "j", "fps")) + [""]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "out/fsvos/eval"))
