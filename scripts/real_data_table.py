"""One table for real data: every method on four sets, from `angioseg evaluate` JSON reports.

    python scripts/real_data_table.py WORK_DIR > docs/results/real_data.md

WORK_DIR holds the reports `scripts/evaluate_real.sh` writes: dca1_heldout.json (dca1-train
frames 31-40, every vessel labelled, never trained on), arcade_stills.json (ARCADE val, 200
stills, major segments only), arcade_videos.json (20 ARCADE val pseudo-videos, vessel label,
contrast-filled frames), phantom.json (6 phantom runs, vessel label, contrast-filled frames).
Columns per set: Dice, clDice, sensitivity, precision; flicker on the runs; frames/s as
measured in the evaluation of the phantoms (512 x 512).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SETS = (
    ("dca1_heldout", "dca1", ("dice", "cldice", "sensitivity", "precision")),
    ("arcade_stills", "ARC stills", ("dice", "sensitivity", "precision")),
    ("arcade_videos", "ARC videos", ("dice", "cldice", "flicker")),
    ("phantom", "phantom", ("dice", "cldice", "flicker")),
)
SHORT = {"dice": "Dice", "cldice": "clDice", "sensitivity": "sens.", "precision": "prec.", "flicker": "flicker"}
LEGEND = (
    "dca1: dca1-train frames 31-40, every vessel labelled, held out of every training run. "
    "ARC stills: the 200 ARCADE val frames, major segments only (sensitivity is what counts). "
    "ARC videos: 20 ARCADE val pseudo-videos, vessel label, contrast-filled frames. "
    "phantom: 6 phantom runs, vessel label (the catheter is label 2), contrast-filled frames. "
    "frames/s: throughput in the phantom evaluation (512², one run on a machine doing other work; "
    "`benchmarks/segment.py` gives the careful figures)."
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    work = Path(argv[0])
    reports = {key: json.loads((work / f"{key}.json").read_text()) for key, _, _ in SETS if (work / f"{key}.json").is_file()}
    methods = list(dict.fromkeys(m for r in reports.values() for m in r["methods"]))
    header = ["method"]
    for key, title, metrics in SETS:
        if key in reports:
            header += [f"{title} {SHORT[m]}" for m in metrics]
    header.append("frames/s")
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for method in methods:
        cells = [method]
        for key, _, metrics in SETS:
            if key not in reports:
                continue
            summary = reports[key]["methods"].get(method, {}).get("summary", {})
            cells += [f"{summary[m]['mean']:.3f}" if m in summary else "—" for m in metrics]
        fps = reports.get("phantom", {}).get("methods", {}).get(method, {}).get("frames_per_second")
        cells.append(f"{fps:.1f}" if fps else "—")
        lines.append("| " + " | ".join(cells) + " |")
    floor = reports.get("arcade_videos", {}).get("reference", {}).get("flicker")
    if floor:
        lines += ["", f"Flicker of the ARCADE pseudo-videos' reference masks themselves: {floor['mean']:.3f}."]
    lines += ["", LEGEND, "", "Regenerate: `scripts/evaluate_real.sh out/real METHOD...` (this table: frangi sato unet "
              "cenet cenet:style=syntax seq-cenet seq-cenet:motion=dis cenet3d2d)."]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
