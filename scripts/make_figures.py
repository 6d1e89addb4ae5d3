"""Regenerate the README's data picture: `python scripts/make_figures.py`.

Writes `docs/images/generated_data.png`: a phantom frame and its overlay (top row), and a
real-anatomy pseudo-video frame and its overlay (bottom row).

ARCADE's pixels must never enter the repository, so the committed picture builds its
pseudo-video from a phantom still (frame + mask) standing in for a real annotated frame.
`--arcade-id N` builds it from ARCADE val image N instead and writes the picture to
`docs/images/local/` (git-ignored) for a look at real anatomy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from angioseg.data.phantom import PhantomParams, generate_phantom
from angioseg.data.pseudo_video import PseudoVideoParams, make_pseudo_video
from angioseg.io import render_overlay
from angioseg.io.atomic import atomic_file
from angioseg.types import Video

REPO = Path(__file__).resolve().parents[1]


def labelled_tile(rgb: np.ndarray, caption: str) -> np.ndarray:
    """Return `rgb` `(H, W, 3)` with a caption bar drawn along its bottom edge."""
    tile = rgb.copy()
    height = tile.shape[0]
    cv2.rectangle(tile, (0, height - 22), (tile.shape[1], height), (0, 0, 0), -1)
    cv2.putText(tile, caption, (6, height - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def frame_and_overlay(video: Video, labels: np.ndarray, table: dict[int, str], index: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey frame `index` as RGB and its overlay, both `(H, W, 3)` uint8."""
    one = Video(video.frames[index : index + 1])
    grey = (np.clip(one.frames[0], 0, 1) * 255).astype(np.uint8)
    overlay = render_overlay(one, labels[index : index + 1], table)[0]
    return np.repeat(grey[..., None], 3, axis=2), overlay


def real_frame(arcade_id: str | None, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(image, vessel mask, caption source) for the pseudo-video row."""
    if arcade_id is not None:
        from angioseg.data.arcade import ArcadeDataset

        sample = ArcadeDataset(split="val").load(arcade_id)
        return sample.image, sample.vessel_mask, f"ARCADE val {arcade_id}"
    still = generate_phantom(PhantomParams.sample(np.random.default_rng(seed + 1), size=size, frames=40, fps=15.0), seed=seed + 1)
    last = still.video.num_frames * 2 // 3
    return still.video.frames[last], still.masks.labels[last] == 1, "phantom still"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arcade-id", default=None, help="build the pseudo-video from this ARCADE val image (local output only)")
    args = parser.parse_args()

    phantom = generate_phantom(PhantomParams.sample(np.random.default_rng(args.seed), size=args.size, frames=40, fps=15.0), seed=args.seed)
    p_frame, p_overlay = frame_and_overlay(phantom.video, phantom.masks.labels, phantom.masks.label_table, 24)

    image, mask, source = real_frame(args.arcade_id, args.size, args.seed)
    pseudo = make_pseudo_video(image, mask, params=PseudoVideoParams(frames=24), seed=args.seed)
    r_frame, r_overlay = frame_and_overlay(pseudo.video, pseudo.masks.labels, pseudo.masks.label_table, 12)
    r_frame, r_overlay = (cv2.resize(x, (args.size, args.size), interpolation=cv2.INTER_AREA) for x in (r_frame, r_overlay))

    grid = np.concatenate([
        np.concatenate([labelled_tile(p_frame, "phantom, frame 24"), labelled_tile(p_overlay, "phantom, ground truth")], axis=1),
        np.concatenate([labelled_tile(r_frame, f"pseudo-video ({source}), frame 12"),
                        labelled_tile(r_overlay, "pseudo-video, ground truth")], axis=1),
    ], axis=0)
    folder = REPO / "docs" / "images" / ("local" if args.arcade_id is not None else "")
    target = folder / "generated_data.png"
    with atomic_file(target) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
