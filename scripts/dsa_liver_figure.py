"""The DSA liver phantom's picture for docs/data.md: `python scripts/dsa_liver_figure.py OUT.png`.

One run (seed and parameters below, 512 x 512, 24 frames at 3 fps). Row 1: five frames across
the run (early arterial, arterial, capillary, late capillary, early venous / last) as the
angiography system shows them. Row 2: the same frames with the truth outlined (liver green,
rich-blood tumours yellow, poor-blood tumours cyan); the outlines move with breathing. Row 3:
the key frame (chosen as in the DSA-LTDNet paper, Sec. 2.1: among the last 15 frames, the one
whose two adjacent absolute frame differences have the smallest mean sum), the key frame with
its truth, the frame difference between frame k-9 and k (the paper's FD input), the label map,
and each tumour enlarged at five times (rich ones first).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from angioseg.data.dsa_liver import NEUTRAL, DSALiverParams, DSALiverRun, generate_dsa_liver
from angioseg.io.atomic import atomic_file

SEED = 11
TILE = 320
COLOURS = {"liver": (60, 200, 60), "rich": (0, 230, 255), "poor": (255, 220, 0)}  # BGR
KEY_WINDOW = 15
FD_STEP = 9


def figure_params() -> DSALiverParams:
    """A sampled run with tumours of both classes (at least 60 px, so that they show at the
    figure's scale), a coeliac injection (splenic branches), bowel blush and some breathing."""
    params = DSALiverParams.sample(np.random.default_rng(SEED), height=512, width=512, frames=24, fps=3.0)
    return replace(params, num_rich=3, num_poor=2, injection_site="celiac", breathing_px=6.0, breathing_onset=0.55,
                   shift_px=0.0, bowel_loops=4, bowel_blush=0.2, pseudo_lesions=2, dose=20000.0, tumour_min_area=60.0)


def key_frame(frames: np.ndarray, window: int = KEY_WINDOW) -> int:
    """The paper's key frame (Sec. 2.1) among the last `window` frames."""
    start = max(len(frames) - window, 0)
    steps = np.abs(np.diff(frames[start:].astype(np.float64), axis=0)).sum(axis=(1, 2))
    means = 0.5 * (steps[:-1] + steps[1:])  # frame start + 1 + j sits between steps j and j + 1
    return start + 1 + int(np.argmin(means))


def grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def outline(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], thickness: int = 1) -> None:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(image, contours, -1, colour, thickness, cv2.LINE_AA)


def with_truth(run: DSALiverRun, index: int, scale: int = 1) -> np.ndarray:
    """Frame `index` (enlarged by `scale`) with the liver and each tumour outlined."""
    image = grey(run.video.frames[index])
    if scale != 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)

    def big(mask: np.ndarray) -> np.ndarray:
        return cv2.resize(mask.astype(np.uint8), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)

    outline(image, big(run.liver[index]), COLOURS["liver"], 2 * scale)
    for tumour in run.tumours:
        outline(image, big(run.instances[index] == tumour["id"]), COLOURS[tumour["class"]], scale)
    return image


def tile(image: np.ndarray, caption: str) -> np.ndarray:
    out = cv2.resize(image, (TILE, TILE), interpolation=cv2.INTER_AREA)
    cv2.rectangle(out, (0, TILE - 22), (TILE, TILE), (0, 0, 0), -1)
    cv2.putText(out, caption, (6, TILE - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def legend(image: np.ndarray) -> None:
    """Bottom right, above the caption bar (the liver and its tumours are top left)."""
    x0, y0 = TILE - 160, TILE - 22 - 3 * 20 - 6
    cv2.rectangle(image, (x0 - 4, y0), (TILE, TILE - 22), (0, 0, 0), -1)
    for row, (name, label) in enumerate((("liver", "liver"), ("rich", "rich-blood tumour"), ("poor", "poor-blood tumour"))):
        y = y0 + 18 + 20 * row
        cv2.rectangle(image, (x0, y - 11), (x0 + 16, y + 3), COLOURS[name], -1)
        cv2.putText(image, label, (x0 + 22, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)


def label_picture(run: DSALiverRun, index: int) -> np.ndarray:
    labels = run.masks.labels[index]
    image = np.zeros(labels.shape + (3,), np.uint8)
    image[labels == 1] = (40, 110, 40)
    for tumour in run.tumours:
        image[run.instances[index] == tumour["id"]] = COLOURS[tumour["class"]]
    return image


def tumour_strip(run: DSALiverRun, indices: list[int], size: int = 32) -> np.ndarray:
    """Each tumour (rows, rich first) enlarged at the frames `indices` (columns)."""
    order = sorted(run.tumours, key=lambda t: (t["class"] != "rich", -t["area_px"]))
    cell = TILE // len(indices)
    rows = []
    for tumour in order[: TILE // cell]:
        cells = []
        for index in indices:
            ys, xs = np.nonzero(run.instances[index] == tumour["id"])
            cy, cx = int(ys.mean()), int(xs.mean())
            y0 = int(np.clip(cy - size // 2, 0, run.params.height - size))
            x0 = int(np.clip(cx - size // 2, 0, run.params.width - size))
            crop = grey(run.video.frames[index][y0 : y0 + size, x0 : x0 + size])
            crop = cv2.resize(crop, (cell, cell), interpolation=cv2.INTER_NEAREST)
            cv2.rectangle(crop, (0, 0), (cell - 1, cell - 1), COLOURS[tumour["class"]], 1)
            cells.append(crop)
        rows.append(np.concatenate(cells, axis=1))
    strip = np.concatenate(rows, axis=0)
    out = np.zeros((TILE, TILE, 3), np.uint8)
    out[: strip.shape[0], : strip.shape[1]] = strip[:TILE, :TILE]
    return out


def make_figure(path: Path) -> Path:
    params = figure_params()
    run = generate_dsa_liver(params, seed=SEED)
    u = params.run_fractions
    last = params.frames - 1

    def at(fraction: float) -> int:
        return int(np.argmin(np.abs(u - fraction)))

    arterial = params.injection_start + 0.5 * params.arterial_fill
    picks = [
        (at(arterial), "early arterial"),
        (at(params.injection_start + params.arterial_fill + 0.05), "arterial"),
        (at(0.5), "capillary"),
        (at(0.72), "late capillary"),
        (last, "early venous (last)"),
    ]
    row1 = [tile(grey(run.video.frames[i]), f"frame {i}: {name}") for i, name in picks]
    row2 = [tile(with_truth(run, i), f"frame {i} + truth") for i, _ in picks]
    key = key_frame(run.video.frames)
    earlier = max(key - FD_STEP, 0)
    fd = run.video.frames[key].astype(np.float32) - run.video.frames[earlier].astype(np.float32)
    fd_image = grey(np.clip(float(NEUTRAL) + 1.5 * fd, 0, 1))
    key_truth = tile(with_truth(run, key), f"key frame {key} + truth")
    legend(key_truth)
    times = [at(params.injection_start + params.arterial_fill), at(0.4), at(0.55), at(0.7), key]
    row3 = [
        tile(grey(run.video.frames[key]), f"key frame {key} (paper's rule)"),
        key_truth,
        tile(fd_image, f"FD: frame {key} - frame {earlier}"),
        tile(label_picture(run, key), "labels: liver, tumours"),
        tile(tumour_strip(run, times), "tumours at frames " + ",".join(str(t) for t in times)),
    ]
    picture = np.concatenate([np.concatenate(row, axis=1) for row in (row1, row2, row3)], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A 256-colour palette (mostly greys) keeps the noisy picture under 1 MB.
    rgb = Image.fromarray(np.ascontiguousarray(picture[..., ::-1]))
    paletted = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    with atomic_file(path) as tmp:
        paletted.save(tmp, format="PNG", optimize=True)
    print(f"wrote {path}: seed {SEED}, key frame {key}, tumours "
          + ", ".join(f"{t['class']} {t['area_px']} px" for t in run.tumours))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output PNG, e.g. docs/images/dsa_liver.png")
    make_figure(parser.parse_args().out)


if __name__ == "__main__":
    main()
