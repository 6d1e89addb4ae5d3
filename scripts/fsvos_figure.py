"""Figure of FSVOS propagation: for one held-out phantom run and one dca1 pseudo-video, the
labelled (prompt) frame, then three propagated frames: the method's labels over the frame,
and the truth below. The dca1 run is the one made from image 35, the frame the repository
ships (and credits) as the demo's input: no other dca1 pixels go into the docs.

    python scripts/fsvos_figure.py OUT.jpg [--work out/fsvos] [--weights W] [--protocol peak]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from angioseg.data.davis import DavisFolder  # noqa: E402
from angioseg.methods import Prompt, get  # noqa: E402
from angioseg.pipelines.propagation_eval import prompt_frame  # noqa: E402

COLOURS = np.array([[0, 0, 0], [230, 60, 60], [60, 200, 60], [60, 120, 255], [255, 220, 0], [255, 0, 255],
                    [0, 230, 230], [255, 140, 0]], np.uint8)
TILE = 256
#: The dca1-train image shipped as the demo's input (angioseg/data/demo_frames/dca1_35.png).
DEMO_IMAGE = "35"


def overlay(frame: np.ndarray, labels: np.ndarray) -> np.ndarray:
    grey = np.clip(frame * 255, 0, 255).astype(np.uint8)
    image = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    mask = labels > 0
    image[mask] = 0.45 * image[mask] + 0.55 * COLOURS[labels[mask] % len(COLOURS)]
    return cv2.resize(image.astype(np.uint8), (TILE, TILE), interpolation=cv2.INTER_NEAREST)


def label(tile: np.ndarray, text: str) -> np.ndarray:
    tile = tile.copy()
    cv2.putText(tile, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def rows_for(folder: Path, name: str, method, protocol: str) -> list[np.ndarray]:
    davis = DavisFolder(folder)
    sequence = davis.load(name, motion=False)
    labels = sequence.masks.labels
    p = prompt_frame(labels, protocol)
    result = method.segment(sequence.video, prompt=Prompt(p, labels[p], sequence.masks.label_table))
    # three frames 3, 8 and 15 frames away from the prompt (towards the run's longer side)
    direction = -1 if p >= len(labels) - 1 - p else 1
    others = [int(np.clip(p + direction * d, 0, len(labels) - 1)) for d in (3, 8, 15)]
    top = [label(overlay(sequence.video.frames[p], labels[p]), f"prompt frame {p}")]
    bottom = [label(overlay(sequence.video.frames[p], np.zeros_like(labels[p])), "frame only")]
    for t in others:
        top.append(label(overlay(sequence.video.frames[t], result.masks.labels[t]), f"fsvos, frame {t} ({result.confidence[t]:.2f})"))
        bottom.append(label(overlay(sequence.video.frames[t], labels[t]), f"truth, frame {t}"))
    return [np.hstack(top), np.hstack(bottom)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--work", default="out/fsvos")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--protocol", default="peak")
    args = parser.parse_args(argv)
    method = get("fsvos", **({"weights": args.weights} if args.weights else {}))
    rows = rows_for(Path(args.work) / "phantom-val", "phantom_000", method, args.protocol)
    rows += rows_for(Path(args.work) / "dca1-val", DEMO_IMAGE, method, args.protocol)
    cv2.imwrite(args.out, np.vstack(rows)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
