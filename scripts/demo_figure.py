"""The README's picture: what `angioseg demo` shows, from its output folder.

    .venv/bin/angioseg demo && .venv/bin/python scripts/demo_figure.py demo_out docs/images/demo.jpg

Top row: the real-anatomy run made from the shipped real angiogram (dca1-train image 35, BSD,
credited in angioseg/data/demo_frames/CREDITS.md) at three moments of the contrast's
arrival; middle row: the default method's masks over those frames; bottom row: the exact
masks. Beside each row's last frame, the phantom run's frame with the same overlay.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from angioseg.data.davis import DavisFolder  # noqa: E402
from angioseg.io import render_overlay  # noqa: E402
from angioseg.io.atomic import atomic_file  # noqa: E402
from angioseg.pipelines import read_bundle  # noqa: E402
from angioseg.types import Video  # noqa: E402

SIDE = 240


def _tile(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def column(folder: Path, bundle: Path, frame: int) -> list[np.ndarray]:
    """[grey frame, predicted overlay, true overlay] of one frame, each SIDE x SIDE RGB."""
    name = DavisFolder(folder).names[0]
    sequence = DavisFolder(folder).load(name)
    predicted = read_bundle(bundle).masks
    one = Video(sequence.video.frames[frame : frame + 1])
    grey = np.repeat((one.frames[0] * 255).astype(np.uint8)[..., None], 3, axis=2)
    truth = (sequence.masks.labels[frame : frame + 1] == 1).astype(np.uint8)
    return [_tile(grey),
            _tile(render_overlay(one, predicted.labels[frame : frame + 1], predicted.label_table, legend=False)[0]),
            _tile(render_overlay(one, truth, {0: "background", 1: "vessel"}, legend=False)[0])]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    demo, target = Path(argv[0]), Path(argv[1])
    count = len(read_bundle(demo / "segmentation-real").masks.labels)
    frames = [count // 4, count // 2, count - 1]
    columns = [column(demo / "real", demo / "segmentation-real", f) for f in frames]
    columns.append(column(demo / "phantom", demo / "segmentation", count - 1))
    gap = np.full((SIDE, 6, 3), 255, np.uint8)
    rows = []
    for r in range(3):
        pieces = []
        for c, col in enumerate(columns):
            pieces += ([np.full((SIDE, 18, 3), 255, np.uint8)] if c == 3 else []) + [col[r], gap]
        rows.append(np.concatenate(pieces[:-1], axis=1))
    figure = np.concatenate([np.concatenate([row, np.full((6, row.shape[1], 3), 255, np.uint8)]) for row in rows])[:-6]
    with atomic_file(target) as tmp:  # .jpg (quality 88) keeps the noisy frames small
        cv2.imwrite(str(tmp), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
