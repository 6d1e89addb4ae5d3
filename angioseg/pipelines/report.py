"""Rendering and writing evaluation reports (JSON and Markdown)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from angioseg.errors import InputError

#: Metrics shown in the Markdown table, in this order (those a report holds).
TABLE_METRICS = [
    "dice", "cldice", "nsd", "jaccard", "sensitivity", "specificity", "accuracy",
    "auroc", "auprc", "davis_jf", "flicker", "flicker_gap", "empty_clean", "dice_all_frames",
]


def report_paths(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(REPORT.json, REPORT.md) for a report path given with or without either suffix."""
    out = Path(out)
    base = out.with_suffix("") if out.suffix in (".json", ".md") else out
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".md")


def markdown_report(report: dict[str, Any]) -> str:
    """An evaluation report (`angioseg.pipelines.scoring.evaluate_methods`) as Markdown: the
    data, one row per method (mean ± std of each metric), the reference flicker, throughput.
    A propagation report (``"kind": "propagation"``) has its own tables
    (`angioseg.pipelines.propagation_eval.markdown_propagation_report`)."""
    from angioseg.eval import markdown_table

    if report.get("kind") == "propagation":
        from angioseg.pipelines.propagation_eval import markdown_propagation_report

        return markdown_propagation_report(report)

    rows = {name: {m: (v["mean"], v["std"]) for m, v in entry["summary"].items()} for name, entry in report["methods"].items()}
    table = markdown_table(rows, metrics=[m for m in TABLE_METRICS if any(m in r for r in rows.values())])
    floor = report.get("reference", {}).get("flicker")
    if floor and not any(entry.get("frames", 0) > report.get("cases", 0) for entry in report["methods"].values()):
        floor = None  # one frame per case (stills): there is no flicker to speak of
    reference_line = (f"Flicker of the reference masks themselves (contrast inflow and wash-out change them): "
                      f"{floor['mean']:.3f} ± {floor['std']:.3f}.\n\n" if floor else "")
    speeds = ", ".join(f"{name} {entry['frames_per_second']:.1f}" for name, entry in report["methods"].items() if entry["frames_per_second"])
    return (
        f"Data: `{report['data']}` ({report['cases']} videos), target: {report['target']}, "
        f"frames scored: {report.get('frames_scored', 'all')}.\n\n"
        f"{table}\n{reference_line}Throughput (frames/s): {speeds}.\n"
    )


def write_report(report: dict[str, Any], out: str | os.PathLike[str], *, markdown: str) -> tuple[Path, Path]:
    """Write `report` as OUT.json and `markdown` as OUT.md, both or neither (each renamed into
place only once both are written); strict JSON (no NaN or Infinity). Returns both paths."""
    from angioseg.io.atomic import atomic_file

    json_path, md_path = report_paths(out)
    text = json.dumps(report, indent=2, default=float, allow_nan=False) + "\n"
    for path in (json_path, md_path):
        if path.is_dir():
            raise InputError(f"cannot write the report {path}: a folder stands there")
    with atomic_file(json_path) as json_tmp, atomic_file(md_path) as md_tmp:
        json_tmp.write_text(text)
        md_tmp.write_text(markdown)
    return json_path, md_path
