"""Print a compact Markdown table (a few metric columns) from `angioseg evaluate` JSON reports.

The rows of several reports on the same data are joined in the order given, so a method
evaluated later (another run of `angioseg evaluate`) sits next to the first ones; the
reference masks' own flicker, where a report has it, follows the table.

    python scripts/compact_table.py docs/results/denver_phantom.json [MORE.json ...] \
        [--metrics dice,cldice,flicker]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_METRICS = "dice,cldice,nsd,sensitivity,auprc,flicker,flicker_gap,empty_clean,dice_all_frames"


def compact_table(reports: list[dict], metrics: list[str]) -> str:
    """Markdown rows `| method | mean ± std ... |` of every method of every report."""
    lines = ["| method | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for report in reports:
        for name, entry in report["methods"].items():
            summary = entry["summary"]
            cells = [f"{summary[m]['mean']:.3f} ± {summary[m]['std']:.3f}" if m in summary else "—" for m in metrics]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    floors = [r["reference"]["flicker"] for r in reports if "reference" in r]
    if floors:
        lines += ["", f"Flicker of the reference masks themselves: {floors[0]['mean']:.3f} ± {floors[0]['std']:.3f}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--metrics", default=DEFAULT_METRICS)
    args = parser.parse_args(argv)
    reports = []
    for path in args.reports:
        try:
            reports.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as error:
            print(f"error: cannot read report {path}: {error}", file=sys.stderr)
            return 2
    data = {r["data"] for r in reports}
    if len(data) > 1:
        print(f"error: the reports are on different data: {sorted(data)}", file=sys.stderr)
        return 2
    print(compact_table(reports, args.metrics.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
